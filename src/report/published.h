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
PublishedRatio published_ratio(const PublishedInput& pub, const std::string& stream, const std::string& codec);

// Writes the section; `pub` absent: says that no published experiment was given.
void published_vs_run_section(Document& d, const stats::StudySummary& run, const std::optional<PublishedInput>& pub,
                              const std::string& codec);

}  // namespace kvlab::report::detail
