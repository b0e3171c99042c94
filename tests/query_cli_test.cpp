// The read-side CLI on small databases: bad input (unknown experiment,
// stream, codec, threshold; missing FP8 baseline; corrupt, foreign and too
// new database files) gives clear errors and the documented exit codes;
// CSV import/export round trip; diff; refine; the benchmark generator.
#include <fstream>
#include <string>

#include <SQLiteCpp/Database.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "store/db.h"
#include "store/query.h"
#include "common/error.h"
#include "ingest/csv.h"
#include "ingest/published.h"
#include "testutil/testutil.h"

using nlohmann::json;
namespace tu = kvlab::testutil;

namespace {

struct Cli {
  std::string dir = tu::make_temp_dir("kvlab-query-cli");
  std::string k = tu::kvlab_binary();
  std::string db = dir + "/k.db";
  std::string out;
  int run(const std::string& args) { return tu::run_command(fmt::format("{} {} 2>&1", k, args), &out); }
  int run_stdout(const std::string& args) { return tu::run_command(fmt::format("{} {} 2>/dev/null", k, args), &out); }
  // In-process (the CLI import is covered by query_published_test): each
  // kvlab process start costs LibTorch's start-up time.
  void import_published() {
    auto h = kvlab::store::open_database(db, kvlab::store::OpenMode::kCreate);
    kvlab::ingest::ImportOptions o;
    o.layer_mix = {{"sliding_window_kv", 3}, {"csa_pool_kv_ratio4", 20}, {"hca_pool_kv_ratio128", 20}};
    kvlab::ingest::import_published(*h, tu::reference_path("stage075_n8.json"), o);
  }
  std::string write(const std::string& name, const std::string& text) {
    const std::string p = dir + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
};

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

}  // namespace

TEST(QueryCli, UnknownExperimentStreamCodecThreshold) {
  Cli c;
  c.import_published();
  EXPECT_EQ(c.run(fmt::format("stats --db {} --experiment nosuch", c.db)), 1);
  EXPECT_TRUE(has(c.out, "unknown experiment 'nosuch'") && has(c.out, "stage075_n8")) << c.out;
  EXPECT_EQ(c.run(fmt::format("stats --db {} --experiment 1", c.db)), 0) << c.out;  // by id
  EXPECT_EQ(c.run(fmt::format("stats --db {} --stream swa", c.db)), 1);
  EXPECT_TRUE(has(c.out, "unknown stream 'swa'") && has(c.out, "hca_pool_kv_ratio128")) << c.out;
  EXPECT_EQ(c.run(fmt::format("best_q --db {} --codec e9", c.db)), 1);
  EXPECT_TRUE(has(c.out, "unknown codec 'e9'") && has(c.out, "e8:q=38")) << c.out;
  EXPECT_EQ(c.run(fmt::format("best_q --db {} --threshold D", c.db)), 2);
  EXPECT_TRUE(has(c.out, "unknown threshold 'D'")) << c.out;
  EXPECT_EQ(c.run(fmt::format("export --db {} --format xml", c.db)), 2);
  // A second experiment: the default is ambiguous and the error lists both.
  const std::string csv = c.write("other.csv",
                                  "passage,stream,codec,q,bits_per_vector,rel_mse,cos_sim\n"
                                  "a,sliding_window_kv,fp8_per64,,4224,0.001,0.9997\n"
                                  "a,sliding_window_kv,e8,38,3296,0.0008,0.9998\n");
  ASSERT_EQ(c.run(fmt::format("import csv {} --db {}", csv, c.db)), 0) << c.out;
  EXPECT_EQ(c.run(fmt::format("best_q --db {}", c.db)), 1);
  EXPECT_TRUE(has(c.out, "choose one with --experiment") && has(c.out, "stage075_n8") && has(c.out, "other"))
      << c.out;
}

TEST(QueryCli, MissingBaselineIsNamed) {
  Cli c;
  const std::string csv = c.write("nofp8.csv",
                                  "passage,stream,codec,q,bits_per_vector,rel_mse,cos_sim\n"
                                  "a,sliding_window_kv,fp8_per64,,4224,0.001,0.9997\n"
                                  "a,sliding_window_kv,e8,38,3296,0.0008,0.9998\n"
                                  "a,hca_pool_kv_ratio128,e8,38,3296,0.0008,0.9998\n");
  ASSERT_EQ(c.run(fmt::format("import csv {} --db {}", csv, c.db)), 0) << c.out;
  EXPECT_EQ(c.run(fmt::format("best_q --db {}", c.db)), 1);
  EXPECT_TRUE(has(c.out, "hca_pool_kv_ratio128") && has(c.out, "no FP8 baseline")) << c.out;
  // Leaving the stream out works; n = 1 gives no interval, so CI-safe is not admissible (exit 3).
  EXPECT_EQ(c.run(fmt::format("best_q --db {} --stream sliding_window_kv", c.db)), 0) << c.out;
  EXPECT_EQ(c.run(fmt::format("best_q --db {} --stream sliding_window_kv --ci-safe", c.db)), 3) << c.out;
  EXPECT_TRUE(has(c.out, "fewer than 2 passages")) << c.out;
  // stats still works and says so.
  EXPECT_EQ(c.run(fmt::format("stats --db {}", c.db)), 0) << c.out;
  EXPECT_TRUE(has(c.out, "no FP8 baseline")) << c.out;
  EXPECT_TRUE(has(c.out, "no CI")) << c.out;  // never "± 0" for n = 1
}

TEST(QueryCli, BadDatabaseFiles) {
  Cli c;
  EXPECT_EQ(c.run(fmt::format("stats --db {}/missing.db", c.dir)), 1) << c.out;
  const std::string junk = c.write("junk.db", std::string(4096, 'x'));
  EXPECT_EQ(c.run(fmt::format("stats --db {}", junk)), 1) << c.out;
  {
    SQLite::Database foreign(c.dir + "/foreign.db", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    foreign.exec("CREATE TABLE t (x INTEGER)");
  }
  EXPECT_EQ(c.run(fmt::format("list --db {}/foreign.db", c.dir)), 1) << c.out;
  c.import_published();
  {
    SQLite::Database raw(c.db, SQLite::OPEN_READWRITE);
    raw.exec(fmt::format("PRAGMA user_version = {}", kvlab::store::schema_version() + 7));
  }
  EXPECT_EQ(c.run(fmt::format("stats --db {}", c.db)), 5) << c.out;
}

TEST(QueryCli, CsvRoundTripAndDiff) {
  Cli c;
  c.import_published();
  const std::string csv = c.dir + "/export.csv";
  ASSERT_EQ(c.run(fmt::format("export --db {} --format csv --out {}", c.db, csv)), 0) << c.out;
  ASSERT_EQ(c.run(fmt::format("import csv {} --db {} --experiment fromcsv", csv, c.db)), 0) << c.out;
  ASSERT_EQ(c.run(fmt::format("import csv {} --db {} --experiment fromcsv", csv, c.db)), 0) << c.out;
  EXPECT_TRUE(has(c.out, "nothing added")) << c.out;
  // The same statistics from the re-imported rows.
  ASSERT_EQ(c.run_stdout(fmt::format("stats --db {} --experiment stage075_n8 --json", c.db)), 0);
  const json a = json::parse(c.out);
  ASSERT_EQ(c.run_stdout(fmt::format("stats --db {} --experiment fromcsv --json", c.db)), 0);
  const json b = json::parse(c.out);
  ASSERT_EQ(a.size(), 15u);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < b.size(); ++i) {
    EXPECT_EQ(a[i]["codec"], b[i]["codec"]);
    EXPECT_DOUBLE_EQ(a[i]["rel_mse"]["mean"].get<double>(), b[i]["rel_mse"]["mean"].get<double>());
  }
  // diff: same passages (hashes exported) -> paired, every ratio exactly 1.
  ASSERT_EQ(c.run_stdout(fmt::format("diff stage075_n8 fromcsv --db {} --json", c.db)), 0) << c.out;
  const json d = json::parse(c.out);
  EXPECT_TRUE(d["paired"].get<bool>());
  EXPECT_EQ(d["cells"].size(), 15u);
  for (const auto& x : d["cells"]) {
    EXPECT_DOUBLE_EQ(x["ratio"].get<double>(), 1.0);
    EXPECT_FALSE(x["difference"]["significant"].get<bool>());
  }
  // A CSV of other passages with a cell on one side only -> Welch, listed apart.
  std::string other = "passage,stream,codec,q,bits_per_vector,rel_mse,cos_sim\n";
  for (int p = 0; p < 4; ++p) {
    other += fmt::format("x{},sliding_window_kv,fp8_per64,,4224,{},0.9997\n", p, 0.0010 + 0.0001 * p);
    other += fmt::format("x{},sliding_window_kv,e8:q=38,,3296,{},0.9998\n", p, 0.0016 + 0.0001 * p);
    other += fmt::format("x{},sliding_window_kv,e8,44,3360,{},0.9998\n", p, 0.0007 + 0.0001 * p);
  }
  ASSERT_EQ(c.run(fmt::format("import csv {} --db {}", c.write("welch.csv", other), c.db)), 0) << c.out;
  ASSERT_EQ(c.run_stdout(fmt::format("diff stage075_n8 welch --db {} --json --stream sliding_window_kv", c.db)), 0)
      << c.out;
  const json w = json::parse(c.out);
  EXPECT_FALSE(w["paired"].get<bool>());
  ASSERT_EQ(w["only_b"].size(), 1u);
  EXPECT_EQ(w["only_b"][0], "sliding_window_kv e8:q=44");
  for (const auto& x : w["cells"]) {
    EXPECT_EQ(x["difference"]["method"], "welch");
    if (x["codec"] == "e8:q=38") {
      EXPECT_TRUE(x["difference"]["significant"].get<bool>()) << x.dump();
    }
  }
  EXPECT_EQ(w["only_a"].size(), 3u);  // d4:q=10, d4:q=38, e8:q=10 on SWA
}

TEST(QueryCli, CsvBadValuesNameLineAndColumn) {
  Cli c;
  const std::string hdr = "passage,stream,codec,q,bits_per_vector,rel_mse,cos_sim\n";
  // Through the CLI once (exit code 1, message on stderr) ...
  EXPECT_EQ(c.run(fmt::format("import csv {} --db {}", c.write("b1.csv", hdr + "a,swa,e8,38,3296,0.1,0.9\n"), c.db)), 1);
  EXPECT_TRUE(has(c.out, "b1.csv:2") && has(c.out, "unknown stream 'swa'")) << c.out;
  // ... and the other cases in-process.
  auto db = kvlab::store::open_database(c.db, kvlab::store::OpenMode::kCreate);
  kvlab::ingest::ImportOptions o;
  o.layer_mix = {{"sliding_window_kv", 3}};
  const auto msg = [&](const std::string& name, const std::string& text) {
    try {
      kvlab::ingest::import_csv(*db, c.write(name, text), o);
    } catch (const kvlab::Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  std::string m = msg("b2.csv", hdr + "a,sliding_window_kv,e8,38,3296,abc,0.9\n");
  EXPECT_TRUE(has(m, "b2.csv:2 column rel_mse") && has(m, "'abc'")) << m;
  m = msg("b4.csv", "passage,stream\n");
  EXPECT_TRUE(has(m, "missing column 'codec'")) << m;
  m = msg("b5.csv", hdr + "a,sliding_window_kv,e8,,3296,0.1,0.9\n");
  EXPECT_TRUE(has(m, "b5.csv:2 column codec") && has(m, "needs a Q")) << m;
  m = msg("b6.csv", hdr + "a,sliding_window_kv,e8,38,3296,0.1,0.9\na,sliding_window_kv,e8:q=38,,3296,0.1,0.9\n");
  EXPECT_TRUE(has(m, "b6.csv:3") && has(m, "duplicate row")) << m;
  m = msg("b7.csv", hdr + "a,sliding_window_kv,e8,38,-5,0.1,0.9\n");
  EXPECT_TRUE(has(m, "bits_per_vector -5 must be > 0")) << m;
  m = msg("b8.csv", hdr + "a,sliding_window_kv,fp8_per64,3,4224,0.1,0.9\n");
  EXPECT_TRUE(has(m, "b8.csv:2 column codec")) << m;
  m = msg("b9.csv", hdr + "a,sliding_window_kv,e8,38,3296,0.1\n");
  EXPECT_TRUE(has(m, "6 fields, the header has 7")) << m;
  m = msg("b10.csv", hdr);
  EXPECT_TRUE(has(m, "no rows")) << m;
  // Nothing was written by the failed imports.
  EXPECT_TRUE(kvlab::store::list_experiments(*db).empty());
}

TEST(QueryCli, SuggestAndRefineQueueRuns) {
  Cli c;
  c.import_published();
  ASSERT_EQ(c.run_stdout(fmt::format("best_q --db {} --threshold A --ci-safe --codec e8 --suggest --json", c.db)), 3);
  const json bq = json::parse(c.out);
  ASSERT_TRUE(bq["suggestions"].is_array());
  ASSERT_FALSE(bq["suggestions"].empty());
  std::set<std::string> codecs;
  for (const auto& s : bq["suggestions"]) codecs.insert(s["codec"].get<std::string>());
  EXPECT_TRUE(codecs.count("e8:q=40")) << bq["suggestions"].dump();  // same bits as Q=38, larger Q
  ASSERT_EQ(c.run_stdout(fmt::format("refine --db {} --threshold A --ci-safe --codec e8 --json", c.db)), 0) << c.out;
  const json r = json::parse(c.out);
  EXPECT_EQ(r["codecs"].size(), codecs.size());
  EXPECT_EQ(r["runs_added"].get<int>(), static_cast<int>(codecs.size()) * 8 * 3);
  ASSERT_EQ(c.run_stdout(fmt::format("refine --db {} --threshold A --ci-safe --codec e8 --json", c.db)), 0);
  EXPECT_EQ(json::parse(c.out)["runs_added"], 0);  // queueing twice adds nothing
  ASSERT_EQ(c.run_stdout(fmt::format("list --db {} --runs --status queued --json", c.db)), 0);
  EXPECT_EQ(json::parse(c.out).size(), codecs.size() * 8 * 3);
  // Queued runs do not change the statistics.
  ASSERT_EQ(c.run_stdout(fmt::format("list --db {} --json", c.db)), 0);
  EXPECT_EQ(json::parse(c.out)[0]["done"], 120);
}

TEST(QueryCli, ShowAndBenchmarkGenerator) {
  Cli c;
  c.import_published();
  ASSERT_EQ(c.run_stdout(fmt::format("show stage075_n8 --db {} --json", c.db)), 0) << c.out;
  const json s = json::parse(c.out);
  EXPECT_EQ(s["passages"].size(), 8u);
  EXPECT_EQ(s["params"]["layer_mix"]["csa_pool_kv_ratio4"], 20);
  ASSERT_EQ(c.run_stdout(fmt::format("show --run 1 --db {} --json", c.db)), 0) << c.out;
  EXPECT_EQ(json::parse(c.out)["provenance"]["host_kind"], "published");
  EXPECT_EQ(c.run(fmt::format("show --run 99999 --db {}", c.db)), 1);
  // A small generated database answers best_q and stats.
  const std::string bench = c.dir + "/bench.db";
  ASSERT_EQ(c.run(fmt::format("bench query --generate {} --runs 3000 --qmax 20 --repeat 1", bench)), 0) << c.out;
  EXPECT_TRUE(has(c.out, "best_q")) << c.out;
  const int rc = c.run_stdout(fmt::format("best_q --db {} --threshold A --ci-safe --json", bench));
  EXPECT_TRUE(rc == 0 || rc == 3) << c.out;
  const json bq = json::parse(c.out);
  EXPECT_EQ(bq["streams"].size(), 6u);  // 3 streams x {d4, e8}
}

TEST(QueryCli, BestLowestBitPointPerStreamAndLayerWeighted) {
  Cli c;
  c.import_published();
  // Published n = 8: E8 Q=38 clears A on SWA (0.790) and CSA (0.900), not on HCA (1.043); layer weighted 0.959.
  ASSERT_EQ(c.run_stdout(fmt::format("best --db {} --family e8 --threshold A --json", c.db)), 3) << c.out;
  const json j = json::parse(c.out);
  EXPECT_EQ(j["baseline"], "fp8_per64");
  EXPECT_EQ(j["metric"], "rel_mse");
  ASSERT_EQ(j["streams"].size(), 3u);
  EXPECT_EQ(j["streams"][0]["best"]["codec"], "e8:q=38");
  EXPECT_DOUBLE_EQ(j["streams"][0]["best"]["bits_per_vector"].get<double>(), 3296);
  EXPECT_DOUBLE_EQ(j["streams"][0]["best"]["bits_per_dim"].get<double>(), 3296.0 / 512);
  EXPECT_NEAR(j["streams"][0]["best"]["ratio"]["mean"].get<double>(), 0.790, 0.0005);
  EXPECT_FALSE(j["streams"][2]["admissible"].get<bool>());
  EXPECT_EQ(j["layer_weighted"]["best"]["codec"], "e8:q=38");
  EXPECT_NEAR(j["layer_weighted"]["best"]["ratio"]["mean"].get<double>(), 0.959, 0.0005);
  EXPECT_NEAR(j["layer_weighted"]["best"]["ratio"]["ci95_hw"].get<double>(), 0.022, 0.0005);
  // Threshold C, point view: HCA clears at E8 Q=38 too; text names bits/vector and bits/dim.
  ASSERT_EQ(c.run(fmt::format("best --db {} --family e8 --threshold C", c.db)), 0) << c.out;
  EXPECT_TRUE(has(c.out, "bits/vec") && has(c.out, "bits/d") && has(c.out, "6.438")) << c.out;
  // Bad input: unknown family, metric, baseline; a metric not recorded.
  EXPECT_EQ(c.run(fmt::format("best --db {} --family e9", c.db)), 1);
  EXPECT_TRUE(has(c.out, "unknown codec family 'e9'") && has(c.out, "hadamard_int")) << c.out;
  EXPECT_EQ(c.run(fmt::format("best --db {} --family e8 --metric foo", c.db)), 2);
  EXPECT_TRUE(has(c.out, "unknown --metric 'foo'") && has(c.out, "attn_out")) << c.out;
  EXPECT_EQ(c.run(fmt::format("best --db {} --family e8 --against v4_native", c.db)), 1);
  EXPECT_TRUE(has(c.out, "--against 'v4_native'") && has(c.out, "fp8_per64")) << c.out;
  EXPECT_EQ(c.run(fmt::format("best --db {} --family e8 --metric kl", c.db)), 1);
  EXPECT_TRUE(has(c.out, "kl_mean") && has(c.out, "rel_mse")) << c.out;
  EXPECT_EQ(c.run(fmt::format("best --db {}", c.db)), 2);
  EXPECT_TRUE(has(c.out, "missing --family")) << c.out;
  // --against another codec of the experiment: D4 Q=38 as baseline.
  ASSERT_EQ(c.run_stdout(fmt::format("best --db {} --family e8 --threshold A --against d4:q=38 --json", c.db)), 0)
      << c.out;
  EXPECT_EQ(json::parse(c.out)["baseline"], "d4:q=38");
}

TEST(QueryCli, StatsShowsEveryRecordedMetricWithItsRatio) {
  Cli c;
  {
    auto h = kvlab::store::open_database(c.db, kvlab::store::OpenMode::kCreate);
    kvlab::ingest::ImportOptions o;
    o.layer_mix = {{"sliding_window_kv", 1}};
    const std::string csv = c.write("m.csv",
                                    "passage,stream,codec,q,bits_per_vector,rel_mse,cos_sim\n"
                                    "a,sliding_window_kv,fp8_per64,,4224,0.001,0.9997\n"
                                    "b,sliding_window_kv,fp8_per64,,4224,0.002,0.9997\n"
                                    "a,sliding_window_kv,e8,38,3296,0.0008,0.9998\n"
                                    "b,sliding_window_kv,e8,38,3296,0.0012,0.9998\n");
    kvlab::ingest::import_csv(*h, csv, o);
    // attn_out_rel rows for every run (as the attention metrics store them): fp8 1, 2; e8 3, 4 -> ratios 3, 2.
    h->exec(
        "INSERT INTO run_metrics (run_id, metric, value) SELECT r.id, 'attn_out_rel', CASE "
        "WHEN r.codec = 'fp8_per64' AND p.name = 'a' THEN 1 WHEN r.codec = 'fp8_per64' THEN 2 "
        "WHEN p.name = 'a' THEN 3 ELSE 4 END FROM runs r JOIN passages p ON p.id = r.passage_id");
  }
  ASSERT_EQ(c.run_stdout(fmt::format("stats --db {} --json", c.db)), 0) << c.out;
  const json j = json::parse(c.out);
  const json* e8 = nullptr;
  for (const auto& r : j)
    if (r["codec"] == "e8:q=38") e8 = &r;
  ASSERT_NE(e8, nullptr);
  EXPECT_DOUBLE_EQ((*e8)["metrics"]["attn_out_rel"]["mean"].get<double>(), 3.5);
  EXPECT_DOUBLE_EQ((*e8)["metric_ratios"]["attn_out_rel"]["mean"].get<double>(), 2.5);
  EXPECT_FALSE((*e8)["metric_ratios"]["attn_out_rel"]["ci95_hw"].is_null());
  EXPECT_NEAR((*e8)["metric_ratios"]["rel_mse"]["mean"].get<double>(), (0.8 + 0.6) / 2, 1e-12);
  ASSERT_EQ(c.run(fmt::format("stats --db {}", c.db)), 0) << c.out;
  EXPECT_TRUE(has(c.out, "attn_out_rel") && has(c.out, "2.500 ±")) << c.out;
  // best on the attention metric: e8 ratio 2.5 does not clear C.
  EXPECT_EQ(c.run(fmt::format("best --db {} --family e8 --metric attn_out --threshold C", c.db)), 3) << c.out;
  EXPECT_TRUE(has(c.out, "attn_out_rel")) << c.out;
}

TEST(QueryCli, UntilResolvedSweepAndItsDecisions) {
  Cli c;
  const std::string spec = c.write("seq.ini",
                                   "[experiment]\nname = seq\nseqlen = 256\nstreams = sliding_window_kv\n"
                                   "[passages]\nsynthetic = 0-5\n[codecs]\ncodec = fp8_per64\ne8.q = 10 38\n");
  ASSERT_EQ(c.run(fmt::format("queue {} --db {} --passages 2", spec, c.db)), 0) << c.out;
  EXPECT_TRUE(has(c.out, "2 passages (of 6)")) << c.out;
  EXPECT_EQ(c.run(fmt::format("queue {} --db {} --passages 7", spec, c.db)), 1);
  EXPECT_TRUE(has(c.out, "--passages 7") && has(c.out, "6 passages")) << c.out;
  EXPECT_EQ(c.run(fmt::format("run --db {} --executor stub --until-resolved", c.db)), 2);
  EXPECT_TRUE(has(c.out, "--until-resolved needs --spec")) << c.out;
  EXPECT_EQ(c.run(fmt::format("run --db {} --executor stub --max-passages 3", c.db)), 2);
  ASSERT_EQ(c.run(fmt::format("run --db {} --executor stub --progress none --until-resolved --spec {} --max-passages 4",
                              c.db, spec)),
            0)
      << c.out;
  EXPECT_TRUE(has(c.out, "passages needed") && has(c.out, "e8:q=38")) << c.out;
  ASSERT_EQ(c.run_stdout(fmt::format("stats --db {} --json --rows decisions", c.db)), 0) << c.out;
  const json j = json::parse(c.out);
  ASSERT_EQ(j.size(), 6u);  // 2 codecs x 3 thresholds on one stream
  for (const auto& r : j) {
    EXPECT_EQ(r["metric"], "rel_mse");
    EXPECT_LE(r["n_evaluated"].get<int>(), 4);
    if (r["codec"] == "e8:q=38") EXPECT_EQ(r["verdict"], "below") << r.dump();
    if (r["codec"] == "e8:q=10") EXPECT_EQ(r["verdict"], "above") << r.dump();
    if (r["verdict"] != "unresolved") EXPECT_LE(r["n_needed"].get<int>(), r["n_evaluated"].get<int>());
  }
  ASSERT_EQ(c.run(fmt::format("stats --db {}", c.db)), 0) << c.out;
  EXPECT_TRUE(has(c.out, "threshold decisions of `kvlab run --until-resolved`")) << c.out;
}

TEST(QueryCli, ListRunsByFamilyOfAnyRateParameter) {
  Cli c;
  const std::string csv = c.write("int.csv",
                                  "passage,stream,codec,q,bits_per_vector,rel_mse,cos_sim\n"
                                  "a,sliding_window_kv,fp8_per64,,4224,0.001,0.9997\n"
                                  "a,sliding_window_kv,\"int:bits=6,block=64,scale=fp16\",6,3200,0.0009,0.9998\n"
                                  "a,sliding_window_kv,e8,38,3296,0.0008,0.9998\n");
  ASSERT_EQ(c.run(fmt::format("import csv {} --db {}", csv, c.db)), 0) << c.out;
  ASSERT_EQ(c.run_stdout(fmt::format("list --runs --db {} --codec int --json", c.db)), 0) << c.out;
  const json j = json::parse(c.out);
  ASSERT_EQ(j.size(), 1u) << c.out;
  EXPECT_EQ(j[0]["codec"], "int:bits=6,block=64,scale=fp16");
  ASSERT_EQ(c.run_stdout(fmt::format("list --runs --db {} --codec e8 --json", c.db)), 0) << c.out;
  EXPECT_EQ(json::parse(c.out).size(), 1u);
}

TEST(QueryCli, CsvFullSpecMustAgreeWithItsQColumn) {
  Cli c;
  const std::string csv = c.write("bad.csv",
                                  "passage,stream,codec,q,bits_per_vector,rel_mse,cos_sim\n"
                                  "a,sliding_window_kv,\"int:bits=6,block=64,scale=fp16\",8,3200,0.0009,0.9998\n");
  EXPECT_EQ(c.run(fmt::format("import csv {} --db {}", csv, c.db)), 1);
  EXPECT_TRUE(has(c.out, "has rate 6 but its q column says 8")) << c.out;
}
