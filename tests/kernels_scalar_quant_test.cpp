// Scalar-quantisation kernels (kernels/scalar_quant.h): the exact UE8M0
// ceiling (normal and subnormal t, amax = 448 * 2^k and its neighbours),
// the v4_native record parsed by hand, int and hadamard_lloyd formats;
// fast == `*_ref` bit-exact at every SIMD level this CPU has (bytes,
// decoded floats, fused roundtrip == decode(encode)), the Lloyd-Max tables
// against the published values, corrupt bytes and bad input rejected, and a
// planted mismatch the parity check must catch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "kernels/fp_formats.h"
#include "kernels/parity.h"
#include "kernels/scalar_quant.h"
#include "kernels/simd.h"
#include "testutil/testutil.h"

namespace kvlab::kernels {
namespace {

using testutil::error_of;
using testutil::expect_contains;

std::vector<SimdLevel> levels() {
  std::vector<SimdLevel> v{SimdLevel::kScalar};
  if (cpu_has_avx2()) v.push_back(SimdLevel::kAvx2);
  if (cpu_has_avx512()) v.push_back(SimdLevel::kAvx512);
  return v;
}

struct LevelGuard {
  SimdLevel saved = simd_level();
  ~LevelGuard() { set_simd_level(saved); }
};

// Gaussian rows of magnitude 2^-12 .. 2^8 plus edge blocks (block = 8):
// zero, below every floor, a spike, subnormals and -0, exact ties of the
// power-of-two scales, the largest magnitude `big`.
std::vector<float> edge_rows(int64_t rows, int64_t d, unsigned seed, float big) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::uniform_real_distribution<float> e(-12.f, 8.f);
  std::vector<float> v(static_cast<size_t>(rows * d));
  for (int64_t r = 0; r < rows; ++r) {
    const float scale = std::exp2(e(rng));
    for (int64_t j = 0; j < d; ++j) v[r * d + j] = g(rng) * scale;
  }
  if (rows >= 4) {
    for (int64_t j = 0; j < d; ++j) v[j] = 0.0f;                       // row 0: zero
    for (int64_t j = 0; j < d; ++j) v[d + j] = 1e-7f * float(j % 17 - 8);  // row 1: tiny
    float* r2 = v.data() + 2 * d;  // row 2: ties, subnormals, -0, spikes
    for (int64_t j = 0; j < d; ++j) r2[j] = std::ldexp(float(j % 15) - 7.0f, -3) + 0.0625f;  // k/8 + 1/16
    r2[0] = 448.0f;
    r2[1] = -0.0f;
    r2[2] = 1e-40f;
    r2[3] = -1e-41f;
    r2[d - 1] = big;
    r2[d / 2] = -big * 0.7f;
    float* r3 = v.data() + 3 * d;  // row 3: 7 * 2^k maxima with half steps (int ties)
    for (int64_t j = 0; j < d; ++j) r3[j] = (j % 8 == 0) ? 7.0f * 0.25f : (float(j % 7) - 3.0f + 0.5f) * 0.25f;
  }
  return v;
}

// ---------------------------------------------------------------- UE8M0 rule

TEST(Ue8m0Rule, CeilLog2ExactNormalAndSubnormal) {
  EXPECT_EQ(ceil_log2_exact(1.0f), 0);
  EXPECT_EQ(ceil_log2_exact(std::nextafter(1.0f, 2.0f)), 1);
  EXPECT_EQ(ceil_log2_exact(std::nextafter(1.0f, 0.0f)), 0);
  EXPECT_EQ(ceil_log2_exact(0.75f), 0);
  EXPECT_EQ(ceil_log2_exact(0.5f), -1);
  EXPECT_EQ(ceil_log2_exact(3.0f), 2);
  EXPECT_EQ(ceil_log2_exact(std::numeric_limits<float>::max()), 128);
  EXPECT_EQ(ceil_log2_exact(0x1p-126f), -126);                         // smallest normal
  EXPECT_EQ(ceil_log2_exact(bits_f32(0x00400000u)), -127);             // 2^-127 (subnormal)
  EXPECT_EQ(ceil_log2_exact(bits_f32(0x00400001u)), -126);
  EXPECT_EQ(ceil_log2_exact(bits_f32(1u)), -149);                      // 2^-149
  EXPECT_EQ(ceil_log2_exact(bits_f32(2u)), -148);
  EXPECT_EQ(ceil_log2_exact(bits_f32(3u)), -147);
  EXPECT_EQ(ceil_log2_exact(bits_f32(4u)), -147);
  EXPECT_EQ(ceil_log2_exact(bits_f32(5u)), -146);
  EXPECT_EQ(ceil_log2_exact(bits_f32(0x007fffffu)), -126);
  // Against the double log2 on random floats (exact enough away from ties).
  std::mt19937 rng(3);
  for (int i = 0; i < 100000; ++i) {
    const uint32_t u = rng() & 0x7fffffffu;
    if (u == 0 || u >= 0x7f800000u) continue;
    const float t = bits_f32(u);
    ASSERT_EQ(ceil_log2_exact(t), int(std::ceil(std::log2(double(t))))) << t;
  }
  expect_contains(error_of([] { ceil_log2_exact(0.0f); }), "t = 0");
}

TEST(Ue8m0Rule, ExactPowersOfTwoOf448AndNeighbours) {
  // amax = 448 * 2^k: t = amax * fl(1/448) rounds to exactly 2^k, so s = 2^k
  // and the block maximum is the code 448. The next float above needs 2^(k+1);
  // the next float below still rounds t to 2^k.
  for (int k = -20; k <= 100; ++k) {
    const float a = std::ldexp(448.0f, k);
    EXPECT_EQ(ue8m0_scale_exponent(a, kV4AmaxFloor, 448.0f), k) << k;
    EXPECT_EQ(ue8m0_scale_exponent(std::nextafter(a, 1e38f), kV4AmaxFloor, 448.0f), k + 1) << k;
    EXPECT_EQ(ue8m0_scale_exponent(std::nextafter(a, 0.0f), kV4AmaxFloor, 448.0f), k) << k;
    EXPECT_EQ(ue8m0_scale_byte(a, kV4AmaxFloor, 448.0f), uint8_t(k + 127));
  }
  // Independent check: t in float32, the ceiling of log2 in double.
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> e(-30.f, 60.f);
  for (int i = 0; i < 20000; ++i) {
    const float amax = std::exp2(e(rng));
    const float t = std::max(amax, 1e-4f) * (1.0f / 448.0f);
    ASSERT_EQ(ue8m0_scale_exponent(amax, 1e-4f, 448.0f), int(std::ceil(std::log2(double(t))))) << amax;
  }
  // Below the floor: a = 1e-4, t = 2.23e-7 -> 2^-22 (byte 105).
  EXPECT_EQ(ue8m0_scale_byte(0.0f, 1e-4f, 448.0f), 105);
  EXPECT_EQ(ue8m0_scale_byte(9e-5f, 1e-4f, 448.0f), 105);
  // Subnormal t is handled and clamped to the smallest E8M0 scale 2^-127.
  EXPECT_EQ(ue8m0_scale_exponent(0.0f, 0x1p-140f, 1.0f), -127);
  EXPECT_EQ(ue8m0_scale_exponent(0x1p-127f, 0x1p-140f, 1.0f), -127);
  EXPECT_EQ(ue8m0_scale_exponent(std::nextafter(0x1p-127f, 1.0f), 0x1p-140f, 1.0f), -126);
  EXPECT_EQ(ue8m0_scale_value(0), 0x1p-127f);
  EXPECT_EQ(ue8m0_scale_value(127), 1.0f);
  EXPECT_EQ(ue8m0_scale_value(254), 0x1p127f);
  // qmax = 1 (INT2): the largest floats need 2^128, beyond E8M0.
  expect_contains(error_of([] { ue8m0_scale_exponent(3e38f, 1e-4f, 1.0f); }), "above the E8M0 range");
  expect_contains(error_of([] { ue8m0_scale_exponent(-1.0f, 1e-4f, 448.0f); }), "block max = -1");
}

// ---------------------------------------------------------------- v4_native

// E4M3FN value by its definition (independent of fp_formats.h).
double e4m3_by_hand(uint8_t c) {
  const int sign = c >> 7, e = (c >> 3) & 15, m = c & 7;
  const double v = e == 0 ? std::ldexp(double(m), -9) : std::ldexp(1.0 + m / 8.0, e - 7);
  return sign ? -v : v;
}

// Decode a 584-byte (D = 512) or general record from its documented layout.
std::vector<float> v4_parse_by_hand(const uint8_t* rec, int64_t d) {
  const int64_t nope = d - 64, nb = nope / 64;
  std::vector<float> out(static_cast<size_t>(d));
  for (int64_t j = 0; j < nope; ++j) {
    const int e = int(rec[nope + 128 + j / 64]) - 127;
    out[j] = float(e4m3_by_hand(rec[j]) * std::ldexp(1.0, e));
  }
  for (int64_t j = 0; j < 64; ++j) {
    const uint32_t h = uint32_t(rec[nope + 2 * j]) | uint32_t(rec[nope + 2 * j + 1]) << 8;
    uint32_t u = h << 16;
    float f;
    std::memcpy(&f, &u, 4);
    out[nope + j] = f;
  }
  const int64_t padded = (nb + 7) / 8 * 8;
  for (int64_t k = nb; k < padded; ++k) EXPECT_EQ(rec[nope + 128 + k], 0) << "pad byte " << k;
  return out;
}

TEST(V4Native, CodeSizeIs584BytesAtD512) {
  EXPECT_EQ(v4_native_code_size(512), 584);
  EXPECT_EQ(v4_native_code_size(512) * 8, 4672);
  EXPECT_EQ(v4_native_code_size(128), 64 + 128 + 8);
  EXPECT_EQ(v4_native_code_size(576), 512 + 128 + 8);
  EXPECT_EQ(v4_native_code_size(640), 576 + 128 + 16);
  expect_contains(error_of([] { v4_native_code_size(64); }), "D = 64");
  expect_contains(error_of([] { v4_native_code_size(520); }), "D = 520");
}

TEST(V4Native, HandParsedBytesEqualDecodeAndTheScaleRule) {
  const int64_t d = 512, rows = 40;
  const auto x = edge_rows(rows, d, 1, 3e4f);
  const int64_t cs = v4_native_code_size(d);
  std::vector<uint8_t> codes(static_cast<size_t>(rows * cs));
  v4_native_encode_ref(x.data(), rows, d, codes.data());
  std::vector<float> dec(x.size());
  v4_native_decode_ref(codes.data(), rows, d, dec.data());
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* rec = codes.data() + r * cs;
    const auto hand = v4_parse_by_hand(rec, d);
    const auto res = check_parity(dec.data() + r * d, hand.data(), d);
    ASSERT_TRUE(res.ok()) << "row " << r << ": " << res.summary();
    for (int64_t k = 0; k < 7; ++k) {
      double amax = 0;
      for (int64_t j = 64 * k; j < 64 * (k + 1); ++j) amax = std::max(amax, double(std::fabs(x[r * d + j])));
      const float t = std::max(float(amax), 1e-4f) * (1.0f / 448.0f);
      ASSERT_EQ(int(rec[448 + 128 + k]) - 127, int(std::ceil(std::log2(double(t))))) << r << " " << k;
      // Power-of-two scale: every code within 448 and the error within half
      // an E4M3 step (2^-4 relative) or the subnormal step.
      const double s = std::ldexp(1.0, int(rec[448 + 128 + k]) - 127);
      for (int64_t j = 64 * k; j < 64 * (k + 1); ++j)
        ASSERT_LE(std::fabs(dec[r * d + j] - x[r * d + j]), std::fabs(x[r * d + j]) * 0.0625 + s * 0x1p-10)
            << r << " " << j;
    }
    for (int64_t j = 448; j < 512; ++j)
      ASSERT_EQ(dec[r * d + j], bf16_to_f32(f32_to_bf16(x[r * d + j])));
  }
  // The hand-made row 2 starts with 448: block scale 2^0 (byte 127), code 0x7E.
  EXPECT_EQ(codes[2 * cs + 0], 0x7E);
  EXPECT_EQ(codes[2 * cs + 1], 0x80);  // -0 keeps its sign
  EXPECT_EQ(codes[2 * cs + 576], 127);
  // Zero row: scale bytes at the floor (105), zero codes, zero output.
  for (int64_t j = 0; j < 448; ++j) EXPECT_EQ(codes[j], 0);
  for (int64_t k = 0; k < 7; ++k) EXPECT_EQ(codes[576 + k], 105);
  EXPECT_EQ(codes[583], 0);
  for (int64_t j = 0; j < d; ++j) EXPECT_EQ(dec[j], 0.0f);
}

