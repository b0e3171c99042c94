// rel-MSE, mean cosine and the non-Gaussian audit (SPEC section 4) on
// hand-checkable inputs and against a naive dense-matrix oracle. The
// published reference values are checked in codec_reference_test.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "common/error.h"
#include "kernels/metrics.h"

namespace kvlab::kernels {
namespace {

TEST(Metrics, RelMseByHand) {
  // x rows (1, 0), (-1, 0), (3, 4): mu = (1, 4/3);
  // sum ||x - mu||^2 = 4 + 0 + 4 + (16/9 + 16/9 + 64/9) = 8 + 96/9.
  const float x[6] = {1, 0, -1, 0, 3, 4};
  const float xh[6] = {1, 1, -1, 0, 3, 2};  // squared error 1 + 4 = 5
  EXPECT_NEAR(rel_mse(x, xh, 3, 2), 5.0 / (8.0 + 96.0 / 9.0), 1e-15);
  EXPECT_EQ(rel_mse(x, x, 3, 2), 0.0);
  // Constant input: denominator clamps at 1e-12.
  const float c[4] = {2, 2, 2, 2};
  const float ch[4] = {2, 2, 2, 2.5f};
  EXPECT_NEAR(rel_mse(c, ch, 2, 2), 0.25 / 1e-12, 1.0);
  EXPECT_THROW(rel_mse(x, xh, 1, 2), kvlab::Error);  // needs n >= 2
}

TEST(Metrics, CosineByHand) {
  const float x[6] = {1, 0, 0, 0, 3, 4};
  const float xh[6] = {0, 2, 5, 5, 3, 4};
  // rows: orthogonal -> 0, zero input -> 0, identical -> 1.
  EXPECT_NEAR(mean_cosine(x, xh, 3, 2), 1.0 / 3.0, 1e-15);
  const float y[2] = {1, 1}, yh[2] = {-2, -2};
  EXPECT_NEAR(mean_cosine(y, yh, 1, 2), -1.0, 1e-15);
  const float bad[2] = {1, std::numeric_limits<float>::quiet_NaN()};
  EXPECT_THROW(mean_cosine(bad, y, 1, 2), kvlab::Error);
  EXPECT_THROW(rel_mse(y, bad, 1, 2), kvlab::Error);
}

// Naive audit: dense Sylvester matrix, textbook formulas, long double.
AuditValues naive_audit(const std::vector<float>& x, int64_t n, int64_t d) {
  using LD = long double;
  auto moments = [&](const std::vector<LD>& m, std::vector<LD>& mu, std::vector<LD>& var, std::vector<LD>& m4) {
    mu.assign(d, 0);
    var.assign(d, 0);
    m4.assign(d, 0);
    for (int64_t j = 0; j < d; ++j) {
      for (int64_t i = 0; i < n; ++i) mu[j] += m[i * d + j];
      mu[j] /= n;
      for (int64_t i = 0; i < n; ++i) {
        const LD c = m[i * d + j] - mu[j];
        var[j] += c * c;
        m4[j] += c * c * c * c;
      }
      var[j] /= n;
      m4[j] /= n;
    }
  };
  std::vector<LD> xs(x.begin(), x.end()), mu, var, m4;
  moments(xs, mu, var, m4);
  AuditValues a;
  LD k = 0;
  for (int64_t j = 0; j < d; ++j) {
    const LD v = std::max<LD>(var[j], 1e-12L);
    k += std::fabs(m4[j] / (v * v) - 3);
  }
  a.excess_kurtosis_abs = double(k / d);
  auto ratio = [&](const std::vector<LD>& v) {
    LD lo = INFINITY, hi = 0;
    for (LD e : v) lo = std::min(lo, std::max<LD>(e, 1e-12L)), hi = std::max(hi, std::max<LD>(e, 1e-12L));
    return double(hi / lo);
  };
  a.isotropy_variance_ratio = ratio(var);
  std::vector<LD> rot(n * d, 0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j)
      for (int64_t l = 0; l < d; ++l)
        rot[i * d + j] += ((__builtin_popcountll(uint64_t(j & l)) & 1) ? -1 : 1) * LD(x[i * d + l]);
  for (auto& r : rot) r /= std::sqrt(LD(d));
  std::vector<LD> mur, varr, m4r;
  moments(rot, mur, varr, m4r);
  a.hadamard_post_variance_ratio = ratio(varr);
  LD acc = 0;
  const LD pos = LD(0.99f * float(n - 1));
  for (int64_t j = 0; j < d; ++j) {
    const LD sd = std::max<LD>(std::sqrt(varr[j]), 1e-6L);
    std::vector<LD> col;
    for (int64_t i = 0; i < n; ++i) col.push_back(std::fabs(rot[i * d + j] / sd));
    std::sort(col.begin(), col.end());
    const int64_t lo = int64_t(std::floor(pos));
    const LD p = col[lo] + (pos - lo) * (col[std::min(lo + 1, n - 1)] - col[lo]);
    acc += (p / 2.326L - 1) * (p / 2.326L - 1);
  }
  a.rms_wasserstein2_over_sigma_per_dim = double(std::sqrt(acc / d));
  return a;
}

TEST(Audit, MatchesNaiveOracle) {
  const int64_t n = 300, d = 64;
  std::mt19937 rng(8);
  std::student_t_distribution<float> t(4.f);
  std::vector<float> x(static_cast<size_t>(n * d));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) x[i * d + j] = t(rng) * (1.f + 0.1f * float(j)) + 0.2f * float(j % 5);
  for (int64_t i = 0; i < n; ++i) x[i * d + 9] = 5.0f;  // a constant column -> var clamp
  const auto got = non_gaussian_audit(x.data(), n, d);
  const auto want = naive_audit(x, n, d);
  EXPECT_EQ(got.n_vectors, n);
  EXPECT_EQ(got.dim, d);
  EXPECT_NEAR(got.excess_kurtosis_abs / want.excess_kurtosis_abs, 1.0, 1e-9);
  EXPECT_NEAR(got.isotropy_variance_ratio / want.isotropy_variance_ratio, 1.0, 1e-9);
  EXPECT_GT(got.isotropy_variance_ratio, 1e12);  // constant column
  EXPECT_NEAR(got.hadamard_post_variance_ratio / want.hadamard_post_variance_ratio, 1.0, 1e-5);
  EXPECT_NEAR(got.rms_wasserstein2_over_sigma_per_dim / want.rms_wasserstein2_over_sigma_per_dim, 1.0, 1e-5);
}

TEST(Audit, GaussianStreamVersusHeavyTail) {
  const int64_t n = 4096, d = 64;
  std::mt19937 rng(9);
  std::normal_distribution<float> g;
  std::vector<float> x(static_cast<size_t>(n * d));
  for (auto& v : x) v = g(rng);
  const auto a = non_gaussian_audit(x.data(), n, d);
  EXPECT_LT(a.excess_kurtosis_abs, kGateExcessKurtosisAbs);
  EXPECT_LT(a.isotropy_variance_ratio, kGateIsotropyVarianceRatio);
  EXPECT_LT(a.hadamard_post_variance_ratio, kGateHadamardPostVarianceRatio);
  // The published "Wasserstein" value compares the 0.99-quantile of |z|
  // (the two-sided 99 % point, 2.5758 for a Gaussian) with the one-sided
  // 2.326: a perfectly Gaussian stream scores 2.5758 / 2.326 - 1 = 0.107
  // and fires the 0.05 gate. Kept as published; pinned here.
  EXPECT_NEAR(a.rms_wasserstein2_over_sigma_per_dim, 2.5758 / 2.326 - 1.0, 0.01);
  EXPECT_GT(a.rms_wasserstein2_over_sigma_per_dim, kGateRmsWasserstein2OverSigmaPerDim);
  std::student_t_distribution<float> t(3.f);
  for (auto& v : x) v = t(rng);
  for (int64_t i = 0; i < n; ++i) x[i * d] *= 10.f;
  const auto b = non_gaussian_audit(x.data(), n, d);
  EXPECT_GT(b.excess_kurtosis_abs, kGateExcessKurtosisAbs);
  EXPECT_GT(b.isotropy_variance_ratio, kGateIsotropyVarianceRatio);
  EXPECT_EQ(kAuditGates.size(), 4u);
  EXPECT_EQ(kAuditGates[0].name, "excess_kurtosis_abs");
  EXPECT_EQ(b.*(kAuditGates[1].value), b.isotropy_variance_ratio);
}

TEST(Audit, RejectsBadInput) {
  std::vector<float> x(96, 1.f);
  EXPECT_THROW(non_gaussian_audit(x.data(), 2, 48), kvlab::Error);  // D not a power of two
  EXPECT_THROW(non_gaussian_audit(x.data(), 1, 64), kvlab::Error);  // one vector
  x[3] = std::numeric_limits<float>::infinity();
  EXPECT_THROW(non_gaussian_audit(x.data(), 3, 32), kvlab::Error);
}

}  // namespace
}  // namespace kvlab::kernels
