// Codec::stored_entropy, the ideal entropy-coded rate of what a codec wrote:
// on random data below the stored bits for every family of the registry,
// and a hand-computed case per family (symbols chosen so that each class's
// plug-in entropy is known exactly).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <vector>

#include "codec/codec.h"
#include "codec/lattice_codec.h"
#include "common/error.h"
#include "testutil/testutil.h"

namespace kvlab::codec {
namespace {

using testutil::gauss;

StoredEntropy encode_entropy(const std::string& spec, const std::vector<float>& x, int64_t d) {
  auto c = make_codec(spec, d);
  const int64_t n = int64_t(x.size()) / d;
  std::vector<uint8_t> codes(size_t(n) * c->code_size());
  c->encode(x.data(), n, codes.data());
  return c->stored_entropy(codes.data(), n);
}

double h2(double p) { return -p * std::log2(p) - (1 - p) * std::log2(1 - p); }

TEST(CodecEntropy, EveryFamilyOnRandomDataStaysBelowItsStoredBits) {
  const int64_t d = 512, n = 256;
  const auto x = gauss(n, d, 11);
  std::set<std::string> families;
  for (const auto& spec : example_codec_specs()) {
    families.insert(parse_codec_spec(spec).family);
    auto c = make_codec(spec, d);
    const auto e = encode_entropy(spec, x, d);
    const double stored = c->bits_per_vector() / double(d);
    EXPECT_EQ(e.n, n);
    EXPECT_EQ(e.dim, d);
    EXPECT_GT(e.bits_per_dim(), 0.0) << spec;
    EXPECT_LE(e.bits_per_dim(), stored) << spec;
    // Every stored field is a class: side information at its width, the
    // coded symbols below the format's bits for them.
    double side = 0, coded_max = 0;
    for (const auto& k : e.classes) {
      EXPECT_GT(k.count, 0) << spec << " " << k.name;
      EXPECT_GE(k.bits_per_symbol, 0.0) << spec << " " << k.name;
      if (k.side_info) side += double(k.count) * k.bits_per_symbol;
      else coded_max = std::max(coded_max, k.bits_per_symbol);
    }
    EXPECT_GT(side, 0.0) << spec;
    EXPECT_LT(side / double(n), c->bits_per_vector()) << spec;
    EXPECT_LE(coded_max, 8.0) << spec;  // no class wider than a byte: int codes, E4M3 bytes, lattice coordinates
  }
  for (const auto& f : codec_families()) EXPECT_TRUE(families.count(f.name)) << f.name << " has no example spec";
}

TEST(CodecEntropy, Fp8HalfPlusHalfMinusIsOneBitPlusScales) {
  // Each block: +1 and -1 (amax 1): two E4M3 codes (+-448) equally often.
  const int64_t d = 128, n = 3;
  std::vector<float> x(size_t(n * d));
  for (size_t i = 0; i < x.size(); ++i) x[i] = (i % 2) ? 1.0f : -1.0f;
  const auto e = encode_entropy("fp8_per64", x, d);
  ASSERT_EQ(e.classes.size(), 2u);
  EXPECT_EQ(e.classes[0].name, "e4m3");
  EXPECT_NEAR(e.classes[0].bits_per_symbol, 1.0, 1e-12);
  EXPECT_EQ(e.classes[1].count, n * 2);
  EXPECT_NEAR(e.bits_per_dim(), (n * d * 1.0 + n * 2 * 16.0) / double(n * d), 1e-12);
}

TEST(CodecEntropy, V4NativeCodesRopeBytesAndScaleBytes) {
  // D = 128: 64 nope dims +-1 (1 bit), 64 RoPE dims all 1.0 (bf16 0x3F80:
  // both bytes constant, 0 bits), one UE8M0 byte + 7 pad bytes per vector.
  const int64_t d = 128, n = 2;
  std::vector<float> x(size_t(n * d));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) x[size_t(i * d + j)] = j < 64 ? ((j % 2) ? 1.0f : -1.0f) : 1.0f;
  const auto e = encode_entropy("v4_native", x, d);
  ASSERT_EQ(e.classes.size(), 4u);
  EXPECT_NEAR(e.classes[0].bits_per_symbol, 1.0, 1e-12);
  EXPECT_EQ(e.classes[1].bits_per_symbol, 0.0);
  EXPECT_EQ(e.classes[2].bits_per_symbol, 0.0);
  EXPECT_EQ(e.classes[3].name, "scale_ue8m0");
  EXPECT_NEAR(e.bits_per_dim(), (n * 64 * 1.0 + n * 8.0) / double(n * d), 1e-12);
  // RoPE low bytes differing: 1.0 (0x3F80) and 1.0078125 (0x3F81) half each -> bf16_lo 1 bit.
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 64; j < d; j += 2) x[size_t(i * d + j)] = 1.0078125f;
  EXPECT_NEAR(encode_entropy("v4_native", x, d).classes[2].bits_per_symbol, 1.0, 1e-12);
}