TEST(V4Native, FastMatchesReferenceAtEveryLevel) {
  LevelGuard guard;
  for (int64_t d : {128, 512, 576, 1024}) {
    const int64_t rows = 37, cs = v4_native_code_size(d);
    const auto x = edge_rows(rows, d, unsigned(d), 1e30f);
    std::vector<uint8_t> ref(static_cast<size_t>(rows * cs));
    v4_native_encode_ref(x.data(), rows, d, ref.data());
    std::vector<float> dref(x.size());
    v4_native_decode_ref(ref.data(), rows, d, dref.data());
    for (SimdLevel lv : levels()) {
      SCOPED_TRACE(std::string(simd_level_name(lv)) + " D=" + std::to_string(d));
      set_simd_level(lv);
      std::vector<uint8_t> fast(ref.size(), 0xAB);
      v4_native_encode(x.data(), rows, d, fast.data());
      auto r = check_parity(fast.data(), ref.data(), int64_t(ref.size()));
      ASSERT_TRUE(r.ok()) << r.summary();
      std::vector<float> dec(x.size()), rt(x.size());
      v4_native_decode(ref.data(), rows, d, dec.data());
      r = check_parity(dec.data(), dref.data(), int64_t(dec.size()));
      ASSERT_TRUE(r.ok()) << r.summary();
      v4_native_roundtrip(x.data(), rows, d, rt.data());
      r = check_parity(rt.data(), dref.data(), int64_t(rt.size()));
      ASSERT_TRUE(r.ok()) << r.summary();
    }
  }
}

