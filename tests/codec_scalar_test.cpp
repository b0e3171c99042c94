// The scalar baseline codecs (IntBlockCodec, HadamardLloydCodec,
// V4NativeCodec) through the Codec contract: specs, bits per vector at
// D = 512 (v4_native 4672, int8/64/fp16 4224, int6/64/fp16 3200), code size
// == bytes written, roundtrip == decode(encode) at every SIMD level,
// re-encoding exactness where claimed, v4_native against an independent
// dequantisation of its bytes, rel-MSE against fp8_per64 on Gaussian data,
// error falling as bits rise, the zero vector, bad constructor arguments and
// corrupted bytes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "codec/fp8_codec.h"
#include "codec/scalar_codec.h"
#include "codec/v4_native_codec.h"
#include "common/error.h"
#include "kernels/simd.h"
#include "testutil/testutil.h"

namespace kvlab::codec {
namespace {

using testutil::error_of;
using testutil::expect_contains;

using testutil::gauss;

double rel_mse(const Codec& c, const std::vector<float>& x) {
  std::vector<float> o(x.size());
  c.roundtrip(x.data(), int64_t(x.size()) / c.dim(), o.data());
  double e = 0, r = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    e += (double(o[i]) - x[i]) * (double(o[i]) - x[i]);
    r += double(x[i]) * x[i];
  }
  return e / r;
}

std::vector<std::unique_ptr<Codec>> all_codecs(int64_t d) {
  std::vector<std::unique_ptr<Codec>> v;
  for (int bits : {2, 4, 6, 8})
    for (int block : {32, 64})
      for (ScaleKind s : {ScaleKind::kUf16, ScaleKind::kUe8m0})
        for (bool h : {false, true}) v.push_back(std::make_unique<IntBlockCodec>(bits, block, s, h, d));
  for (int bits = 1; bits <= 4; ++bits) v.push_back(std::make_unique<HadamardLloydCodec>(bits, d));
  v.push_back(std::make_unique<V4NativeCodec>(d));
  return v;
}

TEST(CodecScalar, SpecsAndBitsAtD512) {
  EXPECT_EQ(IntBlockCodec(8, 64, ScaleKind::kUf16, false, 512).spec(), "int:bits=8,block=64,scale=fp16");
  EXPECT_EQ(IntBlockCodec(4, 64, ScaleKind::kUe8m0, true, 512).spec(), "hadamard_int:bits=4,block=64,scale=ue8m0");
  EXPECT_EQ(HadamardLloydCodec(3, 512).spec(), "hadamard_lloyd:bits=3");
  EXPECT_EQ(V4NativeCodec(512).spec(), "v4_native");
  EXPECT_EQ(V4NativeCodec(512).bits_per_vector(), 4672);
  EXPECT_EQ(V4NativeCodec(512).code_size(), 584u);
  EXPECT_EQ(IntBlockCodec(8, 64, ScaleKind::kUf16, false, 512).bits_per_vector(), 4224);
  EXPECT_EQ(IntBlockCodec(8, 64, ScaleKind::kUf16, false, 512).bits_per_vector(),
            Fp8Per64Codec(512).bits_per_vector());
  EXPECT_EQ(IntBlockCodec(6, 64, ScaleKind::kUf16, false, 512).bits_per_vector(), 3200);
  EXPECT_EQ(IntBlockCodec(4, 64, ScaleKind::kUe8m0, true, 512).bits_per_vector(), 4 * 512 + 8 * 8);
  EXPECT_EQ(HadamardLloydCodec(3, 512).bits_per_vector(), 3 * 512 + 16);
  for (const auto& c : all_codecs(512)) EXPECT_EQ(c->published_bits_per_vector(), c->bits_per_vector()) << c->spec();
}

TEST(CodecScalar, ConstructorsNameBadValues) {
  expect_contains(error_of([] { IntBlockCodec(9, 64, ScaleKind::kUf16, false, 512); }), "bits = 9");
  expect_contains(error_of([] { IntBlockCodec(1, 64, ScaleKind::kUe8m0, true, 512); }), "bits = 1");
  expect_contains(error_of([] { IntBlockCodec(8, 64, ScaleKind::kUf16, false, 96); }), "D = 96");
  expect_contains(error_of([] { IntBlockCodec(8, 12, ScaleKind::kUf16, false, 96); }), "block = 12");
  expect_contains(error_of([] { IntBlockCodec(8, 64, ScaleKind::kUf16, true, 576); }), "D = 576");
  expect_contains(error_of([] { IntBlockCodec(8, 64, ScaleKind(7), false, 512); }), "scale kind 7");
  IntBlockCodec ok(8, 64, ScaleKind::kUf16, false, 576);  // no rotation: any multiple of the block
  EXPECT_EQ(ok.code_size(), 576u + 18u);
  expect_contains(error_of([] { HadamardLloydCodec(0, 512); }), "bits = 0");
  expect_contains(error_of([] { HadamardLloydCodec(5, 512); }), "bits = 5");
  expect_contains(error_of([] { HadamardLloydCodec(2, 384); }), "D = 384");
  expect_contains(error_of([] { HadamardLloydCodec(2, 4); }), "D = 4");
  expect_contains(error_of([] { V4NativeCodec(64); }), "D = 64");
  expect_contains(error_of([] { V4NativeCodec(500); }), "D = 500");
}

TEST(CodecScalar, CodeSizeIsWhatIsWrittenAndRoundtripIsDecodeOfEncode) {
  std::vector<kernels::SimdLevel> levels{kernels::SimdLevel::kScalar};
  if (kernels::cpu_has_avx2()) levels.push_back(kernels::SimdLevel::kAvx2);
  if (kernels::cpu_has_avx512()) levels.push_back(kernels::SimdLevel::kAvx512);
  const kernels::SimdLevel saved = kernels::simd_level();
  for (int64_t d : {128, 512}) {
    const int64_t n = 33;
    const auto x = gauss(n, d, 1, 3.f);
    for (const auto& c : all_codecs(d)) {
      SCOPED_TRACE(c->spec() + " D=" + std::to_string(d));
      const size_t cs = c->code_size();
      std::vector<uint8_t> ref;
      for (auto lv : levels) {
        kernels::set_simd_level(lv);
        std::vector<uint8_t> codes(n * cs + 16, 0xAB);
        c->encode(x.data(), n, codes.data());
        for (size_t i = n * cs; i < codes.size(); ++i) ASSERT_EQ(codes[i], 0xAB) << "encode wrote past n * code_size";
        codes.resize(n * cs);
        if (ref.empty()) ref = codes;
        ASSERT_EQ(codes, ref) << kernels::simd_level_name(lv);
        std::vector<float> dec(x.size()), rt(x.size());
        c->decode(codes.data(), n, dec.data());
        c->roundtrip(x.data(), n, rt.data());
        ASSERT_EQ(std::memcmp(dec.data(), rt.data(), dec.size() * sizeof(float)), 0) << kernels::simd_level_name(lv);
        std::vector<uint8_t> again(codes.size());
        c->encode(dec.data(), n, again.data());
        if (c->reencode_is_exact()) {
          ASSERT_EQ(again, codes) << "encode(decode(c)) != c";
        } else if (c->spec() == "v4_native") {
          // Decoded values are fixed points even where the bytes change.
          std::vector<float> dec2(dec.size());
          c->decode(again.data(), n, dec2.data());
          ASSERT_EQ(std::memcmp(dec.data(), dec2.data(), dec.size() * sizeof(float)), 0);
        }
        // One vector at a time gives the same bytes.
        std::vector<uint8_t> one(codes.size());
        for (int64_t i = 0; i < n; ++i) c->encode(x.data() + i * d, 1, one.data() + i * cs);
        ASSERT_EQ(one, codes);
      }
    }
  }
  kernels::set_simd_level(saved);
}

TEST(CodecScalar, V4NativeEqualsIndependentDequantisationOfItsBytes) {
  const int64_t d = 512, n = 50;
  auto x = gauss(n, d, 2, 2.f);
  for (int64_t j = 0; j < d; ++j) x[j] *= std::exp2(float(j % 40) - 20.f);  // wide block scales in row 0
  V4NativeCodec c(d);
  std::vector<uint8_t> codes(n * c.code_size());
  c.encode(x.data(), n, codes.data());
  std::vector<float> dec(x.size());
  c.decode(codes.data(), n, dec.data());
  std::vector<int16_t> e4(n * 448);
  std::vector<uint8_t> sc(n * 7);
  std::vector<uint16_t> bf(n * 64);
  c.symbols(codes.data(), n, e4.data(), sc.data(), bf.data());
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* rec = codes.data() + i * 584;
    EXPECT_EQ(rec[583], 0) << "pad";
    for (int64_t j = 0; j < 448; ++j) {
      // E4M3FN: s eeee mmm, bias 7, subnormal m 2^-9; scale 2^(byte - 127).
      const uint8_t b = rec[j];
      const int e = (b >> 3) & 15, m = b & 7;
      double v = e == 0 ? m * std::pow(2.0, -9) : (1.0 + m / 8.0) * std::pow(2.0, e - 7);
      if (b & 0x80) v = -v;
      v *= std::pow(2.0, int(rec[576 + j / 64]) - 127);
      ASSERT_EQ(dec[i * d + j], float(v)) << i << " " << j;
      ASSERT_EQ(e4[i * 448 + j], b);
    }
    for (int64_t j = 0; j < 64; ++j) {
      const uint32_t bits = (uint32_t(rec[448 + 2 * j]) | uint32_t(rec[449 + 2 * j]) << 8) << 16;
      float f;
      std::memcpy(&f, &bits, 4);
      ASSERT_EQ(dec[i * d + 448 + j], f);
      ASSERT_EQ(bf[i * 64 + j], uint16_t(bits >> 16));
      ASSERT_LE(std::fabs(f - x[i * d + 448 + j]), std::fabs(x[i * d + 448 + j]) * 0x1p-8f);
    }
    for (int64_t k = 0; k < 7; ++k) ASSERT_EQ(sc[i * 7 + k], rec[576 + k]);
  }
}

