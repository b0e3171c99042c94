// rel-MSE, cosine and the non-Gaussian audit; see metrics.h.
#include "kernels/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "kernels/dispatch.h"
#include "kernels/hadamard.h"

namespace kvlab::kernels {

namespace {

// Largest magnitude bit pattern of x[0, m): >= 0x7f800000 means a NaN or
// an infinity somewhere (an integer max reduction the compiler vectorises).
KVLAB_TARGET_CLONES uint32_t max_magnitude_bits(const float* __restrict x, int64_t m) {
  uint32_t mb = 0;
  for (int64_t i = 0; i < m; ++i) {
    uint32_t u;
    std::memcpy(&u, x + i, 4);
    u &= 0x7fffffffu;
    mb = u > mb ? u : mb;
  }
  return mb;
}

void check_finite(const char* what, const char* which, const float* x, int64_t n, int64_t d) {
  if (max_magnitude_bits(x, n * d) < 0x7f800000u) return;
  for (int64_t i = 0; i < n * d; ++i)
    KVLAB_CHECK(std::isfinite(x[i]), "{}: {} row {} column {} is {} (expected finite values)", what, which, i / d,
                i % d, x[i]);
}

// Sums of e_j^2 (e = x - xhat) and of x_j per column over one row, with the
// squared errors in 8 interleaved partial sums (column j into j % 8).
KVLAB_TARGET_CLONES void err_and_colsum(const float* __restrict x, const float* __restrict xhat, int64_t d,
                                        double* __restrict num8, double* __restrict mu) {
  int64_t j = 0;
  for (; j + 8 <= d; j += 8)
    for (int l = 0; l < 8; ++l) {
      const double e = double(x[j + l]) - double(xhat[j + l]);
      num8[l] += e * e;
      mu[j + l] += x[j + l];
    }
  for (int l = 0; j < d; ++j, ++l) {
    const double e = double(x[j]) - double(xhat[j]);
    num8[l] += e * e;
    mu[j] += x[j];
  }
}

// Sum of (x_j - mu_j)^2 over one row, 8 interleaved partial sums.
KVLAB_TARGET_CLONES void centred_sq(const float* __restrict x, const double* __restrict mu, int64_t d,
                                    double* __restrict den8) {
  int64_t j = 0;
  for (; j + 8 <= d; j += 8)
    for (int l = 0; l < 8; ++l) {
      const double c = double(x[j + l]) - mu[j + l];
      den8[l] += c * c;
    }
  for (int l = 0; j < d; ++j, ++l) {
    const double c = double(x[j]) - mu[j];
    den8[l] += c * c;
  }
}

// Dot product and squared norms of two rows, each in 8 interleaved partial sums.
KVLAB_TARGET_CLONES void dot_norms(const float* __restrict a, const float* __restrict b, int64_t d,
                                   double* __restrict acc) {  // acc[24]: dot, |a|^2, |b|^2
  int64_t j = 0;
  for (; j + 8 <= d; j += 8)
    for (int l = 0; l < 8; ++l) {
      const double u = a[j + l], v = b[j + l];
      acc[l] += u * v;
      acc[8 + l] += u * u;
      acc[16 + l] += v * v;
    }
  for (int l = 0; j < d; ++j, ++l) {
    const double u = a[j], v = b[j];
    acc[l] += u * v;
    acc[8 + l] += u * u;
    acc[16 + l] += v * v;
  }
}

double sum8(const double* p) { return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7])); }

void check_shape(const char* what, int64_t n, int64_t d, int64_t min_n) {
  KVLAB_CHECK(d >= 1, "{}: dimension D = {} (expected >= 1)", what, d);
  KVLAB_CHECK(n >= min_n, "{}: {} vectors (expected at least {})", what, n, min_n);
}

// Per-column mean and biased variance (two-pass, double), variance clamped.
void column_moments(const float* x, int64_t n, int64_t d, std::vector<double>& mu, std::vector<double>& var) {
  mu.assign(size_t(d), 0.0);
  var.assign(size_t(d), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) mu[j] += x[i * d + j];
  for (int64_t j = 0; j < d; ++j) mu[j] /= double(n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) {
      const double c = x[i * d + j] - mu[j];
      var[j] += c * c;
    }
  for (int64_t j = 0; j < d; ++j) var[j] = std::max(var[j] / double(n), 1e-12);
}

