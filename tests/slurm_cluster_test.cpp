// End-to-end test on a real one-node Slurm cluster (munged + slurmctld +
// slurmd on 127.0.0.1, started by scripts/slurm-cluster.sh in a temporary
// directory and stopped again, whatever happens): a 20-task array of a
// small sweep with a %2 throttle, one task killed with SIGKILL in the middle
// of its passage, `kvlab slurm resubmit` of the missing index, `kvlab ingest`
// twice. Checks: every run done exactly once, the merged database equal to
// one machine running the same spec (ignoring timestamps and host),
// provenance naming the Slurm job, array task and node, ingest idempotent.
//
// Skipped, with the reason, where the cluster cannot start (Slurm or MUNGE
// not installed: scripts/install-slurm.sh; or no permission), or when
// KVLAB_SKIP_SLURM_TEST=1. Runs use the stub executor (deterministic fake
// numbers with a delay per run, so a task can be killed mid-passage); the
// merge logic is the same for real measurements
// (KVLAB_SLURM_TEST_EXECUTOR=torch selects them).
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <thread>

#include <SQLiteCpp/SQLiteCpp.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "store/db.h"
#include "store/shard.h"
#include "testutil/testutil.h"

namespace kvlab {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using testutil::run_command;

constexpr int kShards = 20;
constexpr int kRunsPerPassage = 6;  // 3 streams x 2 codecs

std::string q(const std::string& s) { return "'" + s + "'"; }

// KVLAB_SLURM_TEST_EXECUTOR=torch runs the real computation instead (slower).
std::string task_executor() {
  const char* e = std::getenv("KVLAB_SLURM_TEST_EXECUTOR");
  return e && *e ? e : "stub:sleep_ms=100";
}
std::string reference_executor() {
  const char* e = std::getenv("KVLAB_SLURM_TEST_EXECUTOR");
  return e && *e ? e : "stub";
}

struct SlurmCluster : ::testing::Test {
  void SetUp() override {
    if (const char* s = std::getenv("KVLAB_SKIP_SLURM_TEST"); s && std::string(s) == "1")
      GTEST_SKIP() << "KVLAB_SKIP_SLURM_TEST=1";
    dir = testutil::make_temp_dir("slurm-cluster");
    cluster = dir + "/cluster";
    script = testutil::source_path("scripts/slurm-cluster.sh");
    kvlab = testutil::kvlab_binary();
    std::string out;
    const int rc = run_command("bash " + q(script) + " start " + q(cluster), &out);
    started = true;  // stop whatever part of it came up
    if (rc == 3) GTEST_SKIP() << "no Slurm cluster can start on this machine (install it with "
                                 "scripts/install-slurm.sh); the script said:\n" << out;
    ASSERT_EQ(rc, 0) << out;
    setenv("SLURM_CONF", (cluster + "/slurm.conf").c_str(), 1);
  }
  void TearDown() override {
    if (started) {
      std::string out;
      EXPECT_EQ(run_command("bash " + q(script) + " stop " + q(cluster), &out), 0) << out;
      for (const char* d : {"munged", "slurmctld", "slurmd"})
        EXPECT_FALSE(fs::exists(cluster + "/" + d + ".pid")) << d << " was not stopped";
    }
    unsetenv("SLURM_CONF");
    if (!dir.empty() && !HasFailure()) {
      std::error_code ec;
      fs::remove_all(dir, ec);
    } else if (!dir.empty()) {
      std::cerr << "slurm-cluster test files kept in " << dir << "\n";
    }
  }
  int kv(const std::string& args, std::string* out) {
    return run_command("cd " + q(dir) + " && " + q(kvlab) + " " + args, out);
  }
  // Waits until Slurm no longer lists `job` (pending or running).
  void wait_for_job(const std::string& job, int timeout_s) {
    const auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
    std::string out;
    while (Clock::now() < deadline) {
      const int rc = run_command("squeue --noheader --jobs " + job, &out);
      if (rc != 0 && out.find("Invalid job id") == std::string::npos) FAIL() << "squeue failed: " << out;
      if (rc != 0 || out.find_first_not_of(" \n") == std::string::npos) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    std::string q_out;
    run_command("squeue; tail -n 20 " + q(cluster + "/log/slurmctld.log"), &q_out);
    FAIL() << "job " << job << " still in the queue after " << timeout_s << " s:\n" << q_out;
  }
  std::string dir, cluster, script, kvlab;
  bool started = false;
};

TEST_F(SlurmCluster, TwentyTaskArrayKillResubmitIngest) {
  const std::string spec = dir + "/twenty.ini";
  std::ofstream(spec) << "[experiment]\nname = twenty\nseqlen = 256\n"
                         "streams = sliding_window_kv csa_pool_kv_ratio4 hca_pool_kv_ratio128\n"
                         "[weights]\nkind = random\nseed = 0\n[host]\nkind = synthetic\nseed = 1234\n"
                         "[passages]\nsynthetic = 0-19\nseed_base = 100\n"
                         "[codecs]\ncodec = fp8_per64\ne8.q = 10\n";
  const std::string db = dir + "/sweep.db";
  std::string out;
  ASSERT_EQ(kv("slurm submit " + q(spec) + " --db " + q(db) + " --shards 20 --throttle 2 "
               "--run-arg=--executor=" + task_executor() + " --run-arg=--progress=none",
               &out),
            0)
      << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("submitted array job ([0-9]+) \\(--array=0-19%2\\)"))) << out;
  const std::string job1 = m[1].str();

