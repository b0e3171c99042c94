// D4 / E8 nested-lattice codecs with a real byte format (SPEC section 3,
// with the in-box closest point of kernels/lattice.h instead of the
// published clamp).
//
// Per vector: 2 bytes uf16 norm, 2 bytes fp16 qmax (both little endian),
// then D/b block indices of k bits each, packed LSB-first, zero-padded to a
// byte. The block index and the packing are kernels/lattice_pack.h's
// (lattice_pack / lattice_unpack, the dispatching versions).
// Bits: (D/b) k + 32, the published accounting, rounded up to whole bytes
// (equal to it whenever (D/b) k is a multiple of 8, e.g. every D >= 64).
// Entropy classes (stored_entropy), over the n D/b blocks: the block point
// as coset c (E8 only: 0 integer, 1 half-integer; "coset"), coordinates
// y_i = (2 x_i - c) / 2 for i < b - 1 ("coord<i>", one class per position
// in the block) and floor(y_{b-1} / 2) ("coord<b-1>_half": the parity of
// y_{b-1} follows from the others). The map is one-to-one, so the sum of
// these entropies bounds the block index's entropy from above and a
// coordinate-wise coder reaches it. Side information: "norm_uf16" and
// "qmax_f16", 16 bits each per vector. symbol_columns() gives these
// classes as values (the coset 0/1, y_i, floor(y_{b-1} / 2), the raw
// fields) and join_symbol_columns() rebuilds the records: y_{b-1} from its
// half and the parity sum_i y_i = 0 (mod 2) that both lattices' points
// satisfy (D4: sum x_i even; E8: x_i = y_i + c/2 with sum x_i even).
#pragma once

#include <cstdint>

#include "codec/codec.h"
#include "kernels/lattice.h"
#include "kernels/lattice_pack.h"

namespace kvlab::codec {

class LatticeCodec final : public Codec {
 public:
  LatticeCodec(kernels::LatticeKind kind, int q, int64_t dim);
  std::string spec() const override;
  int64_t dim() const override { return dim_; }
  std::size_t code_size() const override { return code_size_; }
  double published_bits_per_vector() const override;
  void encode(const float* x, int64_t n, uint8_t* codes) const override;
  void decode(const uint8_t* codes, int64_t n, float* out) const override;
  StoredEntropy stored_entropy(const uint8_t* codes, int64_t n) const override;
  bool reencode_is_exact() const override { return false; }
  // The classes of stored_entropy() as columns (side information: the raw
  // uf16 norm and f16 qmax fields, 16 bits).
  bool has_symbol_columns() const override { return true; }
  std::vector<SymbolColumn> symbol_layout(int64_t n) const override;
  std::vector<SymbolColumn> symbol_columns(const uint8_t* codes, int64_t n) const override;
  void join_symbol_columns(const std::vector<SymbolColumn>& cols, int64_t n, uint8_t* codes) const override;

  kernels::LatticeKind kind() const { return kind_; }
  int q() const { return q_; }
  int block_dim() const { return block_; }
  int bits_per_block() const { return ix_.bits_per_block(); }
  // Number of lattice points in the box (the index range of one block).
  unsigned __int128 points_per_block() const { return ix_.points_per_block(); }
  // Block index of a point (doubled coordinates) and its inverse; the
  // inverse throws kvlab::Error for an index >= points_per_block().
  unsigned __int128 block_index(const int32_t* pts2) const;
  void block_point(unsigned __int128 index, int32_t* pts2) const;
  // The block points of n encoded vectors, doubled coordinates:
  // pts2[i * D + j] (throws kvlab::Error on an index out of range).
  void block_points(const uint8_t* codes, int64_t n, int32_t* pts2) const;

 protected:
  void roundtrip_impl(const float* x, int64_t n, float* out) const override;

 private:
  kernels::LatticeKind kind_;
  int q_;
  int64_t dim_;
  int block_;
  kernels::LatticeIndexer ix_;
  std::size_t code_size_;
};

// Published bits per block (kernels/lattice_pack.h).
using kernels::lattice_bits_per_block;

}  // namespace kvlab::codec