TEST(CodecEntropy, IntCodesByHand) {
  // amax 7 at 4 bits: s = 7 / 7 = 1, codes = values: 1/2 zeros, 1/4 +7, 1/4 -7 -> 1.5 bits.
  const int64_t d = 64, n = 2;
  std::vector<float> x(size_t(n * d));
  for (size_t i = 0; i < x.size(); ++i) x[i] = i % 4 == 0 ? 7.0f : i % 4 == 2 ? -7.0f : 0.0f;
  const auto fp16 = encode_entropy("int:bits=4,block=64,scale=fp16", x, d);
  EXPECT_NEAR(fp16.classes[0].bits_per_symbol, 1.5, 1e-12);
  EXPECT_NEAR(fp16.bits_per_dim(), 1.5 + 16.0 / 64, 1e-12);
  const auto ue = encode_entropy("int:bits=4,block=32,scale=ue8m0", x, d);
  EXPECT_EQ(ue.classes[1].name, "scale_ue8m0");
  EXPECT_EQ(ue.classes[1].count, n * 2);
  EXPECT_NEAR(ue.bits_per_dim(), ue.classes[0].bits_per_symbol + 8.0 / 32, 1e-12);
}

TEST(CodecEntropy, RotatedCodecsOfOneHotVectors) {
  // H e_0 / sqrt(d) is constant: every rotated coordinate equal -> one
  // symbol (0 bits). With -e_0 as the second vector: two symbols, 1 bit.
  const int64_t d = 64;
  std::vector<float> x(size_t(2 * d), 0.0f);
  x[0] = 8.0f;
  x[size_t(d)] = 8.0f;
  EXPECT_NEAR(encode_entropy("hadamard_int:bits=3,block=64,scale=fp16", x, d).bits_per_dim(), 16.0 / 64, 1e-12);
  EXPECT_NEAR(encode_entropy("hadamard_lloyd:bits=2", x, d).bits_per_dim(), 16.0 / 64 / 1.0, 1e-12);
  x[size_t(d)] = -8.0f;
  const auto hi = encode_entropy("hadamard_int:bits=3,block=64,scale=ue8m0", x, d);
  EXPECT_NEAR(hi.classes[0].bits_per_symbol, 1.0, 1e-12);
  EXPECT_NEAR(hi.bits_per_dim(), 1.0 + 8.0 / 64, 1e-12);
  const auto hl = encode_entropy("hadamard_lloyd:bits=2", x, d);
  EXPECT_EQ(hl.classes[1].name, "sigma_uf16");
  EXPECT_NEAR(hl.bits_per_dim(), 1.0 + 16.0 / 64, 1e-12);
}

// Writes block points (doubled coordinates) as codes with the given byte
// layout: 4 header bytes (norm 1.0, qmax 1.0), then the LSB-first indices.
std::vector<uint8_t> lattice_codes(const LatticeCodec& c, const std::vector<std::vector<int32_t>>& vectors) {
  std::vector<uint8_t> codes(vectors.size() * c.code_size(), 0);
  for (size_t v = 0; v < vectors.size(); ++v) {
    uint8_t* p = codes.data() + v * c.code_size();
    p[1] = 0x3c;  // 1.0 in uf16 / fp16 (0x3c00) for both fields
    p[3] = 0x3c;
    unsigned __int128 acc = 0;
    int bits = 0;
    for (int64_t k = 0; k < c.dim() / c.block_dim(); ++k) {
      acc |= c.block_index(vectors[v].data() + k * c.block_dim()) << bits;
      bits += c.bits_per_block();
    }
    for (int b = 0; b < (bits + 7) / 8; ++b) p[4 + b] = uint8_t(acc >> (8 * b));
  }
  return codes;
}

