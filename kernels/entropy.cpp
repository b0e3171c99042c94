// Plug-in entropy and the Gaussian distortion-rate bounds; see entropy.h.
#include "kernels/entropy.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "common/error.h"

namespace kvlab::kernels {

double entropy_bits_from_counts(const int64_t* counts, int64_t k) {
  KVLAB_CHECK(k >= 0, "entropy: histogram of k = {} bins (expected k >= 0)", k);
  double total = 0, sum_c_log_c = 0;
  for (int64_t i = 0; i < k; ++i) {
    KVLAB_CHECK(counts[i] >= 0, "entropy: bin {} has count {} (expected a count >= 0)", i, counts[i]);
    if (counts[i] == 0) continue;
    const double c = double(counts[i]);
    total += c;
    sum_c_log_c += c * std::log2(c);
  }
  if (total == 0) return 0.0;
  // H = log2 N - (1/N) sum c log2 c; clamp the rounding of a one-symbol
  // histogram (exactly 0 in exact arithmetic) at 0.
  return std::max(0.0, std::log2(total) - sum_c_log_c / total);
}

namespace {

constexpr int64_t kMaxDenseRange = int64_t(1) << 20;

template <class T>
double plugin_entropy(const T* s, int64_t n, int64_t stride) {
  KVLAB_CHECK(n >= 0, "entropy: n = {} symbols (expected n >= 0)", n);
  KVLAB_CHECK(stride >= 1, "entropy: stride {} (expected >= 1)", stride);
  if (n == 0) return 0.0;
  int64_t lo = s[0], hi = s[0];
  for (int64_t i = 1; i < n; ++i) {
    const int64_t v = s[i * stride];
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (hi - lo < kMaxDenseRange) {
    std::vector<int64_t> counts(std::size_t(hi - lo + 1), 0);
    for (int64_t i = 0; i < n; ++i) ++counts[std::size_t(int64_t(s[i * stride]) - lo)];
    return entropy_bits_from_counts(counts.data(), int64_t(counts.size()));
  }
  std::vector<T> sorted(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) sorted[std::size_t(i)] = s[i * stride];
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> counts;
  for (std::size_t i = 0; i < sorted.size();) {
    std::size_t j = i;
    while (j < sorted.size() && sorted[j] == sorted[i]) ++j;
    counts.push_back(int64_t(j - i));
    i = j;
  }
  return entropy_bits_from_counts(counts.data(), int64_t(counts.size()));
}

void check_rate(const char* what, double r) {
  KVLAB_CHECK(std::isfinite(r) && r >= 0, "{}: rate R = {} bits/dim (expected a finite R >= 0)", what, r);
}

}  // namespace

double plugin_entropy_bits(const int32_t* s, int64_t n, int64_t stride) { return plugin_entropy(s, n, stride); }
double plugin_entropy_bits(const int16_t* s, int64_t n, int64_t stride) { return plugin_entropy(s, n, stride); }
double plugin_entropy_bits(const uint16_t* s, int64_t n, int64_t stride) { return plugin_entropy(s, n, stride); }
double plugin_entropy_bits(const uint8_t* s, int64_t n, int64_t stride) { return plugin_entropy(s, n, stride); }

double gauss_bound_rel_mse(double bits_per_dim) {
  check_rate("Gaussian bound", bits_per_dim);
  return std::exp2(-2.0 * bits_per_dim);
}

double rwf_bound_rel_mse(const double* eig, int64_t d, double bits_per_dim) {
  check_rate("water-filling bound", bits_per_dim);
  KVLAB_CHECK(d >= 1, "water-filling bound: d = {} eigenvalues (expected d >= 1)", d);
  double top = 0;
  for (int64_t i = 0; i < d; ++i) {
    KVLAB_CHECK(std::isfinite(eig[i]), "water-filling bound: eigenvalue {} is {} (expected a finite value)", i, eig[i]);
    top = std::max(top, eig[i]);
  }
  KVLAB_CHECK(top > 0, "water-filling bound: no positive eigenvalue (largest {}; expected a non-zero covariance)", top);
  std::vector<double> lam;
  for (int64_t i = 0; i < d; ++i)
    if (eig[i] > 1e-12 * top) lam.push_back(eig[i]);
  std::sort(lam.begin(), lam.end(), std::greater<>());
  double total = 0;
  for (double l : lam) total += l;
  if (bits_per_dim == 0) return 1.0;
  // The first k (1-based count of active components) whose water level
  // theta_k reaches the next eigenvalue is the solution (for smaller k,
  // theta_k < lambda_k: the partial rate sum misses an active term).
  const double total_rate = double(d) * bits_per_dim;
  double sum_log = 0;
  const std::size_t m = lam.size();
  for (std::size_t k = 1; k <= m; ++k) {
    sum_log += std::log2(lam[k - 1]);
    const double theta = std::exp2((sum_log - 2.0 * total_rate) / double(k));
    const double next = k < m ? lam[k] : 0.0;
    if (theta >= next) {
      double dist = double(k) * std::min(theta, lam[k - 1]);
      for (std::size_t i = k; i < m; ++i) dist += lam[i];
      return dist / total;
    }
  }
  KVLAB_ASSERT(false, "water-filling: the last k always qualifies");
  return 1.0;
}

}  // namespace kvlab::kernels
