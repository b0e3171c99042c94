// Store overhead benchmark (`kvlab bench store`): how much wall time the
// bookkeeping costs per run -- queueing, claiming, committing each result
// with its run's state -- with N worker processes sharing one database
// file and the stub executor (whose own work is a hash per run).
//
// Method: queue R runs (one transaction; timed), then start N `kvlab run`
// processes on the file. The busy span is taken from the runs themselves
// (first claimed_at to last finished_at), so process start-up is not
// counted. Per-run overhead = (queue + busy span) / R: wall time per run with
// N workers sharing the file, an upper bound on the bookkeeping since it
// includes the stub's own work (a hash and a codec lookup per run). Not a
// unit test: numbers depend on the machine and its load.
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
  double busy_s = 0;     // first claim to last finish
  double process_s = 0;  // spawn to last exit (includes start-up)
  long done = 0;
  double us_per_run() const;        // (queue + busy) / runs, microseconds
  double queue_us_per_run() const;
  std::string report() const;
};

// Throws kvlab::Error when a worker exits non-zero or runs are left undone.
StoreBenchResult bench_store(const StoreBenchOptions& o);

}  // namespace kvlab::experiment
