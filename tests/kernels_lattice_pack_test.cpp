// kernels/lattice_pack: the dispatching lattice_pack / lattice_unpack against
// the scalar _ref versions on random block indices, for every bits-per-block
// value the codecs use at Q <= 127 (where the fast versions differ from the
// reference) and some beyond, at every SIMD level this CPU has: the same
// bytes, the same points, the same first corrupt block.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kernels/lattice.h"
#include "kernels/lattice_pack.h"
#include "kernels/simd.h"

namespace kvlab::kernels {
namespace {

struct LevelGuard {
  SimdLevel saved = simd_level();
  ~LevelGuard() { set_simd_level(saved); }
};

std::vector<SimdLevel> levels() {
  std::vector<SimdLevel> out{SimdLevel::kScalar};
  if (cpu_has_avx2()) out.push_back(SimdLevel::kAvx2);
  if (cpu_has_avx512()) out.push_back(SimdLevel::kAvx512);
  return out;
}

// Uniform in [0, n) for n <= 2^128 - 1.
u128 random_below(std::mt19937_64& rng, u128 n) {
  const u128 r = (u128(rng()) << 64) | rng();
  return r % n;
}

// One Q per bits-per-block value: the smallest Q giving it, plus the largest
// fast Q (127) and a few on the 128-bit reference path.
std::vector<int> qs_for_every_width(LatticeKind k) {
  std::map<int, int> first;
  for (int q = 1; q <= 127; ++q) first.emplace(lattice_bits_per_block(k, q), q);
  std::vector<int> qs;
  for (auto [bits, q] : first) qs.push_back(q);
  for (int q : {48, 49, 127, 128, 1000, kLatticeMaxQ}) qs.push_back(q);
  return qs;
}

void check_parity(LatticeKind k, int q, int64_t nblocks, std::mt19937_64& rng) {
  const LatticeIndexer ix(k, q);
  const int b = ix.block_dim();
  const int64_t bytes = ix.payload_bytes(nblocks);
  // Random indices, with both ends of the range and (E8) both cosets' edges.
  std::vector<u128> idx(static_cast<size_t>(nblocks));
  for (auto& v : idx) v = random_below(rng, ix.points_per_block());
  idx[0] = 0;
  idx[size_t(nblocks - 1)] = ix.points_per_block() - 1;
  if (nblocks > 3) {
    idx[1] = ix.count_int() - 1;
    if (k == LatticeKind::kE8) idx[2] = ix.count_int();
  }
  std::vector<int32_t> pts(size_t(nblocks * b));
  for (int64_t i = 0; i < nblocks; ++i) ASSERT_TRUE(ix.point_ref(idx[size_t(i)], pts.data() + i * b));
  // Bytes: 8 of slack past the payload, which neither version may touch.
  std::vector<uint8_t> want(size_t(bytes + 8), 0xA5);
  lattice_pack_ref(ix, pts.data(), nblocks, want.data());
  for (int64_t i = bytes; i < bytes + 8; ++i) ASSERT_EQ(want[size_t(i)], 0xA5) << "ref wrote past the payload";
  // The reference stream holds the indices LSB-first.
  for (int64_t i = 0; i < nblocks; ++i) {
    u128 v = 0;
    for (int j = 0; j < ix.bits_per_block(); ++j) {
      const int64_t bit = i * ix.bits_per_block() + j;
      v |= u128((want[size_t(bit / 8)] >> (bit % 8)) & 1) << j;
    }
    ASSERT_TRUE(v == idx[size_t(i)]) << "block " << i;
  }
  for (SimdLevel lv : levels()) {
    set_simd_level(lv);
    const std::string what = std::string(lattice_name(k)) + " Q=" + std::to_string(q) + " bits=" +
                             std::to_string(ix.bits_per_block()) + " nblocks=" + std::to_string(nblocks) + " " +
                             simd_level_name(lv);
    std::vector<uint8_t> got(want.size(), 0xA5);
    lattice_pack(ix, pts.data(), nblocks, got.data());
    ASSERT_EQ(got, want) << what;
    std::vector<int32_t> back_ref(pts.size()), back(pts.size());
    ASSERT_EQ(lattice_unpack_ref(ix, want.data(), bytes, nblocks, back_ref.data()), nblocks) << what;
    ASSERT_EQ(back_ref, pts) << what;
    ASSERT_EQ(lattice_unpack(ix, want.data(), int64_t(want.size()), nblocks, back.data()), nblocks) << what;
    ASSERT_EQ(back, pts) << what;
  }
}

TEST(LatticePackKernel, FastMatchesRefForEveryBitWidth) {
  LevelGuard g;
  std::mt19937_64 rng(7);
  for (auto k : {LatticeKind::kD4, LatticeKind::kE8})
    for (int q : qs_for_every_width(k))
      for (int64_t nblocks : {1, 5, 16, 37, 64, 300})  // whole 16-block groups, tails, > one 256-block chunk
        check_parity(k, q, nblocks, rng);
}

TEST(LatticePackKernel, EveryFastPathWidthIsCovered) {
  // The Qs above give every width any Q <= 127 gives, from D4 Q = 1
  // (ceil(4 log2 3 - 1) = 6) and E8 Q = 1 (13) to E8 Q = 32767 (128).
  for (auto k : {LatticeKind::kD4, LatticeKind::kE8}) {
    std::set<int> visited;
    for (int q : qs_for_every_width(k)) visited.insert(lattice_bits_per_block(k, q));
    for (int q = 1; q <= 127; ++q) EXPECT_TRUE(visited.count(lattice_bits_per_block(k, q))) << q;
    EXPECT_EQ(*visited.begin(), k == LatticeKind::kD4 ? 6 : 13);
  }
  EXPECT_EQ(lattice_bits_per_block(LatticeKind::kE8, kLatticeMaxQ), 128);
}

TEST(LatticePackKernel, CorruptIndexIsReportedAtTheSameBlock) {
  LevelGuard g;
  std::mt19937_64 rng(5);
  for (auto [k, q] : {std::pair{LatticeKind::kD4, 10}, std::pair{LatticeKind::kE8, 38},
                      std::pair{LatticeKind::kE8, 100}, std::pair{LatticeKind::kE8, 1000}}) {
    const LatticeIndexer ix(k, q);
    ASSERT_LT(ix.points_per_block(), u128(1) << ix.bits_per_block());
    const int64_t nblocks = 64;
    std::vector<int32_t> pts(size_t(nblocks * ix.block_dim()));
    for (int64_t i = 0; i < nblocks; ++i)
      ASSERT_TRUE(ix.point_ref(random_below(rng, ix.points_per_block()), pts.data() + i * ix.block_dim()));
    std::vector<uint8_t> bytes(size_t(ix.payload_bytes(nblocks) + 8), 0);
    lattice_pack_ref(ix, pts.data(), nblocks, bytes.data());
    for (int64_t bit = 37 * ix.bits_per_block(); bit < 38 * ix.bits_per_block(); ++bit)
      bytes[size_t(bit / 8)] |= uint8_t(1u << (bit % 8));  // block 37: all ones, out of range
    std::vector<int32_t> out(pts.size());
    EXPECT_EQ(lattice_unpack_ref(ix, bytes.data(), int64_t(bytes.size()), nblocks, out.data()), 37);
    for (SimdLevel lv : levels()) {
      set_simd_level(lv);
      EXPECT_EQ(lattice_unpack(ix, bytes.data(), int64_t(bytes.size()), nblocks, out.data()), 37)
          << lattice_name(k) << " Q=" << q << " " << simd_level_name(lv);
    }
  }
}

}  // namespace
}  // namespace kvlab::kernels
