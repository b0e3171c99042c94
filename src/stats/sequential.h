// The threshold decisions of a study and their multiplicity correction,
// for the sequential sweep (`kvlab run --until-resolved`,
// experiment/sequential.h).
//
// A decision is one (stream, codec, threshold): is the codec's paired
// ratio of the summary's metric to the baseline below or above the
// threshold factor m? It is tested with the one-sample t test of the
// per-passage ratios against m (two-sided p; n - 1 df; zero spread gives
// p = 0 when the mean differs from m, else 1; n < 2 gives no p). Within
// one (stream, threshold) the p-values of the codecs compared are Holm
// adjusted; a decision is resolved when its adjusted p < alpha, i.e. when
// the (Holm-widened) interval of the ratio excludes m. Its verdict is then
// "below" (mean < m) or "above", else "unresolved".
//
// Not here: running, queueing or storing (experiment/sequential.h,
// store/decisions.h).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "stats/study.h"

namespace kvlab::stats {

// Holm's step-down adjusted p-values (Holm 1979), in the input order:
// with p sorted ascending p_(1) <= ... <= p_(m),
//   adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)).
// Throws kvlab::Error for a p outside [0, 1] or NaN.
std::vector<double> holm_adjust(const std::vector<double>& p);

struct ThresholdDecision {
  std::string stream;
  std::string codec;
  Threshold threshold;
  Summary ratio;                  // paired ratio of the metric to the baseline
  std::optional<double> p_value;  // one-sample t vs threshold.factor; none when n < 2
  std::optional<double> p_holm;   // Holm adjusted within (stream, threshold)
  bool resolved = false;          // p_holm < alpha
  std::string verdict;            // "below" | "above" | "unresolved"
};

// Every decision of the summary's non-baseline cells that have a ratio of
// s.metric, for each threshold, in cell order then threshold order.
std::vector<ThresholdDecision> threshold_decisions(const StudySummary& s, const std::vector<Threshold>& thresholds,
                                                   double alpha);

}  // namespace kvlab::stats
