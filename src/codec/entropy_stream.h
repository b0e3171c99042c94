// The entropy-coded codec variant "entropy=range" (spec "e8:q=38,entropy=range",
// families with symbol columns: d4, e8, int, hadamard_int, hadamard_lloyd).
//
// A batch of n vectors is one stream: the fixed-size codec's n records are
// split into the symbol columns of Codec::symbol_columns() (the classes that
// stored_entropy() prices), every coded column goes through its own
// adaptive model of kernels/range_coder.h and every side-information field
// is written raw at its stored width, all in one range-coder stream. The
// coded size therefore approaches the plug-in rate stored_entropy() reports
// (plus the adaptive models' learning cost and the header below), and the
// decoded records are the fixed codec's, byte for byte.
//
// Stream layout (little endian): "KVRC", a mode byte, u32 D, u64 n, then
//   mode 1 (range-coded): u32 column count, u32 FNV-1a checksum of all
//     column values (in coding order, as 32-bit words), per coded column
//     i32 lo, i32 hi (the values' range over all n vectors), then the
//     range-coded payload to the end: chunks of 256 vectors, each chunk's
//     columns one after another (the models persist across chunks, so only
//     one chunk's columns are held in memory);
//   mode 0 (stored): the n records verbatim, written instead when the
//     range-coded part would be larger (a few vectors: the adaptive models
//     have not learnt yet), so a stream never exceeds the fixed size by
//     more than the 17-byte prefix.
// A coded column whose range has at most AdaptiveModel::kMaxAlphabet values
// is coded as v - lo with one model; a wider one (lattices with Q above
// ~2000) as u = zigzag(v - c), c = clamp(0, lo, hi): the bit length of u
// through a model (0..33) and the bits of u below its leading one raw.
// Decoding checks the header against the codec and n, the payload through
// the range decoder (truncation, trailing bytes), the checksum, and the
// records through join_symbol_columns and the codec's decode; each failure
// is a kvlab::Error naming what was found and expected.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "codec/codec.h"

namespace kvlab::codec {

// The range-coded stream of n records of c (c.has_symbol_columns(), else
// kvlab::Error); allow_stored = false always writes mode 1 (for tests).
std::vector<uint8_t> range_encode_records(const Codec& c, const uint8_t* codes, int64_t n, bool allow_stored = true);
// The n records (n * c.code_size() bytes at codes) of a stream.
void range_decode_records(const Codec& c, std::span<const uint8_t> bytes, int64_t n, uint8_t* codes);

// The entropy=range variant of a fixed-size codec: its fixed-size contract
// (code_size, encode, decode, stored_entropy) is the inner codec's; its
// stream (encode_stream / decode_stream) is range-coded.
class RangeCodedCodec final : public Codec {
 public:
  // Throws kvlab::Error when inner has no symbol columns.
  explicit RangeCodedCodec(std::unique_ptr<Codec> inner);
  const Codec& inner() const { return *inner_; }
  std::string spec() const override;
  int64_t dim() const override { return inner_->dim(); }
  std::size_t code_size() const override { return inner_->code_size(); }
  double published_bits_per_vector() const override { return inner_->published_bits_per_vector(); }
  void encode(const float* x, int64_t n, uint8_t* codes) const override { inner_->encode(x, n, codes); }
  void decode(const uint8_t* codes, int64_t n, float* out) const override { inner_->decode(codes, n, out); }
  bool reencode_is_exact() const override { return inner_->reencode_is_exact(); }
  StoredEntropy stored_entropy(const uint8_t* codes, int64_t n) const override {
    return inner_->stored_entropy(codes, n);
  }
  bool has_symbol_columns() const override { return true; }
  std::vector<SymbolColumn> symbol_layout(int64_t n) const override { return inner_->symbol_layout(n); }
  std::vector<SymbolColumn> symbol_columns(const uint8_t* codes, int64_t n) const override {
    return inner_->symbol_columns(codes, n);
  }
  void join_symbol_columns(const std::vector<SymbolColumn>& cols, int64_t n, uint8_t* codes) const override {
    inner_->join_symbol_columns(cols, n, codes);
  }
  std::vector<uint8_t> encode_stream(const float* x, int64_t n) const override;
  void decode_stream(std::span<const uint8_t> bytes, int64_t n, float* out) const override;

 protected:
  void roundtrip_impl(const float* x, int64_t n, float* out) const override { inner_->roundtrip(x, n, out); }

 private:
  std::unique_ptr<Codec> inner_;
};

}  // namespace kvlab::codec