TEST(V4Native, EveryE4m3MagnitudeAtEveryLevel) {
  // Every float32 magnitude bit pattern in [0, 448] (strided), one block
  // pinned by 448 (s = 1) so the input itself is rounded.
  LevelGuard guard;
  const int64_t d = 128, cs = v4_native_code_size(d);
  std::vector<float> x;
  uint32_t u = 0;
  while (u <= 0x43e00000u) {
    x.push_back(448.0f);  // pins the block scale to 2^0
    for (int j = 1; j < 64; ++j, u += 997) {
      const float v = bits_f32(std::min(u, 0x43e00000u));
      x.push_back((u >> 3) & 1 ? -v : v);
    }
    x.resize(x.size() + 64, 0.5f);  // RoPE dims
  }
  const int64_t rows = int64_t(x.size()) / d;
  std::vector<uint8_t> ref(static_cast<size_t>(rows * cs)), fast(ref.size());
  v4_native_encode_ref(x.data(), rows, d, ref.data());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < 64; ++j)
      ASSERT_EQ(ref[r * cs + j], f32_to_e4m3(x[r * d + j], true)) << x[r * d + j];
  for (SimdLevel lv : levels()) {
    set_simd_level(lv);
    v4_native_encode(x.data(), rows, d, fast.data());
    const auto res = check_parity(fast.data(), ref.data(), int64_t(ref.size()));
    ASSERT_TRUE(res.ok()) << simd_level_name(lv) << ": " << res.summary();
  }
}

TEST(V4Native, RejectsCorruptBytesNamingVectorAndByte) {
  LevelGuard guard;
  const int64_t d = 512, rows = 3, cs = v4_native_code_size(d);
  const auto x = edge_rows(rows, d, 7, 10.f);
  std::vector<uint8_t> good(static_cast<size_t>(rows * cs));
  v4_native_encode(x.data(), rows, d, good.data());
  std::vector<float> out(x.size());
  struct Case {
    int64_t byte;
    uint8_t value;
    const char* needle;
  };
  const Case cases[] = {{cs + 578, 0xff, "vector 1 byte 578 is the UE8M0 NaN scale 0xff"},
                        {2 * cs + 583, 0x01, "vector 2 pad byte 583 is 0x01"},
                        {cs + 17, 0x7f, "vector 1 byte 17 is an E4M3 NaN code 0x7f"},
                        {17, 0xff, "vector 0 byte 17 is an E4M3 NaN code 0xff"},
                        {cs + 449, 0x7f, "vector 1 bytes 448-449 hold the bf16 infinity/NaN pattern 0x7f80"}};
  for (const auto& c : cases) {
    auto bad = good;
    bad[c.byte] = c.value;
    if (c.byte == cs + 449) bad[cs + 448] = 0x80;  // bf16 0x7f80 = +inf
    for (SimdLevel lv : levels()) {
      set_simd_level(lv);
      expect_contains(error_of([&] { v4_native_decode(bad.data(), rows, d, out.data()); }), c.needle);
    }
    expect_contains(error_of([&] { v4_native_decode_ref(bad.data(), rows, d, out.data()); }), c.needle);
  }
}

TEST(V4Native, RejectsNonFiniteInputNamingRowAndColumn) {
  LevelGuard guard;
  const int64_t d = 512, rows = 3;
  for (int64_t col : {5, 300, 470}) {
    auto x = edge_rows(rows, d, 8, 10.f);
    x[2 * d + col] = std::numeric_limits<float>::quiet_NaN();
    std::vector<uint8_t> c(static_cast<size_t>(rows * v4_native_code_size(d)));
    std::vector<float> o(x.size());
    const std::string needle = "row 2 column " + std::to_string(col) + " is nan";
    for (SimdLevel lv : levels()) {
      set_simd_level(lv);
      expect_contains(error_of([&] { v4_native_encode(x.data(), rows, d, c.data()); }), needle);
      expect_contains(error_of([&] { v4_native_roundtrip(x.data(), rows, d, o.data()); }), needle);
    }
    expect_contains(error_of([&] { v4_native_encode_ref(x.data(), rows, d, c.data()); }), needle);
  }
  // A RoPE value whose bf16 rounding overflows.
  auto x = edge_rows(rows, d, 9, 10.f);
  x[d + 500] = std::numeric_limits<float>::max();
  std::vector<uint8_t> c(static_cast<size_t>(rows * v4_native_code_size(d)));
  expect_contains(error_of([&] { v4_native_encode(x.data(), rows, d, c.data()); }), "row 1 column 500");
  expect_contains(error_of([&] { v4_native_encode_ref(x.data(), rows, d, c.data()); }), "bf16 infinity");
}

// ---------------------------------------------------------------- int

std::vector<IntFormat> int_formats(bool hadamard) {
  std::vector<IntFormat> v;
  for (int bits = 2; bits <= 8; ++bits)
    for (int64_t block : {8, 32, 64, 128})
      for (IntScale sc : {IntScale::kUf16, IntScale::kUe8m0}) v.push_back({bits, block, sc, hadamard});
  return v;
}

std::string fmt_name(const IntFormat& f) {
  return fmt::format("{}K={} B={} {}", f.hadamard ? "hadamard " : "", f.bits, f.block,
                     f.scale == IntScale::kUf16 ? "uf16" : "ue8m0");
}

TEST(IntFormat, CodeSizes) {
  EXPECT_EQ(int_code_size({8, 64, IntScale::kUf16, false}, 512) * 8, 4224);  // = fp8_per64
  EXPECT_EQ(int_code_size({6, 64, IntScale::kUf16, false}, 512) * 8, 3200);
  EXPECT_EQ(int_code_size({4, 32, IntScale::kUe8m0, true}, 512), 256 + 16);
  EXPECT_EQ(int_code_size({2, 8, IntScale::kUe8m0, false}, 64), 16 + 8);
  expect_contains(error_of([] { int_code_size({9, 64, IntScale::kUf16, false}, 512); }), "bits = 9");
  expect_contains(error_of([] { int_code_size({1, 64, IntScale::kUf16, false}, 512); }), "bits = 1");
  expect_contains(error_of([] { int_code_size({8, 12, IntScale::kUf16, false}, 48); }), "block = 12");
  expect_contains(error_of([] { int_code_size({8, 64, IntScale::kUf16, false}, 96); }), "D = 96");
  expect_contains(error_of([] { int_code_size({8, 64, IntScale::kUf16, true}, 576); }), "D = 576");
}

