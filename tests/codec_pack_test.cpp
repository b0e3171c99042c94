// Block indexing and bit packing of the lattice codecs: the index is a
// bijection between the in-box lattice points and [0, points_per_block()),
// exhaustively at small Q and on random points through the 128-bit path;
// bits per block equal the published formula; packed codes are dense.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "codec/lattice_codec.h"
#include "common/error.h"
#include "kernels/fp_formats.h"
#include "kernels/lattice.h"
#include "kernels/simd.h"

namespace kvlab::codec {
namespace {

using kernels::LatticeKind;
using u128 = unsigned __int128;

TEST(LatticePack, BitsPerBlockMatchPublishedFormula) {
  for (int q = 1; q <= 2000; ++q) {
    EXPECT_EQ(lattice_bits_per_block(LatticeKind::kD4, q), int(std::ceil(4 * std::log2(2.0 * q + 1) - 1))) << q;
    EXPECT_EQ(lattice_bits_per_block(LatticeKind::kE8, q), int(std::ceil(8 * std::log2(2.0 * q + 1)))) << q;
  }
  // Reference README table (per-block bits * blocks + 32).
  EXPECT_EQ(LatticeCodec(LatticeKind::kE8, 44, 512).bits_per_vector(), 3360);
  EXPECT_EQ(LatticeCodec(LatticeKind::kD4, 152, 128).bits_per_vector(), 1088);
  EXPECT_EQ(LatticeCodec(LatticeKind::kE8, 1, 128).bits_per_vector(), 240);
  EXPECT_EQ(lattice_bits_per_block(LatticeKind::kE8, kernels::kLatticeMaxQ), 128);
}

void exhaustive(LatticeKind k, int q) {
  LatticeCodec c(k, q, 64);
  const int b = c.block_dim();
  const u128 count = c.points_per_block();
  std::set<uint64_t> seen;
  std::vector<int32_t> p(b), back(b);
  auto check = [&](const std::vector<int32_t>& pt) {
    const u128 idx = c.block_index(pt.data());
    ASSERT_LT(idx, count);
    ASSERT_TRUE(seen.insert(uint64_t(idx)).second) << "duplicate index";
    c.block_point(idx, back.data());
    ASSERT_EQ(back, pt);
  };
  auto rec = [&](auto&& self, int i, int lo, int hi) -> void {
    if (i == b) {
      int64_t s = 0;
      for (int v : p) s += (v - (lo & 1)) / 2;
      if ((s & 1) == 0) check(p);
      return;
    }
    for (int v = lo; v <= hi; v += 2) {
      p[i] = v;
      self(self, i + 1, lo, hi);
    }
  };
  rec(rec, 0, -2 * q, 2 * q);
  if (k == LatticeKind::kE8) rec(rec, 0, -2 * q + 1, 2 * q - 1);
  EXPECT_EQ(u128(seen.size()), count);  // bijection onto [0, count)
  EXPECT_LE(count, u128(1) << c.bits_per_block());
  EXPECT_THROW(c.block_point(count, back.data()), kvlab::Error);
}

TEST(LatticePack, IndexIsBijectionAtSmallQ) {
  for (int q : {1, 2, 3, 7}) exhaustive(LatticeKind::kD4, q);
  exhaustive(LatticeKind::kE8, 1);
  exhaustive(LatticeKind::kE8, 2);
}

TEST(LatticePack, LargeQRoundTripsThrough128Bits) {
  std::mt19937 rng(3);
  for (int q : {127, 128, 1000, kernels::kLatticeMaxQ}) {
    LatticeCodec c(LatticeKind::kE8, q, 64);
    std::vector<float> z(8);
    std::vector<int32_t> p(8), back(8);
    std::uniform_real_distribution<float> u(-float(q), float(q));
    for (int t = 0; t < 2000; ++t) {
      for (auto& v : z) v = u(rng);
      kernels::e8_closest_in_box(z.data(), q, p.data());
      const u128 idx = c.block_index(p.data());
      ASSERT_LT(idx, c.points_per_block());
      c.block_point(idx, back.data());
      ASSERT_EQ(back, p) << q;
    }
    // Extremes of both cosets.
    std::vector<int32_t> lo(8, -2 * q), hi(8, 2 * q), hlo(8, -2 * q + 1), hhi(8, 2 * q - 1);
    for (auto* pt : {&lo, &hi, &hlo, &hhi}) {
      c.block_point(c.block_index(pt->data()), back.data());
      EXPECT_EQ(back, *pt);
    }
    EXPECT_EQ(c.block_index(lo.data()), u128(0));
    EXPECT_EQ(c.block_index(hhi.data()), c.points_per_block() - 1);
  }
}

TEST(LatticePack, OutOfRangeBlockIndexInTheBytesIsAnError) {
  // E8 Q = 38: 51 bits per block hold 2^51 > 77^8 values, so an all-ones
  // field is not a lattice point index; D4 Q = 10: 18 bits > (21^4 + 1) / 2.
  for (auto [k, q] : {std::pair{LatticeKind::kE8, 38}, std::pair{LatticeKind::kD4, 10}, std::pair{LatticeKind::kE8, 1000}}) {
    LatticeCodec c(k, q, 64);
    ASSERT_LT(c.points_per_block(), u128(1) << c.bits_per_block());
    std::vector<float> x(64, 0.5f), out(64);
    std::vector<uint8_t> code(c.code_size());
    c.encode(x.data(), 1, code.data());
    for (size_t i = 4; i < code.size(); ++i) code[i] = 0xff;  // every block field all ones
    try {
      c.decode(code.data(), 1, out.data());
      FAIL() << c.spec() << ": corrupt code decoded";
    } catch (const kvlab::Error& e) {
      EXPECT_NE(std::string(e.what()).find("out of range"), std::string::npos) << e.what();
    }
  }
}

// Restores the process's SIMD level when a test ends.
struct LevelGuard {
  kernels::SimdLevel saved = kernels::simd_level();
  ~LevelGuard() { kernels::set_simd_level(saved); }
};

// The AVX-512 indexers and unpackers (16 blocks per step; D4 for Q <= 127,
// E8 for Q <= 48 when unpacking) against the scalar code: every level
// encodes to the same bytes and decodes them to the same floats, for bit widths from 6 to 53, rows of 8 to 128 blocks,
// both E8 cosets, and a batch whose last groups end at the array's end.
TEST(LatticePack, DecodeIsTheSameAtEveryLevel) {
  LevelGuard g;
  std::mt19937 rng(11);
  std::student_t_distribution<float> t3(3.f);
  for (auto k : {LatticeKind::kD4, LatticeKind::kE8})
    for (int q : {1, 2, 3, 5, 10, 38, 44, 48, 49, 64, 100, 126, 127})
      for (int64_t d : {64, 128, 512}) {
        const int64_t n = 7;
        LatticeCodec c(k, q, d);
        std::vector<float> x(size_t(n * d)), want(x.size()), got(x.size());
        for (auto& v : x) v = t3(rng);
        std::vector<uint8_t> code(size_t(n) * c.code_size()), scalar_code(code.size());
        c.encode(x.data(), n, code.data());
        kernels::set_simd_level(kernels::SimdLevel::kScalar);
        c.encode(x.data(), n, scalar_code.data());
        ASSERT_EQ(code, scalar_code) << c.spec() << " D=" << d << ": the bytes differ between levels";
        c.decode(code.data(), n, want.data());
        kernels::set_simd_level(kernels::cpu_best_simd_level());
        c.decode(code.data(), n, got.data());
        const std::string what = c.spec() + " D=" + std::to_string(d);
        for (size_t i = 0; i < x.size(); ++i)
          ASSERT_EQ(kernels::f32_bits(got[i]), kernels::f32_bits(want[i])) << what << " at " << i;
        // And the decode is the codec's roundtrip (encode-decode identity).
        std::vector<float> rt(x.size());
        c.roundtrip(x.data(), n, rt.data());
        for (size_t i = 0; i < x.size(); ++i)
          ASSERT_EQ(kernels::f32_bits(got[i]), kernels::f32_bits(rt[i])) << what << " at " << i;
      }
}

// Indices at and just below exact multiples of the split divisor
// (2 * index = k m^4 in the integer coset, index - count_int = k r^4 in the
// half one), the largest k first: where a quotient computed in doubles is
// most likely one off, either way.
// Written straight into the bytes; every level must decode them alike.
TEST(LatticePack, E8IndicesAtExactMultiplesDecodeAlikeAtEveryLevel) {
  LevelGuard g;
  for (int q : {1, 5, 38, 41, 42, 43, 44, 45, 46, 47, 48}) {
    const int64_t d = 512, nblocks = d / 8;
    LatticeCodec c(LatticeKind::kE8, q, d);
    const u128 m4 = u128(2 * q + 1) * (2 * q + 1) * (2 * q + 1) * (2 * q + 1);
    const u128 r4 = u128(2 * q) * (2 * q) * (2 * q) * (2 * q);
    const u128 count_int = (m4 * m4 + 1) / 2;
    std::vector<u128> idx;
    for (u128 k = m4 - 1; idx.size() < 2000; --k) {
      idx.push_back((k * m4 - (k % 2)) / 2);  // 2 index = k m^4 (k even) or k m^4 - 1 (k odd)
      if (k == 1) break;
    }
    for (u128 k = r4 / 2 - 1; idx.size() < 4000; --k) {
      idx.push_back(count_int + k * r4);
      idx.push_back(count_int + k * r4 - 1);  // just below a multiple
      if (k == 1) break;
    }
    const int64_t n = int64_t((idx.size() + nblocks - 1) / nblocks);
    std::vector<uint8_t> code(size_t(n) * c.code_size(), 0);
    for (int64_t r = 0; r < n; ++r) {
      code[size_t(r) * c.code_size() + 1] = 0x3c;  // norm field: some ordinary value
      code[size_t(r) * c.code_size() + 3] = 0x3c;  // qmax field: 1.0
    }
    const int bpb = c.bits_per_block();
    for (size_t b = 0; b < size_t(n * nblocks); ++b) {
      const u128 v = b < idx.size() ? idx[b] : 0;
      ASSERT_LT(v, c.points_per_block());
      uint8_t* payload = code.data() + (b / size_t(nblocks)) * c.code_size() + 4;
      const int64_t bit0 = int64_t(b % size_t(nblocks)) * bpb;
      for (int i = 0; i < bpb; ++i)
        if ((v >> i) & 1) payload[(bit0 + i) / 8] |= uint8_t(1u << ((bit0 + i) % 8));
    }
    std::vector<float> want(size_t(n * d)), got(want.size());
    kernels::set_simd_level(kernels::SimdLevel::kScalar);
    c.decode(code.data(), n, want.data());
    kernels::set_simd_level(kernels::cpu_best_simd_level());
    c.decode(code.data(), n, got.data());
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_EQ(kernels::f32_bits(got[i]), kernels::f32_bits(want[i])) << "Q=" << q << " at " << i;
  }
}

// A corrupt index in the middle of a 16-block group (and of the batch) is
// reported with its vector and block at every level.
TEST(LatticePack, CorruptIndexInsideAGroupIsReported) {
  LevelGuard g;
  for (auto [k, q] : {std::pair{LatticeKind::kD4, 10}, std::pair{LatticeKind::kE8, 38}}) {
    const int64_t d = 512, n = 3;
    LatticeCodec c(k, q, d);
    ASSERT_LT(c.points_per_block(), u128(1) << c.bits_per_block());
    std::vector<float> x(size_t(n * d), 0.25f), out(x.size());
    std::vector<uint8_t> code(size_t(n) * c.code_size());
    c.encode(x.data(), n, code.data());
    const int bpb = c.bits_per_block();
    uint8_t* payload = code.data() + c.code_size() + 4;  // vector 1
    for (int64_t bit = 20 * bpb; bit < 21 * bpb; ++bit) payload[bit / 8] |= uint8_t(1u << (bit % 8));  // block 20
    for (auto lv : {kernels::SimdLevel::kScalar, kernels::cpu_best_simd_level()}) {
      kernels::set_simd_level(lv);
      try {
        c.decode(code.data(), n, out.data());
        FAIL() << c.spec() << " " << kernels::simd_level_name(lv) << ": corrupt code decoded";
      } catch (const kvlab::Error& e) {
        EXPECT_NE(std::string(e.what()).find("vector 1 block 20 has an index out of range"), std::string::npos)
            << e.what();
      }
    }
  }
}

}  // namespace
}  // namespace kvlab::codec
