// Scalar-quantisation baseline codecs with real byte formats (formats and
// kernels in kernels/scalar_quant.h):
//  - IntBlockCodec: symmetric per-block integer codes, K = 2..8 bits, block
//    B (a multiple of 8 dividing D), one 16-bit (kvlab uf16, "fp16" in the
//    spec) or 8-bit (UE8M0 power of two) scale per block; optionally after
//    the orthonormal Walsh-Hadamard rotation of the whole vector (D a power
//    of two). Specs "int:bits=8,block=64,scale=fp16",
//    "hadamard_int:bits=4,block=64,scale=ue8m0".
//    Bits per vector: K D + (16 or 8) D / B (4224 at K = 8, B = 64, fp16,
//    D = 512: the fp8_per64 budget).
//  - HadamardLloydCodec: rotation, one uf16 RMS scale per vector, each
//    rotated coordinate quantised by the Lloyd-Max quantiser of N(0,1) with
//    2^K levels, K = 1..4. Spec "hadamard_lloyd:bits=3". Bits: K D + 16.
// Entropy classes (stored_entropy): int / hadamard_int "code" (all n D
// codes, one class) + side information "scale_fp16" (16 bits) or
// "scale_ue8m0" (8 bits) per block; hadamard_lloyd "index" (all n D
// indices) + side information "sigma_uf16" (16 bits per vector). The same
// classes as values (symbol_columns: signed codes / indices, raw fields)
// rebuild the records (join_symbol_columns).
// Not here: the registry rows (codec.cpp), FP8 (fp8_codec.h), v4_native
// (v4_native_codec.h).
#pragma once

#include "codec/codec.h"
#include "kernels/scalar_quant.h"

namespace kvlab::codec {

using ScaleKind = kernels::IntScale;  // kUf16 ("fp16" in specs) or kUe8m0

class IntBlockCodec final : public Codec {
 public:
  // Throws kvlab::Error naming the value: bits outside 2..8, block not a
  // multiple of 8, D not a positive multiple of the block, or (hadamard) D
  // not a power of two.
  IntBlockCodec(int bits, int block, ScaleKind scale, bool hadamard, int64_t dim);
  std::string spec() const override;
  int64_t dim() const override { return dim_; }
  std::size_t code_size() const override { return code_size_; }
  double published_bits_per_vector() const override { return bits_per_vector(); }
  void encode(const float* x, int64_t n, uint8_t* codes) const override;
  void decode(const uint8_t* codes, int64_t n, float* out) const override;
  StoredEntropy stored_entropy(const uint8_t* codes, int64_t n) const override;
  // The rotated variant re-encodes through float32 rotations (not exact).
  bool reencode_is_exact() const override { return !format_.hadamard; }
  // The classes of stored_entropy() as columns (see the file comment).
  bool has_symbol_columns() const override { return true; }
  std::vector<SymbolColumn> symbol_layout(int64_t n) const override;
  std::vector<SymbolColumn> symbol_columns(const uint8_t* codes, int64_t n) const override;
  void join_symbol_columns(const std::vector<SymbolColumn>& cols, int64_t n, uint8_t* codes) const override;

  int bits() const { return format_.bits; }
  int block() const { return int(format_.block); }
  ScaleKind scale() const { return format_.scale; }
  bool hadamard() const { return format_.hadamard; }
  // The stored symbols of n encoded vectors: symbols[i * D + j] = the signed
  // code of coordinate j (in [-(2^(K-1) - 1), 2^(K-1) - 1]); scales[i * (D/B)
  // + k] = block k's raw scale field (uf16 code, or E8M0 byte). Either may
  // be null. For entropy estimates of what is stored.
  void symbols(const uint8_t* codes, int64_t n, int16_t* symbols, uint16_t* scales) const;

 protected:
  void roundtrip_impl(const float* x, int64_t n, float* out) const override;

 private:
  kernels::IntFormat format_;
  int64_t dim_;
  std::size_t code_size_;
};

class HadamardLloydCodec final : public Codec {
 public:
  // Throws kvlab::Error naming the value: bits outside 1..4, D not a power
  // of two >= 8.
  HadamardLloydCodec(int bits, int64_t dim);
  std::string spec() const override;
  int64_t dim() const override { return dim_; }
  std::size_t code_size() const override { return code_size_; }
  double published_bits_per_vector() const override { return bits_per_vector(); }
  void encode(const float* x, int64_t n, uint8_t* codes) const override;
  void decode(const uint8_t* codes, int64_t n, float* out) const override;
  StoredEntropy stored_entropy(const uint8_t* codes, int64_t n) const override;
  bool reencode_is_exact() const override { return false; }
  // The classes of stored_entropy() as columns (see the file comment).
  bool has_symbol_columns() const override { return true; }
  std::vector<SymbolColumn> symbol_layout(int64_t n) const override;
  std::vector<SymbolColumn> symbol_columns(const uint8_t* codes, int64_t n) const override;
  void join_symbol_columns(const std::vector<SymbolColumn>& cols, int64_t n, uint8_t* codes) const override;

  int bits() const { return bits_; }
  // symbols[i * D + j] = the level index (0 .. 2^K - 1) of rotated
  // coordinate j; sigma16[i] = the uf16 code of the vector's RMS scale.
  // Either may be null.
  void symbols(const uint8_t* codes, int64_t n, int16_t* symbols, uint16_t* sigma16) const;

 protected:
  void roundtrip_impl(const float* x, int64_t n, float* out) const override;

 private:
  int bits_;
  int64_t dim_;
  std::size_t code_size_;
};

}  // namespace kvlab::codec
