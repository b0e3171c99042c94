// The console and JSON renderers of the query commands on hand-made
// structs: status (rate, ETA, totals), the threshold decisions, best (bits
// per vector and per dimension, notes) and the JSON null conventions.
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "report/console.h"
#include "report/console_format.h"
#include "report/stats_json.h"

namespace kr = kvlab::report;
namespace ks = kvlab::stats;

namespace {
bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }
}  // namespace

TEST(ReportConsole, NumberFormats) {
  EXPECT_EQ(kr::console_num(0.000123456), "0.0001235");
  EXPECT_EQ(kr::console_ci({4, 0.5, 0.1, 0.02}), "0.5 ± 0.02");
  EXPECT_EQ(kr::console_ci({1, 0.5, std::nullopt, std::nullopt}), "0.5 (n=1, no CI)");
  EXPECT_EQ(kr::console_ci({}), "-");
  EXPECT_EQ(kr::console_ci_fixed({4, 0.79, 0.1, 0.0047}), "0.790 ± 0.005");
}

TEST(ReportConsole, StatusRateEtaAndTotals) {
  std::vector<kvlab::store::StatusRow> rows(2);
  rows[0].experiment_id = 1;
  rows[0].experiment = "a";
  rows[0].queued = 30;
  rows[0].done = 10;
  rows[1].experiment_id = 2;
  rows[1].experiment = "b";
  rows[1].done = 5;
  const std::string t = kr::status_text(rows, {{1, 60}}, 60.0, "x.db");
  EXPECT_TRUE(has(t, "25.0 %, 1.00 runs/s, ETA 30 s")) << t;  // 10 of 40; 60 runs in 60 s; 30 left
  EXPECT_TRUE(has(t, "(all)")) << t;
  EXPECT_TRUE(has(kr::status_text({}, {}, 60.0, "x.db"), "kvlab queue SPEC --db x.db"));
  const auto j = nlohmann::json::parse(kr::status_json(rows));
  EXPECT_EQ(j[0]["queued"], 30);
}

TEST(ReportConsole, DecisionsShowThePassagesNeeded) {
  kvlab::store::DecisionRow r;
  r.stream = "sliding_window_kv";
  r.codec = "e8:q=38";
  r.threshold = "A";
  r.factor = 1.0;
  r.n_evaluated = 6;
  r.ratio_mean = 0.85;
  r.ratio_ci95_hw = 0.01;
  r.p_holm = 1e-5;
  r.verdict = "below";
  r.n_needed = 3;
  kvlab::store::DecisionRow u = r;
  u.verdict = "unresolved";
  u.n_needed.reset();
  u.p_holm.reset();
  const std::string t = kr::decisions_text({r, u});
  EXPECT_TRUE(has(t, "0.8500 ± 0.0100") && has(t, "below") && has(t, " 3\n")) << t;
  EXPECT_TRUE(has(t, "unresolved") && has(t, "> 6")) << t;
  const auto j = nlohmann::json::parse(kr::decisions_json({r, u}));
  EXPECT_EQ(j[0]["n_needed"], 3);
  EXPECT_TRUE(j[1]["n_needed"].is_null());
  EXPECT_TRUE(j[1]["p_holm"].is_null());
}

TEST(ReportConsole, BestGivesBitsPerVectorAndPerDimension) {
  ks::BestResult b;
  b.experiment = "x";
  b.family = "int";
  b.metric = "rel_mse";
  b.baseline = "v4_native";
  b.threshold = {"A", 1.0};
  ks::BestStream s;
  s.stream = "sliding_window_kv";
  ks::BestCandidate k;
  k.codec = "int:bits=6,block=64,scale=fp16";
  k.bits_per_vector = 3200;
  k.bits_per_dim = 6.25;
  k.ratio = {8, 0.9612, 0.01, 0.007};
  k.used = 0.9612;
  k.clears = true;
  s.best = k;
  s.candidates = {k};
  b.streams = {s};
  ks::BestStream none;
  none.stream = "hca_pool_kv_ratio128";
  none.note = "no swept point of int clears A";
  b.streams.push_back(none);
  b.layer_weighted.note = "the experiment defines no layer mix";
  b.warnings = {"a note"};
  const std::string t = kr::best_text(b);
  EXPECT_TRUE(has(t, "3200") && has(t, "6.250") && has(t, "0.9612 ± 0.0070")) << t;
  EXPECT_TRUE(has(t, "no swept point of int clears A")) << t;
  EXPECT_TRUE(has(t, "note: a note") && has(t, "layer weighted: the experiment defines no layer mix")) << t;
  const auto j = nlohmann::json::parse(kr::best_json(b));
  EXPECT_EQ(j["streams"][0]["best"]["bits_per_dim"], 6.25);
  EXPECT_TRUE(j["streams"][1]["best"].is_null());
  EXPECT_FALSE(j["streams"][1]["admissible"].get<bool>());
  EXPECT_EQ(j["view"], "point");
  EXPECT_EQ(j["warnings"][0], "a note");
}

// The stats text names the experiment's baseline in its headers and columns
// (v4_native), and keeps "FP8" for the published stand-in.
TEST(ReportConsole, StatsTextNamesTheBaseline) {
  ks::StudySummary s;
  s.experiment.name = "v4";
  s.weights = {{"sliding_window", 2, 2.0 / 43}, {"csa_pool", 21, 21.0 / 43}, {"hca_pool", 20, 20.0 / 43}};
  ks::LayerWeightedRatio l;
  l.codec = "e8:q=38";
  l.family = "e8";
  l.q = 38;
  l.complete = true;
  l.mean = 0.8;
  l.paired = {8, 0.8, 0.8, 0.01};
  l.weighted_bits = 3296;
  l.cr_vs_fp8 = 4672.0 / 3296;
  s.layer_weighted.push_back(l);
  s.baseline = "v4_native";
  const std::string t = kr::stats_text(s, false);
  EXPECT_TRUE(has(t, "layer-weighted ratio vs v4_native")) << t;
  EXPECT_TRUE(has(t, "CR/v4_native")) << t;
  EXPECT_FALSE(has(t, "FP8")) << t;
  s.baseline = "fp8_per64";
  EXPECT_TRUE(has(kr::stats_text(s, false), "layer-weighted ratio vs FP8"));
}
