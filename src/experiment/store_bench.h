// Store overhead benchmark (`kvlab bench store`): how much wall time the
// bookkeeping costs per run -- queueing, claiming, committing each result
// with its run's state -- with N worker processes sharing one database
// file and the stub executor (whose own work is a hash per run).
//
// Method: queue R runs (one transaction; timed), then start N `kvlab run`
// processes and time until all exit; the same N processes on an empty queue
// give the start-up/shut-down cost, which is subtracted. Per-run overhead =
// (queue + run - empty) / R. Not a unit test: numbers depend on the machine.
#pragma once

#include <string>

namespace kvlab::experiment {

struct StoreBenchOptions {
  int workers = 8;
  long runs = 20000;
  int runs_per_passage = 10;
  std::string dir;           // where the database goes; empty: a temporary folder (removed)
  std::string kvlab_binary;  // the `kvlab` executable to spawn
};

struct StoreBenchResult {
  StoreBenchOptions options;
  double queue_s = 0;
  double run_s = 0;
  double empty_s = 0;
  long done = 0;
  double us_per_run() const;        // (queue + run - empty) / runs, microseconds
  double queue_us_per_run() const;
  std::string report() const;
};

// Throws kvlab::Error when a worker exits non-zero or runs are left undone.
StoreBenchResult bench_store(const StoreBenchOptions& o);

}  // namespace kvlab::experiment
