// The codec contract and registry (in the style of faiss' Quantizer):
// a codec IS its byte format. encode() writes exactly code_size() bytes per
// vector, decode() reads them back, and bits_per_vector() = 8 * code_size()
// is what was written, never an accounting formula. The published
// accounting is available separately (published_bits_per_vector()) so that
// reports can show both; kvlab's formats meet it exactly for every D the
// study uses (see each codec).
//
// Codecs are stateless after construction and thread-compatible: concurrent
// calls on one instance with disjoint buffers are safe.
//
// Specs: "fp8_per64", "v4_native", "d4:q=10", "e8:q=38", "int:bits=8,block=64,scale=fp16"
// (common/codec_spec.h parses them); make_codec() builds. "e8:q=38,entropy=range"
// builds the range-coded variant (codec/entropy_stream.h).
// Not here: LibTorch (see torch_adapter.h), files, metrics.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/codec_spec.h"

namespace kvlab::codec {

// One class of stored symbols of n encoded vectors and the bits per symbol
// it is priced at: its plug-in entropy (kernels/entropy.h) for the coded
// symbols, its stored width for side information (scales, norms), which is
// not entropy-coded. Constant fields (padding) are not listed (0 bits).
struct SymbolClass {
  std::string name;        // "e4m3", "coord0", "scale_uf16", ...
  int64_t count = 0;       // symbols of this class in the n vectors
  double bits_per_symbol = 0;
  bool side_info = false;  // priced at its stored width
};

// The ideal entropy-coded rate of n encoded vectors: every class's count *
// bits_per_symbol, over n * D (bits per dimension).
struct StoredEntropy {
  int64_t n = 0, dim = 0;
  std::vector<SymbolClass> classes;
  double total_bits() const;
  double bits_per_dim() const;  // total_bits() / (n * dim); 0 when n == 0
};

// The stored symbols of one class of n encoded vectors, as values: the
// classes of Codec::stored_entropy() (same names, counts and order), for a
// real entropy coder (codec/entropy_stream.h). Coded classes hold integer
// symbols; side information (side_info) holds its raw field values,
// 0 <= value < 2^width.
struct SymbolColumn {
  std::string name;
  int64_t count = 0;
  bool side_info = false;
  int width = 0;  // stored width in bits of a side-information field (<= 16)
  std::vector<int32_t> values;  // count values (empty in a layout)
};

class Codec {
 public:
  virtual ~Codec();
  // Canonical spec, e.g. "e8:q=38", "d4:q=10", "fp8_per64".
  virtual std::string spec() const = 0;
  virtual int64_t dim() const = 0;
  // Bytes per vector written by encode().
  virtual std::size_t code_size() const = 0;
  double bits_per_vector() const { return 8.0 * double(code_size()); }
  // The published accounting formula (SPEC section 3).
  virtual double published_bits_per_vector() const = 0;
  // x: n contiguous float32 vectors of dim(); codes: n * code_size() bytes.
  // Throws kvlab::Error on input the format cannot hold (NaN/Inf, values
  // beyond the 16-bit scale/norm fields), naming the vector and value.
  virtual void encode(const float* x, int64_t n, uint8_t* codes) const = 0;
  // Throws kvlab::Error on byte strings no encoder produces.
  virtual void decode(const uint8_t* codes, int64_t n, float* out) const = 0;
  // decode(encode(x)) without materialising the bytes; bit-identical to it
  // (a registry-wide test checks this).
  void roundtrip(const float* x, int64_t n, float* out) const;
  // True when encode(decode(c)) == c for every code c an encoder produced.
  // The lattice codecs are not (and cannot be, with the published
  // selection): decode yields norm n16 * s * ||p/2|| != n16 and rotated
  // maximum s * max|p/2|, so re-encoding recomputes other scalar fields
  // (their block points do reproduce; see codec_generic_test).
  virtual bool reencode_is_exact() const { return true; }
  // The ideal entropy-coded rate of the bytes encode() wrote for n vectors
  // (codes: n * code_size() bytes): the plug-in entropy of each class of
  // stored symbols (see each codec for its classes) plus the side
  // information at its stored width. A static coder per class with the
  // empirical tables reaches it (the tables themselves are not counted).
  virtual StoredEntropy stored_entropy(const uint8_t* codes, int64_t n) const = 0;

  // Entropy-coding hooks (d4, e8, int, hadamard_int, hadamard_lloyd): the
  // column layout of n vectors (values empty), the columns of n records,
  // and the n records rebuilt from columns (bit-identical to the records
  // the columns came from; throws kvlab::Error on a column that does not
  // match the layout or a value no encoder writes, naming the column and
  // index). Codecs without them return false and the others throw.
  virtual bool has_symbol_columns() const { return false; }
  virtual std::vector<SymbolColumn> symbol_layout(int64_t n) const;
  virtual std::vector<SymbolColumn> symbol_columns(const uint8_t* codes, int64_t n) const;
  virtual void join_symbol_columns(const std::vector<SymbolColumn>& cols, int64_t n, uint8_t* codes) const;

  // The byte stream of n vectors and its inverse. Fixed-size codecs write
  // their n * code_size() bytes of records; the entropy=range variants
  // (codec/entropy_stream.h) a range-coded stream of variable length whose
  // decode is bit-identical to the fixed codec's. decode_stream throws
  // kvlab::Error on a stream of the wrong length or that no encoder wrote.
  virtual std::vector<uint8_t> encode_stream(const float* x, int64_t n) const;
  virtual void decode_stream(std::span<const uint8_t> bytes, int64_t n, float* out) const;

 protected:
  virtual void roundtrip_impl(const float* x, int64_t n, float* out) const;
};

// Specs are parsed and printed by common/codec_spec.h (one parser for every
// layer); the aliases keep codec:: call sites short.
using kvlab::CodecSpec;
using kvlab::known_codecs_text;
using kvlab::parse_codec_spec;

std::unique_ptr<Codec> make_codec(const CodecSpec& spec, int64_t dim);
std::unique_ptr<Codec> make_codec(const std::string& spec, int64_t dim);

// Bits per vector of a codec variant ("e8", "int:block=64,scale=fp16") at
// a rate and dimension D, memoised: the codec's own 8 * code_size() when
// `published_accounting` is false (kvlab sweeps), the published formula
// (SPEC section 3) when true (imported experiments). Used to price rates
// that were not swept (best --suggest, report tables).
std::function<double(const std::string& variant, int rate, int dim)> bits_fn(bool published_accounting);
// The same, kept for the lattice callers ("e8", Q, D).
inline std::function<double(const std::string&, int, int)> lattice_bits_fn(bool published_accounting) {
  return bits_fn(published_accounting);
}

// One registry row per codec family: the table row (common/codec_spec.h)
// and how to build the codec. codec_families() holds a row for every row
// of codec_family_table() (a test checks it).
struct CodecFamily {
  const CodecFamilyInfo* info;
  std::string name;
  bool has_q;  // has a rate parameter (Q or bits)
  int min_q, max_q;
  std::function<std::unique_ptr<Codec>(const CodecSpec& spec, int64_t dim)> make;
};
const std::vector<CodecFamily>& codec_families();
// Representative specs spanning every family (for generic tests, benches).
std::vector<std::string> example_codec_specs();

}  // namespace kvlab::codec
