// The sequential sweep behind `kvlab run --until-resolved`: run the queued
// runs of a spec's experiment, evaluate every threshold decision (each
// non-baseline codec x stream x threshold A/B/C on the paired ratio of one
// metric to the baseline; stats/sequential.h) and, while any decision is
// unresolved and the cap is not reached, queue the next passage of the
// spec's passage list and repeat. The experiment starts from the passages
// already queued (`kvlab queue SPEC --passages N` queues the first N), at
// least 2.
//
// The decision rule is valid under the repeated looks (stats/sequential.h):
// looks at n = 2, ..., cap passages (K = cap - 1), each running Holm over
// every still-open decision of the experiment at family-wise level
// alpha / K; a decision is resolved at its first rejection and stays so.
// The chance that any decision is resolved wrongly is <= alpha (union bound
// over the looks). The cap (--max-passages, else every passage of the spec;
// raised to the passages already queued) fixes K before any data is seen.
//
// Every evaluation replays the procedure from the stored runs (look n uses
// the first n passages of the spec order), so the decisions depend only on
// the runs, the cap and alpha: a resumed or repeated sweep gets the same
// answer as one uninterrupted sweep with that cap. The rows written to
// sequential_decisions (store/decisions.h), per decision:
//   alpha        the per-look family-wise level alpha / K the verdict used;
//   verdict      "below" / "above" (resolved) or "unresolved";
//   n_needed     the look (passage count) that resolved it, NULL while
//                unresolved;
//   n_evaluated, ratio_mean, ratio_ci95_hw, p_holm
//                of the look the row reports: the resolving look for a
//                resolved decision (n_evaluated = n_needed; p_holm < alpha),
//                the latest look for an unresolved one. ratio_ci95_hw is the
//                plain 95 % t interval of that look, not widened for the
//                looks or the family.
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
#include "stats/experiment_data.h"
#include "stats/sequential.h"
#include "store/decisions.h"

namespace kvlab::experiment {

// The spec's plan restricted to its first n passages (n >= 1, at most all;
// kvlab::Error otherwise). Same experiment name and spec hash as plan().
store::ExperimentPlan plan_first_passages(const SweepSpec& spec, int n);

// The experiment restricted to the passages of spec index < n and their
// runs (the data of look n).
stats::ExperimentData first_passages(const stats::ExperimentData& data, int n);

// The sequential procedure replayed on `data`: looks n = 2, ...,
// min(passages stored, schedule.cap), each summarised for `metric` and
// tested at schedule.level() over the decisions still open; the rows to
// store (see above), ordered by stream, codec, threshold.
std::vector<store::DecisionRow> replay_decisions(const stats::ExperimentData& data, const stats::LookSchedule& schedule,
                                                 const std::string& metric);

struct SequentialOptions {
  WorkerOptions worker;       // db_path, executor factory, threads...; experiment is set to the spec's name
  std::string spec_path;      // the spec the experiment was queued from
  int max_passages = 0;       // cap; 0: every passage of the spec
  double alpha = 0.05;        // overall family-wise level: over every decision and every look
  std::string metric = "rel_mse";
  std::function<void(const std::string&)> log;  // one line per evaluation (may be empty)
};

struct SequentialOutcome {
  int passages = 0;             // passages evaluated at the end
  int evaluations = 0;
  bool all_resolved = false;
  bool cap_reached = false;     // stopped with unresolved decisions at the cap
  bool interrupted = false;
  stats::LookSchedule schedule;  // looks n = 2..cap, each at schedule.level()
  std::int64_t runs_done = 0, runs_failed = 0;
  std::vector<store::DecisionRow> decisions;  // as stored after the last evaluation
};

// Throws kvlab::Error for an unreadable spec, bad options or a database the
// spec's experiment cannot be queued into (different spec under that name).
SequentialOutcome run_until_resolved(const SequentialOptions& o, const std::atomic<bool>* stop = nullptr);

}  // namespace kvlab::experiment