TEST(IntFormat, FastMatchesReferenceAtEveryLevel) {
  LevelGuard guard;
  for (bool had : {false, true})
    for (const auto& f : int_formats(had))
      for (int64_t d : {128, 512}) {
        if (d % f.block) continue;
        SCOPED_TRACE(fmt_name(f) + " D=" + std::to_string(d));
        const int64_t rows = 19, cs = int_code_size(f, d);
        const auto x = edge_rows(rows, d, unsigned(f.bits * 31 + f.block), 3e4f);
        std::vector<uint8_t> ref(static_cast<size_t>(rows * cs));
        int_encode_ref(f, x.data(), rows, d, ref.data());
        std::vector<float> dref(x.size());
        int_decode_ref(f, ref.data(), rows, d, dref.data());
        for (SimdLevel lv : levels()) {
          SCOPED_TRACE(simd_level_name(lv));
          set_simd_level(lv);
          std::vector<uint8_t> fast(ref.size(), 0xAB);
          int_encode(f, x.data(), rows, d, fast.data());
          auto r = check_parity(fast.data(), ref.data(), int64_t(ref.size()));
          ASSERT_TRUE(r.ok()) << r.summary();
          std::vector<float> dec(x.size()), rt(x.size());
          int_decode(f, ref.data(), rows, d, dec.data());
          r = check_parity(dec.data(), dref.data(), int64_t(dec.size()));
          ASSERT_TRUE(r.ok()) << r.summary();
          int_roundtrip(f, x.data(), rows, d, rt.data());
          r = check_parity(rt.data(), dref.data(), int64_t(rt.size()));
          ASSERT_TRUE(r.ok()) << r.summary();
        }
      }
}

TEST(IntFormat, SymbolsAndScalesReproduceTheDecode) {
  for (const auto& f : int_formats(false)) {
    SCOPED_TRACE(fmt_name(f));
    const int64_t d = 256, rows = 9, cs = int_code_size(f, d), nb = d / f.block;
    const auto x = edge_rows(rows, d, 11, 100.f);
    std::vector<uint8_t> c(static_cast<size_t>(rows * cs));
    int_encode(f, x.data(), rows, d, c.data());
    std::vector<int16_t> sym(x.size());
    std::vector<uint16_t> sc(static_cast<size_t>(rows * nb));
    int_symbols(f, c.data(), rows, d, sym.data(), sc.data());
    std::vector<float> dec(x.size());
    int_decode(f, c.data(), rows, d, dec.data());
    const int qmax = (1 << (f.bits - 1)) - 1;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < d; ++j) {
        const int16_t q = sym[r * d + j];
        ASSERT_LE(std::abs(q), qmax);
        const uint16_t field = sc[r * nb + j / f.block];
        const double s = f.scale == IntScale::kUf16 ? double(float(uf16_to_f32(field) / float(qmax)))
                                                    : std::ldexp(1.0, int(field) - 127);
        ASSERT_EQ(dec[r * d + j], float(double(q) * s)) << r << " " << j;
        // Half a step of error at most (nothing clips: s covers the maximum).
        ASSERT_LE(std::fabs(double(x[r * d + j]) - dec[r * d + j]), 0.5 * s * (1 + 1e-6) + 1e-30);
      }
    // Row 3: maxima 7/4 and half steps; with K = 4 (qmax 7) s = 1/4 and the
    // ties k + 1/2 go to the even neighbour.
    if (f.bits == 4 && f.block == 8) {
      for (int64_t j = 1; j < 8; ++j) {
        const float t = (float(j % 7) - 3.0f + 0.5f);
        EXPECT_EQ(sym[3 * d + j], int16_t(std::nearbyint(t))) << j;
      }
    }
  }
}

TEST(IntFormat, ErrorFallsAsBitsRiseAndZeroVectorIsExact) {
  const int64_t d = 512, rows = 64;
  std::mt19937 rng(5);
  std::normal_distribution<float> g;
  std::vector<float> x(static_cast<size_t>(rows * d));
  for (auto& v : x) v = g(rng);
  for (bool had : {false, true})
    for (IntScale sc : {IntScale::kUf16, IntScale::kUe8m0}) {
      double prev = 1e30;
      for (int bits = 2; bits <= 8; ++bits) {
        const IntFormat f{bits, 64, sc, had};
        std::vector<float> o(x.size());
        int_roundtrip(f, x.data(), rows, d, o.data());
        double err = 0, ref = 0;
        for (size_t i = 0; i < x.size(); ++i) {
          err += (double(o[i]) - x[i]) * (double(o[i]) - x[i]);
          ref += double(x[i]) * x[i];
        }
        EXPECT_LT(err / ref, prev * 0.5) << fmt_name(f);
        prev = err / ref;
      }
      std::vector<float> z(static_cast<size_t>(d), 0.0f), oz(z.size(), 1.0f);
      int_roundtrip({4, 64, sc, had}, z.data(), 1, d, oz.data());
      for (float v : oz) EXPECT_EQ(v, 0.0f);
    }
}

