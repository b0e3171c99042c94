// Multi-process reliability of the run queue: real `kvlab run` processes
// (stub executor: no tensor work) against one SQLite file.
//  - 8 workers x 2000 runs with 10 % duplicate queueing while they run;
//  - random kill -9 of workers (at claim, mid-run, during commit) with
//    respawn, over printed seeds;
//  - kill -9 of `kvlab run` itself, then a rerun: nothing redone, final data
//    equal to an uninterrupted run's;
//  - SIGSTOP past the grace period, SIGCONT: the late result is rejected;
//  - Ctrl-C requeues the in-flight runs; failed runs retried up to a limit.
// Each test prints its figures (runs, kills, duplicates, lost, seconds).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <SQLiteCpp/SQLiteCpp.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "experiment/spec.h"
#include "store/db.h"
#include "store/runs.h"
#include "testutil/testutil.h"

extern char** environ;

namespace kvlab::experiment {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
void sleep_s(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

// A child process with stdout+stderr appended to a log file.
struct Proc {
  pid_t pid = -1;
  std::string log;
};

Proc spawn(const std::vector<std::string>& args, const std::string& log) {
  std::vector<std::string> a = args;
  std::vector<char*> argv;
  for (auto& s : a) argv.push_back(s.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  Proc p;
  p.log = log;
  const int rc = posix_spawn(&p.pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error(fmt::format("posix_spawn {} failed: {}", args[0], rc));
  return p;
}

// Exit code, or 128 + signal.
int wait_proc(const Proc& p) {
  int st = 0;
  waitpid(p.pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A spec of n_passages synthetic passages x 1 stream x n_codecs codecs.
std::string write_spec(const std::string& dir, const std::string& name, int n_passages, int n_codecs,
                       const std::string& streams = "sliding_window_kv") {
  std::string qs;
  for (int q = 1; q < n_codecs; ++q) qs += fmt::format(" {}", q);
  const std::string path = dir + "/" + name + ".ini";
  std::ofstream(path) << fmt::format(
      "[experiment]\nname = {}\nseqlen = 256\nstreams = {}\n[passages]\nsynthetic = 0-{}\n[codecs]\n"
      "codec = fp8_per64\n{}",
      name, streams, n_passages - 1, n_codecs > 1 ? "e8.q =" + qs + "\n" : "");
  return path;
}

// `kvlab run` with the stub executor.
std::vector<std::string> run_args(const std::string& db, const std::string& extra_executor_opts = "",
                                  std::vector<std::string> more = {}) {
  std::vector<std::string> a = {testutil::kvlab_binary(), "run", "--db", db, "--progress", "none", "--executor",
                                "stub" + (extra_executor_opts.empty() ? "" : ":" + extra_executor_opts)};
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

// The same worker loop without LibTorch's start-up cost (tests/helpers/), for
// the tests that start dozens of worker processes.
std::vector<std::string> stub_worker_args(const std::string& db, const std::string& extra_executor_opts = "",
                                          std::vector<std::string> more = {}) {
  std::vector<std::string> a = {KVLAB_STUB_WORKER, "--db", db, "--executor",
                                "stub" + (extra_executor_opts.empty() ? "" : ":" + extra_executor_opts)};
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

struct DbFacts {
  std::int64_t runs = 0, results = 0, done = 0, running = 0, queued = 0, failed = 0, audits = 0, orphans = 0;
  std::string integrity;
};

DbFacts facts(const std::string& path) {
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  auto n = [&](const char* sql) { return db.execAndGet(sql).getInt64(); };
  DbFacts f;
  f.runs = n("SELECT count(*) FROM runs");
  f.results = n("SELECT count(*) FROM results");
  f.done = n("SELECT count(*) FROM runs WHERE status = 'done'");
  f.running = n("SELECT count(*) FROM runs WHERE status = 'running'");
  f.queued = n("SELECT count(*) FROM runs WHERE status = 'queued'");
  f.failed = n("SELECT count(*) FROM runs WHERE status = 'failed'");
  f.audits = n("SELECT count(*) FROM audits");
  // Results whose run is not done, done runs without a result, dangling keys.
  f.orphans = n("SELECT (SELECT count(*) FROM results s LEFT JOIN runs r ON r.id = s.run_id "
                "WHERE r.id IS NULL OR r.status <> 'done') + "
                "(SELECT count(*) FROM runs r LEFT JOIN results s ON s.run_id = r.id "
                "WHERE r.status = 'done' AND s.run_id IS NULL) + "
                "(SELECT count(*) FROM pragma_foreign_key_check)");
  f.integrity = db.execAndGet("PRAGMA integrity_check").getString();
  return f;
}

// (passage, stream, codec) -> "bits rel_mse cos" for data comparisons.
std::map<std::string, std::string> result_map(const std::string& path) {
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  SQLite::Statement st(db,
                       "SELECT p.name, r.stream, r.codec, s.bits_per_vector, s.rel_mse, s.cos_sim, s.n_vectors "
                       "FROM runs r JOIN passages p ON p.id = r.passage_id JOIN results s ON s.run_id = r.id");
  std::map<std::string, std::string> m;
  while (st.executeStep())
    m[fmt::format("{}/{}/{}", st.getColumn(0).getString(), st.getColumn(1).getString(), st.getColumn(2).getString())] =
        fmt::format("{} {:.17g} {:.17g} {}", st.getColumn(3).getDouble(), st.getColumn(4).getDouble(),
                    st.getColumn(5).getDouble(), st.getColumn(6).getInt64());
  SQLite::Statement au(db,
                       "SELECT p.name, a.stream, a.excess_kurtosis_abs, a.rms_wasserstein2_over_sigma_per_dim "
                       "FROM audits a JOIN passages p ON p.id = a.passage_id");
  while (au.executeStep())
    m[fmt::format("audit/{}/{}", au.getColumn(0).getString(), au.getColumn(1).getString())] =
        fmt::format("{:.17g} {:.17g}", au.getColumn(2).getDouble(), au.getColumn(3).getDouble());
  return m;
}

// Sum of "N stream generations" over the workers' final lines.
std::int64_t stream_generations(const std::string& log) {
  std::int64_t total = 0;
  std::size_t pos = 0;
  const std::string key = " stream generations";
  while ((pos = log.find(key, pos)) != std::string::npos) {
    std::size_t b = log.rfind(", ", pos);
    total += std::stoll(log.substr(b + 2, pos - b - 2));
    pos += key.size();
  }
  return total;
}

TEST(ExperimentReliability, EightWorkersTwoThousandRunsWithDuplicateQueueing) {
  const auto dir = testutil::make_temp_dir("rel-8x2000");
  const std::string db = dir + "/r.db";
  const auto spec = load_spec(write_spec(dir, "w8", 200, 10));
  const auto full = spec.plan();
  ASSERT_EQ(spec.run_count(), 2000u);
  // The plan in 20 passage-disjoint chunks of 100 runs.
  auto chunk = [&](int c) {
    auto p = full;
    p.passages.assign(full.passages.begin() + c * 10, full.passages.begin() + (c + 1) * 10);
    return p;
  };
  auto conn = store::open_database(db, store::OpenMode::kCreate);
  for (int c = 0; c < 10; ++c) store::queue_experiment(*conn, chunk(c));
  const auto t0 = Clock::now();
  std::vector<Proc> workers;
  for (int i = 0; i < 8; ++i)
    workers.push_back(
        spawn(stub_worker_args(db, "", {"--idle-exit", "1.5", "--grace", "10"}), fmt::format("{}/w{}.log", dir, i)));
  // The rest of the plan while the workers run, plus 10 % duplicates:
  // chunks queued a second time (their runs exist; nothing may be added).
  std::mt19937 rng(2000);
  std::int64_t added = 0, duplicate_attempts = 0, duplicates_added = 0;
  for (int c = 10; c < 20; ++c) {
    added += store::queue_experiment(*conn, chunk(c)).runs_added;
    if (c % 5 == 0) {  // two chunks queued again: 10 % (200 of 2000) duplicates
      const int again = static_cast<int>(rng() % c);
      auto o = store::queue_experiment(*conn, chunk(again));
      duplicate_attempts += o.runs_added + o.runs_existing;
      duplicates_added += o.runs_added;
    }
    sleep_s(0.01);
  }
  EXPECT_EQ(added, 1000);
  std::string logs;
  for (auto& w : workers) {
    EXPECT_EQ(wait_proc(w), 0) << slurp(w.log);
    logs += slurp(w.log);
  }
  const double secs = since(t0);
  const auto f = facts(db);
  std::printf("[8x2000] workers 8, runs %lld, results %lld, duplicate queue attempts %lld (added %lld), lost %lld, "
              "running %lld, stream generations %lld, %.2f s\n",
              (long long)f.runs, (long long)f.results, (long long)duplicate_attempts, (long long)duplicates_added,
              (long long)(2000 - f.done), (long long)f.running, (long long)stream_generations(logs), secs);
  EXPECT_EQ(duplicate_attempts, 200);
  EXPECT_EQ(duplicates_added, 0);
  EXPECT_EQ(f.runs, 2000);
  EXPECT_EQ(f.results, 2000);
  EXPECT_EQ(f.done, 2000);
  EXPECT_EQ(f.running, 0);
  EXPECT_EQ(f.audits, 200);
  EXPECT_EQ(f.orphans, 0);
  EXPECT_EQ(f.integrity, "ok");
  // Each passage's stream generated once: one generation per passage.
  EXPECT_EQ(stream_generations(logs), 200);
  EXPECT_EQ(logs.find("locked"), std::string::npos) << logs;
  EXPECT_EQ(logs.find("busy"), std::string::npos) << logs;
}

TEST(ExperimentReliability, RandomKillNineWithRespawnOverSeeds) {
  int total_kills = 0;
  for (const unsigned seed : {11u, 22u, 33u}) {
    const auto dir = testutil::make_temp_dir("rel-kill");
    const std::string db = dir + "/k.db";
    const auto plan = load_spec(write_spec(dir, "kills", 40, 10, "sliding_window_kv hca_pool_kv_ratio128")).plan();
    store::queue_experiment(*store::open_database(db, store::OpenMode::kCreate), plan);
    std::printf("[kill -9] seed %u (replay: this seed picks victims and delays)\n", seed);
    std::mt19937 rng(seed);
    const int n_workers = 4;
    // Workers also SIGKILL themselves at claim / mid-run / inside the commit
    // transaction with small probabilities: those windows are narrow.
    auto worker_args = [&](int gen) {
      return stub_worker_args(db, "sleep_ms=2",
                      {"--grace", "0.4", "--heartbeat", "0.05", "--max-attempts", "1000", "--inject-faults",
                       fmt::format("claim=0.01,run=0.004,commit=0.004,seed={}", seed * 1000 + gen)});
    };
    std::vector<Proc> w;
    int gen = 0;
    for (int i = 0; i < n_workers; ++i) w.push_back(spawn(worker_args(gen++), fmt::format("{}/w{}.log", dir, gen)));
    int kills = 0, self_kills = 0, respawns = 0;
    const auto t0 = Clock::now();
    // Kill until at least target_kills workers have really died by SIGKILL
    // (on a loaded machine a kill can land on a worker that is exiting, and
    // the self-inflicted faults vary), so every seed exercises as many
    // deaths whatever the machine's speed.
    const int target_kills = 17;
    std::vector<bool> finished(w.size(), false);
    while (true) {
      sleep_s(std::uniform_real_distribution<double>(0.01, 0.05)(rng));
      if (respawns < target_kills && kills < 4 * target_kills) {
        const std::size_t v = rng() % w.size();
        if (!finished[v]) {
          kill(w[v].pid, SIGKILL);
          ++kills;
        }
      }
      // Reap and respawn anything that died by a signal.
      bool all_done = true;
      for (std::size_t i = 0; i < w.size(); ++i) {
        if (finished[i]) continue;
        int st = 0;
        if (waitpid(w[i].pid, &st, WNOHANG) == 0) {
          all_done = false;
          continue;
        }
        if (WIFSIGNALED(st)) {
          if (WTERMSIG(st) != SIGKILL) ADD_FAILURE() << "worker died by signal " << WTERMSIG(st);
          w[i] = spawn(worker_args(gen++), fmt::format("{}/w{}.log", dir, gen));
          ++respawns;
          all_done = false;
        } else {
          EXPECT_EQ(WEXITSTATUS(st), 0) << slurp(w[i].log);
          finished[i] = true;
        }
      }
      if (all_done) break;
      ASSERT_LT(since(t0), 60.0) << "workers did not finish";
    }
    std::string logs;
    for (int g = 1; g <= gen; ++g) logs += slurp(fmt::format("{}/w{}.log", dir, g));
    for (std::size_t p = 0; (p = logs.find("fault injection: SIGKILL", p)) != std::string::npos; ++p) ++self_kills;
    const auto f = facts(db);
    // respawns = workers that actually died by SIGKILL (an external kill can
    // land on a worker that had just killed itself).
    std::printf("[kill -9] seed %u: runs %lld, results %lld, kill -9 sent %d + self-inflicted %d, workers killed "
                "(respawned) %d, duplicates %lld, lost %lld, %.2f s\n",
                seed, (long long)f.runs, (long long)f.results, kills, self_kills, respawns,
                (long long)(f.results - f.done), (long long)(f.runs - f.done), since(t0));
    total_kills += respawns;
    EXPECT_EQ(f.runs, 800);
    EXPECT_EQ(f.done, 800);
    EXPECT_EQ(f.results, 800);
    EXPECT_EQ(f.running, 0);
    EXPECT_EQ(f.audits, 80);
    EXPECT_EQ(f.orphans, 0);
    EXPECT_EQ(f.integrity, "ok");
    EXPECT_EQ(logs.find("locked"), std::string::npos);
    // Data equal to an uninterrupted run of the same spec.
    const std::string ref = dir + "/ref.db";
    store::queue_experiment(*store::open_database(ref, store::OpenMode::kCreate), plan);
    ASSERT_EQ(wait_proc(spawn(stub_worker_args(ref), dir + "/ref.log")), 0);
    EXPECT_EQ(result_map(db), result_map(ref));
  }
  std::printf("[kill -9] workers killed over 3 seeds: %d\n", total_kills);
  EXPECT_GE(total_kills, 50);
}

TEST(ExperimentReliability, KillRunItselfThenRerunRedoesNothing) {
  const auto dir = testutil::make_temp_dir("rel-killrun");
  const std::string db = dir + "/r.db";
  const std::string spec = write_spec(dir, "resume", 40, 10);
  ASSERT_EQ(testutil::run_command(fmt::format("{} queue {} --db {}", testutil::kvlab_binary(), spec, db)), 0);
  const auto t0 = Clock::now();
  auto p = spawn(run_args(db, "sleep_ms=3", {"--workers", "4", "--grace", "0.3", "--heartbeat", "0.05"}),
                 dir + "/first.log");
  // Kill it once a good part (not all) is done.
  for (;;) {
    sleep_s(0.02);
    if (facts(db).done >= 100) break;
    ASSERT_LT(since(t0), 30.0);
  }
  kill(p.pid, SIGKILL);
  EXPECT_EQ(wait_proc(p), 128 + SIGKILL);
  std::map<std::int64_t, std::string> before;
  {
    SQLite::Database c(db, SQLite::OPEN_READONLY);
    SQLite::Statement st(c, "SELECT r.id, r.finished_at, r.attempts, s.wall_s FROM runs r JOIN results s ON s.run_id = r.id");
    while (st.executeStep())
      before[st.getColumn(0).getInt64()] = fmt::format("{:.17g} {} {:.17g}", st.getColumn(1).getDouble(),
                                                      st.getColumn(2).getInt(), st.getColumn(3).getDouble());
  }
  const auto mid = facts(db);
  EXPECT_LT(mid.done, 400);
  auto again = spawn(run_args(db, "sleep_ms=3", {"--workers", "4", "--grace", "0.3", "--heartbeat", "0.05"}),
                     dir + "/second.log");
  EXPECT_EQ(wait_proc(again), 0) << slurp(again.log);
  const auto f = facts(db);
  std::printf("[kill run] runs %lld, done before kill %lld (running %lld), after rerun %lld, results %lld, lost %lld, "
              "%.2f s\n",
              (long long)f.runs, (long long)mid.done, (long long)mid.running, (long long)f.done, (long long)f.results,
              (long long)(f.runs - f.done), since(t0));
  EXPECT_EQ(f.done, 400);
  EXPECT_EQ(f.results, 400);
  EXPECT_EQ(f.orphans, 0);
  EXPECT_EQ(f.integrity, "ok");
  // Completed runs were not redone: same finish time, attempts and wall time.
  {
    SQLite::Database c(db, SQLite::OPEN_READONLY);
    for (const auto& [id, v] : before) {
      SQLite::Statement st(c, "SELECT r.finished_at, r.attempts, s.wall_s FROM runs r JOIN results s ON s.run_id = r.id "
                              "WHERE r.id = ?");
      st.bind(1, static_cast<std::int64_t>(id));
      ASSERT_TRUE(st.executeStep());
      EXPECT_EQ(fmt::format("{:.17g} {} {:.17g}", st.getColumn(0).getDouble(), st.getColumn(1).getInt(),
                            st.getColumn(2).getDouble()),
                v)
          << "run " << id << " was redone";
    }
  }
  // The final data equal an uninterrupted run's.
  const std::string ref = dir + "/ref.db";
  ASSERT_EQ(testutil::run_command(fmt::format("{} queue {} --db {}", testutil::kvlab_binary(), spec, ref)), 0);
  ASSERT_EQ(wait_proc(spawn(run_args(ref, "", {"--workers", "2"}), dir + "/ref.log")), 0);
  EXPECT_EQ(result_map(db), result_map(ref));
}

TEST(ExperimentReliability, StoppedWorkerPastGraceHasItsLateResultRejected) {
  const auto dir = testutil::make_temp_dir("rel-stop");
  const std::string db = dir + "/s.db";
  ASSERT_EQ(testutil::run_command(fmt::format("{} queue {} --db {}", testutil::kvlab_binary(),
                                              write_spec(dir, "stop", 1, 4), db)),
            0);
  const auto t0 = Clock::now();
  auto a = spawn(run_args(db, "sleep_ms=300", {"--grace", "0.5", "--heartbeat", "0.1"}), dir + "/a.log");
  for (;;) {  // wait until A holds the passage
    sleep_s(0.02);
    if (facts(db).running == 4) break;
    ASSERT_LT(since(t0), 20.0) << slurp(a.log);
  }
  kill(a.pid, SIGSTOP);
  sleep_s(0.9);  // past the grace period
  auto b = spawn(run_args(db, "sleep_ms=50", {"--grace", "0.5", "--heartbeat", "0.1"}), dir + "/b.log");
  EXPECT_EQ(wait_proc(b), 0) << slurp(b.log);
  kill(a.pid, SIGCONT);
  EXPECT_EQ(wait_proc(a), 0) << slurp(a.log);
  const auto f = facts(db);
  const std::string alog = slurp(a.log);
  std::printf("[SIGSTOP] runs %lld, results %lld, A's late result rejected: %s, %.2f s\n", (long long)f.runs,
              (long long)f.results, alog.find("rejected") != std::string::npos ? "yes" : "no", since(t0));
  EXPECT_EQ(f.results, 4);
  EXPECT_EQ(f.done, 4);
  EXPECT_EQ(f.orphans, 0);
  EXPECT_NE(alog.find("rejected"), std::string::npos) << alog;
  EXPECT_NE(alog.find("0 runs done"), std::string::npos) << alog;
  // Every run was finished by B (attempt 2).
  SQLite::Database c(db, SQLite::OPEN_READONLY);
  EXPECT_EQ(c.execAndGet("SELECT count(*) FROM runs WHERE attempts = 2").getInt(), 4);
  EXPECT_EQ(c.execAndGet("SELECT count(DISTINCT worker) FROM runs").getInt(), 1);
}

TEST(ExperimentReliability, CtrlCRequeuesInFlightRunsAndRerunFinishes) {
  const auto dir = testutil::make_temp_dir("rel-int");
  const std::string db = dir + "/i.db";
  ASSERT_EQ(testutil::run_command(fmt::format("{} queue {} --db {}", testutil::kvlab_binary(),
                                              write_spec(dir, "intr", 10, 10), db)),
            0);
  auto p = spawn(run_args(db, "sleep_ms=20", {"--workers", "2"}), dir + "/a.log");
  const auto t0 = Clock::now();
  for (;;) {
    sleep_s(0.02);
    if (facts(db).done >= 10) break;
    ASSERT_LT(since(t0), 20.0);
  }
  kill(p.pid, SIGINT);
  EXPECT_EQ(wait_proc(p), 130) << slurp(p.log);
  const auto mid = facts(db);
  EXPECT_EQ(mid.running, 0);
  EXPECT_LT(mid.done, 100);
  {
    SQLite::Database c(db, SQLite::OPEN_READONLY);
    EXPECT_EQ(c.execAndGet("SELECT count(*) FROM runs WHERE status = 'queued' AND attempts <> 0").getInt(), 0);
  }
  EXPECT_NE(slurp(p.log).find("interrupted"), std::string::npos);
  auto q = spawn(run_args(db, "", {}), dir + "/b.log");
  EXPECT_EQ(wait_proc(q), 0) << slurp(q.log);
  const auto f = facts(db);
  std::printf("[Ctrl-C] runs %lld, done at interrupt %lld, requeued %lld, after rerun %lld\n", (long long)f.runs,
              (long long)mid.done, (long long)mid.queued, (long long)f.done);
  EXPECT_EQ(f.done, 100);
  EXPECT_EQ(f.results, 100);
}

TEST(ExperimentReliability, FailedRunsKeepTheirErrorAndStopAtTheLimit) {
  const auto dir = testutil::make_temp_dir("rel-fail");
  const std::string db = dir + "/f.db";
  ASSERT_EQ(testutil::run_command(fmt::format("{} queue {} --db {}", testutil::kvlab_binary(),
                                              write_spec(dir, "fails", 3, 4), db)),
            0);
  std::string out;
  auto p = spawn(run_args(db, "fail=e8:q=2", {"--max-attempts", "2"}), dir + "/a.log");
  EXPECT_EQ(wait_proc(p), 1) << slurp(p.log);
  EXPECT_NE(slurp(p.log).find("3 runs failed after 2 attempts"), std::string::npos) << slurp(p.log);
  SQLite::Database c(db, SQLite::OPEN_READONLY);
  EXPECT_EQ(c.execAndGet("SELECT count(*) FROM runs WHERE status = 'failed' AND codec = 'e8:q=2' AND attempts = 2 "
                         "AND error LIKE '%injected failure for codec e8:q=2%'")
                .getInt(),
            3);
  EXPECT_EQ(c.execAndGet("SELECT count(*) FROM runs WHERE status = 'done'").getInt(), 9);
  // status --json reports them.
  ASSERT_EQ(testutil::run_command(fmt::format("{} status --db {} --json", testutil::kvlab_binary(), db), &out), 0);
  const auto j = nlohmann::json::parse(out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["experiment"], "fails");
  EXPECT_EQ(j[0]["done"], 9);
  EXPECT_EQ(j[0]["failed"], 3);
  EXPECT_EQ(j[0]["queued"], 0);
  EXPECT_EQ(j[0]["running"], 0);
}

TEST(ExperimentReliability, QueueCommandIsIdempotentAndReplicates) {
  const auto dir = testutil::make_temp_dir("rel-queue");
  const std::string db = dir + "/q.db";
  const std::string spec = write_spec(dir, "idem", 4, 3);
  std::string out;
  ASSERT_EQ(testutil::run_command(fmt::format("{} queue {} --db {}", testutil::kvlab_binary(), spec, db), &out), 0) << out;
  EXPECT_NE(out.find("12 runs added, 0 already queued"), std::string::npos) << out;
  ASSERT_EQ(testutil::run_command(fmt::format("{} queue {} --db {}", testutil::kvlab_binary(), spec, db), &out), 0) << out;
  EXPECT_NE(out.find("0 runs added, 12 already queued"), std::string::npos) << out;
  ASSERT_EQ(testutil::run_command(fmt::format("{} queue {} --db {} --replicate", testutil::kvlab_binary(), spec, db),
                                  &out),
            0);
  EXPECT_NE(out.find("replicate 1: 12 runs added"), std::string::npos) << out;
  // A bad spec queues nothing and names file:line.
  std::ofstream(dir + "/bad.ini") << "[experiment]\nname = bad\n[passages]\nsynthetic = 0\n[codecs]\ncodec = e9:q=3\n";
  EXPECT_EQ(testutil::run_command(fmt::format("{} queue {}/bad.ini --db {}", testutil::kvlab_binary(), dir, db), &out),
            1);
  EXPECT_NE(out.find("bad.ini:6:"), std::string::npos) << out;
  EXPECT_EQ(facts(db).runs, 24);
  // A non-kvlab file is refused.
  std::ofstream(dir + "/text.db") << "hello";
  EXPECT_EQ(testutil::run_command(fmt::format("{} status --db {}/text.db", testutil::kvlab_binary(), dir), &out), 1);
  EXPECT_NE(out.find("not an SQLite database"), std::string::npos) << out;
}

}  // namespace
}  // namespace kvlab::experiment
