// Tests of `kvlab slurm submit|status|resubmit|reclaim` and `kvlab ingest`
// through the real binary, without a Slurm cluster: fake `sbatch` and
// `squeue` scripts on PATH record their arguments, and the array tasks are
// played by running each shard's task command by hand (kvlab run with the
// stub executor). What needs real Slurm is in slurm_cluster_test.cpp.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "experiment/slurm_manifest.h"
#include "store/db.h"
#include "store/shard.h"
#include "testutil/testutil.h"

namespace kvlab {
namespace {

namespace fs = std::filesystem;
using testutil::run_command;

std::string q(const std::string& s) { return "'" + s + "'"; }

std::string slurp(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write(const std::string& p, const std::string& text, bool exec = false) {
  std::ofstream(p) << text;
  if (exec) fs::permissions(p, fs::perms::owner_all, fs::perm_options::add);
}

struct SlurmCli : ::testing::Test {
  void SetUp() override {
    dir = testutil::make_temp_dir("slurm-cli");
    kvlab = testutil::kvlab_binary();
    bin = dir + "/bin";
    fs::create_directory(bin);
    db = dir + "/sweep.db";
    spec = dir + "/four.ini";
    write(spec,
          "[experiment]\nname = four\nseqlen = 256\nstreams = sliding_window_kv hca_pool_kv_ratio128\n"
          "[weights]\nkind = random\nseed = 0\n[host]\nkind = synthetic\nseed = 1234\n"
          "[passages]\nsynthetic = 0-3\nseed_base = 100\n[codecs]\ncodec = fp8_per64\ne8.q = 10\n");
    // sbatch / squeue stand-ins: log the arguments, print a job id.
    write(bin + "/sbatch",
          "#!/bin/sh\necho \"$@\" >> " + q(dir + "/sbatch.log") + "\necho 4242\n", true);
    write(bin + "/squeue", "#!/bin/sh\necho \"$@\" >> " + q(dir + "/squeue.log") + "\ncat " +
                               q(dir + "/squeue.out") + " 2>/dev/null\nexit 0\n",
          true);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  // Runs kvlab with the fake Slurm tools first on PATH.
  int kv(const std::string& args, std::string* out = nullptr, const std::string& path_prefix = "") {
    const std::string path = (path_prefix.empty() ? bin : path_prefix) + ":" + std::getenv("PATH");
    std::string o;
    const int rc = run_command("cd " + q(dir) + " && PATH=" + q(path) + " " + q(kvlab) + " " + args, &o);
    if (out) *out = o;
    return rc;
  }
  // What array task i does: the script's two commands.
  int task(int i, const std::string& executor = "stub") {
    const std::string shard = store::shard_path(db, i);
    return run_command(q(kvlab) + " slurm reclaim --db " + q(shard) + " && " + q(kvlab) + " run --db " + q(shard) +
                       " --executor " + executor + " --progress none");
  }
  std::string submit_args(const std::string& extra = "") {
    return "slurm submit " + q(spec) + " --db " + q(db) + " --shards 2 --throttle 1 --run-arg=--executor=stub " +
           extra;
  }
  std::string dir, kvlab, bin, db, spec;
};

TEST_F(SlurmCli, DryRunWritesShardsScriptAndManifestAndSubmitsNothing) {
  std::string out;
  ASSERT_EQ(kv(submit_args("--partition gpu --gpus-per-task 1 --time 1:30:00 --dry-run"), &out), 0) << out;
  EXPECT_FALSE(fs::exists(dir + "/sbatch.log")) << "dry run called sbatch";
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(fs::exists(store::shard_path(db, i))) << out;
  EXPECT_FALSE(fs::exists(store::shard_path(db, 2)));
  const std::string script = slurp(dir + "/sweep.sbatch");
  EXPECT_NE(out.find(script), std::string::npos) << "the script is printed";
  EXPECT_NE(script.find("#SBATCH --array=0-1%1\n"), std::string::npos) << script;
  EXPECT_NE(script.find("#SBATCH --partition=gpu\n"), std::string::npos) << script;
  EXPECT_NE(script.find("#SBATCH --gpus-per-task=1\n"), std::string::npos) << script;
  EXPECT_NE(script.find("#SBATCH --time=1:30:00\n"), std::string::npos) << script;
  EXPECT_NE(script.find(".shard${SLURM_ARRAY_TASK_ID}.db\""), std::string::npos) << script;
  EXPECT_NE(script.find("run --db \"$SHARD\" '--executor=stub'"), std::string::npos) << script;
  EXPECT_TRUE((fs::status(dir + "/sweep.sbatch").permissions() & fs::perms::owner_exec) != fs::perms::none);
  const auto m = experiment::read_manifest(dir + "/sweep.slurm.json");
  EXPECT_EQ(m.shards, 2);
  EXPECT_EQ(m.experiment, "four");
  EXPECT_TRUE(m.submissions.empty());

  // The script itself runs a task when given an index (what Slurm does).
  std::string o;
  ASSERT_EQ(run_command("SLURM_ARRAY_TASK_ID=1 bash " + q(dir + "/sweep.sbatch"), &o), 0) << o;
  EXPECT_TRUE(store::read_shard_progress(store::shard_path(db, 1), 1).complete());
  EXPECT_FALSE(store::read_shard_progress(store::shard_path(db, 0), 0).complete());
}

TEST_F(SlurmCli, SubmitRunIngestStatusResubmit) {
  std::string out;
  ASSERT_EQ(kv(submit_args(), &out), 0) << out;
  EXPECT_NE(out.find("submitted array job 4242 (--array=0-1%1)"), std::string::npos) << out;
  EXPECT_NE(slurp(dir + "/sbatch.log").find("--parsable " + dir + "/sweep.sbatch"), std::string::npos);
  auto m = experiment::read_manifest(dir + "/sweep.slurm.json");
  ASSERT_EQ(m.submissions.size(), 1u);
  EXPECT_EQ(m.submissions[0].job_id, "4242");

  // Task 0 finishes; task 1 never ran.
  ASSERT_EQ(task(0), 0);
  ASSERT_EQ(kv("slurm status --db " + q(db), &out), 0) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("\\n +0 +2 +8/8 .* complete\\n"))) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("\\n +1 +2 +0/8 .* not started\\n"))) << out;
  EXPECT_NE(out.find("1 of 2 shard(s) complete"), std::string::npos) << out;

