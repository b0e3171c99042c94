// Fast Walsh-Hadamard transform: agreement with the dense Sylvester matrix,
// orthonormality / involution, bit-exact parity of the fast kernel with its
// `*_ref` oracle at every SIMD level this CPU has (and of the AVX-512 row
// kernels the rotated scalar codecs call directly: from / to / streamed),
// and a planted mismatch the parity checker must catch.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <vector>

#include "common/error.h"
#include "kernels/hadamard.h"
#include "kernels/parity.h"
#include "kernels/simd.h"

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

TEST(Hadamard, EveryLevelMatchesReferenceBitExact) {
  const SimdLevel saved = simd_level();
  std::vector<SimdLevel> lv{SimdLevel::kScalar};
  if (cpu_has_avx2()) lv.push_back(SimdLevel::kAvx2);
  if (cpu_has_avx512()) lv.push_back(SimdLevel::kAvx512);
  for (SimdLevel l : lv) {
    set_simd_level(l);
    ASSERT_EQ(simd_level(), l);
    for (int64_t d = 1; d <= 4096; d *= 2) {
      const int64_t rows = 3, stride = d + 16;  // rows apart: the stride is honoured
      auto x = gauss(rows * stride, unsigned(11 + d));
      auto a = x, b = x;
      fwht_normalized_rows(a.data(), rows, stride, d);
      fwht_normalized_rows_ref(b.data(), rows, stride, d);
      auto r = check_parity(a.data(), b.data(), rows * stride);
      EXPECT_TRUE(r.ok()) << simd_level_name(l) << " D=" << d << ": " << r.summary();
      auto c = x, e = x;
      fwht_normalized(c.data(), d);
      fwht_normalized_ref(e.data(), d);
      r = check_parity(c.data(), e.data(), d);
      EXPECT_TRUE(r.ok()) << simd_level_name(l) << " D=" << d << ": " << r.summary();
    }
  }
  set_simd_level(saved);
}

TEST(Hadamard, Avx512RowKernelsMatchReference) {
  if (!cpu_has_avx512()) GTEST_SKIP() << "this CPU has no AVX-512 (the kernels never run here)";
  struct Aligned {
    float* p;
    explicit Aligned(size_t n) : p(static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64))) {}
    ~Aligned() { std::free(p); }
  };
  for (int64_t d = 16; d <= 4096; d *= 2) {
    SCOPED_TRACE("D=" + std::to_string(d));
    const auto x = gauss(d, unsigned(29 + d));
    auto want = x;
    fwht_normalized_ref(want.data(), d);
    // From: x untouched, y the transform.
    auto xin = x;
    std::vector<float> y(size_t(d), -1.0f);
    avx512::fwht_normalized_from(xin.data(), d, y.data());
    EXPECT_TRUE(check_parity(y.data(), want.data(), d).ok());
    EXPECT_TRUE(check_parity(xin.data(), x.data(), d).ok());
    // In place.
    auto z = x;
    avx512::fwht_normalized(z.data(), d);
    EXPECT_TRUE(check_parity(z.data(), want.data(), d).ok());
    // To another row, plain and non-temporal stores.
    for (bool stream : {false, true}) {
      auto scratch = x;
      Aligned out{size_t(d)};
      avx512::fwht_normalized_to(scratch.data(), d, out.p, stream);
      EXPECT_TRUE(check_parity(out.p, want.data(), d).ok()) << "stream " << stream;
    }
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
