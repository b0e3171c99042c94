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
// Specs: "fp8_per64", "d4:q=10", "e8:q=38" (case-insensitive; canonical
// form lower case). parse_codec_spec() validates; make_codec() builds.
// Not here: LibTorch (see torch_adapter.h), files, metrics.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace kvlab::codec {

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

 protected:
  virtual void roundtrip_impl(const float* x, int64_t n, float* out) const;
};

struct CodecSpec {
  std::string family;     // "fp8_per64", "d4", "e8"
  int q = 0;              // 0 for families without Q
  std::string canonical;  // e.g. "e8:q=38"
};

// Accepts "e8:q=38", "E8:Q=38", " e8 : q = 38 ", "fp8_per64". A lattice
// family without ":q=" takes default_q when default_q > 0 (e.g. a CLI with a
// separate --q), else it is an error. Throws kvlab::Error listing the known
// families on unknown names, and naming the value on a bad or out-of-range Q.
CodecSpec parse_codec_spec(const std::string& spec, int default_q = 0);

std::unique_ptr<Codec> make_codec(const CodecSpec& spec, int64_t dim);
std::unique_ptr<Codec> make_codec(const std::string& spec, int64_t dim);

// Bits per vector of the lattice codec (family, Q, D), memoised: the codec's
// own 8 * code_size() when `published_accounting` is false (kvlab sweeps), the
// published formula (SPEC section 3) when true (imported experiments). Used to
// price Q values that were not swept (best_q --suggest, report tables).
std::function<double(const std::string& family, int q, int dim)> lattice_bits_fn(bool published_accounting);

// One row per codec family.
struct CodecFamily {
  std::string name;         // "e8"
  bool has_q;               // takes ":q=N"
  int min_q, max_q;         // valid Q range when has_q
  std::string description;  // one line
  std::function<std::unique_ptr<Codec>(int q, int64_t dim)> make;
};
const std::vector<CodecFamily>& codec_families();
// "fp8_per64, d4:q=N (1 <= N <= 32767), e8:q=N (...)": for messages.
std::string known_codecs_text();
// Representative specs spanning every family (for generic tests, benches).
std::vector<std::string> example_codec_specs();

}  // namespace kvlab::codec