  ASSERT_EQ(kv("ingest --db " + q(db), &out), 0) << out;
  EXPECT_NE(out.find("sweep.shard0.db: merged 8 run(s) and 4 audit(s); 0 already present"), std::string::npos) << out;
  EXPECT_NE(out.find("sweep.shard1.db: merged 0 run(s) and 0 audit(s); 0 already present; missing 8 (8 queued"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("experiment 'four': 8 of 16 run(s) done (8 missing)"), std::string::npos) << out;

  // Slurm still holds task 1 pending: nothing is resubmitted.
  write(dir + "/squeue.out", "1 PENDING\n");
  ASSERT_EQ(kv("slurm resubmit --db " + q(db), &out), 0) << out;
  EXPECT_NE(out.find("shard 1: still pending or running in Slurm"), std::string::npos) << out;
  EXPECT_NE(out.find("nothing to resubmit"), std::string::npos) << out;
  EXPECT_NE(slurp(dir + "/squeue.log").find("--jobs 4242"), std::string::npos);
  // Writing new shards while it is live is refused.
  EXPECT_EQ(kv(submit_args(), &out), 1) << out;
  EXPECT_NE(out.find("Slurm job 4242 of"), std::string::npos) << out;

  // Gone from the queue (killed): only index 1 goes back, with the throttle.
  fs::remove(dir + "/squeue.out");
  ASSERT_EQ(kv("slurm resubmit --db " + q(db), &out), 0) << out;
  EXPECT_NE(out.find("shard 1: 0/8 run(s) done"), std::string::npos) << out;
  EXPECT_NE(out.find("submitted array job 4242 (--array=1%1)"), std::string::npos) << out;
  EXPECT_NE(slurp(dir + "/sbatch.log").find("--parsable --array=1%1 " + dir + "/sweep.sbatch"), std::string::npos)
      << slurp(dir + "/sbatch.log");
  m = experiment::read_manifest(dir + "/sweep.slurm.json");
  ASSERT_EQ(m.submissions.size(), 2u);
  EXPECT_EQ(m.submissions[1].array, "1%1");

  ASSERT_EQ(task(1), 0);
  ASSERT_EQ(kv("ingest --db " + q(db) + " " + q(store::shard_path(db, 0)) + " " + q(store::shard_path(db, 1)), &out),
            0)
      << out;
  EXPECT_NE(out.find("sweep.shard0.db: merged 0 run(s) and 0 audit(s); 8 already present"), std::string::npos) << out;
  EXPECT_NE(out.find("sweep.shard1.db: merged 8 run(s) and 4 audit(s); 0 already present"), std::string::npos) << out;
  EXPECT_NE(out.find("16 of 16 run(s) done"), std::string::npos) << out;
  ASSERT_EQ(kv("slurm resubmit --db " + q(db), &out), 0) << out;
  EXPECT_NE(out.find("nothing to resubmit"), std::string::npos) << out;

  // Same outcome as one machine running the spec.
  const std::string ref = dir + "/ref.db";
  ASSERT_EQ(kv("queue " + q(spec) + " --db " + q(ref), &out), 0) << out;
  ASSERT_EQ(kv("run --db " + q(ref) + " --executor stub --progress none", &out), 0) << out;
  auto a = store::open_database(db, store::OpenMode::kReadOnly);
  auto b = store::open_database(ref, store::OpenMode::kReadOnly);
  EXPECT_EQ(store::outcome_rows(*a, "four"), store::outcome_rows(*b, "four"));
}

TEST_F(SlurmCli, SbatchMissingOrFailingIsAClearError) {
  std::string out;
  // No sbatch on PATH (kvlab itself needs no other program to submit).
  const std::string empty = dir + "/empty";
  fs::create_directory(empty);
  const int rc = run_command("cd " + q(dir) + " && PATH=" + q(empty) + " " + q(kvlab) + " " + submit_args(), &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("cannot run sbatch"), std::string::npos) << out;
  EXPECT_NE(out.find("sweep.sbatch"), std::string::npos) << out;
  // sbatch that fails: its stderr is shown.
  const std::string failing = dir + "/failing";
  fs::create_directory(failing);
  write(failing + "/sbatch",
        "#!/bin/sh\necho 'sbatch: error: Batch job submission failed: Invalid partition name specified' >&2\nexit 1\n",
        true);
  EXPECT_EQ(kv(submit_args("--partition nosuch"), &out, failing), 1) << out;
  EXPECT_NE(out.find("failed with exit status 1"), std::string::npos) << out;
  EXPECT_NE(out.find("Invalid partition name specified"), std::string::npos) << out;
  // sbatch that prints no job id.
  write(failing + "/sbatch", "#!/bin/sh\necho 'Submitted nothing'\n", true);
  EXPECT_EQ(kv(submit_args(), &out, failing), 1) << out;
  EXPECT_NE(out.find("expected a job id"), std::string::npos) << out;
  EXPECT_TRUE(experiment::read_manifest(dir + "/sweep.slurm.json").submissions.empty());
}

TEST_F(SlurmCli, BadOptionsAreUsageErrors) {
  std::string out;
  EXPECT_EQ(kv("slurm submit " + q(spec) + " --db " + q(db) + " --shards 0", &out), 2) << out;
  EXPECT_NE(out.find("--shards 0"), std::string::npos) << out;
  EXPECT_EQ(kv(submit_args("--time soon"), &out), 2) << out;
  EXPECT_NE(out.find("--time 'soon'"), std::string::npos) << out;
  EXPECT_EQ(kv("slurm submit " + q(spec) + " --db " + q(db) + " --shards 5 --dry-run", &out), 1) << out;
  EXPECT_NE(out.find("5 shards requested but only 4 passage(s)"), std::string::npos) << out;
  EXPECT_EQ(kv("slurm status --db " + q(dir + "/none.db"), &out), 1) << out;
  EXPECT_NE(out.find("was `kvlab slurm submit"), std::string::npos) << out;
  EXPECT_EQ(kv("ingest --db " + q(dir + "/none.db") + " x.db", &out), 1) << out;
  EXPECT_NE(out.find("does not exist"), std::string::npos) << out;
}

TEST_F(SlurmCli, IngestExitCodesAndReclaimOnlyOnShards) {
  std::string out;
  ASSERT_EQ(kv(submit_args("--dry-run"), &out), 0) << out;
  ASSERT_EQ(task(0), 0);
  // A newer-schema shard: exit code 5, and the good shard is still merged.
  const std::string newer = dir + "/newer.db";
  fs::copy_file(store::shard_path(db, 0), newer);
  {
    SQLite::Database raw(newer, SQLite::OPEN_READWRITE);
    raw.exec("PRAGMA user_version = " + std::to_string(store::schema_version() + 1));
  }
  EXPECT_EQ(kv("ingest --db " + q(db) + " " + q(newer) + " " + q(store::shard_path(db, 0)), &out), 5) << out;
  EXPECT_NE(out.find("newer.db: FAILED, nothing merged"), std::string::npos) << out;
  EXPECT_NE(out.find("sweep.shard0.db: merged 8 run(s)"), std::string::npos) << out;
  EXPECT_NE(out.find("1 shard(s) merged, 1 failed"), std::string::npos) << out;

  // reclaim refuses a database that is not a shard (it would steal live claims).
  EXPECT_EQ(kv("slurm reclaim --db " + q(db), &out), 1) << out;
  EXPECT_NE(out.find("not a shard"), std::string::npos) << out;
  EXPECT_EQ(kv("slurm reclaim --db " + q(store::shard_path(db, 1)), &out), 0) << out;
}

}  // namespace
}  // namespace kvlab
