// The sequential sweep behind `kvlab run --until-resolved`: run the queued
// runs of a spec's experiment, evaluate every threshold decision (each
// non-baseline codec x stream x threshold A/B/C on the paired ratio of one
// metric to the baseline, Holm-corrected across the codecs of a stream and
// threshold; stats/sequential.h), and while any decision is unresolved and
// the cap is not reached, queue the next passage of the spec's passage list
// and repeat. The experiment starts from the passages already queued
// (`kvlab queue SPEC --passages N` queues the first N), at least 2.
//
// After every evaluation the decisions are written to the table
// sequential_decisions (store/decisions.h): the latest verdict and
// n_needed, the number of passages at which the current verdict was first
// reached (kept while the verdict holds, NULL while unresolved), so a
// report can state how many passages each decision needed.
//
// Not here: the CLI (cli/cmd_run.cpp), the tests of a decision
// (stats/sequential.h), SQL (store/).
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "experiment/spec.h"
#include "experiment/worker.h"
#include "stats/sequential.h"
#include "store/decisions.h"

namespace kvlab::experiment {

// The spec's plan restricted to its first n passages (n >= 1, at most all;
// kvlab::Error otherwise). Same experiment name and spec hash as plan().
store::ExperimentPlan plan_first_passages(const SweepSpec& spec, int n);

// The rows to store after an evaluation with n passages: verdicts from
// `now`, n_needed carried from `before` (same stream, codec, metric,
// threshold) while the verdict is unchanged and resolved, n when it was
// just reached, none while unresolved.
std::vector<store::DecisionRow> decision_rows(const std::vector<stats::ThresholdDecision>& now,
                                              const std::vector<store::DecisionRow>& before, int n,
                                              const std::string& metric, double alpha);

struct SequentialOptions {
  WorkerOptions worker;       // db_path, executor factory, threads...; experiment is set to the spec's name
  std::string spec_path;      // the spec the experiment was queued from
  int max_passages = 0;       // cap; 0: every passage of the spec
  double alpha = 0.05;        // family-wise level per (stream, threshold)
  std::string metric = "rel_mse";
  std::function<void(const std::string&)> log;  // one line per evaluation (may be empty)
};

struct SequentialOutcome {
  int passages = 0;             // passages evaluated at the end
  int evaluations = 0;
  bool all_resolved = false;
  bool cap_reached = false;     // stopped with unresolved decisions at the cap
  bool interrupted = false;
  std::int64_t runs_done = 0, runs_failed = 0;
  std::vector<store::DecisionRow> decisions;  // as stored after the last evaluation
};

// Throws kvlab::Error for an unreadable spec, bad options or a database the
// spec's experiment cannot be queued into (different spec under that name).
SequentialOutcome run_until_resolved(const SequentialOptions& o, const std::atomic<bool>* stop = nullptr);

}  // namespace kvlab::experiment
