// The metric table; see metric_table.h.
#include "common/metric_table.h"

#include "common/error.h"

namespace kvlab {

const std::vector<MetricInfo>& metric_table() {
  static const std::vector<MetricInfo> t = {
      {"rel_mse", "rel-MSE", "", MetricKind::kDistortion, true, true, true,
       "sum ||x - x'||^2 / sum ||x - mean||^2 over the stream's vectors (SPEC 4)"},
      {"cos_sim", "cosine", "", MetricKind::kSimilarity, false, false, true,
       "mean over vectors of <x, x'> / (||x|| ||x'||) (SPEC 4)"},
      {"logit_rel_mse", "logit err", "", MetricKind::kDistortion, true, true, false,
       "V4 attention: mean squared logit error / variance of the reference logits, over sampled queries, heads and "
       "visible entries"},
      {"kl_mean", "KL mean", "nats", MetricKind::kDistortion, true, true, false,
       "V4 attention: mean over sampled queries and heads of KL(p_ref || p_codec), sink included"},
      {"kl_p99", "KL p99", "nats", MetricKind::kDistortion, true, true, false,
       "V4 attention: 99th percentile over sampled queries and heads of KL(p_ref || p_codec)"},
      {"attn_out_rel", "attn-out err", "", MetricKind::kDistortion, true, true, false,
       "V4 attention: mean over sampled queries and heads of ||o_codec - o_ref||^2 / ||o_ref||^2 (before wo)"},
      {"entropy_bits_per_dim", "entropy rate", "bits/dim", MetricKind::kRate, true, false, false,
       "ideal entropy-coded rate of the bytes the codec wrote, bits per dimension: the plug-in (empirical) entropy of "
       "each class of stored symbols (FP8 bytes, integer codes, Lloyd indices, lattice block coordinates per "
       "position in the block, bf16 bytes) times its count, plus the side information (scales, norms) at its stored "
       "bit width (not entropy-coded), over n D"},
      {"range_bits_per_dim", "range-coded rate", "bits/dim", MetricKind::kRate, true, false, false,
       "actual size of the run's records range-coded (codec/entropy_stream.h: the entropy_bits_per_dim classes "
       "through adaptive models, side information raw at its stored width, stream header included) in bits, over "
       "n D; only for the families with an entropy=range coder (d4, e8, int, hadamard_int, hadamard_lloyd)"},
      {"gauss_bound_rel_mse", "Gaussian bound", "", MetricKind::kBound, true, false, false,
       "distortion-rate bound 2^(-2R) of an i.i.d. Gaussian at R = bits_per_vector / D: its MSE sigma^2 2^(-2R) "
       "over its total variance (rel-MSE's normalisation), so sigma^2 cancels"},
      {"rwf_bound_rel_mse", "water-filling bound", "", MetricKind::kBound, true, false, false,
       "reverse water-filling D(R) / sum(lambda) of a Gaussian with the eigenvalues lambda of the stream's "
       "mean-centred covariance (the centring of rel_mse's denominator) at R = bits_per_vector / D; only when the "
       "stream has N >= D vectors"},
  };
  return t;
}

const MetricInfo* find_metric(const std::string& name) {
  for (const auto& m : metric_table())
    if (name == m.name) return &m;
  return nullptr;
}

const MetricInfo& metric_or_throw(const std::string& name, bool thresholds_only) {
  const MetricInfo* m = find_metric(name);
  if (m && (!thresholds_only || m->thresholds_apply)) return *m;
  std::string known;
  for (const auto& x : metric_table())
    if (!thresholds_only || x.thresholds_apply) known += (known.empty() ? "" : ", ") + std::string(x.name);
  throw Error(fmt::format("unknown {}metric '{}' (expected one of {})", thresholds_only ? "thresholdable " : "", name,
                          known));
}

}  // namespace kvlab
