// The Gaussian null of the audit metrics (stats/audit_null.h).
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "common/rng.h"
#include "kernels/metrics.h"
#include "stats/audit_null.h"

namespace kvlab::stats {
namespace {

TEST(AuditNull, W2MedianOfAModerateGaussianIsTheKnownBias) {
  // p99 of |z| for z ~ N(0, 1) is 2.5758; the metric divides by 2.326, so a
  // large Gaussian sample gives sqrt(mean_j (2.5758 / 2.326 - 1)^2) = 0.1074.
  const auto null = simulate_audit_null(2048, 64, 40);
  const auto* w2 = null.find("rms_wasserstein2_over_sigma_per_dim");
  ASSERT_NE(w2, nullptr);
  EXPECT_NEAR(w2->q50, 2.5758293 / 2.326 - 1.0, 0.01);
  EXPECT_GT(w2->q50, w2->gate);          // the 0.05 gate fires on exact Gaussians
  EXPECT_DOUBLE_EQ(w2->gate_exceeded, 1.0);
  // Kurtosis: sum |m4/var^2 - 3| per column is small for n = 2048.
  const auto* k = null.find("excess_kurtosis_abs");
  ASSERT_NE(k, nullptr);
  EXPECT_LT(k->q99, 0.3);
  EXPECT_GT(k->q50, 0.0);
}

TEST(AuditNull, FewVectorsInflateKurtosisAndVarianceRatios) {
  // n = 16 (an HCA passage): sample variances of 16 normals spread widely, so
  // max/min over 512 columns is large, and |excess kurtosis| is about 0.7.
  const auto null = simulate_audit_null(16, 512, 30);
  EXPECT_GT(null.find("excess_kurtosis_abs")->q50, 0.5);
  EXPECT_LT(null.find("excess_kurtosis_abs")->q50, 1.0);
  EXPECT_GT(null.find("isotropy_variance_ratio")->q50, 5.0);
  EXPECT_GT(null.find("hadamard_post_variance_ratio")->q50, 5.0);
  EXPECT_DOUBLE_EQ(null.find("isotropy_variance_ratio")->gate_exceeded, 1.0);
}

TEST(AuditNull, QuantilesAreMonotoneAndMetricsInGateOrder) {
  const auto null = simulate_audit_null(64, 32, 50);
  ASSERT_EQ(null.metrics.size(), kernels::kAuditGates.size());
  for (std::size_t k = 0; k < null.metrics.size(); ++k) {
    const auto& m = null.metrics[k];
    EXPECT_EQ(m.metric, kernels::kAuditGates[k].name);
    EXPECT_EQ(m.gate, kernels::kAuditGates[k].threshold);
    EXPECT_LT(m.q50, m.q95) << m.metric;
    EXPECT_LE(m.q95, m.q99) << m.metric;
    EXPECT_GE(m.gate_exceeded, 0.0);
    EXPECT_LE(m.gate_exceeded, 1.0);
  }
  EXPECT_EQ(null.find("not_a_metric"), nullptr);
}

TEST(AuditNull, SameSeedSameNumbersOtherSeedOtherNumbers) {
  const auto a = simulate_audit_null(32, 16, 20, 7);
  const auto b = simulate_audit_null(32, 16, 20, 7);
  const auto c = simulate_audit_null(32, 16, 20, 8);
  for (std::size_t k = 0; k < a.metrics.size(); ++k) {
    EXPECT_EQ(a.metrics[k].q50, b.metrics[k].q50);
    EXPECT_EQ(a.metrics[k].q99, b.metrics[k].q99);
    EXPECT_NE(a.metrics[k].q50, c.metrics[k].q50);
  }
  // The cache returns the simulated numbers, once.
  const auto& cached = audit_null(32, 16, 20, 7);
  EXPECT_EQ(&cached, &audit_null(32, 16, 20, 7));
  EXPECT_EQ(cached.metrics[3].q95, a.metrics[3].q95);
}

TEST(AuditNull, DefaultReplicatesShrinkWithTheSampleWithinBounds) {
  EXPECT_EQ(default_null_replicates(16, 512), 200);     // 8192 values: the full 200
  EXPECT_EQ(default_null_replicates(512, 512), 16);     // 2^22 / 2^18
  EXPECT_EQ(default_null_replicates(2048, 512), 10);    // floor 10
  EXPECT_EQ(audit_null(16, 8, 0, 3).replicates, 200);
  EXPECT_THROW(default_null_replicates(0, 512), Error);
}

TEST(AuditNull, RejectsShapesTheAuditCannotTake) {
  EXPECT_THROW(simulate_audit_null(1, 16, 10), Error);
  EXPECT_THROW(simulate_audit_null(16, 24, 10), Error);
  EXPECT_THROW(simulate_audit_null(16, 16, 0), Error);
}

TEST(AuditNull, Type7QuantileInterpolatesBetweenOrderStatistics) {
  EXPECT_DOUBLE_EQ(quantile_type7({4, 1, 3, 2}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(quantile_type7({4, 1, 3, 2}, 1.0), 4.0);
  EXPECT_DOUBLE_EQ(quantile_type7({4, 1, 3, 2}, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(quantile_type7({0, 10}, 0.95), 9.5);
  EXPECT_THROW(quantile_type7({}, 0.5), Error);
}

TEST(SplitMix64, NormalsHaveUnitMomentsAndAreSeeded) {
  SplitMix64 r(42), r2(42);
  double s = 0, s2 = 0;
  constexpr int n = 100000;
  for (int i = 0; i < n; ++i) {
    const double z = r.normal();
    EXPECT_EQ(z, r2.normal());
    s += z;
    s2 += z * z;
  }
  EXPECT_NEAR(s / n, 0.0, 0.02);
  EXPECT_NEAR(s2 / n, 1.0, 0.02);
}

}  // namespace
}  // namespace kvlab::stats
