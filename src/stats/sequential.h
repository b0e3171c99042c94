// The threshold decisions of a study and the multiplicity correction of the
// sequential sweep (`kvlab run --until-resolved`, experiment/sequential.h),
// valid under its repeated looks.
//
// A decision is one (stream, codec, threshold): is the codec's paired ratio
// of the summary's metric to the baseline below or above the threshold
// factor m? At one look (the first n passages) it is tested with the
// one-sample t test of the n per-passage ratios against m (two-sided p;
// n - 1 df; zero spread gives p = 0 when the mean differs from m, else 1;
// n < 2 gives no p).
//
// The sweep looks again after every added passage and stops testing a
// decision at its first rejection, so a fixed-n test at 5 % per look would
// resolve a decision whose true ratio is exactly m far more often than 5 %
// (optional stopping: in the simulation of tests/stats_sequential_test.cpp,
// 4 null decisions and 15 looks, the old rule resolved one in 43 % of the
// replications, this rule in 2.9 %). The rule here is valid under the looks:
//   * Looks. The sweep may look at n = 2, 3, ..., cap passages: K = cap - 1
//     looks, fixed by the cap alone (a sweep that starts with more passages
//     queued, or resumes, skips the early looks and stays valid, only
//     conservative). Each look spends alpha / K (LookSchedule::level);
//     union bound (Bonferroni over looks): the chance that any look ever
//     resolves a true-null decision is at most K * alpha / K = alpha. A
//     uniform split is the simplest exactly valid choice: it needs no
//     assumption about the dependence between looks (which share
//     passages), unlike O'Brien-Fleming or Pocock boundaries, whose
//     joint-normal calibration is only approximate for t statistics with
//     few df; and its per-look level is one number (stored as the rows'
//     alpha) that a report can print. Spending more on later looks would
//     resolve slow decisions a little sooner (the looks at n = 2, 3 have
//     1-2 df and almost never reject at alpha / K).
//   * Family. At each look Holm's step-down runs at level alpha / K over
//     every decision of the experiment still open (all streams, codecs and
//     thresholds of the metric: 36 in stage075_seq), not per (stream,
//     threshold). A decision it rejects is resolved, with verdict "below"
//     (mean < m) or "above", and leaves the family for good.
//   * Validity. If no true null was resolved before look k, every true null
//     is still in look k's family, and Holm rejects one only if the
//     smallest true-null p is <= (alpha/K) / (number of true nulls), which
//     has probability <= alpha/K (each look's n is fixed by the passage
//     order, so its p-values are as valid as a fixed-n t test's, under its
//     own assumptions of independent, roughly normal passages). Summed over
//     the K looks the family-wise chance of any wrong resolution is
//     <= alpha, under any dependence between decisions and looks. Dropping resolved decisions
//     from later families is therefore allowed, and "resolved" stays
//     resolved.
//
// Not here: running, queueing or storing (experiment/sequential.h,
// store/decisions.h).
#pragma once

#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "stats/study.h"

namespace kvlab::stats {

// Holm's step-down adjusted p-values (Holm 1979), in the input order:
// with p sorted ascending p_(1) <= ... <= p_(m),
//   adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)).
// Throws kvlab::Error for a p outside [0, 1] or NaN.
std::vector<double> holm_adjust(const std::vector<double>& p);

// The looks of a sequential sweep: n = 2, ..., cap passages, each at
// family-wise level alpha / (cap - 1).
struct LookSchedule {
  double alpha = 0.05;  // overall family-wise level over every look
  int cap = 2;          // the largest passage count the sweep may reach
  int first() const { return 2; }
  int looks() const { return cap - 1; }
  double level() const { return alpha / static_cast<double>(looks()); }
};

// Throws kvlab::Error for alpha outside (0, 1) or cap < 2.
LookSchedule look_schedule(double alpha, int cap);

// (stream, codec, threshold name).
using DecisionKey = std::tuple<std::string, std::string, std::string>;

struct ThresholdDecision {
  std::string stream;
  std::string codec;
  Threshold threshold;
  Summary ratio;                  // paired ratio of the metric to the baseline
  std::optional<double> p_value;  // one-sample t vs threshold.factor; none when n < 2
  std::optional<double> p_holm;   // Holm adjusted over the look's family (every open decision with a p)
  bool resolved = false;          // p_holm < level
  std::string verdict;            // "below" | "above" | "unresolved"

  DecisionKey key() const { return {stream, codec, threshold.name}; }
};

// One look: every decision of the summary's non-baseline cells that have a
// ratio of s.metric, for each threshold, in cell order then threshold
// order, except those in `settled` (resolved at an earlier look: left out
// of the output and of the Holm family). Holm runs over all returned
// decisions that have a p, at family-wise level `level` (in (0, 1); a
// schedule's level() in the sweep, the plain alpha for one fixed-n test).
std::vector<ThresholdDecision> threshold_decisions(const StudySummary& s, const std::vector<Threshold>& thresholds,
                                                   double level, const std::set<DecisionKey>& settled = {});

}  // namespace kvlab::stats
