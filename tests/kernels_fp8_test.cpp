// FP8 per-block simulation (SPEC section 2) and the fp8_per64 byte format:
// hand-checked blocks, fast == `*_ref` bit-exact, roundtrip == decode(encode),
// strict input checks. Reference-file parity is in codec_reference_test.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "common/error.h"
#include "kernels/fp8_block.h"
#include "kernels/fp_formats.h"
#include "kernels/parity.h"

namespace kvlab::kernels {
namespace {

std::vector<float> mixed_rows(int64_t rows, int64_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::uniform_real_distribution<float> e(-12.f, 8.f);
  std::vector<float> v(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    const float scale = std::exp2(e(rng));  // per-row magnitude from 2^-12 to 2^8
    for (int64_t j = 0; j < cols; ++j) v[r * cols + j] = g(rng) * scale;
  }
  // A zero block, a block below the 1e-4 floor, a spike.
  for (int j = 0; j < 64; ++j) v[j] = 0.0f;
  for (int j = 64; j < 128 && j < cols; ++j) v[j] = 1e-6f * float(j - 96);
  if (cols > 130) v[130] = 3e4f;
  return v;
}

TEST(Fp8Simulate, HandCheckedBlock) {
  // amax = 448 -> s = 1: values are rounded to the E4M3 grid directly.
  std::vector<float> v(64, 0.0f);
  v[0] = 448.f;
  v[1] = 17.f;      // grid spacing 2 in [16, 32): 17 is a tie -> 16 (even)
  v[2] = -19.f;     // tie between 18 and 20 -> 20 (mantissa even)
  v[3] = 0.0029f;   // subnormal range: 2^-9 = 0.00195 is closest
  v[4] = -300.f;    // spacing 32 in [256, 448]: -288
  fp8_simulate_rows(v.data(), 1, 64, 64);
  EXPECT_EQ(v[0], 448.f);
  EXPECT_EQ(v[1], 16.f);
  EXPECT_EQ(v[2], -20.f);
  EXPECT_EQ(v[3], 0x1p-9f);
  EXPECT_EQ(v[4], -288.f);
  // All-zero block: a = 1e-4 floor, output exactly 0.
  std::vector<float> z(64, 0.0f);
  fp8_simulate_rows(z.data(), 1, 64, 64);
  for (float x : z) EXPECT_EQ(x, 0.0f);
}

TEST(Fp8Simulate, FastMatchesReferenceAndStaysOnGrid) {
  const int64_t rows = 40, cols = 512;
  const auto x = mixed_rows(rows, cols, 1);
  auto a = x, b = x;
  fp8_simulate_rows(a.data(), rows, cols, cols);
  fp8_simulate_rows_ref(b.data(), rows, cols, cols);
  const auto r = check_parity(a.data(), b.data(), rows * cols);
  EXPECT_TRUE(r.ok()) << r.summary();
  // Relative error per element is bounded by half an E4M3 step (2^-4) plus
  // the subnormal floor of the block.
  for (int64_t i = 0; i < rows * cols; i += 64) {
    float amax = 0;
    for (int j = 0; j < 64; ++j) amax = std::max(amax, std::fabs(x[i + j]));
    const float s = std::max(amax, 1e-4f) / 448.f;
    for (int j = 0; j < 64; ++j) {
      const float q = a[i + j] / s;
      ASSERT_LE(std::fabs(a[i + j] - x[i + j]), std::fabs(x[i + j]) * 0.0625f + s * 0x1p-10f) << i + j;
      (void)q;
    }
  }
}

TEST(Fp8Simulate, RespectsStrideAndColumnCount) {
  // V4 write path: first 448 of 512 columns, the RoPE tail untouched.
  const int64_t rows = 3, stride = 512, ncols = 448;
  const auto x = mixed_rows(rows, stride, 2);
  auto a = x;
  fp8_simulate_rows(a.data(), rows, stride, ncols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = ncols; j < stride; ++j) ASSERT_EQ(a[r * stride + j], x[r * stride + j]);
  int changed = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < ncols; ++j) changed += a[r * stride + j] != x[r * stride + j];
  EXPECT_GT(changed, rows * ncols / 2);
}

TEST(Fp8Simulate, RejectsBadInput) {
  std::vector<float> v(128, 1.0f);
  EXPECT_THROW(fp8_simulate_rows(v.data(), 1, 128, 100), kvlab::Error);  // 100 % 64 != 0
  EXPECT_THROW(fp8_simulate_rows(v.data(), 1, 128, 128, 0), kvlab::Error);
  EXPECT_THROW(fp8_simulate_rows(v.data(), 1, 128, 128, 64, 500.f), kvlab::Error);
  v[77] = std::numeric_limits<float>::quiet_NaN();
  try {
    fp8_simulate_rows(v.data(), 1, 128, 128);
    FAIL() << "NaN accepted";
  } catch (const kvlab::Error& e) {
    EXPECT_NE(std::string(e.what()).find("column 77"), std::string::npos) << e.what();
  }
  v[77] = std::numeric_limits<float>::infinity();
  EXPECT_THROW(fp8_simulate_rows_ref(v.data(), 1, 128, 128), kvlab::Error);
}

TEST(Fp8Block, EncodeDecodeMatchReferenceAndRoundtrip) {
  const int64_t rows = 37, cols = 512, block = 64;
  const auto x = mixed_rows(rows, cols, 3);
  const int64_t cs = fp8_block_code_size(cols, block);
  EXPECT_EQ(cs, 512 + 16);
  std::vector<uint8_t> c1(size_t(rows * cs)), c2(size_t(rows * cs));
  fp8_block_encode(x.data(), rows, cols, block, c1.data());
  fp8_block_encode_ref(x.data(), rows, cols, block, c2.data());
  EXPECT_TRUE(check_parity(c1.data(), c2.data(), rows * cs).ok());
  std::vector<float> d1(size_t(rows * cols)), d2(d1.size()), rt(d1.size());
  fp8_block_decode(c1.data(), rows, cols, block, d1.data());
  fp8_block_decode_ref(c1.data(), rows, cols, block, d2.data());
  EXPECT_TRUE(check_parity(d1.data(), d2.data(), rows * cols).ok());
  fp8_block_roundtrip(x.data(), rows, cols, block, rt.data());
  const auto r = check_parity(rt.data(), d1.data(), rows * cols);
  EXPECT_TRUE(r.ok()) << r.summary();
  // The stored block max is uf16(amax): the spike's block decodes its max
  // to within 2^-11 relative.
  EXPECT_NEAR(d1[130], 3e4f, 3e4f * 0x1p-11f);
}

TEST(Fp8Block, ScaleBeyondUf16RangeIsAnError) {
  std::vector<float> x(64, 1.0f);
  x[5] = 1e10f;  // block max above the uf16 range (8.59e9)
  std::vector<uint8_t> c(size_t(fp8_block_code_size(64, 64)));
  EXPECT_THROW(fp8_block_encode(x.data(), 1, 64, 64, c.data()), kvlab::Error);
  x[5] = 8e9f;  // fits
  EXPECT_NO_THROW(fp8_block_encode(x.data(), 1, 64, 64, c.data()));
}

}  // namespace
}  // namespace kvlab::kernels