  // Kill one task with SIGKILL while it holds a claim, after its first result.
  int killed = -1;
  int max_running_shards = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(180);
  while (killed < 0 && Clock::now() < deadline) {
    int running_shards = 0;
    for (int i = 0; i < kShards && killed < 0; ++i) {
      const auto p = store::read_shard_progress(store::shard_path(db, i), i);
      if (!p.running_workers.empty()) ++running_shards;
      if (p.done < 1 || p.running_workers.size() != 1) continue;
      const std::string& w = p.running_workers[0];
      const pid_t pid = static_cast<pid_t>(std::stol(w.substr(w.rfind(':') + 1)));
      if (::kill(pid, SIGKILL) == 0) killed = i;
    }
    max_running_shards = std::max(max_running_shards, running_shards);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GE(killed, 0) << "no task could be caught mid-passage";
  wait_for_job(job1, 240);
  if (HasFatalFailure()) return;

  ASSERT_EQ(kv("slurm status --db " + q(db), &out), 0) << out;
  EXPECT_NE(out.find("19 of 20 shard(s) complete"), std::string::npos) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex(fmt::format("\\n +{} +1 +[0-5]/6 .*running \\(or killed\\)\\n",
                                                            killed))))
      << out;

  // Only the killed index goes back; its task reclaims the dead claim.
  ASSERT_EQ(kv("slurm resubmit --db " + q(db), &out), 0) << out;
  ASSERT_TRUE(std::regex_search(out, m, std::regex(fmt::format("submitted array job ([0-9]+) \\(--array={}%2\\)",
                                                               killed))))
      << out;
  const std::string job2 = m[1].str();
  wait_for_job(job2, 120);
  if (HasFatalFailure()) return;
  ASSERT_EQ(kv("slurm status --db " + q(db), &out), 0) << out;
  EXPECT_NE(out.find("20 of 20 shard(s) complete; 120 of 120 run(s) done"), std::string::npos) << out;
  ASSERT_EQ(kv("slurm resubmit --db " + q(db), &out), 0) << out;
  EXPECT_NE(out.find("nothing to resubmit"), std::string::npos) << out;

  // Ingest twice.
  ASSERT_EQ(kv("ingest --db " + q(db), &out), 0) << out;
  EXPECT_NE(out.find("20 shard(s) merged, 0 failed; 120 run(s) merged, 0 still missing"), std::string::npos) << out;
  EXPECT_NE(out.find("experiment 'twenty': 120 of 120 run(s) done"), std::string::npos) << out;
  auto main_db = store::open_database(db, store::OpenMode::kReadOnly);
  const auto first = store::outcome_rows(*main_db, "twenty");
  main_db.reset();
  ASSERT_EQ(kv("ingest --db " + q(db), &out), 0) << out;
  EXPECT_NE(out.find("20 shard(s) merged, 0 failed; 0 run(s) merged"), std::string::npos) << out;
  main_db = store::open_database(db, store::OpenMode::kReadOnly);
  EXPECT_EQ(store::outcome_rows(*main_db, "twenty"), first);

  // Every run done exactly once, in exactly one shard.
  EXPECT_EQ(main_db->execAndGet("SELECT count(*) FROM runs WHERE status = 'done'").getInt64(), 120);
  EXPECT_EQ(main_db->execAndGet("SELECT count(*) FROM results").getInt64(), 120);
  EXPECT_EQ(main_db->execAndGet("SELECT count(*) FROM audits").getInt64(), 60);
  std::int64_t shard_done = 0;
  for (int i = 0; i < kShards; ++i) {
    const auto p = store::read_shard_progress(store::shard_path(db, i), i);
    EXPECT_TRUE(p.complete()) << "shard " << i;
    EXPECT_EQ(p.passages, 1);
    shard_done += p.done;
  }
  EXPECT_EQ(shard_done, kShards * kRunsPerPassage);

  // Provenance: the Slurm job, the array task of the run's shard, the node.
  {
    SQLite::Statement st(*main_db,
                         "SELECT p.slurm_json, s.name FROM results r JOIN provenance p ON p.id = r.provenance_id "
                         "JOIN runs x ON x.id = r.run_id JOIN passages s ON s.id = x.passage_id");
    std::map<std::string, std::set<std::string>> tasks_of_passage;
    int n = 0;
    while (st.executeStep()) {
      ++n;
      ASSERT_FALSE(st.getColumn(0).isNull()) << "a result without Slurm provenance";
      const auto j = nlohmann::json::parse(st.getColumn(0).getString());
      const std::string job = j.value("SLURM_ARRAY_JOB_ID", "");
      EXPECT_TRUE(job == job1 || job == job2) << j.dump();
      EXPECT_FALSE(j.value("SLURMD_NODENAME", "").empty()) << j.dump();
      tasks_of_passage[st.getColumn(1).getString()].insert(j.value("SLURM_ARRAY_TASK_ID", ""));
      if (job == job2) {
        EXPECT_EQ(j.value("SLURM_ARRAY_TASK_ID", ""), std::to_string(killed));
      }
    }
    EXPECT_EQ(n, 120);
    // One passage per shard here, so each passage ran under exactly one array index.
    for (const auto& [passage, tasks] : tasks_of_passage) EXPECT_EQ(tasks.size(), 1u) << passage;
  }
  main_db.reset();

  // Equal to one machine running the same spec.
  const std::string ref = dir + "/ref.db";
  ASSERT_EQ(kv("queue " + q(spec) + " --db " + q(ref), &out), 0) << out;
  ASSERT_EQ(kv("run --db " + q(ref) + " --executor " + reference_executor() + " --progress none", &out), 0) << out;
  auto ref_db = store::open_database(ref, store::OpenMode::kReadOnly);
  EXPECT_EQ(store::outcome_rows(*ref_db, "twenty"), first);
  EXPECT_LE(max_running_shards, 2) << "the %2 throttle was not honoured";
}

}  // namespace
}  // namespace kvlab
