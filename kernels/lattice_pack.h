// Block indexing and bit packing of the D4 / E8 lattice codecs (the byte
// format is described in codec/lattice_codec.h).
//
// A block's in-box lattice point (doubled coordinates, as lattice.h writes
// them) maps to an index in [0, points_per_block()); a row of nblocks
// indices is packed LSB-first, bits_per_block() bits each, into
// ceil(nblocks * bits / 8) bytes (zero-padded). Block index (M = 2Q + 1):
//  - D4: digits t_i = x_i + Q in [0, 2Q] form I = sum t_i M^i; I is even for
//    D4 points (M odd, sum x_i even): index = I / 2.
//  - E8: the integer coset as for D4 (index < (M^8 + 1) / 2 = count_int),
//    then the half-integer coset: digits h_i = x_i - 1/2 + Q in [0, 2Q - 1];
//    h_7's parity is fixed by the others, so J = sum_{i<7} h_i (2Q)^i +
//    floor(h_7 / 2) (2Q)^7 and index = count_int + J.
//
// Two versions of pack / unpack, same bytes and points:
//  - lattice_pack_ref / lattice_unpack_ref: scalar, the mixed-radix digits
//    in 64- or 128-bit integers, one field at a time (any Q);
//  - lattice_pack / lattice_unpack: for Q <= 127 the digits in 32-bit halves
//    (multiplicative division) and a branch-free writer, with the leading
//    groups of 16 blocks on avx512:: when simd_level() is kAvx512; larger Q
//    run the reference. (There is no AVX2 version.)
#pragma once

#include <cstdint>

#include "kernels/lattice.h"

namespace kvlab::kernels {

using u128 = unsigned __int128;

// Published bits per block: D4 ceil(4 log2(2Q+1) - 1), E8 ceil(8 log2(2Q+1)),
// computed exactly in integers. Throws kvlab::Error for Q out of range.
int lattice_bits_per_block(LatticeKind kind, int q);

// Exact n / d for n < 2^53 and 2 <= d < 2^32 by one 64 x 64 -> 128 bit
// multiplication: with L = 53 + bit_width(d) and m = ceil(2^L / d), n m / 2^L
// exceeds n / d by less than 2^53 / 2^L <= 1 / d, so the floor is exact.
struct FastDiv53 {
  uint64_t m = 0;
  int shift = 0;
  uint64_t d = 1;
  FastDiv53() = default;
  explicit FastDiv53(uint64_t div);
  uint64_t quot(uint64_t n) const { return uint64_t((u128(n) * m) >> shift); }
};

// The index arithmetic of one (kind, Q).
class LatticeIndexer {
 public:
  LatticeIndexer(LatticeKind kind, int q);
  LatticeKind kind() const { return kind_; }
  int q() const { return q_; }
  int block_dim() const { return block_; }
  int bits_per_block() const { return bits_; }
  // Bytes of a packed row of nblocks indices.
  int64_t payload_bytes(int64_t nblocks) const { return (nblocks * bits_ + 7) / 8; }
  // Number of lattice points in the box (the index range of one block).
  u128 points_per_block() const { return count_int_ + count_half_; }
  u128 count_int() const { return count_int_; }
  // The reference index of a point and its inverse (false for an index
  // >= points_per_block(), p2 then unspecified).
  u128 index_ref(const int32_t* p2) const;
  bool point_ref(u128 index, int32_t* p2) const;
  // Q <= 127 (fast()): the same in 32-bit halves.
  bool fast() const { return fast_; }
  uint64_t index_fast(const int32_t* p2) const;
  bool point_fast(uint64_t index, int32_t* p2) const;
  // E8 indices < 2^53 (Q <= 48): split by multiplication.
  bool split() const { return split_; }

 private:
  LatticeKind kind_;
  int q_, block_, bits_;
  u128 count_int_, count_half_;  // D4 points / E8 integer coset; E8 half coset (0 for D4)
  bool fast_ = false;
  uint64_t pow4_m_ = 0, pow4_r_ = 0;  // (2Q+1)^4, (2Q)^4
  uint64_t mul_m_ = 0, mul_r_ = 0;    // ceil(2^48 / radix) for radix 2Q+1 and 2Q
  bool split_ = false;
  FastDiv53 split_m_, split_r_;  // by (2Q+1)^4 and (2Q)^4
};

// Packs the indices of nblocks block points (pts2, block-major) into
// out[0, ix.payload_bytes(nblocks)), zero-padded to the byte.
void lattice_pack_ref(const LatticeIndexer& ix, const int32_t* pts2, int64_t nblocks, uint8_t* out);
void lattice_pack(const LatticeIndexer& ix, const int32_t* pts2, int64_t nblocks, uint8_t* out);

// Unpacks nblocks indices from bits into block points. readable >=
// payload_bytes(nblocks) is how many bytes from bits on may be read (the
// fast version reads whole 8-byte words and masks them; bytes past the
// payload do not change the result). Returns nblocks, or the first block
// whose index is >= points_per_block() (a corrupt code; the blocks before
// it are written).
int64_t lattice_unpack_ref(const LatticeIndexer& ix, const uint8_t* bits, int64_t readable, int64_t nblocks,
                           int32_t* pts2);
int64_t lattice_unpack(const LatticeIndexer& ix, const uint8_t* bits, int64_t readable, int64_t nblocks,
                       int32_t* pts2);

}  // namespace kvlab::kernels
