// Codec base class, spec parsing and the registry; see codec.h.
#include "codec/codec.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <tuple>

#include "codec/fp8_codec.h"
#include "codec/lattice_codec.h"
#include "common/error.h"
#include "kernels/lattice.h"

namespace kvlab::codec {

Codec::~Codec() = default;

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

const std::vector<CodecFamily>& codec_families() {
  static const std::vector<CodecFamily> families = {
      {"fp8_per64", false, 0, 0,
       "FP8 E4M3FN per 64-coordinate block, uf16 block scale (DeepSeek-V4 KV storage, SPEC 3)",
       [](int, int64_t dim) -> std::unique_ptr<Codec> { return std::make_unique<Fp8Per64Codec>(dim); }},
      {"d4", true, 1, kernels::kLatticeMaxQ, "D4 nested-lattice codec: Hadamard, per-vector scale, in-box D4 points",
       [](int q, int64_t dim) -> std::unique_ptr<Codec> {
         return std::make_unique<LatticeCodec>(kernels::LatticeKind::kD4, q, dim);
       }},
      {"e8", true, 1, kernels::kLatticeMaxQ, "E8 nested-lattice codec: Hadamard, per-vector scale, in-box E8 points",
       [](int q, int64_t dim) -> std::unique_ptr<Codec> {
         return std::make_unique<LatticeCodec>(kernels::LatticeKind::kE8, q, dim);
       }},
  };
  return families;
}

std::string known_codecs_text() {
  std::string s;
  for (const auto& f : codec_families()) {
    if (!s.empty()) s += ", ";
    s += f.has_q ? fmt::format("{}:q=N ({} <= N <= {})", f.name, f.min_q, f.max_q) : f.name;
  }
  return s;
}

std::vector<std::string> example_codec_specs() {
  return {"fp8_per64", "d4:q=1", "d4:q=10", "d4:q=38", "d4:q=152", "e8:q=1", "e8:q=3", "e8:q=38", "e8:q=152"};
}

namespace {
std::string lower_no_space(const std::string& s) {
  std::string out;
  for (char c : s)
    if (!std::isspace(static_cast<unsigned char>(c))) out += char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
}  // namespace

CodecSpec parse_codec_spec(const std::string& spec, int default_q) {
  const std::string s = lower_no_space(spec);
  const auto colon = s.find(':');
  const std::string name = s.substr(0, colon);
  const auto it = std::find_if(codec_families().begin(), codec_families().end(),
                               [&](const CodecFamily& f) { return f.name == name; });
  KVLAB_CHECK(it != codec_families().end(), "unknown codec spec '{}' (known codecs: {})", spec, known_codecs_text());
  CodecSpec out;
  out.family = it->name;
  if (!it->has_q) {
    KVLAB_CHECK(colon == std::string::npos, "codec spec '{}': {} takes no parameters (expected exactly '{}')", spec,
                it->name, it->name);
    out.canonical = it->name;
    return out;
  }
  int q = default_q;
  if (colon != std::string::npos) {
    const std::string param = s.substr(colon + 1);
    KVLAB_CHECK(param.rfind("q=", 0) == 0 && param.size() > 2,
                "codec spec '{}': expected '{}:q=N' with an integer N (known codecs: {})", spec, it->name,
                known_codecs_text());
    const char* b = param.data() + 2;
    const char* e = param.data() + param.size();
    long long v = 0;
    const auto [p, ec] = std::from_chars(b, e, v);
    KVLAB_CHECK(ec == std::errc() && p == e, "codec spec '{}': Q = '{}' is not an integer", spec, param.substr(2));
    KVLAB_CHECK(v >= it->min_q && v <= it->max_q, "codec spec '{}': Q = {} is out of range (expected {} <= Q <= {})",
                spec, v, it->min_q, it->max_q);
    q = int(v);
  } else {
    KVLAB_CHECK(default_q > 0, "codec spec '{}': {} needs a range Q, e.g. '{}:q=38'", spec, it->name, it->name);
    KVLAB_CHECK(default_q >= it->min_q && default_q <= it->max_q,
                "codec spec '{}': Q = {} is out of range (expected {} <= Q <= {})", spec, default_q, it->min_q,
                it->max_q);
  }
  out.q = q;
  out.canonical = fmt::format("{}:q={}", it->name, q);
  return out;
}

std::unique_ptr<Codec> make_codec(const CodecSpec& spec, int64_t dim) {
  for (const auto& f : codec_families())
    if (f.name == spec.family) return f.make(spec.q, dim);
  throw Error(fmt::format("unknown codec family '{}' (known codecs: {})", spec.family, known_codecs_text()));
}

std::unique_ptr<Codec> make_codec(const std::string& spec, int64_t dim) {
  return make_codec(parse_codec_spec(spec), dim);
}

std::function<double(const std::string&, int, int)> lattice_bits_fn(bool published_accounting) {
  auto cache = std::make_shared<std::map<std::tuple<std::string, int, int>, double>>();
  return [published_accounting, cache](const std::string& family, int q, int dim) {
    const auto key = std::make_tuple(family, q, dim);
    const auto it = cache->find(key);
    if (it != cache->end()) return it->second;
    const auto c = make_codec(family + ":q=" + std::to_string(q), dim);
    const double b = published_accounting ? c->published_bits_per_vector() : c->bits_per_vector();
    (*cache)[key] = b;
    return b;
  };
}

}  // namespace kvlab::codec
