// Acceptance: importing the published n = 8 JSON must reproduce SPEC
// section 6 (E8 Q38 / FP8: 0.790 ± 0.005, 0.900 ± 0.006, 1.043 ± 0.051;
// layer weighted 0.959 ± 0.024; 3296 vs 4224 bits, -22.0 %), both through
// the library (ingest::import_published -> load_experiment -> summarize)
// and through the CLI (`kvlab import published`, `stats --json`,
// `best_q --json`). Also: importing twice adds nothing.
#include <cmath>
#include <fstream>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ingest/published.h"
#include "stats/study.h"
#include "store/db.h"
#include "store/query.h"
#include "testutil/testutil.h"

namespace ks = kvlab::stats;
namespace st = kvlab::store;
namespace ig = kvlab::ingest;
using nlohmann::json;

namespace {

constexpr const char* kS = "sliding_window_kv";
constexpr const char* kC = "csa_pool_kv_ratio4";
constexpr const char* kH = "hca_pool_kv_ratio128";

ig::LayerMix flash_mix() { return {{kS, 3}, {kC, 20}, {kH, 20}}; }

std::string f3(double v) { return fmt::format("{:.3f}", v); }

json published_json() {
  std::ifstream f(kvlab::testutil::reference_path("stage075_n8.json"));
  return json::parse(f);
}

}  // namespace

TEST(QueryPublished, LibraryReproducesSpecSection6) {
  const std::string dir = kvlab::testutil::make_temp_dir("kvlab-query-pub");
  auto db = st::open_database(dir + "/k.db", st::OpenMode::kCreate);
  ig::ImportOptions opt;
  opt.layer_mix = flash_mix();
  const auto out = ig::import_published(*db, kvlab::testutil::reference_path("stage075_n8.json"), opt);
  EXPECT_TRUE(out.experiment_created);
  EXPECT_EQ(out.experiment, "stage075_n8");
  EXPECT_EQ(out.passages_added, 8);
  EXPECT_EQ(out.runs_added, 8 * 3 * 5);
  EXPECT_EQ(out.results_added, 8 * 3 * 5);
  EXPECT_EQ(out.audits_added, 8 * 3);
  EXPECT_EQ(out.file_sha256.size(), 64u);

  const auto data = st::load_experiment(*db, "");
  EXPECT_EQ(data.info.origin, "published");
  EXPECT_EQ(data.info.spec_hash, out.file_sha256);
  EXPECT_EQ(data.info.report_codec, "e8:q=38");
  EXPECT_EQ(data.info.report_compare, "d4:q=38");
  const auto s = ks::summarize(data);
  EXPECT_EQ(s.n_passages, 8);

  const std::pair<const char*, std::pair<const char*, const char*>> expect[] = {
      {kS, {"0.790", "0.005"}}, {kC, {"0.900", "0.006"}}, {kH, {"1.043", "0.051"}}};
  const json pub = published_json();
  for (const auto& [stream, mh] : expect) {
    const ks::CellStats* c = s.find_cell(stream, "e8:q=38");
    ASSERT_NE(c, nullptr) << stream;
    ASSERT_TRUE(c->ratio_vs_fp8 && c->ratio_vs_fp8->ci95_hw);
    EXPECT_EQ(c->ratio_vs_fp8->n, 8);
    EXPECT_EQ(f3(c->ratio_vs_fp8->mean), mh.first) << stream;
    EXPECT_EQ(f3(*c->ratio_vs_fp8->ci95_hw), mh.second) << stream;
    EXPECT_DOUBLE_EQ(c->bits_per_vector, 3296);
    EXPECT_DOUBLE_EQ(*c->fp8_bits, 4224);
    EXPECT_EQ(fmt::format("{:.1f}", -100 * *c->bit_saving), "-22.0");
    // Every cell's mean agrees with the published aggregate to rounding.
    for (const char* name : {"v14_d4_Q10", "v14_d4_Q38", "v15_e8_Q10", "v15_e8_Q38", "fp8_per64_baseline"}) {
      const auto& agg = pub["aggregate_by_stream"][stream]["codecs"][name]["rel_mse"];
      const ks::CellStats* cc = s.find_cell(stream, ig::published_codec_spec(name));
      ASSERT_NE(cc, nullptr) << name;
      EXPECT_NEAR(cc->rel_mse.mean, agg["mean"].get<double>(), 1e-12 * agg["mean"].get<double>()) << name;
      EXPECT_NEAR(*cc->rel_mse.sd, agg["std"].get<double>(), 1e-9 * agg["std"].get<double>()) << name;
    }
    const double pub_ratio = pub["aggregate_by_stream"][stream]["ratios_vs_fp8"]["v15_e8_Q38"]["mean"].get<double>();
    EXPECT_NEAR(c->ratio_vs_fp8->mean, pub_ratio, 1e-12);
  }
  const ks::LayerWeightedRatio* lw = s.find_layer_weighted("e8:q=38");
  ASSERT_NE(lw, nullptr);
  ASSERT_TRUE(lw->complete);
  EXPECT_EQ(f3(lw->mean), "0.959");
  ASSERT_TRUE(lw->rss_hw.has_value());
  EXPECT_EQ(f3(*lw->rss_hw), "0.024");
  // The paired interval exists and is a different (narrower) number here.
  ASSERT_TRUE(lw->paired.ci95_hw.has_value());
  EXPECT_NEAR(lw->paired.mean, lw->mean, 1e-12);
  EXPECT_LT(*lw->paired.ci95_hw, *lw->rss_hw);
  EXPECT_DOUBLE_EQ(lw->weighted_bits, 3296);
  EXPECT_EQ(fmt::format("{:.1f}", -100 * lw->bit_saving), "-22.0");

  // Importing again adds nothing.
  const auto again = ig::import_published(*db, kvlab::testutil::reference_path("stage075_n8.json"), opt);
  EXPECT_FALSE(again.experiment_created);
  EXPECT_EQ(again.experiment_id, out.experiment_id);
  EXPECT_EQ(again.passages_added, 0);
  EXPECT_EQ(again.runs_added, 0);
  EXPECT_EQ(again.results_added, 0);
  EXPECT_EQ(again.audits_added, 0);
  EXPECT_EQ(again.rows_existing, 120);
  EXPECT_EQ(st::list_experiments(*db).size(), 1u);
}

