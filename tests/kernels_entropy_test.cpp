// Plug-in entropy and the Gaussian distortion-rate bounds (kernels/entropy.h)
// on hand-checkable cases.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "common/error.h"
#include "kernels/entropy.h"

namespace kvlab::kernels {
namespace {

TEST(Entropy, UniformSymbolsGiveLog2K) {
  for (int k : {1, 2, 3, 7, 256}) {
    std::vector<int32_t> s;
    for (int rep = 0; rep < 5; ++rep)
      for (int i = 0; i < k; ++i) s.push_back(i * 3 - 100);
    EXPECT_NEAR(plugin_entropy_bits(s.data(), int64_t(s.size())), std::log2(double(k)), 1e-12) << "K = " << k;
  }
  // Every byte value once: 8 bits.
  std::vector<uint8_t> b(256);
  for (int i = 0; i < 256; ++i) b[std::size_t(i)] = uint8_t(i);
  EXPECT_NEAR(plugin_entropy_bits(b.data(), 256), 8.0, 1e-12);
}

TEST(Entropy, ConstantSymbolsGiveZero) {
  const std::vector<int16_t> s(1000, int16_t(-7));
  EXPECT_EQ(plugin_entropy_bits(s.data(), 1000), 0.0);
  EXPECT_EQ(plugin_entropy_bits(s.data(), 0), 0.0);
  const int64_t zeros[3] = {0, 0, 0};
  EXPECT_EQ(entropy_bits_from_counts(zeros, 3), 0.0);
}

TEST(Entropy, SkewedDistributionByHand) {
  // p = (1/2, 1/4, 1/4): 1.5 bits.
  const int64_t c[4] = {2, 0, 1, 1};
  EXPECT_NEAR(entropy_bits_from_counts(c, 4), 1.5, 1e-15);
  // Stride picks every other symbol: (5, 5, 9, 9) -> 1 bit; all -> (5,1,5,1,9,1,9,1): 1.5 bits.
  const uint16_t s[8] = {5, 1, 5, 1, 9, 1, 9, 1};
  EXPECT_NEAR(plugin_entropy_bits(s, 4, 2), 1.0, 1e-15);
  EXPECT_NEAR(plugin_entropy_bits(s, 8), 1.5, 1e-15);
}

TEST(Entropy, WideRangeUsesTheSortedPathWithTheSameResult) {
  // Range 2^30: the sorted path. Same multiset shifted into a small range: dense path.
  std::vector<int32_t> wide = {0, 1 << 30, 1 << 30, 5, 5, 5, -(1 << 30), 0};
  std::vector<int32_t> small = {0, 2, 2, 1, 1, 1, -1, 0};
  EXPECT_NEAR(plugin_entropy_bits(wide.data(), 8), plugin_entropy_bits(small.data(), 8), 1e-15);
  // (2, 2, 3, 1)/8 counts: 1.5 + 3/8 log2(8/3) - ... computed directly:
  const double p[4] = {2 / 8.0, 2 / 8.0, 3 / 8.0, 1 / 8.0};
  double h = 0;
  for (double x : p) h -= x * std::log2(x);
  EXPECT_NEAR(plugin_entropy_bits(wide.data(), 8), h, 1e-14);
}

TEST(Entropy, BadInputThrows) {
  const int64_t neg[2] = {3, -1};
  EXPECT_THROW(entropy_bits_from_counts(neg, 2), kvlab::Error);
  const int32_t s[2] = {1, 2};
  EXPECT_THROW(plugin_entropy_bits(s, -1), kvlab::Error);
  EXPECT_THROW(plugin_entropy_bits(s, 1, 0), kvlab::Error);
}

TEST(Bounds, GaussianBoundIsTwoToMinusTwoR) {
  EXPECT_EQ(gauss_bound_rel_mse(0), 1.0);
  EXPECT_NEAR(gauss_bound_rel_mse(1), 0.25, 1e-15);
  EXPECT_NEAR(gauss_bound_rel_mse(8.25), std::exp2(-16.5), 1e-20);
  EXPECT_THROW(gauss_bound_rel_mse(-0.5), kvlab::Error);
  EXPECT_THROW(gauss_bound_rel_mse(std::numeric_limits<double>::infinity()), kvlab::Error);
}

TEST(Bounds, WhiteSpectrumEqualsTheGaussianBound) {
  for (double r : {0.0, 0.5, 1.5, 4.0, 8.25}) {
    const std::vector<double> white(64, 3.7);
    EXPECT_NEAR(rwf_bound_rel_mse(white.data(), 64, r), gauss_bound_rel_mse(r), 1e-12 * gauss_bound_rel_mse(r))
        << "R = " << r;
  }
}

TEST(Bounds, TwoEigenvaluesWithAnActiveWaterLevel) {
  // lambda = (4, 1), d = 2. At R = 0.25 (total rate 0.5 bit): only the
  // first is active, 1/2 log2(4 / theta) = 1/2 -> theta = 2 >= 1:
  // D = 2 + 1 = 3, over 5.
  const double eig[2] = {1.0, 4.0};  // any order
  EXPECT_NEAR(rwf_bound_rel_mse(eig, 2, 0.25), 3.0 / 5.0, 1e-14);
  // At R = 1.5 (total 3 bits): both active, log2 theta = (log2 4 + log2 1 - 6) / 2 = -2,
  // theta = 1/4: D = 2 / 4 = 0.5, over 5.
  EXPECT_NEAR(rwf_bound_rel_mse(eig, 2, 1.5), 0.5 / 5.0, 1e-14);
  // The boundary R = 0.5 (theta = 1 exactly): D = 1 + 1 = 2.
  EXPECT_NEAR(rwf_bound_rel_mse(eig, 2, 0.5), 2.0 / 5.0, 1e-14);
  EXPECT_EQ(rwf_bound_rel_mse(eig, 2, 0.0), 1.0);
}

TEST(Bounds, WaterFillingNeverExceedsTheGaussianBoundAndFallsWithRate) {
  std::mt19937_64 rng(7);
  std::exponential_distribution<double> ex(1.0);
  for (int trial = 0; trial < 20; ++trial) {
    const int d = 1 + int(rng() % 100);
    std::vector<double> eig(static_cast<std::size_t>(d));
    for (auto& e : eig) e = std::pow(ex(rng), 3.0);  // a spread spectrum
    if (trial % 4 == 0) eig[0] = 0.0;                 // rank deficient
    if (trial % 5 == 0) eig[std::size_t(d - 1)] = -1e-18;  // numerical noise below 0
    double prev = 2.0;
    for (double r = 0; r <= 8.0; r += 0.25) {
      const double b = rwf_bound_rel_mse(eig.data(), d, r);
      EXPECT_LE(b, gauss_bound_rel_mse(r) * (1 + 1e-12)) << "trial " << trial << " R " << r;
      EXPECT_GT(b, 0.0);
      EXPECT_LE(b, prev * (1 + 1e-12));
      prev = b;
    }
  }
}

TEST(Bounds, WaterFillingBadInputThrows) {
  const double zero[2] = {0, 0};
  EXPECT_THROW(rwf_bound_rel_mse(zero, 2, 1.0), kvlab::Error);
  const double nan[2] = {1, std::numeric_limits<double>::quiet_NaN()};
  EXPECT_THROW(rwf_bound_rel_mse(nan, 2, 1.0), kvlab::Error);
  const double ok[2] = {1, 2};
  EXPECT_THROW(rwf_bound_rel_mse(ok, 0, 1.0), kvlab::Error);
  EXPECT_THROW(rwf_bound_rel_mse(ok, 2, -1.0), kvlab::Error);
}

}  // namespace
}  // namespace kvlab::kernels
