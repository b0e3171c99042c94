// Codec base class, spec parsing and the registry; see codec.h.
#include "codec/codec.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <tuple>

#include "codec/entropy_stream.h"
#include "codec/fp8_codec.h"
#include "codec/lattice_codec.h"
#include "codec/scalar_codec.h"
#include "codec/v4_native_codec.h"
#include "common/error.h"
#include "kernels/lattice.h"

namespace kvlab::codec {

Codec::~Codec() = default;

double StoredEntropy::total_bits() const {
  double t = 0;
  for (const auto& c : classes) t += double(c.count) * c.bits_per_symbol;
  return t;
}

double StoredEntropy::bits_per_dim() const { return n > 0 ? total_bits() / (double(n) * double(dim)) : 0.0; }

void Codec::roundtrip(const float* x, int64_t n, float* out) const {
  KVLAB_CHECK(n >= 0, "{}: roundtrip of n = {} vectors (expected n >= 0)", spec(), n);
  if (n == 0) return;
  roundtrip_impl(x, n, out);
}

void Codec::roundtrip_impl(const float* x, int64_t n, float* out) const {
  std::vector<uint8_t> codes(std::size_t(n) * code_size());
  encode(x, n, codes.data());
  decode(codes.data(), n, out);
}

std::vector<SymbolColumn> Codec::symbol_layout(int64_t) const {
  throw Error(fmt::format("{}: no symbol columns (entropy=range is available for {})", spec(),
                          entropy_range_families_text()));
}

std::vector<SymbolColumn> Codec::symbol_columns(const uint8_t*, int64_t n) const { return symbol_layout(n); }

void Codec::join_symbol_columns(const std::vector<SymbolColumn>&, int64_t n, uint8_t*) const { symbol_layout(n); }

std::vector<uint8_t> Codec::encode_stream(const float* x, int64_t n) const {
  KVLAB_CHECK(n >= 0, "{}: stream of n = {} vectors (expected n >= 0)", spec(), n);
  std::vector<uint8_t> out(std::size_t(n) * code_size());
  encode(x, n, out.data());
  return out;
}

void Codec::decode_stream(std::span<const uint8_t> bytes, int64_t n, float* out) const {
  KVLAB_CHECK(n >= 0, "{}: stream of n = {} vectors (expected n >= 0)", spec(), n);
  KVLAB_CHECK(bytes.size() == std::size_t(n) * code_size(),
              "{}: stream of {} bytes for {} vectors (expected n * code_size = {} bytes)", spec(), bytes.size(), n,
              std::size_t(n) * code_size());
  decode(bytes.data(), n, out);
}

static_assert(kernels::kLatticeMaxQ == 32767, "common/codec_spec.cpp's lattice Q range must match kernels/lattice.h");

namespace {
using MakeFn = std::function<std::unique_ptr<Codec>(const CodecSpec&, int64_t)>;

std::unique_ptr<Codec> make_int(const CodecSpec& s, bool hadamard, int64_t dim) {
  const ScaleKind scale = s.param("scale") == "ue8m0" ? ScaleKind::kUe8m0 : ScaleKind::kUf16;
  return std::make_unique<IntBlockCodec>(s.q(), std::stoi(s.param("block")), scale, hadamard, dim);
}

// How each family of the table is built (the table itself: common/codec_spec.cpp).
const std::map<std::string, MakeFn>& constructors() {
  static const std::map<std::string, MakeFn> m = {
      {"fp8_per64", [](const CodecSpec&, int64_t dim) -> std::unique_ptr<Codec> {
         return std::make_unique<Fp8Per64Codec>(dim);
       }},
      {"d4", [](const CodecSpec& s, int64_t dim) -> std::unique_ptr<Codec> {
         return std::make_unique<LatticeCodec>(kernels::LatticeKind::kD4, s.q(), dim);
       }},
      {"e8", [](const CodecSpec& s, int64_t dim) -> std::unique_ptr<Codec> {
         return std::make_unique<LatticeCodec>(kernels::LatticeKind::kE8, s.q(), dim);
       }},
      {"v4_native", [](const CodecSpec&, int64_t dim) -> std::unique_ptr<Codec> {
         return std::make_unique<V4NativeCodec>(dim);
       }},
      {"int", [](const CodecSpec& s, int64_t dim) -> std::unique_ptr<Codec> { return make_int(s, false, dim); }},
      {"hadamard_int", [](const CodecSpec& s, int64_t dim) -> std::unique_ptr<Codec> { return make_int(s, true, dim); }},
      {"hadamard_lloyd", [](const CodecSpec& s, int64_t dim) -> std::unique_ptr<Codec> {
         return std::make_unique<HadamardLloydCodec>(s.q(), dim);
       }},
  };
  return m;
}
}  // namespace

const std::vector<CodecFamily>& codec_families() {
  static const std::vector<CodecFamily> families = [] {
    std::vector<CodecFamily> v;
    for (const auto& info : codec_family_table()) {
      const auto it = constructors().find(info.name);
      if (it == constructors().end()) continue;  // listed, not built yet (codec_generic_test flags it)
      v.push_back({&info, info.name, !info.rate_param.empty(), info.min_rate, info.max_rate, it->second});
    }
    return v;
  }();
  return families;
}

std::vector<std::string> example_codec_specs() {
  std::vector<std::string> out = {"fp8_per64", "d4:q=1", "d4:q=10", "d4:q=38", "d4:q=152",
                                  "e8:q=1",    "e8:q=3", "e8:q=38", "e8:q=152"};
  for (const auto& f : codec_families()) {
    if (f.name == "fp8_per64" || f.name == "d4" || f.name == "e8") continue;
    if (!f.has_q) {
      out.push_back(f.name);
      continue;
    }
    for (int r : {f.min_q, (f.min_q + f.max_q) / 2, f.max_q}) out.push_back(codec_spec_at_rate(f.name, r).canonical);
  }
  return out;
}

std::unique_ptr<Codec> make_codec(const CodecSpec& spec, int64_t dim) {
  if (spec.entropy_range()) {
    CodecSpec plain = spec;
    std::erase_if(plain.params, [](const auto& p) { return p.first == "entropy"; });
    plain.canonical = plain.rate ? plain.with_rate(*plain.rate) : plain.variant();
    return std::make_unique<RangeCodedCodec>(make_codec(plain, dim));
  }
  for (const auto& f : codec_families())
    if (f.name == spec.family) return f.make(spec, dim);
  throw Error(fmt::format("unknown codec family '{}' (known codecs: {})", spec.family, known_codecs_text()));
}

std::unique_ptr<Codec> make_codec(const std::string& spec, int64_t dim) {
  return make_codec(parse_codec_spec(spec), dim);
}

std::function<double(const std::string&, int, int)> bits_fn(bool published_accounting) {
  auto cache = std::make_shared<std::map<std::tuple<std::string, int, int>, double>>();
  return [published_accounting, cache](const std::string& variant, int rate, int dim) {
    const auto key = std::make_tuple(variant, rate, dim);
    const auto it = cache->find(key);
    if (it != cache->end()) return it->second;
    const auto c = make_codec(codec_spec_at_rate(variant, rate), dim);
    const double b = published_accounting ? c->published_bits_per_vector() : c->bits_per_vector();
    (*cache)[key] = b;
    return b;
  };
}

}  // namespace kvlab::codec