TEST(CodecScalar, GaussianRelMseAgainstFp8Per64) {
  const int64_t d = 512;
  const auto x = gauss(400, d, 3);
  const double fp8 = rel_mse(Fp8Per64Codec(d), x);
  const double int8 = rel_mse(IntBlockCodec(8, 64, ScaleKind::kUf16, false, d), x);
  const double int6 = rel_mse(IntBlockCodec(6, 64, ScaleKind::kUf16, false, d), x);
  // Sanity bounds around about 0.06x and 0.9x.
  EXPECT_GT(int8 / fp8, 0.02) << int8 << " " << fp8;
  EXPECT_LT(int8 / fp8, 0.15) << int8 << " " << fp8;
  EXPECT_GT(int6 / fp8, 0.5) << int6 << " " << fp8;
  EXPECT_LT(int6 / fp8, 1.5) << int6 << " " << fp8;
  // v4_native's power-of-two scales and its bf16 RoPE dims stay near FP8.
  const double v4 = rel_mse(V4NativeCodec(d), x);
  EXPECT_GT(v4 / fp8, 0.5);
  EXPECT_LT(v4 / fp8, 2.0);
}

TEST(CodecScalar, ErrorFallsAsBitsRiseAndZeroVectorIsExact) {
  const int64_t d = 256;
  const auto x = gauss(100, d, 4);
  for (bool h : {false, true})
    for (ScaleKind s : {ScaleKind::kUf16, ScaleKind::kUe8m0}) {
      double prev = 1e9;
      for (int bits = 2; bits <= 8; ++bits) {
        const double e = rel_mse(IntBlockCodec(bits, 32, s, h, d), x);
        EXPECT_LT(e, prev) << bits;
        prev = e;
      }
    }
  double prev = 1e9;
  for (int bits = 1; bits <= 4; ++bits) {
    const double e = rel_mse(HadamardLloydCodec(bits, d), x);
    EXPECT_LT(e, prev) << bits;
    prev = e;
  }
  for (const auto& c : all_codecs(d)) {
    std::vector<float> z(static_cast<size_t>(2 * d), 0.0f), o(z.size(), 1.0f);
    c->roundtrip(z.data(), 2, o.data());
    for (float v : o) ASSERT_EQ(v, 0.0f) << c->spec();
    std::vector<uint8_t> codes(2 * c->code_size());
    c->encode(z.data(), 2, codes.data());
    std::fill(o.begin(), o.end(), 1.0f);
    c->decode(codes.data(), 2, o.data());
    for (float v : o) ASSERT_EQ(v, 0.0f) << c->spec();
  }
}

