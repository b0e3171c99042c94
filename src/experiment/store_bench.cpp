// `kvlab bench store` (see store_bench.h).
#include "experiment/store_bench.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <vector>

#include <fmt/format.h>

#include "common/error.h"
#include "store/db.h"
#include "store/runs.h"

extern char** environ;

namespace kvlab::experiment {

namespace fs = std::filesystem;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Starts N `kvlab run` processes on db and waits for all; returns seconds.
double run_processes(const StoreBenchOptions& o, const std::string& db) {
  std::vector<std::string> args = {o.kvlab_binary, "run", "--db", db, "--executor", "stub", "--progress", "none",
                                   "--grace", "60"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const double t0 = now_s();
  std::vector<pid_t> pids;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  for (int i = 0; i < o.workers; ++i) {
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, o.kvlab_binary.c_str(), &fa, nullptr, argv.data(), environ);
    KVLAB_CHECK(rc == 0, "cannot start {}: {}", o.kvlab_binary, std::strerror(rc));
    pids.push_back(pid);
  }
  posix_spawn_file_actions_destroy(&fa);
  int bad = 0;
  for (pid_t pid : pids) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++bad;
  }
  const double t = now_s() - t0;
  KVLAB_CHECK(bad == 0, "{} of {} worker processes exited with an error", bad, o.workers);
  return t;
}

}  // namespace

double StoreBenchResult::us_per_run() const {
  return 1e6 * (queue_s + busy_s) / static_cast<double>(options.runs);
}
double StoreBenchResult::queue_us_per_run() const { return 1e6 * queue_s / static_cast<double>(options.runs); }

std::string StoreBenchResult::report() const {
  return fmt::format(
      "store benchmark: {} runs ({} per claim), {} worker processes, stub executor\n"
      "  queue:                 {:8.3f} s  ({:.1f} us/run, one transaction)\n"
      "  workers busy:          {:8.3f} s  (first claim to last commit)\n"
      "  processes:             {:8.3f} s  (spawn to exit, includes start-up; not counted)\n"
      "  overhead per run:      {:8.1f} us  (queue + claim + commit, wall time with {} workers)\n"
      "  throughput:            {:8.0f} runs/s\n",
      options.runs, options.runs_per_passage, options.workers, queue_s, queue_us_per_run(), busy_s, process_s,
      us_per_run(), options.workers, double(options.runs) / std::max(1e-9, busy_s));
}

StoreBenchResult bench_store(const StoreBenchOptions& o) {
  KVLAB_CHECK(o.workers >= 1 && o.workers <= 256, "--workers {}: expected 1 .. 256", o.workers);
  KVLAB_CHECK(o.runs_per_passage >= 1 && o.runs_per_passage <= 60, "--runs-per-passage {}: expected 1 .. 60",
              o.runs_per_passage);
  KVLAB_CHECK(o.runs >= o.runs_per_passage && o.runs % o.runs_per_passage == 0,
              "--runs {} must be a positive multiple of --runs-per-passage {}", o.runs, o.runs_per_passage);
  std::string dir = o.dir;
  bool remove = false;
  if (dir.empty()) {
    std::string tmpl = (fs::temp_directory_path() / "kvlab-bench-store-XXXXXX").string();
    KVLAB_CHECK(mkdtemp(tmpl.data()) != nullptr, "cannot create a temporary folder");
    dir = tmpl;
    remove = true;
  }
  struct Cleanup {
    std::string d;
    bool on;
    ~Cleanup() {
      std::error_code ec;
      if (on) fs::remove_all(d, ec);
    }
  } cleanup{dir, remove};
  const std::string db_path = dir + "/bench.db";
  StoreBenchResult r;
  r.options = o;
  // The plan: runs / k synthetic passages x 1 stream x k codecs.
  store::ExperimentPlan plan;
  plan.name = "bench_store";
  plan.spec_text = fmt::format("bench store: {} runs", o.runs);
  plan.spec_hash = std::string(64, '0');
  plan.params_json = R"({"seqlen":2048,"stream_dtype":"bf16"})";
  plan.streams = {"sliding_window_kv"};
  plan.codecs.push_back({"fp8_per64", std::nullopt});
  for (int q = 1; static_cast<int>(plan.codecs.size()) < o.runs_per_passage; ++q)
    plan.codecs.push_back({fmt::format("e8:q={}", q), q});
  for (long i = 0; i < o.runs / o.runs_per_passage; ++i)
    plan.passages.push_back({static_cast<int>(i), fmt::format("p{}", i), fmt::format("{:064x}", i),
                             fmt::format("synthetic:seed={}", i), std::nullopt});
  {
    auto db = store::open_database(db_path, store::OpenMode::kCreate);
    const double t0 = now_s();
    store::queue_experiment(*db, plan);
    r.queue_s = now_s() - t0;
  }
  r.process_s = run_processes(o, db_path);
  auto db = store::open_database(db_path, store::OpenMode::kReadOnly);
  for (const auto& s : store::status_counts(*db)) r.done += s.done;
  const auto [first, last] = store::activity_span(*db);
  r.busy_s = last - first;
  KVLAB_CHECK(r.done == o.runs, "store benchmark: {} of {} runs done", r.done, o.runs);
  return r;
}

}  // namespace kvlab::experiment