TEST(CodecEntropy, E8CosetCoordinatesAndHalvedLastCoordinate) {
  const LatticeCodec c(kernels::LatticeKind::kE8, 1, 8);
  const std::vector<std::vector<int32_t>> pts = {
      {2, 0, 0, 0, 0, 0, 0, -2}, {0, 0, 0, 0, 0, 0, 0, 0}, {1, 1, 1, 1, 1, 1, 1, 1}, {-1, -1, -1, -1, -1, -1, -1, -1}};
  const auto codes = lattice_codes(c, pts);
  std::vector<int32_t> back(32);
  c.block_points(codes.data(), 4, back.data());
  for (int i = 0; i < 32; ++i) EXPECT_EQ(back[size_t(i)], pts[size_t(i / 8)][size_t(i % 8)]);
  const auto e = c.stored_entropy(codes.data(), 4);
  // coset {0,0,1,1}: 1 bit; y = p2 >> 1: coord0 {1,0,0,-1}: 1.5 bits;
  // coord1..6 {0,0,0,-1}: h(1/4); y7 {-1,0,0,-1} >> 1 = {-1,0,0,-1}: 1 bit.
  ASSERT_EQ(e.classes.size(), 11u);
  EXPECT_EQ(e.classes[0].name, "coset");
  EXPECT_NEAR(e.classes[0].bits_per_symbol, 1.0, 1e-12);
  EXPECT_NEAR(e.classes[1].bits_per_symbol, 1.5, 1e-12);
  for (int i = 2; i <= 7; ++i) EXPECT_NEAR(e.classes[size_t(i)].bits_per_symbol, h2(0.25), 1e-12);
  EXPECT_EQ(e.classes[8].name, "coord7_half");
  EXPECT_NEAR(e.classes[8].bits_per_symbol, 1.0, 1e-12);
  EXPECT_NEAR(e.bits_per_dim(), 4 * (1.0 + 1.5 + 6 * h2(0.25) + 1.0 + 32.0) / 32.0, 1e-12);
}

TEST(CodecEntropy, D4CoordinatesAndHalvedLastCoordinate) {
  const LatticeCodec c(kernels::LatticeKind::kD4, 2, 8);
  // Two blocks per vector; doubled coordinates of D4 points (even sum).
  const std::vector<std::vector<int32_t>> pts = {{2, 2, 0, 0, 4, 0, 0, 4}, {0, 0, 0, 0, 2, 0, 0, -2}};
  const auto codes = lattice_codes(c, pts);
  const auto e = c.stored_entropy(codes.data(), 2);
  ASSERT_EQ(e.classes.size(), 6u);
  // Blocks (y): (1,1,0,0) (2,0,0,2) (0,0,0,0) (1,0,0,-1).
  // coord0 {1,2,0,1}: 1.5; coord1 {1,0,0,0}: h(1/4); coord2 {0,0,0,0}: 0;
  // coord3 >> 1: {0,1,0,-1}: 1.5.
  EXPECT_EQ(e.classes[0].name, "coord0");
  EXPECT_NEAR(e.classes[0].bits_per_symbol, 1.5, 1e-12);
  EXPECT_NEAR(e.classes[1].bits_per_symbol, h2(0.25), 1e-12);
  EXPECT_EQ(e.classes[2].bits_per_symbol, 0.0);
  EXPECT_NEAR(e.classes[3].bits_per_symbol, 1.5, 1e-12);
  EXPECT_NEAR(e.bits_per_dim(), (4 * (3.0 + h2(0.25)) + 2 * 32.0) / 16.0, 1e-12);
}

TEST(CodecEntropy, CorruptLatticeIndexIsAnError) {
  const LatticeCodec c(kernels::LatticeKind::kE8, 1, 8);
  std::vector<uint8_t> codes(c.code_size(), 0xff);
  EXPECT_THROW(c.stored_entropy(codes.data(), 1), kvlab::Error);
  EXPECT_THROW(c.stored_entropy(codes.data(), -1), kvlab::Error);
}

}  // namespace
}  // namespace kvlab::codec