TEST(QueryPublished, CliReproducesSpecSection6) {
  const std::string dir = kvlab::testutil::make_temp_dir("kvlab-query-cli");
  const std::string k = kvlab::testutil::kvlab_binary();
  const std::string db = dir + "/k.db";
  std::string out;
  ASSERT_EQ(kvlab::testutil::run_command(
                fmt::format("{} import published {} --db {}", k, kvlab::testutil::reference_path("stage075_n8.json"), db),
                &out),
            0)
      << out;
  ASSERT_EQ(kvlab::testutil::run_command(
                fmt::format("{} import published {} --db {}", k, kvlab::testutil::reference_path("stage075_n8.json"), db),
                &out),
            0)
      << out;
  EXPECT_NE(out.find("nothing added"), std::string::npos) << out;

  // stats --json: an array of rows (stdout only; stderr goes elsewhere).
  ASSERT_EQ(kvlab::testutil::run_command(fmt::format("{} stats --db {} --json 2>/dev/null", k, db), &out), 0) << out;
  const json rows = json::parse(out);
  ASSERT_TRUE(rows.is_array());
  int found = 0;
  const std::map<std::string, std::pair<std::string, std::string>> expect = {
      {kS, {"0.790", "0.005"}}, {kC, {"0.900", "0.006"}}, {kH, {"1.043", "0.051"}}};
  EXPECT_EQ(rows.size(), 15u);  // 3 streams x 5 codecs
  for (const auto& r : rows) {
    EXPECT_EQ(r["kind"], "cell");
    if (r["codec"] != "e8:q=38") continue;
    const auto& e = expect.at(r["stream"].get<std::string>());
    EXPECT_EQ(r["q"], 38);
    EXPECT_EQ(r["n"], 8);
    EXPECT_EQ(r["bits_per_vector"].get<double>(), 3296);
    EXPECT_TRUE(r["rel_mse"].contains("mean") && r["rel_mse"].contains("ci95_hw"));
    EXPECT_TRUE(r["cos_sim"].contains("mean"));
    EXPECT_EQ(f3(r["ratio_vs_fp8"]["mean"].get<double>()), e.first);
    EXPECT_EQ(f3(r["ratio_vs_fp8"]["ci95_hw"].get<double>()), e.second);
    ++found;
  }
  EXPECT_EQ(found, 3);
  ASSERT_EQ(kvlab::testutil::run_command(
                fmt::format("{} stats --db {} --json --rows layer_weighted 2>/dev/null", k, db), &out),
            0)
      << out;
  for (const auto& r : json::parse(out)) {
    EXPECT_EQ(r["kind"], "layer_weighted");
    if (r["codec"] != "e8:q=38") continue;
    EXPECT_EQ(f3(r["ratio_vs_fp8"]["mean"].get<double>()), "0.959");
    EXPECT_EQ(f3(r["ratio_vs_fp8"]["ci95_hw"].get<double>()), "0.024");
    EXPECT_EQ(r["bits_per_vector"].get<double>(), 3296);
    ++found;
  }
  EXPECT_EQ(found, 4);

  // best_q --threshold A --ci-safe: E8 fits SWA and CSA at Q=38, not HCA (exit code 3).
  const int rc = kvlab::testutil::run_command(
      fmt::format("{} best_q --threshold A --ci-safe --db {} --json --codec e8 2>/dev/null", k, db), &out);
  EXPECT_EQ(rc, 3) << out;
  const json bq = json::parse(out);
  ASSERT_EQ(bq["streams"].size(), 3u);
  for (const auto& r : bq["streams"]) {
    if (r["stream"] == kH) {
      EXPECT_FALSE(r["admissible"].get<bool>());
      continue;
    }
    EXPECT_TRUE(r["admissible"].get<bool>()) << r.dump();
    EXPECT_EQ(r["q_min"], 38);
    EXPECT_EQ(r["bits_per_vector"].get<double>(), 3296);
    EXPECT_NEAR(r["cr_vs_fp8"].get<double>(), 4224.0 / 3296.0, 1e-12);
    EXPECT_NEAR(r["cr_vs_bf16"].get<double>(), 8192.0 / 3296.0, 1e-12);
    EXPECT_GT(r["margin"].get<double>(), 0);
  }
  ASSERT_TRUE(bq["strategies"].is_array());
  EXPECT_EQ(bq["strategies"].size(), 2u);

  // Threshold C, point view: E8 Q=38 everywhere: both strategies at 3296 bits.
  ASSERT_EQ(kvlab::testutil::run_command(fmt::format("{} best-q --threshold C --db {} --json --codec e8", k, db), &out),
            0)
      << out;
  const json bc = json::parse(out);
  for (const auto& sj : bc["strategies"]) {
    EXPECT_TRUE(sj["admissible"].get<bool>());
    EXPECT_DOUBLE_EQ(sj["weighted_bits"].get<double>(), 3296);
    EXPECT_NEAR(sj["bit_saving"].get<double>(), 1 - 3296.0 / 4224.0, 1e-12);
  }

  // list --json
  ASSERT_EQ(kvlab::testutil::run_command(fmt::format("{} list --db {} --json", k, db), &out), 0) << out;
  const json l = json::parse(out);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0]["name"], "stage075_n8");
  EXPECT_EQ(l[0]["origin"], "published");
  EXPECT_EQ(l[0]["runs"], 120);
  EXPECT_EQ(l[0]["id"], 1);
}
