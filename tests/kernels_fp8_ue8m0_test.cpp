// UE8M0 FP8 block simulation (SPEC-V4-ATTENTION section 5, the v4 write
// path): power-of-two scales at exact-power-of-two block maxima and their
// neighbours, every block's scale a power of two with values code * s,
// fast == `_ref` bit-exact (and a planted mismatch caught), strict input checks.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "common/error.h"
#include "kernels/fp8_block.h"
#include "kernels/fp_formats.h"
#include "kernels/parity.h"
#include "testutil/testutil.h"

namespace kvlab::kernels {
namespace {

std::vector<float> mixed_rows(int64_t rows, int64_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::uniform_real_distribution<float> e(-12.f, 8.f);
  std::vector<float> v(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    const float scale = std::exp2(e(rng));
    for (int64_t j = 0; j < cols; ++j) v[r * cols + j] = g(rng) * scale;
  }
  for (int j = 0; j < 64; ++j) v[j] = 0.0f;                                 // zero block
  for (int j = 64; j < 128 && j < cols; ++j) v[j] = 1e-6f * float(j - 96);  // below the 1e-4 floor
  if (cols > 130) v[130] = 3e4f;                                            // spike
  // Blocks whose maximum is exactly 448 * 2^k (the ceiling's edge) and one ulp either side.
  for (int64_t r = 1; r < rows && r < 25; ++r) {
    const float edge = std::ldexp(448.0f, int(r) - 12);
    const float m = r % 3 == 0 ? edge : r % 3 == 1 ? std::nextafter(edge, 0.f) : std::nextafter(edge, 1e30f);
    v[r * cols + 7] = r % 2 ? m : -m;
  }
  return v;
}

// The UE8M0 exponent by an independent route: the smallest k with 2^k >= y.
int ceil_log2_by_search(float y) {
  int k = -140;
  while (std::ldexp(1.0, k) < double(y)) ++k;
  return k;
}

TEST(Ue8m0Scale, ExactPowersOfTwoAndNeighbours) {
  for (int k = -20; k <= 20; ++k) {
    const float edge = std::ldexp(448.0f, k);  // a * (1/448) rounds to exactly 2^k
    EXPECT_EQ(ue8m0_scale(edge), std::ldexp(1.0f, k)) << k;
    EXPECT_EQ(ue8m0_scale(std::nextafter(edge, 1e30f)), std::ldexp(1.0f, k + 1)) << k;
    EXPECT_EQ(ue8m0_scale(std::nextafter(edge, 0.f)), std::ldexp(1.0f, k)) << k;
    // Powers of two that are not 448 * 2^k: y has a non-zero mantissa.
    const float p = std::ldexp(1.0f, k);
    EXPECT_EQ(ue8m0_scale(p), std::ldexp(1.0f, ceil_log2_by_search(p * (1.0f / 448.f)))) << k;
  }
  EXPECT_EQ(ue8m0_scale(1.0f), 0x1p-8f);        // 1/448 = 0.00223 -> 2^-8
  EXPECT_EQ(ue8m0_scale(kFp8AmaxFloor), 0x1p-22f);  // the 1e-4 floor: 2.23e-7 -> 2^-22
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> e(-13.f, 30.f);
  for (int i = 0; i < 20000; ++i) {
    const float a = std::exp2(e(rng));
    ASSERT_EQ(ue8m0_scale(a), std::ldexp(1.0f, ceil_log2_by_search(a * (1.0f / 448.f)))) << a;
  }
}

TEST(Fp8SimulateUe8m0, HandCheckedBlocks) {
  // amax = 448: s = 1, values rounded to the E4M3 grid directly (as the amax rule).
  std::vector<float> v(64, 0.0f);
  v[0] = 448.f;
  v[1] = 17.f;     // tie -> 16
  v[2] = -19.f;    // tie -> -20
  v[3] = 0.0029f;  // subnormal range -> 2^-9
  auto w = v;
  fp8_simulate_rows_ue8m0(v.data(), 1, 64, 64);
  EXPECT_EQ(v[0], 448.f);
  EXPECT_EQ(v[1], 16.f);
  EXPECT_EQ(v[2], -20.f);
  EXPECT_EQ(v[3], 0x1p-9f);
  fp8_simulate_rows(w.data(), 1, 64, 64);
  EXPECT_EQ(v, w);
  // amax = 300: s = 1 (300/448 < 1) -- unlike the amax rule (s = 300/448),
  // 300 itself is rounded on the grid: spacing 32 in [256, 448) -> 288.
  std::vector<float> b(64, 0.0f);
  b[0] = 300.f;
  b[1] = 1.f;
  fp8_simulate_rows_ue8m0(b.data(), 1, 64, 64);
  EXPECT_EQ(b[0], 288.f);
  EXPECT_EQ(b[1], 1.f);
  // amax one ulp above 448: s = 2, so 448 + ulp -> 448 (224 * 2).
  std::vector<float> c(64, 0.0f);
  c[0] = std::nextafter(448.f, 1e30f);
  c[1] = 3.f;  // 1.5 * 2
  fp8_simulate_rows_ue8m0(c.data(), 1, 64, 64);
  EXPECT_EQ(c[0], 448.f);
  EXPECT_EQ(c[1], 3.f);
  // All-zero block stays zero.
  std::vector<float> z(64, 0.0f);
  fp8_simulate_rows_ue8m0(z.data(), 1, 64, 64);
  for (float x : z) EXPECT_EQ(x, 0.0f);
}

TEST(Fp8SimulateUe8m0, EveryBlockScaleIsAPowerOfTwoAndValuesAreCodeTimesScale) {
  const int64_t rows = 40, cols = 512;
  const auto x = mixed_rows(rows, cols, 3);
  auto a = x;
  fp8_simulate_rows_ue8m0(a.data(), rows, cols, cols);
  for (int64_t i = 0; i < rows * cols; i += 64) {
    float amax = 0;
    for (int j = 0; j < 64; ++j) amax = std::max(amax, std::fabs(x[i + j]));
    const int k = ceil_log2_by_search(std::max(amax, 1e-4f) * (1.0f / 448.f));
    const float s = std::ldexp(1.0f, k);
    for (int j = 0; j < 64; ++j) {
      const float q = a[i + j] / s;  // exact: s is a power of two
      ASSERT_LE(std::fabs(q), 448.f) << i + j;
      ASSERT_EQ(e4m3_to_f32(f32_to_e4m3(q, true)), q) << "not code * s at " << i + j;
      ASSERT_EQ(q, e4m3_to_f32(f32_to_e4m3(std::min(std::max(x[i + j] / s, -448.f), 448.f), true))) << i + j;
    }
  }
}

TEST(Fp8SimulateUe8m0, FastMatchesReferenceAndPlantedMismatchIsCaught) {
  const int64_t rows = 40, stride = 520, ncols = 448;
  const auto x = mixed_rows(rows, stride, 4);
  auto a = x, b = x;
  fp8_simulate_rows_ue8m0(a.data(), rows, stride, ncols);
  fp8_simulate_rows_ue8m0_ref(b.data(), rows, stride, ncols);
  const auto r = check_parity(a.data(), b.data(), rows * stride);
  EXPECT_TRUE(r.ok()) << r.summary();
  for (int64_t row = 0; row < rows; ++row)
    for (int64_t j = ncols; j < stride; ++j) ASSERT_EQ(a[row * stride + j], x[row * stride + j]);
  // Block 32 and a smaller fp8_max.
  auto c = x, d = x;
  fp8_simulate_rows_ue8m0(c.data(), rows, stride, 512, 32, 240.f);
  fp8_simulate_rows_ue8m0_ref(d.data(), rows, stride, 512, 32, 240.f);
  EXPECT_TRUE(check_parity(c.data(), d.data(), rows * stride).ok());
  // One code step off in one element: the parity check must fail.
  a[3 * stride + 100] = std::nextafter(a[3 * stride + 100], 1e30f);
  EXPECT_FALSE(check_parity(a.data(), b.data(), rows * stride).ok());
}

TEST(Fp8SimulateUe8m0, RejectsBadInput) {
  std::vector<float> v(128, 1.0f);
  EXPECT_THROW(fp8_simulate_rows_ue8m0(v.data(), 1, 128, 100), kvlab::Error);
  EXPECT_THROW(fp8_simulate_rows_ue8m0(v.data(), 1, 128, 128, 0), kvlab::Error);
  EXPECT_THROW(fp8_simulate_rows_ue8m0(v.data(), 1, 128, 128, 64, 500.f), kvlab::Error);
  EXPECT_THROW(fp8_simulate_rows_ue8m0_ref(v.data(), 1, 128, 128, 64, 0.f), kvlab::Error);
  v[77] = std::numeric_limits<float>::quiet_NaN();
  testutil::expect_contains(testutil::error_of([&] { fp8_simulate_rows_ue8m0(v.data(), 1, 128, 128); }),
                            "column 77");
  auto w = std::vector<float>(128, 1.0f);
  w[5] = -std::numeric_limits<float>::infinity();
  testutil::expect_contains(testutil::error_of([&] { fp8_simulate_rows_ue8m0_ref(w.data(), 1, 128, 128); }),
                            "column 5");
  // A scale beyond float32 (tiny fp8_max, huge values).
  std::vector<float> h(64, 3e38f);
  testutil::expect_contains(testutil::error_of([&] { fp8_simulate_rows_ue8m0(h.data(), 1, 64, 64, 64, 1e-3f); }),
                            "beyond float32");
  h.assign(64, 3e38f);
  testutil::expect_contains(
      testutil::error_of([&] { fp8_simulate_rows_ue8m0_ref(h.data(), 1, 64, 64, 64, 1e-3f); }), "beyond float32");
}

}  // namespace
}  // namespace kvlab::kernels
