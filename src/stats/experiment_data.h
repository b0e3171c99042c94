// The recorded rows of one experiment, as plain structs: the input of
// kvlab::stats::summarize(). store::load_experiment() (store/query.h) fills
// them from the database; tests build them by hand.
//
// Header-only and dependency-free on purpose: store/ fills these structs
// without linking kvlab_stats.
//
// Not here: any statistics (study.h), any SQL (store/query.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kvlab::stats {

// Canonical codec spec of the FP8 baseline (runs.codec, q NULL).
inline constexpr const char* kFp8Codec = "fp8_per64";


struct PassageInfo {
  std::int64_t id = 0;        // passages.id
  int idx = 0;                // position in the spec, 0-based
  std::string name;           // e.g. 'topology', 'p3'
  std::string content_hash;   // sha256 (pairs passages across experiments)
  std::string source;         // 'text:...', 'synthetic:seed=..', 'published:<file>#<id>'
  std::optional<std::int64_t> words;  // whitespace-separated words of the stored text (none without text)
};

// One finished run (runs.status = 'done' joined with results).
struct RunResult {
  std::int64_t run_id = 0;
  std::int64_t passage_id = 0;
  std::string stream;
  std::string codec;              // canonical spec: 'fp8_per64', 'e8:q=38', 'd4:q=10'
  std::optional<int> q;           // NULL for fp8_per64
  int replicate = 0;
  double bits_per_vector = 0.0;   // as recorded (published accounting for imports)
  double rel_mse = 0.0;
  double cos_sim = 0.0;
  std::optional<std::int64_t> n_vectors;
  std::optional<int> dim;         // vector dimension D; unknown for some imports
  // Metrics stored in run_metrics (common/metric_table.h), by name.
  std::map<std::string, double> metrics;
};

// One audit row (per passage and stream, SPEC section 4).
struct AuditResult {
  std::int64_t passage_id = 0;
  std::string stream;
  int replicate = 0;
  double excess_kurtosis_abs = 0.0;
  double isotropy_variance_ratio = 0.0;
  double hadamard_post_variance_ratio = 0.0;
  double rms_wasserstein2_over_sigma_per_dim = 0.0;
  std::int64_t n_vectors = 0;
  int dim = 0;
};

struct RunCounts {
  std::int64_t queued = 0;
  std::int64_t running = 0;
  std::int64_t done = 0;
  std::int64_t failed = 0;
  std::int64_t total() const { return queued + running + done + failed; }
};

struct ExperimentInfo {
  std::int64_t id = 0;
  std::string name;
  std::string origin;        // 'sweep' | 'published' | 'csv'
  std::string spec_hash;
  std::string created_at;
  std::string params_json;   // verbatim experiments.params_json
  // Layer mix from params_json "layer_mix": (stream, number of layers), in
  // canonical stream order. Empty when the experiment does not define one.
  std::vector<std::pair<std::string, double>> layer_mix;
  // params_json "report": the codec the findings are about and the one it
  // is compared with (e.g. "e8:q=38", "d4:q=38"); empty when absent.
  std::string report_codec;
  std::string report_compare;
  std::string stream_dtype;  // params_json "stream_dtype" ('' when absent)
  std::string device;        // params_json "device" ('' when absent)
  std::string baseline;      // params_json "baseline" ('' when absent: fp8_per64 if recorded)
  std::string write_path;    // params_json "write_path" ('' when absent: published)
  RunCounts counts;          // runs of this experiment by status
};

struct ExperimentData {
  ExperimentInfo info;
  std::vector<PassageInfo> passages;   // ordered by idx
  std::vector<RunResult> results;      // finished runs only
  std::vector<AuditResult> audits;
};

}  // namespace kvlab::stats
