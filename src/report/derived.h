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

// V4's stored KV per user at a context of S tokens (SPEC-V4-ATTENTION.md
// section 5): every layer keeps a window of the last min(S, 128) tokens of
// main KV (the `sliding_window_kv` stream's format); a CSA layer also keeps
// S / 4 compressed entries (`csa_pool_kv_ratio4`) and one FP8 indexer key of
// 132 B per entry, an HCA layer S / 128 entries (`hca_pool_kv_ratio128`).
// Layer counts are those of the experiment's layer mix; a stream that is not
// one of the three V4 streams is assumed to keep every token (one vector per
// token per layer).
inline constexpr double kV4Window = 128.0;
inline constexpr double kV4IndexerKeyBytes = 132.0;
struct StoredStream {
  std::string stream;
  double vectors_per_token = 0.0;  // stored vectors per context token, all layers together
  std::string how;                 // "3 SWA + 20 CSA + 20 HCA layers x min(S, 128) / S"
};
struct V4Memory {
  double context_tokens = 0.0;
  std::vector<StoredStream> streams;       // in layer-mix order
  double indexer_keys_per_token = 0.0;     // CSA layers / 4 (0 without a CSA stream)
  // Share of stream s among the stored vectors per token: the weights of the
  // memory-weighted bits (stored bytes per token = weighted bits x vectors / 8).
  double share(const std::string& stream) const;
  double total_vectors_per_token() const;
};
// Throws kvlab::Error for an empty mix, a negative layer count or S <= 0.
V4Memory v4_memory(const std::vector<std::pair<std::string, double>>& layer_mix, double context_tokens);
// sum_s share_s bits_s over the streams of `m`; nullopt when `bits` has no
// value for a stream with a non-zero share.
std::optional<double> memory_weighted_bits(const V4Memory& m, const std::map<std::string, double>& bits);

}  // namespace kvlab::report