TEST(CodecScalar, SymbolsOfIntAndLloyd) {
  const int64_t d = 128, n = 10;
  const auto x = gauss(n, d, 5);
  IntBlockCodec c(6, 32, ScaleKind::kUe8m0, false, d);
  std::vector<uint8_t> codes(n * c.code_size());
  c.encode(x.data(), n, codes.data());
  std::vector<int16_t> sym(x.size());
  std::vector<uint16_t> sc(n * 4);
  c.symbols(codes.data(), n, sym.data(), sc.data());
  std::vector<float> dec(x.size());
  c.decode(codes.data(), n, dec.data());
  for (int64_t i = 0; i < n * d; ++i) {
    ASSERT_LE(std::abs(sym[i]), 31);
    ASSERT_EQ(dec[i], float(sym[i]) * std::ldexp(1.0f, int(sc[i / 32]) - 127));
  }
  HadamardLloydCodec l(2, d);
  std::vector<uint8_t> lc(n * l.code_size());
  l.encode(x.data(), n, lc.data());
  std::vector<uint16_t> sig(n);
  l.symbols(lc.data(), n, sym.data(), sig.data());
  for (int64_t i = 0; i < n * d; ++i) ASSERT_TRUE(sym[i] >= 0 && sym[i] <= 3);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(sig[i], uint16_t(lc[i * l.code_size()] | lc[i * l.code_size() + 1] << 8));
}