TEST(IntFormat, RejectsCorruptBytesAndBadInput) {
  LevelGuard guard;
  const int64_t d = 128, rows = 3;
  for (int bits : {3, 4, 8}) {
    const IntFormat f{bits, 64, IntScale::kUe8m0, false};
    const int64_t cs = int_code_size(f, d);
    const auto x = edge_rows(rows, d, 12, 10.f);
    std::vector<uint8_t> good(static_cast<size_t>(rows * cs));
    int_encode(f, x.data(), rows, d, good.data());
    std::vector<float> out(x.size());
    // Coordinate 8 of vector 1 set to -2^(K-1) (bits [8K, 9K)).
    auto bad = good;
    for (int i = 0; i < bits; ++i) {
      const int64_t bit = 8 * bits + i;
      uint8_t& byte = bad[cs + bit / 8];
      const uint8_t m = uint8_t(1u << (bit % 8));
      byte = i == bits - 1 ? uint8_t(byte | m) : uint8_t(byte & ~m);
    }
    const std::string needle = fmt::format("vector 1 byte {} holds the code -{} for coordinate 8", bits, 1 << (bits - 1));
    for (SimdLevel lv : levels()) {
      set_simd_level(lv);
      expect_contains(error_of([&] { int_decode(f, bad.data(), rows, d, out.data()); }), needle);
    }
    expect_contains(error_of([&] { int_decode_ref(f, bad.data(), rows, d, out.data()); }), needle);
    bad = good;
    bad[2 * cs + bits * d / 8 + 1] = 0xff;
    const std::string n2 = fmt::format("vector 2 byte {} is the UE8M0 NaN scale", bits * d / 8 + 1);
    expect_contains(error_of([&] { int_decode(f, bad.data(), rows, d, out.data()); }), n2);
    expect_contains(error_of([&] { int_decode_ref(f, bad.data(), rows, d, out.data()); }), n2);
  }
  // Non-finite input and the uf16 field limit.
  for (bool had : {false, true}) {
    const IntFormat f{8, 64, IntScale::kUf16, had};
    auto x = edge_rows(rows, d, 13, 10.f);
    x[d + 77] = -std::numeric_limits<float>::infinity();
    std::vector<uint8_t> c(static_cast<size_t>(rows * int_code_size(f, d)));
    std::vector<float> o(x.size());
    for (SimdLevel lv : levels()) {
      set_simd_level(lv);
      expect_contains(error_of([&] { int_encode(f, x.data(), rows, d, c.data()); }), "row 1 column 77 is -inf");
      expect_contains(error_of([&] { int_roundtrip(f, x.data(), rows, d, o.data()); }), "row 1 column 77 is -inf");
    }
    expect_contains(error_of([&] { int_encode_ref(f, x.data(), rows, d, c.data()); }), "row 1 column 77 is -inf");
    x[d + 77] = 1e12f;
    expect_contains(error_of([&] { int_encode(f, x.data(), rows, d, c.data()); }), "uf16");
    expect_contains(error_of([&] { int_encode_ref(f, x.data(), rows, d, c.data()); }), "uf16");
  }
}

// ---------------------------------------------------------------- hadamard_lloyd

TEST(LloydMax, TablesMatchThePublishedGaussianQuantisers) {
  // Max (1960) for N(0,1), to 4 decimals (within one unit of the 4th: his
  // 16-level table is slightly off, e.g. 0.9424 and MSE 0.009497 where the
  // converged table gives 0.942340 and 0.009501; an independent numerical
  // integration of the MSE agrees with the latter). The converged values
  // are pinned to 1e-6 as a regression check.
  const auto& q1 = lloyd_max_gaussian(1);
  EXPECT_NEAR(q1.level[1], 0.7979, 5e-5);  // sqrt(2/pi)
  EXPECT_NEAR(q1.level[0], -0.7979, 5e-5);
  EXPECT_NEAR(q1.mse, 0.3634, 5e-5);
  const auto& q2 = lloyd_max_gaussian(2);
  EXPECT_NEAR(q2.level[2], 0.4528, 5e-5);
  EXPECT_NEAR(q2.level[3], 1.510, 5e-4);
  EXPECT_NEAR(q2.threshold[2], 0.9816, 5e-5);
  EXPECT_NEAR(q2.mse, 0.1175, 5e-5);
  const auto& q3 = lloyd_max_gaussian(3);
  const double l3[4] = {0.2451, 0.7560, 1.3439, 2.1520};
  const double c3[4] = {0.245094, 0.756005, 1.343909, 2.151946};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(q3.level[4 + i], l3[i], 1e-4) << i;
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(q3.level[4 + i], c3[i], 1e-6) << i;
  EXPECT_NEAR(q3.mse, 0.03454, 5e-5);
  EXPECT_NEAR(q3.mse, 0.034548, 5e-6);
  const auto& q4 = lloyd_max_gaussian(4);
  const double l4[8] = {0.1284, 0.3881, 0.6568, 0.9424, 1.2562, 1.6180, 2.0690, 2.7326};
  const double c4[8] = {0.128395, 0.388048, 0.656759, 0.942340, 1.256231, 1.618046, 2.069017, 2.732590};
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(q4.level[8 + i], l4[i], 1e-4) << i;
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(q4.level[8 + i], c4[i], 1e-6) << i;
  EXPECT_NEAR(q4.mse, 0.009497, 5e-5);
  EXPECT_NEAR(q4.mse, 0.009501, 5e-7);
  for (int k = 1; k <= 4; ++k) {
    const auto& q = lloyd_max_gaussian(k);
    EXPECT_EQ(q.levels, 1 << k);
    for (int i = 0; i < q.levels; ++i) EXPECT_NEAR(q.level[i], -q.level[q.levels - 1 - i], 1e-10);
    for (int i = 0; i + 1 < q.levels; ++i) EXPECT_LT(q.level[i], q.level[i + 1]);
  }
  expect_contains(error_of([] { lloyd_max_gaussian(5); }), "bits = 5");
}

TEST(HadamardLloyd, FastMatchesReferenceAtEveryLevel) {
  LevelGuard guard;
  for (int bits = 1; bits <= 4; ++bits)
    for (int64_t d : {8, 128, 512}) {
      SCOPED_TRACE("K=" + std::to_string(bits) + " D=" + std::to_string(d));
      const int64_t rows = 21, cs = hadamard_lloyd_code_size(bits, d);
      EXPECT_EQ(cs, 2 + bits * d / 8);
      const auto x = edge_rows(rows, d, unsigned(bits + d), 3e4f);
      std::vector<uint8_t> ref(static_cast<size_t>(rows * cs));
      hadamard_lloyd_encode_ref(bits, x.data(), rows, d, ref.data());
      std::vector<float> dref(x.size());
      hadamard_lloyd_decode_ref(bits, ref.data(), rows, d, dref.data());
      for (SimdLevel lv : levels()) {
        SCOPED_TRACE(simd_level_name(lv));
        set_simd_level(lv);
        std::vector<uint8_t> fast(ref.size(), 0xAB);
        hadamard_lloyd_encode(bits, x.data(), rows, d, fast.data());
        auto r = check_parity(fast.data(), ref.data(), int64_t(ref.size()));
        ASSERT_TRUE(r.ok()) << r.summary();
        std::vector<float> dec(x.size()), rt(x.size());
        hadamard_lloyd_decode(bits, ref.data(), rows, d, dec.data());
        r = check_parity(dec.data(), dref.data(), int64_t(dec.size()));
        ASSERT_TRUE(r.ok()) << r.summary();
        hadamard_lloyd_roundtrip(bits, x.data(), rows, d, rt.data());
        r = check_parity(rt.data(), dref.data(), int64_t(rt.size()));
        ASSERT_TRUE(r.ok()) << r.summary();
      }
      // Zero row: sigma16 = 0, zero indices, zero output.
      EXPECT_EQ(ref[0], 0);
      EXPECT_EQ(ref[1], 0);
      for (int64_t j = 0; j < d; ++j) EXPECT_EQ(dref[j], 0.0f);
    }
}

