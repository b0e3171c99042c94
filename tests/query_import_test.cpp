// Library-level checks of the import and query layer: malformed published
// files (nothing written, the JSON path named), params_json parsing,
// experiment resolution, refine queueing. (The published codec names:
// ingest_parse_test.)
#include <fstream>
#include <string>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "ingest/csv.h"
#include "ingest/published.h"
#include "store/db.h"
#include "store/query.h"
#include "testutil/testutil.h"

namespace st = kvlab::store;
namespace ig = kvlab::ingest;
using nlohmann::json;

namespace {

ig::ImportOptions options() {
  ig::ImportOptions o;
  o.layer_mix = {{"sliding_window_kv", 3}, {"csa_pool_kv_ratio4", 20}, {"hca_pool_kv_ratio128", 20}};
  return o;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const kvlab::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(QueryImport, MalformedPublishedFileWritesNothing) {
  const std::string dir = kvlab::testutil::make_temp_dir("kvlab-query-imp");
  json j;
  {
    std::ifstream f(kvlab::testutil::reference_path("stage075_n8.json"));
    j = json::parse(f);
  }
  j["per_passage"][3]["results"][1]["codecs"]["v15_e8_Q38"].erase("rel_mse");
  const std::string bad = dir + "/bad.json";
  std::ofstream(bad) << j.dump();
  auto db = st::open_database(dir + "/k.db", st::OpenMode::kCreate);
  const std::string msg = message_of([&] { ig::import_published(*db, bad, options()); });
  EXPECT_NE(msg.find("per_passage[3].results[1].codecs.v15_e8_Q38"), std::string::npos) << msg;
  EXPECT_NE(msg.find("rel_mse"), std::string::npos) << msg;
  EXPECT_TRUE(st::list_experiments(*db).empty());
  std::ofstream(dir + "/notjson.json") << "{ not json";
  EXPECT_NE(message_of([&] { ig::import_published(*db, dir + "/notjson.json", options()); }).find("not valid JSON"),
            std::string::npos);
  EXPECT_NE(message_of([&] { ig::import_published(*db, dir + "/missing.json", options()); }).find("cannot open"),
            std::string::npos);
  ig::ImportOptions no_mix;
  EXPECT_THROW(ig::import_published(*db, kvlab::testutil::reference_path("stage075_n8.json"), no_mix), kvlab::Error);
}

TEST(QueryImport, NameClashWithOtherContent) {
  const std::string dir = kvlab::testutil::make_temp_dir("kvlab-query-imp");
  auto db = st::open_database(dir + "/k.db", st::OpenMode::kCreate);
  const std::string csv = dir + "/stage075_n8.csv";
  std::ofstream(csv) << "passage,stream,codec,q,bits_per_vector,rel_mse,cos_sim\n"
                        "a,sliding_window_kv,fp8_per64,,4224,0.001,0.9997\n";
  ig::import_published(*db, kvlab::testutil::reference_path("stage075_n8.json"), options());
  // Same default name (file stem), different content: refused, with both hashes named.
  const std::string msg = message_of([&] { ig::import_csv(*db, csv, options()); });
  EXPECT_NE(msg.find("already exists"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--experiment"), std::string::npos) << msg;
  // The same published file under another name: already imported, nothing added.
  auto again = options();
  again.experiment = "again";
  const auto a = ig::import_published(*db, kvlab::testutil::reference_path("stage075_n8.json"), again);
  EXPECT_FALSE(a.experiment_created);
  EXPECT_EQ(a.experiment, "stage075_n8");
  EXPECT_EQ(a.runs_added, 0);
  auto o = options();
  o.experiment = "mine";
  const auto out = ig::import_csv(*db, csv, o);
  EXPECT_TRUE(out.experiment_created);
  EXPECT_EQ(st::list_experiments(*db).size(), 2u);
  EXPECT_EQ(st::resolve_experiment(*db, "mine").id, out.experiment_id);
  EXPECT_EQ(st::resolve_experiment(*db, std::to_string(out.experiment_id)).name, "mine");
  const std::string amb = message_of([&] { st::resolve_experiment(*db, ""); });
  EXPECT_NE(amb.find("2 experiments"), std::string::npos) << amb;
}

TEST(QueryImport, ParamsJson) {
  kvlab::stats::ExperimentInfo info;
  info.name = "x";
  st::parse_experiment_params(
      R"({"layer_mix":{"hca_pool_kv_ratio128":20,"sliding_window_kv":3,"csa_pool_kv_ratio4":20},
          "report":{"codec":"e8:q=38","compare":"d4:q=38"},"stream_dtype":"bf16","device":"cpu"})",
      info);
  ASSERT_EQ(info.layer_mix.size(), 3u);
  EXPECT_EQ(info.layer_mix[0].first, "sliding_window_kv");  // canonical order, not JSON order
  EXPECT_EQ(info.layer_mix[2].first, "hca_pool_kv_ratio128");
  EXPECT_EQ(info.report_codec, "e8:q=38");
  EXPECT_EQ(info.stream_dtype, "bf16");
  EXPECT_THROW(st::parse_experiment_params("{", info), kvlab::Error);
  EXPECT_THROW(st::parse_experiment_params(R"({"layer_mix":{"sliding_window_kv":-1}})", info), kvlab::Error);
  EXPECT_THROW(st::parse_experiment_params(R"({"layer_mix":[3,20,20]})", info), kvlab::Error);
  st::parse_experiment_params("{}", info);
  EXPECT_TRUE(info.layer_mix.empty());
}

TEST(QueryImport, RefineQueuesEveryPassageAndStream) {
  const std::string dir = kvlab::testutil::make_temp_dir("kvlab-query-imp");
  auto db = st::open_database(dir + "/k.db", st::OpenMode::kCreate);
  const auto out = ig::import_published(*db, kvlab::testutil::reference_path("stage075_n8.json"), options());
  const auto r = st::queue_codec_runs(*db, out.experiment_id, {{"e8:q=40", 40}, {"e8:q=38", 38}});
  EXPECT_EQ(r.added, 8 * 3);      // e8:q=40 on 8 passages x 3 streams
  EXPECT_EQ(r.existing, 8 * 3);   // e8:q=38 is there already
  st::RunFilter f;
  f.experiment_id = out.experiment_id;
  f.status = "queued";
  const auto rows = st::list_runs(*db, f);
  ASSERT_EQ(rows.size(), 24u);
  for (const auto& row : rows) {
    EXPECT_EQ(row.codec, "e8:q=40");
    EXPECT_EQ(*row.q, 40);
    EXPECT_FALSE(row.rel_mse.has_value());
  }
  f.status = "bogus";
  EXPECT_THROW(st::list_runs(*db, f), kvlab::Error);
  // The statistics only see finished runs.
  EXPECT_EQ(st::load_experiment(*db, "").results.size(), 120u);
  f.status.reset();
  f.codec = "e8";  // a family matches every Q
  EXPECT_EQ(st::list_runs(*db, f).size(), 8u * 3 * 3);
}

// All four published files land in one database, each as its own experiment:
// the per-passage study, the single-passage trained run (passage p0) and the
// two aggregate-only Q sweeps (no runs; checked summaries in params_json).
TEST(QueryImport, AllFourPublishedShapesInOneDatabase) {
  const std::string dir = kvlab::testutil::make_temp_dir("kvlab-query-imp4");
  auto db = st::open_database(dir + "/k.db", st::OpenMode::kCreate);
  for (const char* f : {"stage075_n8", "stage075_qsweep_n8", "stage075_qsweep_fine_n8", "stage075_trained"}) {
    auto o = options();
    o.experiment = std::string("published_") + (f + 9);
    const auto out = ig::import_published(*db, kvlab::testutil::reference_path(std::string(f) + ".json"), o);
    EXPECT_TRUE(out.experiment_created) << f;
    // Importing again adds nothing.
    const auto again = ig::import_published(*db, kvlab::testutil::reference_path(std::string(f) + ".json"), o);
    EXPECT_FALSE(again.experiment_created) << f;
    EXPECT_EQ(again.runs_added, 0) << f;
  }
  const auto trained = st::load_experiment(*db, "published_trained");
  ASSERT_EQ(trained.passages.size(), 1u);
  EXPECT_EQ(trained.passages[0].name, "p0");
  EXPECT_EQ(trained.results.size(), 15u);  // 3 streams x 5 codecs
  EXPECT_EQ(trained.audits.size(), 3u);
  const auto tp = json::parse(trained.info.params_json);
  EXPECT_EQ(tp["weights"]["kind"], "trained");
  bool found = false;
  for (const auto& r : trained.results) {
    if (r.stream == "sliding_window_kv" && r.codec == "e8:q=38") {
      found = true;
      EXPECT_DOUBLE_EQ(r.rel_mse, 0.0008033817284740508);  // the file's value
      EXPECT_EQ(r.bits_per_vector, 3296);
    }
  }
  EXPECT_TRUE(found);
  const auto sweep = st::load_experiment(*db, "published_qsweep_n8");
  EXPECT_TRUE(sweep.results.empty());
  const auto agg = json::parse(sweep.info.params_json)["published_aggregate"];
  EXPECT_DOUBLE_EQ(agg["sliding_window_kv"]["fp8_per64"]["rel_mse"]["mean"].get<double>(), 0.0010509271669434384);
  EXPECT_DOUBLE_EQ(agg["sliding_window_kv"]["e8:q=38"]["rel_mse"]["mean"].get<double>(), 0.0008303203285322525);
  EXPECT_EQ(agg["sliding_window_kv"]["e8:q=38"]["bits"].get<double>(), 3296);
  EXPECT_EQ(agg["sliding_window_kv"]["fp8_per64"]["bits"].get<double>(), 4224);
  EXPECT_EQ(agg["hca_pool_kv_ratio128"].size(), 14u);  // fp8 + 12 Q + audit
  const auto fine = json::parse(st::load_experiment(*db, "published_qsweep_fine_n8").info.params_json);
  EXPECT_EQ(fine["published_aggregate"]["csa_pool_kv_ratio4"].size(), 9u);  // fp8 + 7 Q + audit
}

TEST(QueryImport, UnknownPublishedShapeNamesTheShapes) {
  const std::string dir = kvlab::testutil::make_temp_dir("kvlab-query-imp5");
  const std::string path = dir + "/odd.json";
  std::ofstream(path) << R"({"config": {}, "something_else": []})";
  auto db = st::open_database(dir + "/k.db", st::OpenMode::kCreate);
  const std::string m = message_of([&] { ig::import_published(*db, path, options()); });
  EXPECT_NE(m.find("per_passage"), std::string::npos) << m;
  EXPECT_NE(m.find("aggregate_by_stream"), std::string::npos) << m;
}
