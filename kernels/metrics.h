// Reconstruction metrics and the non-Gaussian audit of SPEC section 4.
//
// Accumulation precision: every sum is taken in double over float32 data.
// Streams have up to ~10^6 elements per run and rel-MSE differences of a
// few tenths of a percent decide admissibility, so a float32 running sum
// (relative error growing like n * 2^-24) is not good enough; double makes
// the result independent of summation order to far below the reported
// digits. The published harness used float32 torch reductions; in the
// reference files float32 and float64 evaluations differ by <= 3.1e-7
// relative (metrics) and ~2e-6 (audit), which the parity tests allow.
//
// Inputs must be finite; non-finite values give kvlab::Error (a NaN metric
// would silently disappear from every later statistic).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace kvlab::kernels {

// rel-MSE = sum ||x - xhat||^2 / max(sum ||x - mu||^2, 1e-12), mu the mean of
// the n rows of x [n, d]. n >= 2 (else kvlab::Error: the denominator is a
// variance around the mean).
double rel_mse(const float* x, const float* xhat, int64_t n, int64_t d);
// Mean over rows of <x, xhat> / max(||x|| ||xhat||, 1e-12) (a zero row adds 0).
double mean_cosine(const float* x, const float* xhat, int64_t n, int64_t d);

struct AuditValues {
  double excess_kurtosis_abs = 0;
  double isotropy_variance_ratio = 0;
  double hadamard_post_variance_ratio = 0;
  // Despite its (published) name this is a tail-quantile ratio:
  // sqrt(mean_j (p99_j / 2.326 - 1)^2) of the standardised rotated columns.
  double rms_wasserstein2_over_sigma_per_dim = 0;
  int64_t n_vectors = 0;
  int64_t dim = 0;
};

// SPEC section 4 on X [n, d]; d a power of two, n >= 2.
AuditValues non_gaussian_audit(const float* x, int64_t n, int64_t d);

// Published gates: a stream "fires" a gate when its value exceeds it.
inline constexpr double kGateExcessKurtosisAbs = 0.5;
inline constexpr double kGateIsotropyVarianceRatio = 1.5;
inline constexpr double kGateHadamardPostVarianceRatio = 1.5;
inline constexpr double kGateRmsWasserstein2OverSigmaPerDim = 0.05;

struct AuditGate {
  std::string_view name;  // the JSON / SPEC key
  double threshold;
  double AuditValues::*value;
};
inline constexpr std::array<AuditGate, 4> kAuditGates{{
    {"excess_kurtosis_abs", kGateExcessKurtosisAbs, &AuditValues::excess_kurtosis_abs},
    {"isotropy_variance_ratio", kGateIsotropyVarianceRatio, &AuditValues::isotropy_variance_ratio},
    {"hadamard_post_variance_ratio", kGateHadamardPostVarianceRatio, &AuditValues::hadamard_post_variance_ratio},
    {"rms_wasserstein2_over_sigma_per_dim", kGateRmsWasserstein2OverSigmaPerDim,
     &AuditValues::rms_wasserstein2_over_sigma_per_dim},
}};

}  // namespace kvlab::kernels