// The rotated formats on every shape their kernels take, against the
// oracle at every level: D = 16 .. 1024 (a single register tile, D = 16R,
// and the tile + tail passes), every K, every block (8: the unfused path;
// 16 .. 128: the fused AVX-512 one), both scales, odd row counts; bytes,
// decoded floats and the fused roundtrip. Lloyd K = 1..4 likewise (D = 8
// runs the AVX2 path).
TEST(ScalarQuantRotated, EveryShapeMatchesReferenceAtEveryLevel) {
  LevelGuard guard;
  for (int64_t d : {8, 16, 32, 64, 128, 256, 512, 1024}) {
    const int64_t rows = d >= 512 ? 7 : 13;
    const auto x = edge_rows(rows, d, unsigned(d + 5), 3e4f);
    std::vector<float> dref(x.size()), dec(x.size()), rt(x.size());
    auto check = [&](const std::vector<uint8_t>& ref, auto&& enc, auto&& decode, auto&& roundtrip) {
      for (SimdLevel lv : levels()) {
        SCOPED_TRACE(simd_level_name(lv));
        set_simd_level(lv);
        std::vector<uint8_t> fast(ref.size(), 0xAB);
        enc(fast.data());
        auto r = check_parity(fast.data(), ref.data(), int64_t(ref.size()));
        ASSERT_TRUE(r.ok()) << "bytes: " << r.summary();
        decode(ref.data(), dec.data());
        r = check_parity(dec.data(), dref.data(), int64_t(dec.size()));
        ASSERT_TRUE(r.ok()) << "decode: " << r.summary();
        roundtrip(rt.data());
        r = check_parity(rt.data(), dref.data(), int64_t(rt.size()));
        ASSERT_TRUE(r.ok()) << "roundtrip: " << r.summary();
      }
    };
    for (int bits = 2; bits <= 8; ++bits)
      for (int64_t block : {8, 16, 32, 64, 128})
        for (IntScale sc : {IntScale::kUf16, IntScale::kUe8m0}) {
          if (block > d) continue;
          const IntFormat f{bits, block, sc, true};
          SCOPED_TRACE(fmt_name(f) + " D=" + std::to_string(d));
          std::vector<uint8_t> ref(static_cast<size_t>(rows * int_code_size(f, d)));
          int_encode_ref(f, x.data(), rows, d, ref.data());
          int_decode_ref(f, ref.data(), rows, d, dref.data());
          check(
              ref, [&](uint8_t* c) { int_encode(f, x.data(), rows, d, c); },
              [&](const uint8_t* c, float* o) { int_decode(f, c, rows, d, o); },
              [&](float* o) { int_roundtrip(f, x.data(), rows, d, o); });
        }
    for (int bits = 1; bits <= 4; ++bits) {
      SCOPED_TRACE("lloyd K=" + std::to_string(bits) + " D=" + std::to_string(d));
      std::vector<uint8_t> ref(static_cast<size_t>(rows * hadamard_lloyd_code_size(bits, d)));
      hadamard_lloyd_encode_ref(bits, x.data(), rows, d, ref.data());
      hadamard_lloyd_decode_ref(bits, ref.data(), rows, d, dref.data());
      check(
          ref, [&](uint8_t* c) { hadamard_lloyd_encode(bits, x.data(), rows, d, c); },
          [&](const uint8_t* c, float* o) { hadamard_lloyd_decode(bits, c, rows, d, o); },
          [&](float* o) { hadamard_lloyd_roundtrip(bits, x.data(), rows, d, o); });
    }
  }
}

// Errors from the fused rotated paths name the row and column as before.
TEST(ScalarQuantRotated, FusedPathsRejectBadInputAndBytes) {
  LevelGuard guard;
  const int64_t d = 512, rows = 3;
  const IntFormat f{4, 64, IntScale::kUe8m0, true};
  for (SimdLevel lv : levels()) {
    set_simd_level(lv);
    auto x = edge_rows(rows, d, 21, 10.f);
    x[d + 77] = std::numeric_limits<float>::infinity();
    std::vector<uint8_t> c(static_cast<size_t>(rows * int_code_size(f, d)));
    std::vector<float> o(x.size());
    expect_contains(error_of([&] { int_roundtrip(f, x.data(), rows, d, o.data()); }), "row 1 column 77 is inf");
    expect_contains(error_of([&] { int_encode(f, x.data(), rows, d, c.data()); }), "row 1 column 77 is inf");
    expect_contains(error_of([&] { hadamard_lloyd_roundtrip(3, x.data(), rows, d, o.data()); }),
                    "row 1 column 77 is inf");
    // A block maximum above the uf16 field (fp16 scales), after the rotation.
    const IntFormat f16{8, 64, IntScale::kUf16, true};
    x[d + 77] = 1e12f;
    std::vector<uint8_t> c16(static_cast<size_t>(rows * int_code_size(f16, d)));
    expect_contains(error_of([&] { int_roundtrip(f16, x.data(), rows, d, o.data()); }), "row 1 block");
    expect_contains(error_of([&] { int_roundtrip(f16, x.data(), rows, d, o.data()); }), "uf16");
    expect_contains(error_of([&] { int_encode(f16, x.data(), rows, d, c16.data()); }), "uf16");
    x[d + 77] = 1.0f;
    int_encode(f, x.data(), rows, d, c.data());
    c[2 * int_code_size(f, d) + d / 2 + 3] = 0xff;  // row 2's fourth UE8M0 scale byte
    expect_contains(error_of([&] { int_decode(f, c.data(), rows, d, o.data()); }), "vector 2 byte 259");
  }
}

