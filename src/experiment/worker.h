// Workers: claim the pending runs of one passage, generate its streams once,
// measure every pending (stream, codec), commit each result with its run's
// state in one transaction; heartbeat while working; stop cleanly on request
// (the in-flight run is requeued, not counted as an attempt).
//
// run_workers() runs N worker threads in this process, each with its own
// SQLite connection and Executor, plus one heartbeat thread (own
// connection) for all of them. Several processes (e.g. Slurm array tasks)
// may run workers on the same file at once: claims are atomic and a late
// result of a reclaimed claim is rejected (store/runs.h).
//
// A worker exits when nothing is left that it could claim and no other
// worker holds running runs (those might still be reclaimed after the grace
// period), or after idle_exit_s without claimable work when that is set.
// Not here: the CLI (cli/cmd_run.cpp), SQL (store/).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "experiment/executor.h"

namespace kvlab::experiment {

// Self-inflicted SIGKILL at chosen points, for the crash tests only:
// claim (right after a claim committed), run (after a measurement, before its
// commit), commit (inside the commit transaction, before COMMIT). Each point
// fires with its probability, from a generator seeded with `seed` (xor pid).
struct FaultInjection {
  double p_claim = 0, p_run = 0, p_commit = 0;
  std::uint64_t seed = 0;
  bool any() const { return p_claim > 0 || p_run > 0 || p_commit > 0; }
  // "claim=0.01,run=0.02,commit=0.01,seed=7"; throws kvlab::Error on bad input.
  static FaultInjection parse(const std::string& s);
};

struct WorkerOptions {
  std::string db_path;
  int threads = 1;
  std::string executor = "torch";  // for messages; the factory below builds them
  // Builds one Executor per worker thread (e.g. [s] { return make_executor(s); }).
  std::function<std::unique_ptr<Executor>()> executor_factory;
  double grace_s = 300;       // reclaim runs whose heartbeat is older than this
  double heartbeat_s = 0;     // 0: grace_s / 5
  int max_attempts = 3;
  double idle_exit_s = 0;     // >0: wait up to this long for new work before exiting
  std::optional<std::string> experiment;  // only this experiment's runs
  enum class Progress { kAuto, kTty, kLog, kNone } progress = Progress::kAuto;
  FaultInjection faults;
};

struct WorkerStats {
  std::int64_t claims = 0;
  std::int64_t passages_opened = 0;  // stream generations
  std::int64_t runs_done = 0;
  std::int64_t runs_failed = 0;
  std::int64_t runs_rejected = 0;    // late results refused (claim lost)
  std::int64_t runs_released = 0;    // requeued on stop
  double seconds = 0;
  bool interrupted = false;
};

// Runs until done or until *stop becomes true (checked between runs).
// Throws kvlab::Error for bad options or an unusable database.
WorkerStats run_workers(const WorkerOptions& opt, const std::atomic<bool>* stop = nullptr);

// "<hostname>:<pid>" of this process.
std::string process_worker_id();

}  // namespace kvlab::experiment
