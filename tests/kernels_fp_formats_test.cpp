// Bit-exactness of the scalar format conversions (kernels/fp_formats.h):
// E4M3FN against the published table of all 256 codes and against an
// exhaustive nearest-value oracle; fp16 against the compiler's _Float16;
// bf16 against a double-precision oracle; E8M0 and uf16 by construction.
// The E4M3 rounding reference file is checked in codec_reference_test
// (it needs the safetensors reader).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>

#include "common/error.h"
#include "kernels/fp8_block.h"
#include "kernels/fp_formats.h"
#include "testutil/testutil.h"

namespace kvlab::kernels {
namespace {

TEST(E4m3, AllCodesMatchPublishedTable) {
  std::ifstream in(testutil::reference_path("e4m3fn_table.tsv"));
  ASSERT_TRUE(in) << "missing e4m3fn_table.tsv";
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "code\thex\tvalue");
  int rows = 0;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    int code;
    std::string hex, value;
    ss >> code >> hex >> value;
    ASSERT_GE(code, 0);
    ASSERT_LT(code, 256);
    const float got = e4m3_to_f32(uint8_t(code));
    if (value == "NaN") {
      EXPECT_TRUE(std::isnan(got)) << code;
      EXPECT_EQ(code & 0x7f, 0x7f);
    } else {
      const double want = std::stod(value);  // exact decimals
      EXPECT_EQ(double(got), want) << "code " << code;
      if (value == "-0") {
        EXPECT_TRUE(std::signbit(got));
      }
      // Encoding the exact value returns the code (both rule sets).
      EXPECT_EQ(f32_to_e4m3(got, true), code) << value;
      EXPECT_EQ(f32_to_e4m3(got, false), code) << value;
    }
    ++rows;
  }
  EXPECT_EQ(rows, 256);
}

// Oracle: nearest finite E4M3 value in double, ties to the even code.
uint8_t e4m3_oracle_sat(float x) {
  if (std::isnan(x)) return 0x7f;
  const bool neg = std::signbit(x);
  const double a = std::fabs(double(x));
  if (a > 448.0) return uint8_t((neg ? 0x80 : 0) | 0x7e);
  int best = 0;
  double bestd = INFINITY;
  for (int c = 0; c <= 0x7e; ++c) {
    const double d = std::fabs(double(e4m3_to_f32(uint8_t(c))) - a);
    if (d < bestd || (d == bestd && (c & 1) == 0)) {
      bestd = d;
      best = c;
    }
  }
  return uint8_t((neg ? 0x80 : 0) | best);
}

TEST(E4m3, RoundingMatchesNearestEvenOracle) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> wide(-500.f, 500.f);
  std::uniform_real_distribution<float> small(-0.02f, 0.02f);
  std::vector<float> xs;
  for (int i = 0; i < 20000; ++i) xs.push_back(wide(rng));
  for (int i = 0; i < 20000; ++i) xs.push_back(small(rng));
  // Every midpoint between neighbours, and one float ulp either side.
  for (int c = 0; c < 0x7e; ++c) {
    const float lo = e4m3_to_f32(uint8_t(c)), hi = e4m3_to_f32(uint8_t(c + 1));
    const float mid = float((double(lo) + double(hi)) / 2);
    for (float v : {mid, std::nextafter(mid, 0.f), std::nextafter(mid, 1000.f)}) {
      xs.push_back(v);
      xs.push_back(-v);
    }
  }
  for (float v : {448.f, 464.f, std::nextafter(464.f, 0.f), std::nextafter(464.f, 1e9f), 1e30f, 0x1p-10f,
                  0x1p-11f, std::numeric_limits<float>::denorm_min()})
    xs.push_back(v);
  for (float x : xs) {
    const uint8_t want = e4m3_oracle_sat(x);
    ASSERT_EQ(f32_to_e4m3(x, true), want) << x;
    if (std::fabs(x) <= 448.f) {
      const float v = e4m3_round_value(x);
      ASSERT_EQ(f32_bits(v), f32_bits(e4m3_to_f32(want))) << x;
    }
  }
}

TEST(E4m3, SaturatingAndNonSaturatingSpecials) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(f32_to_e4m3(inf, true), 0x7e);
  EXPECT_EQ(f32_to_e4m3(-inf, true), 0xfe);
  EXPECT_EQ(f32_to_e4m3(nan, true), 0x7f);
  EXPECT_EQ(f32_to_e4m3(inf, false), 0x7f);
  EXPECT_EQ(f32_to_e4m3(-inf, false), 0xff);
  EXPECT_EQ(f32_to_e4m3(464.f, false), 0x7e);  // tie 448 / NaN code -> even (448)
  EXPECT_EQ(f32_to_e4m3(std::nextafter(464.f, 1e9f), false), 0x7f);
  EXPECT_EQ(f32_to_e4m3(-480.f, false), 0xff);
  EXPECT_EQ(f32_to_e4m3(-480.f, true), 0xfe);
  EXPECT_EQ(f32_to_e4m3(-1e-30f, true), 0x80);  // sign kept on underflow
  EXPECT_EQ(f32_to_e4m3(3 * 0x1p-10f, true), 0x02);  // tie between 1 and 2 (x 2^-9) -> even 2
  EXPECT_EQ(f32_to_e4m3(0x1p-10f, true), 0x00);
}

