// store::write_import on hand-built bundles (no parsing): the rows it
// writes, writing the same bundle twice adds nothing, a name held by other
// content and a bundle naming an unknown passage are refused with nothing
// written.
#include <string>

#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "store/db.h"
#include "store/import.h"
#include "testutil/testutil.h"

namespace kvlab::store {
namespace {

ImportBundle small_bundle() {
  ImportBundle b;
  b.origin = "csv";
  b.name = "hand";
  b.sha256 = std::string(64, 'b');
  b.spec_text = "hand-built";
  b.params_json = R"({"layer_mix":{"sliding_window_kv":3}})";
  b.passages.push_back({0, "a", std::string(64, '1'), "test:a", std::nullopt});
  b.passages.push_back({1, "b", std::string(64, '2'), "test:b", std::nullopt});
  ImportRun r;
  r.passage = "a";
  r.stream = "sliding_window_kv";
  r.codec = "fp8_per64";
  r.result.bits_per_vector = 4224;
  r.result.rel_mse = 0.001;
  r.result.cos_sim = 0.9995;
  b.runs.push_back(r);
  r.codec = "e8:q=38";
  r.q = 38;
  r.result.bits_per_vector = 3296;
  r.result.rel_mse = 0.0008;
  r.result.n_vectors = 2048;
  r.result.dim = 512;
  b.runs.push_back(r);
  r.passage = "b";
  r.replicate = 1;
  b.runs.push_back(r);
  ImportAudit a;
  a.passage = "b";
  a.row = {"sliding_window_kv", 2.5, 100.0, 10.0, 0.3, 2048, 512};
  b.audits.push_back(a);
  b.provenance.kvlab_version = "test";
  b.provenance.git_commit = "unknown";
  b.provenance.host_kind = "csv";
  return b;
}

struct StoreImport : ::testing::Test {
  void SetUp() override { db = open_database(testutil::make_temp_dir("store-import") + "/k.db", OpenMode::kCreate); }
  std::int64_t count(const std::string& sql) { return db->execAndGet(sql).getInt64(); }
  std::unique_ptr<SQLite::Database> db;
};

TEST_F(StoreImport, WritesTheRowsOnceAndTwiceAddsNothing) {
  EXPECT_FALSE(experiment_exists(*db, "hand"));
  const auto out = write_import(*db, small_bundle());
  EXPECT_TRUE(out.experiment_created);
  EXPECT_EQ(out.experiment, "hand");
  EXPECT_EQ(out.file_sha256, std::string(64, 'b'));
  EXPECT_EQ(out.passages_added, 2);
  EXPECT_EQ(out.runs_added, 3);
  EXPECT_EQ(out.results_added, 3);
  EXPECT_EQ(out.audits_added, 1);
  EXPECT_EQ(out.rows_existing, 0);
  EXPECT_TRUE(experiment_exists(*db, "hand"));
  EXPECT_EQ(db->execAndGet("SELECT params_json FROM experiments").getString(), R"({"layer_mix":{"sliding_window_kv":3}})");
  EXPECT_EQ(db->execAndGet("SELECT origin || ' ' || spec_hash FROM experiments").getString(),
            "csv " + std::string(64, 'b'));
  EXPECT_EQ(count("SELECT COUNT(*) FROM runs WHERE status = 'done' AND worker = 'import' AND attempts = 1"), 3);
  EXPECT_EQ(count("SELECT COUNT(*) FROM runs WHERE codec = 'fp8_per64' AND q IS NULL"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM runs r JOIN passages p ON p.id = r.passage_id "
                  "WHERE p.name = 'b' AND r.replicate = 1 AND r.q = 38"), 1);
  EXPECT_DOUBLE_EQ(db->execAndGet("SELECT s.rel_mse FROM results s JOIN runs r ON r.id = s.run_id "
                                  "WHERE r.codec = 'fp8_per64'").getDouble(), 0.001);
  EXPECT_EQ(count("SELECT COUNT(*) FROM results WHERE n_vectors IS NULL"), 1);
  EXPECT_DOUBLE_EQ(db->execAndGet("SELECT isotropy_variance_ratio FROM audits").getDouble(), 100.0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM provenance WHERE host_kind = 'csv' AND kvlab_version = 'test'"), 1);

  auto renamed = small_bundle();
  renamed.name = "other name";  // found by hash: the same experiment, nothing added
  const auto again = write_import(*db, renamed);
  EXPECT_FALSE(again.experiment_created);
  EXPECT_EQ(again.experiment, "hand");
  EXPECT_EQ(again.experiment_id, out.experiment_id);
  EXPECT_EQ(again.passages_added + again.runs_added + again.results_added + again.audits_added, 0);
  EXPECT_EQ(again.rows_existing, 3);
  EXPECT_EQ(count("SELECT COUNT(*) FROM experiments"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM runs"), 3);
  EXPECT_EQ(count("SELECT COUNT(*) FROM results"), 3);
  EXPECT_EQ(count("SELECT COUNT(*) FROM audits"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM provenance"), 1);
}

TEST_F(StoreImport, RefusalsWriteNothing) {
  write_import(*db, small_bundle());
  auto other = small_bundle();
  other.sha256 = std::string(64, 'c');  // other content under the same name
  testutil::expect_contains(testutil::error_of([&] { write_import(*db, other); }),
                            "experiment 'hand' already exists (origin csv, spec hash " + std::string(64, 'b'));
  auto lost = small_bundle();
  lost.name = "lost";
  lost.sha256 = std::string(64, 'd');
  lost.runs.back().passage = "nowhere";
  testutil::expect_contains(testutil::error_of([&] { write_import(*db, lost); }), "passage 'nowhere'");
  EXPECT_FALSE(experiment_exists(*db, "lost"));  // rolled back with the rest
  auto clash = small_bundle();
  clash.passages[1].content_hash = std::string(64, '9');  // same file hash, passage 'b' changed
  testutil::expect_contains(testutil::error_of([&] { write_import(*db, clash); }),
                            "passage 'b' is stored with content hash");
  EXPECT_EQ(count("SELECT COUNT(*) FROM experiments"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM runs"), 3);
  EXPECT_EQ(count("SELECT COUNT(*) FROM passages"), 2);
}

}  // namespace
}  // namespace kvlab::store
