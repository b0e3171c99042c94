// Trivial transforms of src/stats/ results that the reports print but the
// stats structs do not carry: a verdict read off an interval, a ratio in dB,
// the unweighted mean over streams, and the deployment forecast (KV bytes per
// user and users per node from the experiment's forecast parameters).
//
// Each is a closed-form function of numbers already computed by
// stats::summarize(); nothing here aggregates passages or estimates spread.
// Not here: statistics (src/stats/), text layout (markdown.h, findings.h).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "stats/descriptive.h"

namespace kvlab::report {

// Verdict of a codec against FP8 from the 95 % interval of the paired ratio
// codec / FP8: win when the upper end is below 1, loss when the lower end is
// above 1, tied when the interval contains 1; no verdict without an interval.
enum class Verdict { kWin, kTied, kLoss, kNoInterval };
Verdict verdict_of(const stats::Summary& ratio);
// "win", "tied", "loss", "n/a (n < 2)".
std::string to_string(Verdict v);

// Gain in dB of `better` over `worse` error: 10 log10(worse / better)
// (positive when `better` has the smaller error). Both must be > 0
// (throws kvlab::Error naming the values otherwise).
double db_gain(double better, double worse);

// Unweighted mean over streams of per-stream means, with the half-width
// combined the way the published layer-weighted interval is (root sum of
// squares of w_s hw_s, here with w_s = 1/k). No interval when any stream has
// none.
struct EqualWeightMean {
  double mean = 0.0;
  std::optional<double> rss_hw;
  int k = 0;
};
EqualWeightMean equal_weight_mean(const std::vector<stats::Summary>& per_stream);

// Deployment forecast parameters, read from params_json "forecast":
//   {"kv_memory_gib_per_node": <GiB of accelerator memory given to KV>,
//    "context_tokens": <tokens of context per user>,
//    "vectors_per_token": {<stream>: <stored vectors per token per layer>}}  (optional)
// Layer counts come from the experiment's layer mix; vectors per token, when
// not given, from the recorded vectors per passage / seqlen.
struct ForecastParams {
  double kv_memory_gib_per_node = 0.0;
  double context_tokens = 0.0;
  std::map<std::string, double> vectors_per_token;  // overrides, may be empty
};
// nullopt when params_json has no "forecast" object. Throws kvlab::Error for
// a malformed one (naming the key and the expected type / range).
std::optional<ForecastParams> parse_forecast(const std::string& params_json);

// Reads an integer "seqlen" from params_json; nullopt when absent.
std::optional<long long> params_seqlen(const std::string& params_json);

// One stream's contribution to the KV cache of one user.
struct ForecastStream {
  std::string stream;
  double layers = 0.0;
  double vectors_per_token = 0.0;
  double bits_per_vector = 0.0;
};

struct ForecastResult {
  double bytes_per_token = 0.0;  // sum_s layers_s * vectors_per_token_s * bits_s / 8
  double bytes_per_user = 0.0;   // bytes_per_token * context_tokens
  double users_per_node = 0.0;   // floor(kv_memory_bytes / bytes_per_user)
};
// Throws kvlab::Error for non-positive parameters or an empty stream list.
ForecastResult forecast(const std::vector<ForecastStream>& streams, const ForecastParams& p);

inline constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

}  // namespace kvlab::report