// sumsq8's order: partial l accumulates x_j^2 (j = l mod 8) in order of j.
double sumsq8_in_order(const float* x, int64_t d) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t j = 0; j < d; ++j) acc[j % 8] += double(x[j]) * double(x[j]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// The same partial sums with each 16 values' halves added high first (the
// bug the fused kernel must not have: its loads are 16 wide).
double sumsq8_halves_swapped(const float* x, int64_t d) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = 0; i < d; i += 16)
    for (int64_t j : {i + 8, i})
      for (int l = 0; l < 8; ++l) acc[l] += double(x[j + l]) * double(x[j + l]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// The fused roundtrip's kernels (D >= 256): fwht_tiles_sumsq returns exactly
// sumsq8's double (the sigma16 code depends on every bit of it near a uf16
// rounding boundary) and avx512::sumsq8_rows's, non-finite exactly for rows
// with NaN/Inf; its first passes plus lloyd_roundtrip_finish are
// lloyd_roundtrip_row, every K. Rows of wide per-value dynamic range make
// the sum depend on the order of the adds.
TEST(HadamardLloyd, FusedSumOfSquaresIsSumsq8Exactly) {
  if (!cpu_has_avx512()) GTEST_SKIP() << "the fused kernels run only at the AVX-512 level (not on this CPU)";
  std::mt19937 rng(41);
  std::normal_distribution<float> g;
  std::uniform_real_distribution<float> e(-3.f, 3.f);
  for (int64_t d : {256, 512, 1024, 4096}) {
    SCOPED_TRACE("D=" + std::to_string(d));
    const int64_t rows = 12;
    std::vector<float> x(static_cast<size_t>(rows * d));
    for (auto& v : x) v = g(rng) * std::exp2(e(rng));
    for (int64_t j = 0; j < d; ++j) x[static_cast<size_t>(2 * d + j)] = (j % 2 ? -1.f : 1.f) * std::numeric_limits<float>::max();
    x[static_cast<size_t>(3 * d + d - 1)] = std::numeric_limits<float>::infinity();
    x[static_cast<size_t>(4 * d + 7)] = -std::numeric_limits<float>::infinity();
    x[static_cast<size_t>(5 * d + d / 2)] = std::numeric_limits<float>::quiet_NaN();
    std::vector<double> ss4(static_cast<size_t>(rows));
    std::vector<uint32_t> mb(static_cast<size_t>(rows));
    avx512::sumsq8_rows(x.data(), rows, d, ss4.data(), mb.data());
    std::vector<float> y(static_cast<size_t>(d)), y2(y.size()), o1(y.size()), o2(y.size());
    int order_sensitive = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = x.data() + r * d;
      const double ref = sumsq8_in_order(row, d);
      const double ss = avx512::fwht_tiles_sumsq(row, d, y.data());
      const bool bad = r >= 3 && r <= 5;
      EXPECT_EQ(std::isfinite(ss), !bad) << "row " << r << " sum " << ss;
      if (bad) continue;
      ASSERT_EQ(std::memcmp(&ss, &ref, sizeof ss), 0) << "row " << r << ": " << ss << " vs " << ref;
      ASSERT_EQ(std::memcmp(&ss, &ss4[static_cast<size_t>(r)], sizeof ss), 0) << "row " << r;
      const double swapped = sumsq8_halves_swapped(row, d);
      order_sensitive += std::memcmp(&swapped, &ref, sizeof ref) != 0;
      if (r >= 6 && r < 10) {  // K = r - 5: finish == the one-kernel roundtrip
        const int bits = int(r - 5);
        const LloydMaxGaussian& q = lloyd_max_gaussian(bits);
        float thr[16], lev[16];
        for (int k = 0; k < 16; ++k) {
          thr[k] = k < q.levels - 1 ? q.threshold_f[k] : std::numeric_limits<float>::infinity();
          lev[k] = k < q.levels ? q.level_f[k] : 0.0f;
        }
        const float sig = float(std::sqrt(ss / double(d)));
        avx512::lloyd_roundtrip_finish(y.data(), d, bits, thr, lev, sig, o1.data(), false);
        avx512::lloyd_roundtrip_row(row, d, bits, thr, lev, sig, y2.data(), o2.data(), false);
        const auto res = check_parity(o1.data(), o2.data(), d);
        ASSERT_TRUE(res.ok()) << "K=" << bits << ": " << res.summary();
      }
    }
    EXPECT_GE(order_sensitive, 3) << "the test rows do not tell the order of the adds apart";
  }
}

// The pipelined roundtrip (row r + 1's sum before row r's finish) still
// checks and fails row by row: rows before a bad row are written and equal
// the oracle's, the error names the bad row (sigma above uf16, NaN), and a
// single row or none works. Every level, D = 512.
TEST(HadamardLloyd, PipelinedRoundtripFailsRowByRow) {
  LevelGuard guard;
  const int64_t d = 512, rows = 5;
  const auto base = edge_rows(rows, d, 77, 3e4f);
  std::vector<uint8_t> c(static_cast<size_t>(rows * hadamard_lloyd_code_size(3, d)));
  std::vector<float> ref(base.size());
  hadamard_lloyd_encode_ref(3, base.data(), rows, d, c.data());
  hadamard_lloyd_decode_ref(3, c.data(), rows, d, ref.data());
  for (SimdLevel lv : levels()) {
    SCOPED_TRACE(simd_level_name(lv));
    set_simd_level(lv);
    auto x = base;
    for (int64_t j = 0; j < d; ++j) x[static_cast<size_t>(3 * d + j)] = 1e30f;
    std::vector<float> o(x.size(), -1.0f);
    const std::string err = error_of([&] { hadamard_lloyd_roundtrip(3, x.data(), rows, d, o.data()); });
    expect_contains(err, "row 3 has RMS");
    expect_contains(err, "uf16");
    auto res = check_parity(o.data(), ref.data(), 3 * d);
    ASSERT_TRUE(res.ok()) << "rows before the bad one: " << res.summary();
    EXPECT_EQ(o[static_cast<size_t>(3 * d)], -1.0f);  // the bad row is not written
    x = base;
    x[static_cast<size_t>(4 * d + 5)] = std::numeric_limits<float>::quiet_NaN();
    expect_contains(error_of([&] { hadamard_lloyd_roundtrip(3, x.data(), rows, d, o.data()); }),
                    "row 4 column 5 is nan");
    res = check_parity(o.data(), ref.data(), 4 * d);
    ASSERT_TRUE(res.ok()) << "rows before the NaN row: " << res.summary();
    std::vector<float> one(static_cast<size_t>(d), -1.0f);
    hadamard_lloyd_roundtrip(3, base.data() + 4 * d, 1, d, one.data());
    res = check_parity(one.data(), ref.data() + 4 * d, d);
    ASSERT_TRUE(res.ok()) << "one row: " << res.summary();
    hadamard_lloyd_roundtrip(3, base.data(), 0, d, nullptr);
  }
}

