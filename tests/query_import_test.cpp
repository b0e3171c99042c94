// Library-level checks of the import and query layer: published codec
// names, malformed published files (nothing written, the JSON path named),
// params_json parsing, experiment resolution, refine queueing.
#include <fstream>
#include <string>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "store/db.h"
#include "store/import.h"
#include "store/query.h"
#include "testutil/testutil.h"

namespace st = kvlab::store;
using nlohmann::json;

namespace {

st::ImportOptions options() {
  st::ImportOptions o;
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

TEST(QueryImport, PublishedCodecNames) {
  EXPECT_EQ(st::published_codec_spec("v14_d4_Q10"), "d4:q=10");
  EXPECT_EQ(st::published_codec_spec("v15_e8_Q38"), "e8:q=38");
  EXPECT_EQ(st::published_codec_spec("fp8_per64_baseline"), "fp8_per64");
  EXPECT_THROW(st::published_codec_spec("v15_e9_Q38"), kvlab::Error);
  EXPECT_THROW(st::published_codec_spec("v15_e8_Q0"), kvlab::Error);
  EXPECT_THROW(st::published_codec_spec("fp8"), kvlab::Error);
}

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
  const std::string msg = message_of([&] { st::import_published(*db, bad, options()); });
  EXPECT_NE(msg.find("per_passage[3].results[1].codecs.v15_e8_Q38"), std::string::npos) << msg;
  EXPECT_NE(msg.find("rel_mse"), std::string::npos) << msg;
  EXPECT_TRUE(st::list_experiments(*db).empty());
  std::ofstream(dir + "/notjson.json") << "{ not json";
  EXPECT_NE(message_of([&] { st::import_published(*db, dir + "/notjson.json", options()); }).find("not valid JSON"),
            std::string::npos);
  EXPECT_NE(message_of([&] { st::import_published(*db, dir + "/missing.json", options()); }).find("cannot open"),
            std::string::npos);
  st::ImportOptions no_mix;
  EXPECT_THROW(st::import_published(*db, kvlab::testutil::reference_path("stage075_n8.json"), no_mix), kvlab::Error);
}

TEST(QueryImport, NameClashWithOtherContent) {
  const std::string dir = kvlab::testutil::make_temp_dir("kvlab-query-imp");
  auto db = st::open_database(dir + "/k.db", st::OpenMode::kCreate);
  const std::string csv = dir + "/stage075_n8.csv";
  std::ofstream(csv) << "passage,stream,codec,q,bits_per_vector,rel_mse,cos_sim\n"
                        "a,sliding_window_kv,fp8_per64,,4224,0.001,0.9997\n";
  st::import_published(*db, kvlab::testutil::reference_path("stage075_n8.json"), options());
  // Same default name (file stem), different content: refused, with both hashes named.
  const std::string msg = message_of([&] { st::import_csv(*db, csv, options()); });
  EXPECT_NE(msg.find("already exists"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--experiment"), std::string::npos) << msg;
  // The same published file under another name: already imported, nothing added.
  auto again = options();
  again.experiment = "again";
  const auto a = st::import_published(*db, kvlab::testutil::reference_path("stage075_n8.json"), again);
  EXPECT_FALSE(a.experiment_created);
  EXPECT_EQ(a.experiment, "stage075_n8");
  EXPECT_EQ(a.runs_added, 0);
  auto o = options();
  o.experiment = "mine";
  const auto out = st::import_csv(*db, csv, o);
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
  const auto out = st::import_published(*db, kvlab::testutil::reference_path("stage075_n8.json"), options());
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
