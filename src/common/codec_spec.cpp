// Codec specs and the family table; see codec_spec.h.
#include "common/codec_spec.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "common/error.h"

namespace kvlab {

namespace {
// Lattice Q range: kernels/lattice.h kLatticeMaxQ (codec.cpp static_asserts the match).
constexpr int kMaxLatticeQ = 32767;
const std::vector<std::string> kScaleKinds = {"fp16", "ue8m0"};
const std::vector<std::string> kBlocks = {"16", "32", "64", "128"};
}  // namespace

bool entropy_range_supported(const std::string& family) {
  return family == "d4" || family == "e8" || family == "int" || family == "hadamard_int" || family == "hadamard_lloyd";
}

std::string entropy_range_families_text() { return "d4, e8, int, hadamard_int, hadamard_lloyd"; }

const std::vector<CodecFamilyInfo>& codec_family_table() {
  static const std::vector<CodecFamilyInfo> t = {
      {"fp8_per64", "", 0, 0, {}, true,
       "D E4M3 bytes + D/64 x 16-bit block maxima (uf16); 8D + 16D/64 bits",
       "FP8 E4M3FN per 64-coordinate block on every dim, 16-bit scale: the published harness's V4 stand-in (SPEC 3)"},
      {"v4_native", "", 0, 0, {}, true,
       "(D-64) E4M3 bytes + 64 bf16 RoPE dims + (D-64)/64 UE8M0 scale bytes, padded to 8; 584 B at D = 512",
       "DeepSeek-V4's deployed KV record: E4M3 nope dims with power-of-two scales, bf16 RoPE dims"},
      {"d4", "q", 1, kMaxLatticeQ, {}, false, "D/4 packed D4 block indices + uf16 norm + uf16 max",
       "D4 nested-lattice codec: Hadamard, per-vector scale, in-box D4 points"},
      {"e8", "q", 1, kMaxLatticeQ, {}, false, "D/8 packed E8 block indices + uf16 norm + uf16 max",
       "E8 nested-lattice codec: Hadamard, per-vector scale, in-box E8 points"},
      {"int", "bits", 2, 8, {{"block", kBlocks, "64"}, {"scale", kScaleKinds, "fp16"}}, false,
       "D bit-packed K-bit codes + one scale per block (2 B uf16 or 1 B UE8M0)",
       "symmetric per-block integer quantisation (round to nearest even, +-(2^(K-1)-1))"},
      {"hadamard_int", "bits", 2, 8, {{"block", kBlocks, "64"}, {"scale", kScaleKinds, "fp16"}}, false,
       "as int, of the Hadamard-rotated vector",
       "Hadamard rotation then per-block integer quantisation (QuaRot-style rotation + scalar)"},
      {"hadamard_lloyd", "bits", 1, 4, {}, false, "D bit-packed K-bit Lloyd-Max indices + uf16 norm",
       "Hadamard rotation, per-vector scale, Lloyd-Max scalar quantiser of N(0,1) (TurboQuant-MSE style)"},
  };
  return t;
}

const CodecFamilyInfo* find_codec_family(const std::string& name) {
  for (const auto& f : codec_family_table())
    if (f.name == name) return &f;
  return nullptr;
}

std::string known_codecs_text() {
  std::string s;
  for (const auto& f : codec_family_table()) {
    if (!s.empty()) s += ", ";
    s += f.name;
    std::string ps;
    if (!f.rate_param.empty()) ps = fmt::format("{}=N ({} <= N <= {})", f.rate_param, f.min_rate, f.max_rate);
    for (const auto& p : f.params) {
      std::string vals;
      for (const auto& v : p.allowed) vals += (vals.empty() ? "" : "|") + v;
      ps += fmt::format("{}{}={}", ps.empty() ? "" : ",", p.name, vals);
    }
    if (!ps.empty()) s += ":" + ps;
  }
  return s;
}

const CodecFamilyInfo& CodecSpec::info() const {
  const CodecFamilyInfo* f = find_codec_family(family);
  KVLAB_CHECK(f, "unknown codec family '{}' (known codecs: {})", family, known_codecs_text());
  return *f;
}

std::string CodecSpec::param(const std::string& name) const {
  for (const auto& [k, v] : params)
    if (k == name) return v;
  return {};
}

namespace {
std::string join_params(const std::string& family, const std::optional<std::pair<std::string, int>>& rate,
                        const std::vector<std::pair<std::string, std::string>>& params) {
  std::string s;
  if (rate) s = fmt::format("{}={}", rate->first, rate->second);
  for (const auto& [k, v] : params) s += fmt::format("{}{}={}", s.empty() ? "" : ",", k, v);
  return s.empty() ? family : family + ":" + s;
}

std::string lower_no_space(const std::string& s) {
  std::string out;
  for (char c : s)
    if (!std::isspace(static_cast<unsigned char>(c))) out += char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
}  // namespace

std::string CodecSpec::variant() const { return join_params(family, std::nullopt, params); }

std::string CodecSpec::with_rate(int r) const {
  const auto& f = info();
  KVLAB_CHECK(!f.rate_param.empty(), "codec {} has no rate parameter", canonical);
  return join_params(family, std::make_pair(f.rate_param, r), params);
}

CodecSpec parse_codec_spec(const std::string& spec, int default_rate) {
  const std::string s = lower_no_space(spec);
  const auto colon = s.find(':');
  const std::string name = s.substr(0, colon);
  const CodecFamilyInfo* f = find_codec_family(name);
  KVLAB_CHECK(f, "unknown codec spec '{}' (known codecs: {})", spec, known_codecs_text());
  CodecSpec out;
  out.family = f->name;
  std::vector<std::pair<std::string, std::string>> given;
  if (colon != std::string::npos) {
    const std::string rest = s.substr(colon + 1);
    KVLAB_CHECK(!f->rate_param.empty() || !f->params.empty() || rest.starts_with("entropy="),
                "codec spec '{}': {} takes no parameters (expected exactly '{}')", spec, f->name, f->name);
    std::size_t pos = 0;
    while (pos <= rest.size()) {
      const auto comma = std::min(rest.find(',', pos), rest.size());
      const std::string kv = rest.substr(pos, comma - pos);
      const auto eq = kv.find('=');
      KVLAB_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < kv.size(),
                  "codec spec '{}': '{}' is not of the form name=value (known codecs: {})", spec, kv,
                  known_codecs_text());
      const std::string key = kv.substr(0, eq);
      for (const auto& g : given)
        KVLAB_CHECK(g.first != key, "codec spec '{}': parameter '{}' given twice", spec, key);
      given.emplace_back(key, kv.substr(eq + 1));
      pos = comma + 1;
    }
  }
  // Rate.
  if (!f->rate_param.empty()) {
    const auto it = std::find_if(given.begin(), given.end(), [&](const auto& g) { return g.first == f->rate_param; });
    long long v = default_rate;
    if (it != given.end()) {
      const char* b = it->second.data();
      const char* e = b + it->second.size();
      const auto [p, ec] = std::from_chars(b, e, v);
      KVLAB_CHECK(ec == std::errc() && p == e, "codec spec '{}': {} = '{}' is not an integer", spec, f->rate_param,
                  it->second);
      given.erase(it);
    } else {
      KVLAB_CHECK(default_rate > 0, "codec spec '{}': {} needs its {}, e.g. '{}:{}={}'", spec, f->name, f->rate_param,
                  f->name, f->rate_param, f->max_rate > 100 ? 38 : f->max_rate);
    }
    const std::string label = f->rate_param == "q" ? "Q" : f->rate_param;
    KVLAB_CHECK(v >= f->min_rate && v <= f->max_rate, "codec spec '{}': {} = {} is out of range (expected {} <= {} <= {})",
                spec, label, v, f->min_rate, label, f->max_rate);
    out.rate = int(v);
  }
  // Variant parameters, in table order.
  for (const auto& p : f->params) {
    const auto it = std::find_if(given.begin(), given.end(), [&](const auto& g) { return g.first == p.name; });
    std::string v = p.default_value;
    if (it != given.end()) {
      v = it->second;
      given.erase(it);
      if (p.name == "scale" && v == "uf16") v = "fp16";  // the 16-bit field is uf16 (fp16 where fp16 is finite)
      std::string allowed;
      for (const auto& a : p.allowed) allowed += (allowed.empty() ? "" : ", ") + a;
      KVLAB_CHECK(std::find(p.allowed.begin(), p.allowed.end(), v) != p.allowed.end(),
                  "codec spec '{}': {} = '{}' is not allowed (expected one of {})", spec, p.name, v, allowed);
    }
    out.params.emplace_back(p.name, v);
  }
  // The entropy coder (after the variant parameters, only when on).
  const auto ent = std::find_if(given.begin(), given.end(), [](const auto& g) { return g.first == "entropy"; });
  if (ent != given.end()) {
    const std::string v = ent->second;
    given.erase(ent);
    KVLAB_CHECK(v == "range" || v == "none", "codec spec '{}': entropy = '{}' is not allowed (expected range or none)",
                spec, v);
    KVLAB_CHECK(v == "none" || entropy_range_supported(f->name),
                "codec spec '{}': entropy=range is not available for {} (available for {})", spec, f->name,
                entropy_range_families_text());
    if (v == "range") out.params.emplace_back("entropy", v);
  }
  if (!given.empty()) {
    std::string known = f->rate_param;
    for (const auto& p : f->params) known += (known.empty() ? "" : ", ") + p.name;
    if (entropy_range_supported(f->name)) known += ", entropy";
    throw Error(fmt::format("codec spec '{}': unknown parameter '{}' for {} (its parameters: {})", spec,
                            given.front().first, f->name, known.empty() ? std::string("none") : known));
  }
  out.canonical = out.rate ? out.with_rate(*out.rate) : out.variant();
  return out;
}

CodecSpec codec_spec_at_rate(const std::string& variant, int rate) {
  const std::string v = lower_no_space(variant);
  const auto colon = v.find(':');
  const CodecFamilyInfo* f = find_codec_family(v.substr(0, colon));
  KVLAB_CHECK(f && !f->rate_param.empty(), "'{}' is not a codec family with a rate parameter (known codecs: {})",
              variant, known_codecs_text());
  const std::string r = fmt::format("{}={}", f->rate_param, rate);
  return parse_codec_spec(colon == std::string::npos ? v + ":" + r : v + "," + r);
}

}  // namespace kvlab
