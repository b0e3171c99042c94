// Tests of experiment/slurm_manifest.h on its own: the manifest path next to
// the database, a write/read round trip of every field (including an absent
// throttle and no submissions), and malformed manifests whose error names the
// file and the offending field.
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "common/error.h"
#include "experiment/slurm_manifest.h"
#include "testutil/testutil.h"

namespace kvlab::experiment {
namespace {

namespace fs = std::filesystem;

// The kvlab::Error message of read_manifest(path); fails the test when it does not throw.
std::string read_error(const std::string& path) {
  try {
    read_manifest(path);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "read_manifest('" << path << "') did not throw";
  return "";
}

class SlurmManifestTest : public ::testing::Test {
 protected:
  void SetUp() override { dir = testutil::make_temp_dir("slurm-manifest"); }
  void TearDown() override { fs::remove_all(dir); }
  std::string write(const std::string& name, const std::string& text) {
    const std::string p = dir + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
  std::string dir;
};

TEST(SlurmManifestPath, NextToTheDatabase) {
  EXPECT_EQ(manifest_path("/a/b.db"), "/a/b.slurm.json");
  EXPECT_EQ(manifest_path("out/sweep.db"), "out/sweep.slurm.json");
  EXPECT_EQ(manifest_path("sweep"), "sweep.slurm.json");
}

TEST_F(SlurmManifestTest, RoundTripKeepsEveryField) {
  SlurmManifest m;
  m.db = "/x/sweep.db";
  m.spec = "experiments/smoke.ini";
  m.experiment = "smoke";
  m.sbatch = "/x/sweep.sbatch";
  m.shards = 20;
  m.throttle = 2;
  m.submissions.push_back({"17", "0-19%2", "2026-01-01T00:00:00Z"});
  m.submissions.push_back({"18", "4", "2026-01-01T00:01:00Z"});
  const std::string p = dir + "/m.json";
  write_manifest(p, m);
  const auto r = read_manifest(p);
  EXPECT_EQ(r.db, m.db);
  EXPECT_EQ(r.spec, m.spec);
  EXPECT_EQ(r.experiment, m.experiment);
  EXPECT_EQ(r.sbatch, m.sbatch);
  EXPECT_EQ(r.shards, 20);
  EXPECT_EQ(r.throttle, std::optional<int>(2));
  ASSERT_EQ(r.submissions.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(r.submissions[i].job_id, m.submissions[i].job_id);
    EXPECT_EQ(r.submissions[i].array, m.submissions[i].array);
    EXPECT_EQ(r.submissions[i].submitted_at, m.submissions[i].submitted_at);
  }
  // No temporary file is left behind by the atomic write.
  for (const auto& e : fs::directory_iterator(dir)) EXPECT_EQ(e.path().filename(), "m.json");

  // Rewriting replaces the file: no throttle, no submissions (a --dry-run submit).
  m.throttle.reset();
  m.submissions.clear();
  m.shards = 1;
  write_manifest(p, m);
  const auto r2 = read_manifest(p);
  EXPECT_FALSE(r2.throttle);
  EXPECT_TRUE(r2.submissions.empty());
  EXPECT_EQ(r2.shards, 1);
}

TEST_F(SlurmManifestTest, MissingFileNamesIt) {
  const std::string e = read_error(dir + "/none.json");
  EXPECT_NE(e.find(dir + "/none.json"), std::string::npos) << e;
  EXPECT_NE(e.find("kvlab slurm submit"), std::string::npos) << e;
}

TEST_F(SlurmManifestTest, NotJsonNamesTheFile) {
  const std::string p = write("bad.json", "{not json");
  const std::string e = read_error(p);
  EXPECT_NE(e.find(p), std::string::npos) << e;
  EXPECT_NE(e.find("not valid JSON"), std::string::npos) << e;
}

TEST_F(SlurmManifestTest, MalformedNamesFileAndField) {
  const std::string good_head =
      R"({"db": "/x/s.db", "spec": "s.ini", "experiment": "e", "sbatch": "/x/s.sbatch", )";
  struct Case {
    std::string json;
    std::string field;  // as the message must name it
    std::string what;   // another part of the message
  };
  const Case cases[] = {
      {R"({"db": "x"})", "\"spec\"", "lacks"},
      {good_head + R"("submissions": []})", "\"shards\"", "lacks"},
      {good_head + R"("shards": "4", "submissions": []})", "\"shards\"", "expected an integer"},
      {good_head + R"("shards": 2.5, "submissions": []})", "\"shards\"", "expected an integer"},
      {good_head + R"("shards": 0, "submissions": []})", "shards is 0", "at least 1"},
      {good_head + R"("shards": 4, "throttle": "2", "submissions": []})", "\"throttle\"", "expected an integer"},
      {good_head + R"("shards": 4})", "\"submissions\"", "lacks"},
      {good_head + R"("shards": 4, "submissions": {}})", "\"submissions\"", "expected an array"},
      {good_head + R"("shards": 4, "submissions": [{"job_id": "1", "array": "0-3", "submitted_at": "t"},
                                                   {"job_id": 7, "array": "1", "submitted_at": "t"}]})",
       "\"submissions[1].job_id\"", "expected a string"},
      {good_head + R"("shards": 4, "submissions": [{"job_id": "1", "submitted_at": "t"}]})",
       "\"submissions[0].array\"", "lacks"},
      {good_head + R"("shards": 4, "submissions": ["17"]})", "\"submissions[0]\"", "expected an object"},
      {R"(["db"])", "array", "expected a JSON object"},
  };
  int i = 0;
  for (const auto& c : cases) {
    const std::string p = write("bad" + std::to_string(i++) + ".json", c.json);
    const std::string e = read_error(p);
    EXPECT_NE(e.find("'" + p + "'"), std::string::npos) << "file not named: " << e;
    EXPECT_NE(e.find(c.field), std::string::npos) << "field " << c.field << " not named: " << e;
    EXPECT_NE(e.find(c.what), std::string::npos) << e;
  }
}

}  // namespace
}  // namespace kvlab::experiment