TEST(Fp16, AllCodesRoundTrip) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(uint16_t(h));
    if (std::isnan(f)) {
      EXPECT_EQ(h & 0x7c00u, 0x7c00u);
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f))));
      continue;
    }
    ASSERT_EQ(f32_to_f16(f), h) << h;
    _Float16 c;
    std::memcpy(&c, &h, 2);
    ASSERT_EQ(f32_bits(float(c)), f32_bits(f)) << h;
  }
}

TEST(Fp16, MatchesCompilerConversionOnSampledFloats) {
  // Every 509th float32 bit pattern (8.4M values, all exponents).
  for (uint64_t u = 0; u < (uint64_t(1) << 32); u += 509) {
    const float x = bits_f32(uint32_t(u));
    const _Float16 c = static_cast<_Float16>(x);
    uint16_t want;
    std::memcpy(&want, &c, 2);
    const uint16_t got = f32_to_f16(x);
    if (std::isnan(x)) {
      ASSERT_TRUE(std::isnan(f16_to_f32(got)));
      continue;
    }
    ASSERT_EQ(got, want) << "bits 0x" << std::hex << u;
  }
  EXPECT_EQ(f32_to_f16(65519.996f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.f), 0x7c00);
}

TEST(Bf16, MatchesDoubleOracle) {
  for (uint64_t u = 0; u < (uint64_t(1) << 32); u += 4099) {
    const float x = bits_f32(uint32_t(u));
    if (std::isnan(x)) {
      EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(x))));
      continue;
    }
    const uint16_t t = uint16_t(u >> 16);
    const double lo = bf16_to_f32(t), hi = bf16_to_f32(uint16_t(t + 1));
    const double dl = std::fabs(double(x) - lo), dh = std::fabs(hi - double(x));
    uint16_t want = t;
    if (dh < dl || (dh == dl && (t & 1))) want = uint16_t(t + 1);
    if (std::isinf(hi)) want = (dl < std::fabs(std::ldexp(1.0, 128) - std::fabs(double(x))) ? t : uint16_t(t + 1));
    ASSERT_EQ(f32_to_bf16(x), want) << "bits 0x" << std::hex << u;
  }
  EXPECT_EQ(f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);  // tie to even
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
}

TEST(E8m0, Values) {
  EXPECT_EQ(e8m0_to_f32(127), 1.0f);
  EXPECT_EQ(e8m0_to_f32(128), 2.0f);
  EXPECT_EQ(e8m0_to_f32(120), 0x1p-7f);
  EXPECT_EQ(e8m0_to_f32(254), 0x1p127f);
  EXPECT_EQ(e8m0_to_f32(0), 0x1p-127f);
  EXPECT_EQ(e8m0_to_f32(1), 0x1p-126f);
  EXPECT_TRUE(std::isnan(e8m0_to_f32(255)));
}

TEST(Uf16, EqualsFp16WhereFp16IsNormal) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> ex(-14.f, 15.99f);
  for (int i = 0; i < 200000; ++i) {
    const float v = std::exp2(ex(rng));
    const float a = f16_to_f32(f32_to_f16(v));
    if (a > 65504.f || a < 0x1p-14f) continue;
    ASSERT_EQ(uf16_to_f32(f32_to_uf16(v)), a) << v;
  }
  EXPECT_EQ(uf16_to_f32(f32_to_uf16(65519.f)), 65504.f);
  EXPECT_EQ(uf16_to_f32(f32_to_uf16(70000.f)), 70016.f);  // fp16 would give inf
}

TEST(Uf16, AllCodesRoundTripAndAreMonotone) {
  float prev = -1.f;
  for (uint32_t c = 0; c < 65536; ++c) {
    const float v = uf16_to_f32(uint16_t(c));
    ASSERT_GT(v, prev) << c;
    ASSERT_EQ(f32_to_uf16(v), c);
    prev = v;
  }
  EXPECT_EQ(prev, kUf16Max);
  EXPECT_EQ(uf16_to_f32(1), 0x1p-40f);
}

TEST(Uf16, RejectsOutOfRange) {
  EXPECT_TRUE(uf16_fits(kUf16Max));
  EXPECT_FALSE(uf16_fits(std::nextafter(kUf16Max, 1e30f)));
  EXPECT_THROW(f32_to_uf16(1e10f), kvlab::Error);
  EXPECT_THROW(f32_to_uf16(-1.f), kvlab::Error);
  EXPECT_THROW(f32_to_uf16(std::numeric_limits<float>::quiet_NaN()), kvlab::Error);
  try {
    f32_to_uf16(1e12f);
    FAIL();
  } catch (const kvlab::Error& e) {
    EXPECT_NE(std::string(e.what()).find("1000000000000"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kvlab::kernels
