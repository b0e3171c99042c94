// kvlab_stub_worker: `kvlab run` with the stub executor only, linked without
// LibTorch, so that the reliability tests can kill and respawn workers
// dozens of times without paying LibTorch's start-up (hundreds of shared
// libraries) for each. Same worker code (experiment/worker.cpp), same
// options (a subset), same summary line and exit codes as `kvlab run`:
// 0 all done, 1 runs failed, 130 interrupted.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/error.h"
#include "experiment/executor.h"
#include "experiment/worker.h"
#include "store/db.h"
#include "store/runs.h"

namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop = true; }
}  // namespace

int main(int argc, char** argv) {
  using namespace kvlab;
  experiment::WorkerOptions opt;
  opt.executor = "stub";
  opt.progress = experiment::WorkerOptions::Progress::kNone;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto val = [&]() -> std::string {
        KVLAB_CHECK(i + 1 < argc, "{} needs a value", a);
        return argv[++i];
      };
      if (a == "--db") opt.db_path = val();
      else if (a == "--executor") opt.executor = val();
      else if (a == "--workers") opt.threads = std::stoi(val());
      else if (a == "--grace") opt.grace_s = std::stod(val());
      else if (a == "--heartbeat") opt.heartbeat_s = std::stod(val());
      else if (a == "--max-attempts") opt.max_attempts = std::stoi(val());
      else if (a == "--idle-exit") opt.idle_exit_s = std::stod(val());
      else if (a == "--inject-faults") opt.faults = experiment::FaultInjection::parse(val());
      else if (a == "--progress") val();  // always none
      else throw Error("unknown option " + a);
    }
    KVLAB_CHECK(opt.executor.rfind("stub", 0) == 0, "kvlab_stub_worker runs the stub executor only, got '{}'",
                opt.executor);
    const std::string opts = opt.executor.size() > 5 ? opt.executor.substr(5) : "";
    opt.executor_factory = [opts] { return experiment::make_stub_executor(opts); };
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    const auto st = experiment::run_workers(opt, &g_stop);
    std::fprintf(stderr,
                 "kvlab run: %lld claims, %lld stream generations, %lld runs done, %lld failed, %lld late results "
                 "rejected, %lld requeued, %.2f s\n",
                 (long long)st.claims, (long long)st.passages_opened, (long long)st.runs_done, (long long)st.runs_failed,
                 (long long)st.runs_rejected, (long long)st.runs_released, st.seconds);
    if (st.interrupted) return 130;
    auto db = store::open_database(opt.db_path, store::OpenMode::kReadOnly);
    for (const auto& r : store::status_counts(*db))
      if (r.failed > 0) return 1;
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kvlab_stub_worker: error: %s\n", e.what());
    return 1;
  }
}
