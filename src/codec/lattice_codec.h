// D4 / E8 nested-lattice codecs with a real byte format (SPEC section 3,
// with the in-box closest point of kernels/lattice.h instead of the
// published clamp).
//
// Per vector: 2 bytes uf16 norm, 2 bytes fp16 qmax (both little endian),
// then D/b block indices of k bits each, packed LSB-first, zero-padded to a
// byte. Block index (M = 2Q + 1):
//  - D4 (k = ceil(4 log2 M - 1)): digits t_i = x_i + Q in [0, 2Q] form the
//    mixed-radix number I = sum t_i M^i. M is odd, so I = sum x_i + 4Q
//    (mod 2) is even for D4 points: index = I / 2, < (M^4 + 1) / 2 <= 2^k.
//  - E8 (k = ceil(8 log2 M)): the integer coset as for D4 (index < (M^8+1)/2),
//    then the half-integer coset: digits h_i = x_i - 1/2 + Q in [0, 2Q-1];
//    the parity of h_7 is fixed by the others (even coordinate sum), so
//    J = sum_{i<7} h_i (2Q)^i + floor(h_7 / 2) (2Q)^7 < (2Q)^8 / 2 and
//    index = (M^8 + 1)/2 + J < M^8 < 2^k. 128-bit arithmetic where needed.
// Bits: (D/b) k + 32, the published accounting, rounded up to whole bytes
// (equal to it whenever (D/b) k is a multiple of 8, e.g. every D >= 64).
#pragma once

#include <bit>
#include <cstdint>

#include "codec/codec.h"
#include "kernels/lattice.h"

namespace kvlab::codec {

namespace detail {
// Exact n / d for n < 2^53 and 2 <= d < 2^32 by one 64 x 64 -> 128 bit
// multiplication: with L = 53 + bit_width(d) and m = ceil(2^L / d), n m / 2^L
// exceeds n / d by less than 2^53 / 2^L <= 1 / d, so the floor is exact.
struct FastDiv53 {
  uint64_t m = 0;
  int shift = 0;
  uint64_t d = 1;
  FastDiv53() = default;
  explicit FastDiv53(uint64_t div) : shift(53 + int(std::bit_width(div))), d(div) {
    using u128 = unsigned __int128;
    const u128 one = u128(1) << shift;
    m = uint64_t((one + div - 1) / div);
  }
  uint64_t quot(uint64_t n) const { return uint64_t(((unsigned __int128)n * m) >> shift); }
};
}  // namespace detail

class LatticeCodec final : public Codec {
 public:
  LatticeCodec(kernels::LatticeKind kind, int q, int64_t dim);
  std::string spec() const override;
  int64_t dim() const override { return dim_; }
  std::size_t code_size() const override { return code_size_; }
  double published_bits_per_vector() const override;
  void encode(const float* x, int64_t n, uint8_t* codes) const override;
  void decode(const uint8_t* codes, int64_t n, float* out) const override;
  bool reencode_is_exact() const override { return false; }

  kernels::LatticeKind kind() const { return kind_; }
  int q() const { return q_; }
  int block_dim() const { return block_; }
  int bits_per_block() const { return bits_per_block_; }
  // Number of lattice points in the box (the index range of one block).
  unsigned __int128 points_per_block() const;
  // Block index of a point (doubled coordinates) and its inverse; the
  // inverse throws kvlab::Error for an index >= points_per_block().
  unsigned __int128 block_index(const int32_t* pts2) const;
  void block_point(unsigned __int128 index, int32_t* pts2) const;

 protected:
  void roundtrip_impl(const float* x, int64_t n, float* out) const override;

 private:
  // Q <= 127 (fast_): block_index / block_point in 32-bit halves, inlined
  // into the packing loops; point_fast returns false for an index out of
  // range.
  uint64_t index_fast(const int32_t* p2) const;
  bool point_fast(uint64_t index, int32_t* p2) const;

 private:
  kernels::LatticeKind kind_;
  int q_;
  int64_t dim_;
  int block_;
  int bits_per_block_;
  std::size_t code_size_;
  unsigned __int128 count_int_;   // D4 points / E8 integer-coset points in the box
  unsigned __int128 count_half_;  // E8 half-integer-coset points in the box (0 for D4)
  // Q <= 127: block_point() extracts digits with 32-bit multiplicative
  // division (ceil(2^48 / radix)) instead of 64/128-bit divisions.
  bool fast_ = false;
  uint64_t pow4_m_ = 0, pow4_r_ = 0;  // (2Q+1)^4, (2Q)^4
  uint64_t mul_m_ = 0, mul_r_ = 0;    // multipliers for radix 2Q+1 and 2Q
  bool split_ = false;                // E8 indices < 2^53: split by multiplication
  detail::FastDiv53 split_m_, split_r_;  // by (2Q+1)^4 and (2Q)^4
};

// Published bits per block: D4 ceil(4 log2(2Q+1) - 1), E8 ceil(8 log2(2Q+1)),
// computed exactly in integers.
int lattice_bits_per_block(kernels::LatticeKind kind, int q);

}  // namespace kvlab::codec