TEST(HadamardLloyd, SymbolsErrorAndCorruptBytes) {
  const int64_t d = 512, rows = 200;
  std::mt19937 rng(6);
  std::normal_distribution<float> g;
  std::vector<float> x(static_cast<size_t>(rows * d));
  for (auto& v : x) v = g(rng);
  for (int bits = 1; bits <= 4; ++bits) {
    const auto& q = lloyd_max_gaussian(bits);
    const int64_t cs = hadamard_lloyd_code_size(bits, d);
    std::vector<uint8_t> c(static_cast<size_t>(rows * cs));
    hadamard_lloyd_encode(bits, x.data(), rows, d, c.data());
    std::vector<int16_t> sym(x.size());
    std::vector<uint16_t> sig(rows);
    hadamard_lloyd_symbols(bits, c.data(), rows, d, sym.data(), sig.data());
    // Gaussian input: the rotated coordinates are N(0, sigma^2), the index
    // histogram follows the cell masses and rel-MSE is near the table's MSE.
    std::vector<double> hist(static_cast<size_t>(q.levels), 0.0);
    for (int16_t s : sym) hist[static_cast<size_t>(s)] += 1.0 / double(sym.size());
    for (int i = 0; i < q.levels; ++i) {
      const double a = i == 0 ? -40 : q.threshold[i - 1], b = i + 1 == q.levels ? 40 : q.threshold[i];
      const double p = 0.5 * (std::erfc(-b / std::sqrt(2.0)) - std::erfc(-a / std::sqrt(2.0)));
      EXPECT_NEAR(hist[i], p, 0.01) << bits << " " << i;
    }
    std::vector<float> o(x.size());
    hadamard_lloyd_decode(bits, c.data(), rows, d, o.data());
    double err = 0, ref = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      err += (double(o[i]) - x[i]) * (double(o[i]) - x[i]);
      ref += double(x[i]) * x[i];
    }
    EXPECT_NEAR(err / ref, q.mse, 0.1 * q.mse) << bits;
    for (int64_t r = 0; r < rows; ++r) EXPECT_NEAR(uf16_to_f32(sig[r]), 1.0, 0.1);
  }
  // A zero scale with non-zero indices is no encoder's output.
  const int64_t cs = hadamard_lloyd_code_size(3, 64);
  std::vector<uint8_t> c(static_cast<size_t>(2 * cs), 0);
  c[cs + 5] = 1;
  std::vector<float> o(128);
  expect_contains(error_of([&] { hadamard_lloyd_decode(3, c.data(), 2, 64, o.data()); }),
                  "vector 1 byte 5 is 0x01 but the scale sigma16 is zero");
  expect_contains(error_of([&] { hadamard_lloyd_decode_ref(3, c.data(), 2, 64, o.data()); }), "vector 1 byte 5");
  expect_contains(error_of([] { hadamard_lloyd_code_size(3, 96); }), "D = 96");
  expect_contains(error_of([] { hadamard_lloyd_code_size(5, 64); }), "bits = 5");
  std::vector<float> bad(64, 1.0f);
  bad[9] = std::numeric_limits<float>::quiet_NaN();
  expect_contains(error_of([&] { hadamard_lloyd_encode(3, bad.data(), 1, 64, c.data()); }), "row 0 column 9 is nan");
}

TEST(ScalarQuantRotated, StreamedLargeRoundtripsEqualDecodeOfEncode) {
  // 2^24 output floats take the non-temporal store path of the rotated
  // roundtrips (64-byte aligned output); the values must not change.
  LevelGuard guard;
  const int64_t d = 512, rows = (int64_t(16) << 20) / d;
  std::mt19937 rng(15);
  std::normal_distribution<float> g;
  std::vector<float> x(static_cast<size_t>(rows * d));
  for (auto& v : x) v = g(rng);
  for (int64_t j = 0; j < d; ++j) x[5 * d + j] = 0.0f;  // a zero row
  struct Aligned {
    float* p;
    explicit Aligned(size_t n) : p(static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)))) {}
    ~Aligned() { std::free(p); }
  };
  Aligned rt(x.size());
  std::vector<float> dec(x.size());
  const IntFormat f{8, 64, IntScale::kUf16, true};
  std::vector<uint8_t> c(static_cast<size_t>(rows * std::max(int_code_size(f, d), hadamard_lloyd_code_size(2, d))));
  for (SimdLevel lv : levels()) {
    set_simd_level(lv);
    int_encode(f, x.data(), rows, d, c.data());
    int_decode(f, c.data(), rows, d, dec.data());
    int_roundtrip(f, x.data(), rows, d, rt.p);
    auto r = check_parity(rt.p, dec.data(), int64_t(dec.size()));
    ASSERT_TRUE(r.ok()) << simd_level_name(lv) << ": " << r.summary();
    hadamard_lloyd_encode(2, x.data(), rows, d, c.data());
    hadamard_lloyd_decode(2, c.data(), rows, d, dec.data());
    hadamard_lloyd_roundtrip(2, x.data(), rows, d, rt.p);
    r = check_parity(rt.p, dec.data(), int64_t(dec.size()));
    ASSERT_TRUE(r.ok()) << simd_level_name(lv) << ": " << r.summary();
  }
}

// ---------------------------------------------------------------- planted mismatch

// A broken int kernel: rounds half away from zero (std::round) instead of
// to even. It differs from the oracle exactly on ties.
void int_encode_broken(const IntFormat& f, const float* x, int64_t rows, int64_t d, uint8_t* codes) {
  int_encode_ref(f, x, rows, d, codes);
  const int64_t cs = int_code_size(f, d);
  const float qmax = float((1 << (f.bits - 1)) - 1);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < d / f.block; ++k) {
      const float s = ue8m0_scale_value(codes[r * cs + d + k]);
      for (int64_t j = k * f.block; j < (k + 1) * f.block; ++j)
        codes[r * cs + j] = uint8_t(int8_t(std::round(std::clamp(x[r * d + j] / s, -qmax, qmax))));
    }
}

TEST(ScalarQuantParity, CheckerCatchesPlantedMismatch) {
  const IntFormat f{8, 8, IntScale::kUe8m0, false};
  const int64_t d = 64, rows = 4, cs = int_code_size(f, d);
  const auto x = edge_rows(rows, d, 14, 10.f);
  std::vector<uint8_t> ref(static_cast<size_t>(rows * cs)), fast(ref.size()), broken(ref.size());
  int_encode_ref(f, x.data(), rows, d, ref.data());
  int_encode(f, x.data(), rows, d, fast.data());
  ASSERT_TRUE(check_parity(fast.data(), ref.data(), int64_t(ref.size())).ok());
  // One flipped bit in one code byte.
  fast[cs + 3] ^= 1;
  auto r = check_parity(fast.data(), ref.data(), int64_t(ref.size()));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.mismatches, 1);
  EXPECT_EQ(r.first_mismatch, cs + 3);
  // A whole kernel with the wrong tie rule: block maxima 100 give s = 2^0,
  // so every j + 1/2 is a tie.
  std::vector<float> ties(static_cast<size_t>(d));
  for (int64_t j = 0; j < d; ++j) ties[j] = j % 8 == 0 ? 100.0f : float(j % 8) + 0.5f;
  std::vector<uint8_t> tr(static_cast<size_t>(cs)), tb(tr.size());
  int_encode_ref(f, ties.data(), 1, d, tr.data());
  int_encode_broken(f, ties.data(), 1, d, tb.data());
  r = check_parity(tb.data(), tr.data(), cs);
  EXPECT_FALSE(r.ok());
  EXPECT_GT(r.mismatches, 10);
  // A one-ulp change in a decoded float.
  std::vector<float> a(x.size()), b(x.size());
  int_decode_ref(f, ref.data(), rows, d, a.data());
  int_roundtrip(f, x.data(), rows, d, b.data());
  ASSERT_TRUE(check_parity(b.data(), a.data(), int64_t(a.size())).ok());
  b[100] = std::nextafter(b[100], 1e9f);
  EXPECT_FALSE(check_parity(b.data(), a.data(), int64_t(a.size())).ok());
}

}  // namespace
}  // namespace kvlab::kernels