TEST(CodecScalar, CorruptedBytesAreRejected) {
  const int64_t d = 512, n = 2;
  const auto x = gauss(n, d, 6);
  std::vector<float> out(x.size());
  {
    V4NativeCodec c(d);
    std::vector<uint8_t> codes(n * c.code_size());
    c.encode(x.data(), n, codes.data());
    auto bad = codes;
    bad[584 + 580] = 0xff;
    expect_contains(error_of([&] { c.decode(bad.data(), n, out.data()); }), "vector 1 byte 580 is the UE8M0 NaN scale");
    bad = codes;
    bad[583] = 0x10;
    expect_contains(error_of([&] { c.decode(bad.data(), n, out.data()); }), "vector 0 pad byte 583 is 0x10");
  }
  {
    IntBlockCodec c(8, 64, ScaleKind::kUe8m0, true, d);
    std::vector<uint8_t> codes(n * c.code_size());
    c.encode(x.data(), n, codes.data());
    auto bad = codes;
    bad[c.code_size() + 100] = 0x80;
    expect_contains(error_of([&] { c.decode(bad.data(), n, out.data()); }), "hadamard_int decode: vector 1 byte 100");
    bad = codes;
    bad[512 + 3] = 0xff;
    expect_contains(error_of([&] { c.decode(bad.data(), n, out.data()); }), "vector 0 byte 515 is the UE8M0 NaN");
  }
  {
    HadamardLloydCodec c(4, d);
    std::vector<uint8_t> codes(n * c.code_size(), 0);
    codes[c.code_size() + 7] = 0x31;
    expect_contains(error_of([&] { c.decode(codes.data(), n, out.data()); }), "vector 1 byte 7 is 0x31");
  }
  // Non-finite input names the row and column.
  auto y = x;
  y[d + 9] = std::numeric_limits<float>::quiet_NaN();
  for (const auto& c : all_codecs(d)) {
    std::vector<uint8_t> codes(n * c->code_size());
    expect_contains(error_of([&] { c->encode(y.data(), n, codes.data()); }), "row 1 column 9 is nan");
  }
}

}  // namespace
}  // namespace kvlab::codec
