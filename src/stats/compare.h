// Cross-experiment comparison for `kvlab diff` (e.g. CPU vs GPU, bf16 vs
// fp32 streams, random vs trained weights): the same (stream, codec) cells
// side by side, both means with CIs and their ratio. Paired by passage
// (content hash) when both experiments used the same passages, Welch
// otherwise; cells present on one side only are listed apart.
//
// Not here: SQL, formatting.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "stats/descriptive.h"
#include "stats/experiment_data.h"

namespace kvlab::stats {

struct DiffCell {
  std::string stream;
  std::string codec;
  std::optional<int> q;
  Summary a;                        // rel-MSE on side A
  Summary b;                        // rel-MSE on side B
  double ratio = 0.0;               // mean_a / mean_b
  std::optional<Summary> paired_ratio;  // per-passage a_i / b_i (paired only)
  Comparison difference;            // a - b, paired or Welch
  std::optional<Summary> ratio_vs_fp8_a;  // each side's own paired ratio vs FP8
  std::optional<Summary> ratio_vs_fp8_b;
  double bits_a = 0.0;
  double bits_b = 0.0;
};

struct ExperimentDiff {
  std::string name_a;
  std::string name_b;
  bool paired = false;     // both sides used the same passages (by content hash)
  int shared_passages = 0;
  std::vector<DiffCell> cells;
  std::vector<std::string> only_a;  // "stream codec" present on A only
  std::vector<std::string> only_b;
};

ExperimentDiff diff_experiments(const ExperimentData& a, const ExperimentData& b);

}  // namespace kvlab::stats
