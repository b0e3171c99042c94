// Fast Walsh-Hadamard transform: agreement with the dense Sylvester matrix,
// orthonormality / involution, bit-exact parity of the fast kernel with its
// `*_ref` oracle, and a planted mismatch the parity checker must catch.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "common/error.h"
#include "kernels/hadamard.h"
#include "kernels/parity.h"

namespace kvlab::kernels {
namespace {

std::vector<float> gauss(int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = g(rng);
  return v;
}

// Sylvester entry H[i][j] = (-1)^popcount(i & j).
int sylvester(int64_t i, int64_t j) { return (__builtin_popcountll(uint64_t(i & j)) & 1) ? -1 : 1; }

TEST(Hadamard, MatchesDenseSylvesterMatrix) {
  for (int64_t d = 1; d <= 512; d *= 2) {
    auto x = gauss(d, unsigned(d));
    std::vector<double> want(size_t(d), 0.0);
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = 0; j < d; ++j) want[i] += sylvester(i, j) * double(x[j]);
    for (auto& w : want) w /= std::sqrt(double(d));
    auto y = x;
    fwht_normalized(y.data(), d);
    for (int64_t i = 0; i < d; ++i) ASSERT_NEAR(y[i], want[i], 1e-5 * std::sqrt(double(d))) << d << " " << i;
  }
}

TEST(Hadamard, IsOrthonormalInvolution) {
  const int64_t d = 1024;
  auto x = gauss(d, 3);
  auto y = x;
  fwht_normalized(y.data(), d);
  double nx = 0, ny = 0;
  for (int64_t i = 0; i < d; ++i) nx += double(x[i]) * x[i], ny += double(y[i]) * y[i];
  EXPECT_NEAR(ny / nx, 1.0, 1e-6);
  fwht_normalized(y.data(), d);
  for (int64_t i = 0; i < d; ++i) ASSERT_NEAR(y[i], x[i], 1e-5);
  // Constant vector -> single spike at index 0.
  std::vector<float> c(size_t(d), 1.0f);
  fwht_normalized(c.data(), d);
  EXPECT_NEAR(c[0], 32.0f, 1e-4);
  for (int64_t i = 1; i < d; ++i) ASSERT_EQ(c[i], 0.0f);
}

TEST(Hadamard, FastMatchesReferenceBitExact) {
  for (int64_t d = 1; d <= 4096; d *= 2) {
    auto x = gauss(d * 3, unsigned(7 + d));
    auto a = x, b = x;
    fwht_normalized_rows(a.data(), 3, d, d);
    fwht_normalized_rows_ref(b.data(), 3, d, d);
    const auto r = check_parity(a.data(), b.data(), d * 3);
    EXPECT_TRUE(r.ok()) << "D=" << d << ": " << r.summary();
    auto c = x, e = x;
    fwht_raw(c.data(), d);
    fwht_raw_ref(e.data(), d);
    EXPECT_TRUE(check_parity(c.data(), e.data(), d).ok()) << d;
  }
}

// A deliberately broken "fast" kernel: skips the last butterfly stage.
void fwht_broken(float* x, int64_t d) {
  for (int64_t h = 1; h < d / 2; h *= 2)
    for (int64_t i = 0; i < d; i += 2 * h)
      for (int64_t j = i; j < i + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
}

TEST(Hadamard, ParityCheckerCatchesPlantedMismatch) {
  const int64_t d = 256;
  auto x = gauss(d, 99);
  auto a = x, b = x;
  fwht_raw(a.data(), d);
  fwht_raw_ref(b.data(), d);
  ASSERT_TRUE(check_parity(a.data(), b.data(), d).ok());
  // One ulp in one element.
  a[137] = std::nextafter(a[137], 1e9f);
  auto r = check_parity(a.data(), b.data(), d);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.mismatches, 1);
  EXPECT_EQ(r.first_mismatch, 137);
  // A whole broken kernel.
  auto c = x;
  fwht_broken(c.data(), d);
  r = check_parity(c.data(), b.data(), d);
  EXPECT_FALSE(r.ok());
  EXPECT_GT(r.mismatches, d / 2);
  // -0 vs +0 counts as a mismatch (E4M3 keeps signs).
  float z1 = 0.0f, z2 = -0.0f;
  EXPECT_FALSE(check_parity(&z1, &z2, 1).ok());
}

TEST(Hadamard, RejectsNonPowerOfTwo) {
  std::vector<float> x(12, 1.0f);
  EXPECT_THROW(fwht_normalized(x.data(), 12), kvlab::Error);
  EXPECT_THROW(fwht_normalized_ref(x.data(), 0), kvlab::Error);
  EXPECT_THROW(fwht_normalized_rows(x.data(), 1, 12, 12), kvlab::Error);
  try {
    fwht_normalized(x.data(), 12);
  } catch (const kvlab::Error& e) {
    EXPECT_NE(std::string(e.what()).find("12"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("power of two"), std::string::npos);
  }
}

}  // namespace
}  // namespace kvlab::kernels
