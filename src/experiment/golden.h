// Regression golden: the per-run results (and audits) of a small seeded
// sweep (experiments/smoke.ini on the embedded default: random V4-Flash
// weights, synthetic host), frozen in tests/golden/smoke.json. A test reruns
// the sweep and names every run and metric that moved beyond the stated
// tolerance; `kvlab golden update` rewrites the file on purpose, so the diff
// shows in review.
//
// Tolerances (stored in the file): bits_per_vector, code_bytes, n_vectors
// and dim exact; rel_mse and the audit values relative; cos_sim absolute.
// They allow for summation-order differences between BLAS builds, not for
// any change of a codec or of the write path.
// Not here: the statistics (stats/), the report.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kvlab::experiment {

struct GoldenRun {
  std::string passage, stream, codec;
  double bits_per_vector = 0;
  long long code_bytes = 0;
  double rel_mse = 0, cos_sim = 0;
  long long n_vectors = 0, dim = 0;
};

struct GoldenAudit {
  std::string passage, stream;
  double excess_kurtosis_abs = 0, isotropy_variance_ratio = 0, hadamard_post_variance_ratio = 0,
         rms_wasserstein2_over_sigma_per_dim = 0;
  long long n_vectors = 0, dim = 0;
};

struct GoldenTolerance {
  double rel_mse_rel = 1e-4;
  double cos_sim_abs = 1e-6;
  double audit_rel = 1e-3;
};

struct Golden {
  std::string spec;       // spec path relative to the source tree when inside it
  std::string executor;
  GoldenTolerance tolerance;
  std::vector<GoldenRun> runs;      // sorted by passage, stream, codec
  std::vector<GoldenAudit> audits;  // sorted by passage, stream
};

// Queues `spec_path` into a fresh temporary database, runs it with one
// worker of `executor`, and collects every result. Throws kvlab::Error when a
// run fails.
Golden compute_golden(const std::string& spec_path, const std::string& executor);

nlohmann::json golden_to_json(const Golden& g);
Golden golden_from_json(const nlohmann::json& j);
void write_golden(const Golden& g, const std::string& path);
Golden read_golden(const std::string& path);

// Every difference beyond the expected file's tolerance, one message each
// naming the run (passage / stream / codec) and the metric with both values;
// also runs or audits missing on either side. Empty when they agree.
std::vector<std::string> compare_golden(const Golden& expected, const Golden& actual);

}  // namespace kvlab::experiment
