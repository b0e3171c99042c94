// The "Published vs this run" section of the findings and max-usable-CR
// reports: per stream, the report codec's rel-MSE ratio to FP8 in this run
// and in a published experiment imported into the database (`kvlab import
// published`), each with its 95 % interval, whether the intervals overlap,
// and the known causes of a difference read from both experiments'
// parameters (weights, host, write-path mode, FP8 scale precision, baseline
// format, the write path's own FP8 simulation). Internal to src/report/.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "report/markdown.h"
#include "report/reports.h"
#include "stats/study.h"

namespace kvlab::report::detail {

// One row's published side: a paired ratio interval when the published
// experiment has per-passage runs, else the ratio of the published means
// (aggregate-only imports carry no per-passage values, so no paired CI).
struct PublishedRatio {
  bool found = false;
  double mean = 0.0;                 // paired mean ratio, or ratio of means
  std::optional<double> lo, hi;      // 95 % interval of the paired ratio
  bool paired = false;
  int n = 0;
  std::string how;                   // "paired, n = 8" / "ratio of means, n = 8 (no per-passage values)"
};
// Paired from the published summary, else from the linked per-passage
// experiment of the same runs (PublishedInput::linked_summary), else the
// ratio of the aggregate's means; `of_means` (optional) gets the ratio of
// means whenever the aggregate has one, so both figures can be named.
PublishedRatio published_ratio(const PublishedInput& pub, const std::string& stream, const std::string& codec,
                               std::optional<double>* of_means = nullptr);

// The published study's own threshold answer (SPEC section 5, the published
// solver): budget = m x mean FP8 rel-MSE; point view: mean_Q, CI-safe view:
// mean_Q + hw_Q; Q_min = the smallest swept Q of `family` that fits. From the
// published summary's best_q when it has per-passage runs, else recomputed
// from the aggregate (the JSON's "thresholds" are this computation).
struct PublishedAnswer {
  bool found = false;        // the published experiment has this stream and family (and an interval when needed)
  bool admissible = false;
  int q_min = 0;
  double bits = 0.0;
  double cr_vs_fp8 = 0.0;    // FP8 bits / bits
  double margin = 0.0;       // (budget - used) / budget at Q_min
  std::vector<int> grid;     // the published swept Q values, ascending
};
PublishedAnswer published_answer(const PublishedInput& pub, const std::string& stream, const std::string& family,
                                 const stats::Threshold& threshold, bool ci_safe);

// Writes the section; `pub` absent: says that no published experiment was given.
void published_vs_run_section(Document& d, const stats::StudySummary& run, const std::optional<PublishedInput>& pub,
                              const std::string& codec);

}  // namespace kvlab::report::detail