double max_over_min(const std::vector<double>& v) {
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return *hi / *lo;
}

}  // namespace

double rel_mse(const float* x, const float* xhat, int64_t n, int64_t d) {
  check_shape("rel_mse", n, d, 2);
  check_finite("rel_mse", "x", x, n, d);
  check_finite("rel_mse", "xhat", xhat, n, d);
  // Double sums in a fixed order: per row, 8 interleaved partials (rows in
  // order), so the result is deterministic and independent of the CPU.
  std::vector<double> mu(size_t(d), 0.0);
  double num8[8] = {0, 0, 0, 0, 0, 0, 0, 0}, den8[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = 0; i < n; ++i) err_and_colsum(x + i * d, xhat + i * d, d, num8, mu.data());
  for (auto& m : mu) m /= double(n);
  for (int64_t i = 0; i < n; ++i) centred_sq(x + i * d, mu.data(), d, den8);
  return sum8(num8) / std::max(sum8(den8), 1e-12);
}

double mean_cosine(const float* x, const float* xhat, int64_t n, int64_t d) {
  check_shape("mean_cosine", n, d, 1);
  check_finite("mean_cosine", "x", x, n, d);
  check_finite("mean_cosine", "xhat", xhat, n, d);
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    double acc[24] = {};
    dot_norms(x + i * d, xhat + i * d, d, acc);
    total += sum8(acc) / std::max(std::sqrt(sum8(acc + 8)) * std::sqrt(sum8(acc + 16)), 1e-12);
  }
  return total / double(n);
}

AuditValues non_gaussian_audit(const float* x, int64_t n, int64_t d) {
  check_shape("non_gaussian_audit", n, d, 2);
  check_hadamard_dim(d, "non_gaussian_audit: dimension D");
  check_finite("non_gaussian_audit", "x", x, n, d);
  AuditValues out;
  out.n_vectors = n;
  out.dim = d;

  std::vector<double> mu, var;
  column_moments(x, n, d, mu, var);
  std::vector<double> m4(size_t(d), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) {
      const double c = x[i * d + j] - mu[j];
      m4[j] += (c * c) * (c * c);
    }
  double kurt_sum = 0.0;
  for (int64_t j = 0; j < d; ++j) kurt_sum += std::fabs(m4[j] / double(n) / (var[j] * var[j]) - 3.0);
  out.excess_kurtosis_abs = kurt_sum / double(d);
  out.isotropy_variance_ratio = max_over_min(var);

  // X H, rows transformed in float32 (the published code does the same
  // product in float32); statistics in double.
  std::vector<float> rot(x, x + n * d);
  fwht_normalized_rows(rot.data(), n, d, d);
  std::vector<double> mur, varr;
  column_moments(rot.data(), n, d, mur, varr);
  out.hadamard_post_variance_ratio = max_over_min(varr);

  // Standard deviation with its own clamp (1e-6), from the unclamped variance.
  std::vector<double> sd(size_t(d), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) {
      const double c = rot[i * d + j] - mur[j];
      sd[j] += c * c;
    }
  for (int64_t j = 0; j < d; ++j) sd[j] = std::max(std::sqrt(sd[j] / double(n)), 1e-6);
  // torch.quantile's position, computed in float32 as the published code does.
  const float pos = 0.99f * float(n - 1);
  const int64_t lo = int64_t(std::floor(pos));
  const double frac = double(pos - std::floor(pos));
  std::vector<double> col(static_cast<size_t>(n), 0.0);
  double acc = 0.0;
  for (int64_t j = 0; j < d; ++j) {
    for (int64_t i = 0; i < n; ++i) col[i] = std::fabs(rot[i * d + j] / sd[j]);  // not centred (published)
    // Only the order statistics lo and lo + 1 are needed: select instead of
    // sorting the column (same values as a full sort).
    std::nth_element(col.begin(), col.begin() + lo, col.end());
    const double at_lo = col[static_cast<size_t>(lo)];
    const double hi = lo + 1 < n ? *std::min_element(col.begin() + lo + 1, col.end()) : at_lo;
    const double p99 = at_lo + frac * (hi - at_lo);
    const double e = p99 / 2.326 - 1.0;
    acc += e * e;
  }
  out.rms_wasserstein2_over_sigma_per_dim = std::sqrt(acc / double(d));
  return out;
}

}  // namespace kvlab::kernels
