// Sweep spec parsing and validation (see spec.h for the file format).
//
// Program_options' config-file parser does the parsing proper; it does not
// report line numbers, so a small scan of the same text (same comment and
// section rules) maps each parsed option to its line for the messages.
#include "experiment/spec.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <optional>
#include <set>
#include <sstream>

#include <boost/program_options/options_description.hpp>
#include <boost/program_options/parsers.hpp>
#include <boost/program_options/value_semantic.hpp>
#include <fmt/format.h>

#include "codec/codec.h"
#include "common/error.h"
#include "common/hash.h"
#include "model/config.h"

namespace kvlab::experiment {

namespace po = boost::program_options;
namespace fs = std::filesystem;

const std::vector<std::string>& known_streams() {
  static const std::vector<std::string> s{"sliding_window_kv", "csa_pool_kv_ratio4", "hca_pool_kv_ratio128"};
  return s;
}

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> split_ws(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

struct Entry {
  std::string key;  // section.key
  std::string value;
  int line = 0;
};

// Keys of the format. Repeatable keys may occur several times.
struct KeyInfo {
  std::string key;
  bool repeatable = false;
};

std::vector<KeyInfo> known_keys() {
  std::vector<KeyInfo> k = {
      {"experiment.name"},   {"experiment.description"}, {"experiment.seqlen"}, {"experiment.stream_dtype"},
      {"experiment.device"}, {"experiment.streams"},     {"weights.kind"},      {"weights.seed"},
      {"weights.path"},      {"weights.simulate_fp8"}, {"weights.gemm"}, {"weights.write_path"}, {"host.kind"},              {"host.seed"},         {"host.path"},
      {"passages.text", true}, {"passages.synthetic", true}, {"passages.seed_base"},
      {"codecs.codec", true}, {"report.codec"}, {"report.baseline"},          {"report.compare"},    {"forecast.kv_memory_gib_per_node"},
      {"forecast.context_tokens"}, {"metrics.attention"}, {"metrics.attention_queries"}, {"metrics.attention_seed"},
  };
  for (const auto& s : known_streams()) {
    k.push_back({"weights.layer." + s});
    k.push_back({"layer_mix." + s});
    k.push_back({"forecast.vectors_per_token." + s});
  }
  for (const auto& f : codec_family_table())
    if (!f.rate_param.empty()) k.push_back({"codecs." + f.name + "." + f.rate_param, true});
  return k;
}

class Reader {
 public:
  Reader(const std::string& text, const std::string& path) : path_(path) {
    scan(text);
    parse_with_program_options(text);
  }

  [[noreturn]] void fail(int line, const std::string& msg) const {
    if (line > 0) throw Error(fmt::format("{}:{}: {}", path_, line, msg));
    throw Error(fmt::format("{}: {}", path_, msg));
  }

  std::vector<const Entry*> all(const std::string& key) const {
    std::vector<const Entry*> out;
    for (const auto& e : entries_)
      if (e.key == key) out.push_back(&e);
    return out;
  }
  const Entry* get(const std::string& key) const {
    auto v = all(key);
    if (v.size() > 1) fail(v[1]->line, fmt::format("'{}' is given again (first at line {}); it takes one value", key, v[0]->line));
    return v.empty() ? nullptr : v[0];
  }
  const Entry& require(const std::string& key, const std::string& what) const {
    const Entry* e = get(key);
    if (!e) fail(0, fmt::format("missing '{}' ({})", key, what));
    return *e;
  }
  bool has_prefix(const std::string& prefix) const {
    return std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.key.rfind(prefix, 0) == 0; });
  }
  std::vector<const Entry*> with_prefix(const std::string& prefix) const {
    std::vector<const Entry*> out;
    for (const auto& e : entries_)
      if (e.key.rfind(prefix, 0) == 0) out.push_back(&e);
    return out;
  }

  long long to_int(const Entry& e, long long lo, long long hi, const std::string& what) const {
    long long v = 0;
    std::size_t used = 0;
    try {
      v = std::stoll(e.value, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != e.value.size())
      fail(e.line, fmt::format("'{}' = '{}' is not an integer; expected {}", e.key, e.value, what));
    if (v < lo || v > hi) fail(e.line, fmt::format("'{}' = {} is out of range; expected {}", e.key, v, what));
    return v;
  }
  double to_double(const Entry& e, const std::string& what) const {
    double v = 0;
    std::size_t used = 0;
    try {
      v = std::stod(e.value, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != e.value.size() || !std::isfinite(v) || v <= 0)
      fail(e.line, fmt::format("'{}' = '{}'; expected {}", e.key, e.value, what));
    return v;
  }

 private:
  // Same rules as Program_options' config parser: '#' starts a comment,
  // "[section]" prefixes the following keys with "section.", "key = value".
  void scan(const std::string& text) {
    std::istringstream in(text);
    std::string raw, section;
    int line = 0;
    while (std::getline(in, raw)) {
      ++line;
      const auto hash = raw.find('#');
      std::string s = trim(hash == std::string::npos ? raw : raw.substr(0, hash));
      if (s.empty()) continue;
      if (s.front() == '[') {
        if (s.back() != ']' || s.size() < 3) fail(line, fmt::format("malformed section header '{}'; expected [name]", s));
        section = trim(s.substr(1, s.size() - 2));
        continue;
      }
      const auto eq = s.find('=');
      if (eq == std::string::npos) fail(line, fmt::format("'{}' is not 'key = value'", s));
      std::string key = trim(s.substr(0, eq));
      if (key.empty()) fail(line, fmt::format("'{}' has no key before '='", s));
      if (!section.empty()) key = section + "." + key;
      scanned_.push_back(Entry{key, trim(s.substr(eq + 1)), line});
    }
  }

  void parse_with_program_options(const std::string& text) {
    const auto keys = known_keys();
    po::options_description desc;
    for (const auto& k : keys) {
      if (k.repeatable) desc.add_options()(k.key.c_str(), po::value<std::vector<std::string>>()->composing());
      else desc.add_options()(k.key.c_str(), po::value<std::string>());
    }
    std::istringstream in(text);
    po::parsed_options parsed(&desc);
    try {
      parsed = po::parse_config_file(in, desc, /*allow_unregistered=*/true);
    } catch (const po::error& e) {
      fail(0, fmt::format("cannot parse: {}", e.what()));
    }
    std::map<std::string, int> seen;
    if (parsed.options.size() != scanned_.size())
      fail(0, fmt::format("parser disagreement: Program_options read {} settings, the line scan {}; check quoting "
                          "and comments",
                          parsed.options.size(), scanned_.size()));
    for (std::size_t i = 0; i < parsed.options.size(); ++i) {
      const auto& o = parsed.options[i];
      const Entry& s = scanned_[i];
      if (o.string_key != s.key) fail(s.line, fmt::format("parser disagreement on key '{}' vs '{}'", o.string_key, s.key));
      if (o.unregistered) {
        const auto dot = s.key.rfind('.');
        const std::string section = dot == std::string::npos ? "" : s.key.substr(0, s.key.find('.'));
        std::vector<std::string> expected;
        for (const auto& k : keys)
          if (!section.empty() && k.key.rfind(section + ".", 0) == 0) expected.push_back(k.key.substr(section.size() + 1));
        if (expected.empty()) {
          std::set<std::string> sections;
          for (const auto& k : keys) sections.insert(k.key.substr(0, k.key.find('.')));
          fail(s.line, fmt::format("unknown key '{}' (section [{}] is not part of the format; sections: {})", s.key,
                                   section, join(std::vector<std::string>(sections.begin(), sections.end()))));
        }
        fail(s.line, fmt::format("unknown key '{}' in [{}]; expected one of: {}", s.key.substr(section.size() + 1),
                                 section, join(expected)));
      }
      entries_.push_back(Entry{o.string_key, o.value.empty() ? std::string() : o.value.front(), s.line});
    }
  }

  std::string path_;
  std::vector<Entry> scanned_;
  std::vector<Entry> entries_;
};

const std::regex kNameRe("[A-Za-z0-9_.-]+");

// A path as written in the spec, resolved against the spec file's folder.
std::string resolve(const fs::path& base, const std::string& p) {
  return fs::weakly_canonical(fs::absolute(base / p)).string();
}

// [experiment]: name, description, seqlen, stream_dtype, device, streams.
void parse_experiment_section(const Reader& r, SweepSpec& s) {
  const Entry& name = r.require("experiment.name", "the experiment's name");
  if (!std::regex_match(name.value, kNameRe))
    r.fail(name.line, fmt::format("experiment name '{}' has characters outside [A-Za-z0-9_.-]", name.value));
  s.name = name.value;
  if (auto* e = r.get("experiment.description")) s.description = e->value;
  if (auto* e = r.get("experiment.seqlen")) {
    s.seqlen = static_cast<int>(r.to_int(*e, 256, 1 << 20, "a token count in 256 .. 1048576"));
    if (s.seqlen % 128 != 0)
      r.fail(e->line, fmt::format("seqlen {} is not a multiple of 128 (the HCA compressor ratio)", s.seqlen));
  }
  if (auto* e = r.get("experiment.stream_dtype")) {
    if (e->value != "bf16" && e->value != "fp32")
      r.fail(e->line, fmt::format("stream_dtype '{}'; expected bf16 or fp32", e->value));
    s.stream_dtype = e->value;
  }
  if (auto* e = r.get("experiment.device")) {
    static const std::regex dev("cpu|cuda(:[0-9]+)?");
    if (!std::regex_match(e->value, dev)) r.fail(e->line, fmt::format("device '{}'; expected cpu, cuda or cuda:N", e->value));
    s.device = e->value;
  }
  {
    const Entry* e = r.get("experiment.streams");
    if (!e) {
      s.streams = known_streams();
    } else {
      for (const auto& w : split_ws(e->value)) {
        if (std::find(known_streams().begin(), known_streams().end(), w) == known_streams().end())
          r.fail(e->line, fmt::format("unknown stream '{}'; expected some of: {}", w, join(known_streams())));
        if (std::find(s.streams.begin(), s.streams.end(), w) != s.streams.end())
          r.fail(e->line, fmt::format("stream '{}' is listed twice", w));
        s.streams.push_back(w);
      }
      if (s.streams.empty()) r.fail(e->line, "no streams listed");
    }
  }
}

// [weights]: kind (random | checkpoint), seed, path, per-stream layers,
// simulate_fp8, gemm, write_path. Returns the write-path mode.
model::WritePath parse_weights_section(const Reader& r, SweepSpec& s, const fs::path& base) {
  model::WritePath mode = model::WritePath::kPublished;
  const Entry* kind = r.get("weights.kind");
  const std::string k = kind ? kind->value : "random";
  // simulate_fp8: the write path's own FP8 simulation of the nope dims
  // (SPEC section 2; default true). false gives the pre-storage KV, so that
  // fp8_per64 and the lattice codecs all quantise the same unquantised
  // vectors instead of fp8_per64 re-quantising values already on its grid.
  std::optional<bool> simulate_fp8;
  if (auto* e = r.get("weights.simulate_fp8")) {
    if (e->value == "true") simulate_fp8 = true;
    else if (e->value == "false") simulate_fp8 = false;
    else r.fail(e->line, fmt::format("simulate_fp8 '{}'; expected true or false", e->value));
  }
  // gemm: the projection GEMM's path (model/gemm.h); recorded in the
  // params only when given, so specs without it keep their identity.
  std::optional<std::string> gemm;
  if (auto* e = r.get("weights.gemm")) {
    if (e->value == "auto" || e->value == "fp32" || e->value == "bf16") gemm = e->value;
    else r.fail(e->line, fmt::format("gemm '{}'; expected auto, fp32 or bf16", e->value));
  }
  // write_path: published (SPEC section 2) or v4 (SPEC-V4-ATTENTION);
  // recorded in the params only when given, like gemm.
  std::optional<std::string> write_path;
  if (auto* e = r.get("weights.write_path")) {
    if (e->value == "published" || e->value == "v4") write_path = e->value;
    else r.fail(e->line, fmt::format("write_path '{}'; expected published or v4", e->value));
  }
  mode = write_path && *write_path == "v4" ? model::WritePath::kV4 : model::WritePath::kPublished;
  if (k == "random") {
    for (const auto* e : r.with_prefix("weights."))
      if (e->key != "weights.kind" && e->key != "weights.seed" && e->key != "weights.simulate_fp8" &&
          e->key != "weights.gemm" && e->key != "weights.write_path")
        r.fail(e->line, fmt::format("'{}' does not apply to random weights (only seed, simulate_fp8, gemm, "
                                    "write_path)",
                                    e->key));
    long long seed = 0;
    if (auto* e = r.get("weights.seed")) seed = r.to_int(*e, 0, (1LL << 62), "a seed >= 0");
    s.weights = {{"kind", "random"}, {"seed", seed}};
    if (simulate_fp8) s.weights["simulate_fp8"] = *simulate_fp8;
    if (gemm) s.weights["gemm"] = *gemm;
    if (write_path) s.weights["write_path"] = *write_path;
  } else if (k == "checkpoint") {
    if (auto* e = r.get("weights.seed")) r.fail(e->line, "'weights.seed' does not apply to checkpoint weights");
    const Entry& p = r.require("weights.path", "checkpoint directory or .safetensors file");
    const std::string abs = resolve(base, p.value);
    if (!fs::exists(abs)) r.fail(p.line, fmt::format("checkpoint '{}' (resolved to {}) does not exist", p.value, abs));
    nlohmann::json layers = nlohmann::json::object();
    for (const auto& st : s.streams) {
      const Entry& e = r.require("weights.layer." + st, "the checkpoint layer id that supplies stream " + st);
      layers[st] = r.to_int(e, 0, 1000, "a layer id >= 0");
    }
    s.weights = {{"kind", "checkpoint"}, {"path", abs}, {"layers", layers}};
    if (simulate_fp8) s.weights["simulate_fp8"] = *simulate_fp8;
    if (gemm) s.weights["gemm"] = *gemm;
    if (write_path) s.weights["write_path"] = *write_path;
  } else {
    r.fail(kind->line, fmt::format("weights kind '{}'; expected random or checkpoint", k));
  }
  return mode;
}

// [host]: kind (synthetic | kv-file | hf), seed, path. Returns the host seed
// (the text passages' seed).
std::uint64_t parse_host_section(const Reader& r, SweepSpec& s, const fs::path& base) {
  std::uint64_t host_seed = 0;
  const Entry* kind = r.get("host.kind");
  const std::string k = kind ? kind->value : "synthetic";
  if (k == "synthetic") {
    if (auto* e = r.get("host.path")) r.fail(e->line, "'host.path' does not apply to the synthetic host");
    long long seed = 0;
    if (auto* e = r.get("host.seed")) seed = r.to_int(*e, 0, (1LL << 62), "a seed >= 0");
    host_seed = static_cast<std::uint64_t>(seed);
    s.host = {{"kind", "synthetic"}, {"seed", seed}, {"spec", fmt::format("synthetic:seed={}", seed)}};
  } else if (k == "kv-file" || k == "hf") {
    const Entry& p = r.require("host.path", k == "hf" ? "the Hugging Face snapshot folder" : "the captured KV file");
    const std::string abs = resolve(base, p.value);
    if (!fs::exists(abs)) r.fail(p.line, fmt::format("host path '{}' (resolved to {}) does not exist", p.value, abs));
    if (abs.find(',') != std::string::npos)
      r.fail(p.line, fmt::format("host path '{}' contains ',', which host specs use as a separator", abs));
    s.host = {{"kind", k}, {"path", abs}, {"spec", fmt::format("{}:{}", k, abs)}};
    if (auto* e = r.get("host.seed")) {
      if (k != "hf") r.fail(e->line, "'host.seed' does not apply to a kv-file host");
      // The hf host's seeded projection to the model's hidden size.
      const long long seed = r.to_int(*e, 0, (1LL << 62), "a seed >= 0");
      host_seed = static_cast<std::uint64_t>(seed);
      s.host["seed"] = seed;
      s.host["spec"] = fmt::format("hf:{},proj_seed={}", abs, seed);
    }
  } else {
    r.fail(kind->line, fmt::format("host kind '{}'; expected synthetic, kv-file or hf", k));
  }
  return host_seed;
}

// [passages]: text files (repeatable), synthetic ids, seed_base.
void parse_passages_section(const Reader& r, SweepSpec& s, const fs::path& base, std::uint64_t host_seed) {
  std::set<std::string> names;
  for (const Entry* e : r.all("passages.text")) {
    const std::string abs = resolve(base, e->value);
    std::ifstream in(abs, std::ios::binary);
    if (!in.good()) r.fail(e->line, fmt::format("cannot read passage file '{}' (resolved to {})", e->value, abs));
    std::string text((std::istreambuf_iterator<char>(in)), {});
    if (trim(text).empty()) r.fail(e->line, fmt::format("passage file '{}' is empty", e->value));
    PassageSpec p;
    p.name = fs::path(e->value).stem().string();
    if (!std::regex_match(p.name, kNameRe))
      r.fail(e->line, fmt::format("passage name '{}' (the file stem) has characters outside [A-Za-z0-9_.-]", p.name));
    if (!names.insert(p.name).second) r.fail(e->line, fmt::format("passage '{}' is listed twice", p.name));
    p.source = "text:" + e->value;
    p.text = std::move(text);
    p.seed = host_seed;
    s.passages.push_back(std::move(p));
  }
  long long seed_base = 0;
  const Entry* sb = r.get("passages.seed_base");
  if (sb) seed_base = r.to_int(*sb, 0, (1LL << 62), "a seed >= 0");
  const auto synth = r.all("passages.synthetic");
  if (sb && synth.empty()) r.fail(sb->line, "'seed_base' given without 'synthetic' passage ids");
  for (const Entry* e : synth) {
    std::vector<int> ids;
    try {
      ids = parse_id_ranges(e->value);
    } catch (const Error& err) {
      r.fail(e->line, fmt::format("synthetic = '{}': {}", e->value, err.what()));
    }
    for (int id : ids) {
      PassageSpec p;
      p.name = fmt::format("p{}", id);
      if (!names.insert(p.name).second) r.fail(e->line, fmt::format("passage '{}' is listed twice", p.name));
      p.seed = static_cast<std::uint64_t>(seed_base + id);
      p.source = fmt::format("synthetic:seed={}", p.seed);
      s.passages.push_back(std::move(p));
    }
  }
  if (s.passages.empty()) r.fail(0, "no passages: give [passages] text = FILE (repeatable) or synthetic = IDS");
}

// [codecs]: codec = SPEC (repeatable) and <family>.<rate parameter> grids.
void parse_codecs_section(const Reader& r, SweepSpec& s) {
  std::map<std::string, int> first_line;
  auto add = [&](const std::string& spec, int line) {
    codec::CodecSpec cs;
    try {
      cs = codec::parse_codec_spec(spec);
    } catch (const Error& err) {
      r.fail(line, fmt::format("codec '{}': {}", spec, err.what()));
    }
    if (cs.entropy_range())
      r.fail(line, fmt::format("codec '{}': entropy=range is not a sweep codec (its records are the plain codec's; "
                               "every run of {} stores its range-coded rate as range_bits_per_dim): list '{}'",
                               spec, entropy_range_families_text(), cs.canonical.substr(0, cs.canonical.find(",entropy"))));
    auto [it, fresh] = first_line.emplace(cs.canonical, line);
    if (!fresh) r.fail(line, fmt::format("codec '{}' is listed twice (first at line {})", cs.canonical, it->second));
    store::PlannedCodec pc;
    pc.codec = cs.canonical;
    pc.q = cs.rate;
    s.codecs.push_back(pc);
  };
  for (const auto* e : r.with_prefix("codecs.")) {
    if (e->key == "codecs.codec") {
      if (e->value.empty()) r.fail(e->line, "empty codec; expected e.g. fp8_per64 or e8:q=38");
      add(e->value, e->line);
    } else {  // codecs.<family>.<rate parameter>, e.g. e8.q = 10 38, int.bits = 4 8
      const auto dot = e->key.find('.', 7);
      const std::string fam = e->key.substr(7, dot - 7);
      const std::string rate = e->key.substr(dot + 1);
      const std::string what = rate == "q" ? "Q" : rate;
      const auto qs = split_ws(e->value);
      if (qs.empty()) r.fail(e->line, fmt::format("'{}' lists no {} values", e->key, what));
      for (const auto& q : qs) {
        if (q.find_first_not_of("0123456789") != std::string::npos)
          r.fail(e->line, fmt::format("{} '{}' in '{}' is not a positive integer", what, q, e->key));
        add(fam + ":" + rate + "=" + q, e->line);
      }
    }
  }
  if (s.codecs.empty()) r.fail(0, "no codecs: give [codecs] codec = SPEC (repeatable) or e8.q = Q ...");
}

// [layer_mix]: layers per stream; default: the write path's V4-Flash mix.
void parse_layer_mix_section(const Reader& r, SweepSpec& s, model::WritePath mode) {
  if (r.has_prefix("layer_mix.")) {
    for (const auto* e : r.with_prefix("layer_mix.")) {
      const std::string st = e->key.substr(10);
      if (std::find(s.streams.begin(), s.streams.end(), st) == s.streams.end())
        r.fail(e->line, fmt::format("layer_mix for stream '{}', which this experiment does not measure", st));
      s.layer_mix[st] = static_cast<int>(r.to_int(*e, 0, 10000, "a layer count >= 0"));
    }
    for (const auto& st : s.streams)
      if (!s.layer_mix.count(st)) r.fail(0, fmt::format("[layer_mix] lists no layer count for stream '{}'", st));
  } else {
    // The write path's own mix: published = SPEC's 3 / 20 / 20, v4 = V4-Flash's
    // compress_ratios (2 / 21 / 20).
    const auto mix = model::V4Config::flash().layer_mix(mode);
    for (const auto& st : s.streams) s.layer_mix[st] = mix.at(st);
  }
}

// [report]: codec, compare, baseline (all codecs of this experiment).
void parse_report_section(const Reader& r, SweepSpec& s) {
  auto canonical_in_spec = [&](const Entry& e) -> std::string {
    std::string c;
    try {
      c = codec::parse_codec_spec(e.value).canonical;
    } catch (const Error& err) {
      r.fail(e.line, fmt::format("codec '{}': {}", e.value, err.what()));
    }
    if (std::none_of(s.codecs.begin(), s.codecs.end(), [&](const store::PlannedCodec& p) { return p.codec == c; }))
      r.fail(e.line, fmt::format("'{}' = '{}' is not one of this experiment's codecs", e.key, c));
    return c;
  };
  nlohmann::json rep = {{"codec", nullptr}, {"compare", nullptr}};
  if (auto* e = r.get("report.codec")) rep["codec"] = canonical_in_spec(*e);
  if (auto* e = r.get("report.compare")) {
    if (rep["codec"].is_null()) r.fail(e->line, "'report.compare' needs 'report.codec'");
    rep["compare"] = canonical_in_spec(*e);
  }
  if (auto* e = r.get("report.baseline")) {
    const std::string b = canonical_in_spec(*e);
    if (!parse_codec_spec(b).is_baseline()) {
      std::string allowed;
      for (const auto& f : codec_family_table())
        if (f.is_baseline) allowed += (allowed.empty() ? "" : ", ") + f.name;
      r.fail(e->line, fmt::format("'report.baseline' = '{}' is not a baseline format (expected one of {})", b, allowed));
    }
    rep["baseline"] = b;
  }
  if (rep["codec"].is_null()) {
    // Default: the E8 codec with the largest Q (else D4), compared with D4 at that Q.
    for (const char* fam : {"e8", "d4"}) {
      const store::PlannedCodec* best = nullptr;
      for (const auto& c : s.codecs)
        if (c.q && c.codec.rfind(std::string(fam) + ":", 0) == 0 && (!best || *c.q > *best->q)) best = &c;
      if (best) {
        rep["codec"] = best->codec;
        if (std::string(fam) == "e8") {
          const std::string d4 = fmt::format("d4:q={}", *best->q);
          if (std::any_of(s.codecs.begin(), s.codecs.end(), [&](const store::PlannedCodec& p) { return p.codec == d4; }))
            rep["compare"] = d4;
        }
        break;
      }
    }
  }
  s.report = rep;
}

// [forecast]: optional deployment forecast inputs.
void parse_forecast_section(const Reader& r, SweepSpec& s) {
  if (r.has_prefix("forecast.")) {
    nlohmann::json f = nlohmann::json::object();
    const Entry& mem = r.require("forecast.kv_memory_gib_per_node", "GiB of accelerator memory for the KV cache");
    f["kv_memory_gib_per_node"] = r.to_double(mem, "a positive number of GiB");
    const Entry& ctx = r.require("forecast.context_tokens", "tokens of context per user");
    f["context_tokens"] = r.to_int(ctx, 1, 1LL << 40, "a positive token count");
    nlohmann::json vpt = nlohmann::json::object();
    for (const auto* e : r.with_prefix("forecast.vectors_per_token.")) {
      const std::string st = e->key.substr(std::string("forecast.vectors_per_token.").size());
      if (std::find(s.streams.begin(), s.streams.end(), st) == s.streams.end())
        r.fail(e->line, fmt::format("vectors_per_token for stream '{}', which this experiment does not measure", st));
      vpt[st] = r.to_double(*e, "a positive number of stored vectors per token per layer");
    }
    if (!vpt.empty()) f["vectors_per_token"] = vpt;
    s.forecast = f;
  }
}


// [metrics]: attention = on | off (default off), attention_queries = N
// (default 256), attention_seed = N (default: the random weights' seed,
// else 0). Recorded in the params only when the section is given, so
// specs without it keep their params. entropy and the bounds are always
// measured and need no key.
void parse_metrics_section(const Reader& r, SweepSpec& s) {
  if (!r.has_prefix("metrics.")) return;
  bool attention = false;
  if (auto* e = r.get("metrics.attention")) {
    if (e->value == "on") attention = true;
    else if (e->value != "off") r.fail(e->line, fmt::format("attention '{}'; expected on or off", e->value));
  }
  long long queries = 256;
  if (auto* e = r.get("metrics.attention_queries"))
    queries = r.to_int(*e, 1, 1 << 20, "a query count in 1 .. 1048576 (query positions sampled per passage)");
  long long seed = s.weights.value("seed", 0LL);
  if (auto* e = r.get("metrics.attention_seed")) seed = r.to_int(*e, 0, (1LL << 62), "a seed >= 0");
  s.metrics = {{"attention", attention}, {"attention_queries", queries}, {"attention_seed", seed}};
}
}  // namespace

std::vector<int> parse_id_ranges(const std::string& s) {
  std::vector<int> ids;
  std::set<int> seen;
  static const std::regex item("([0-9]+)(?:-([0-9]+))?");
  for (const auto& w : split_ws(s)) {
    std::smatch m;
    KVLAB_CHECK(std::regex_match(w, m, item), "'{}' is not an id or a range a-b of non-negative integers", w);
    KVLAB_CHECK(m[1].length() < 7 && (!m[2].matched || m[2].length() < 7), "id '{}' is too large (max 999999)", w);
    const int a = std::stoi(m[1]);
    const int b = m[2].matched ? std::stoi(m[2]) : a;
    KVLAB_CHECK(b >= a, "range '{}' runs backwards; expected a-b with a <= b", w);
    for (int i = a; i <= b; ++i) {
      KVLAB_CHECK(seen.insert(i).second, "id {} is listed twice (in '{}')", i, s);
      ids.push_back(i);
    }
  }
  KVLAB_CHECK(!ids.empty(), "no ids in '{}'", s);
  return ids;
}

SweepSpec load_spec(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  KVLAB_CHECK(in.good(), "cannot read spec file '{}'", path);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  return parse_spec(text, path);
}
SweepSpec parse_spec(const std::string& text, const std::string& path) {
  Reader r(text, path);
  SweepSpec s;
  s.path = path;
  s.spec_text = text;
  const fs::path base = fs::path(path).parent_path();
  parse_experiment_section(r, s);
  const model::WritePath mode = parse_weights_section(r, s, base);
  const std::uint64_t host_seed = parse_host_section(r, s, base);
  parse_passages_section(r, s, base, host_seed);
  parse_codecs_section(r, s);
  parse_layer_mix_section(r, s, mode);
  parse_report_section(r, s);
  parse_forecast_section(r, s);
  parse_metrics_section(r, s);
  return s;
}

nlohmann::json SweepSpec::params() const {
  nlohmann::json codec_list = nlohmann::json::array();
  for (const auto& c : codecs) codec_list.push_back(c.codec);
  nlohmann::json mix = nlohmann::json::object();
  for (const auto& [k, v] : layer_mix) mix[k] = v;
  nlohmann::json j = {
      {"seqlen", seqlen},   {"stream_dtype", stream_dtype}, {"device", device}, {"weights", weights},
      {"host", host},       {"streams", streams},           {"codecs", codec_list}, {"layer_mix", mix},
      {"report", report},   {"forecast", forecast},
  };
  if (!description.empty()) j["description"] = description;
  if (report.contains("baseline") && report["baseline"].is_string()) j["baseline"] = report["baseline"];
  if (!metrics.is_null()) j["metrics"] = metrics;
  return j;
}

store::ExperimentPlan SweepSpec::plan() const {
  store::ExperimentPlan p;
  p.name = name;
  p.origin = "sweep";
  p.spec_text = spec_text;
  p.spec_hash = sha256_hex(spec_text);
  p.params_json = params().dump();
  for (std::size_t i = 0; i < passages.size(); ++i) {
    const auto& ps = passages[i];
    store::PlannedPassage pp;
    pp.idx = static_cast<int>(i);
    pp.name = ps.name;
    pp.source = ps.source;
    pp.text = ps.text;
    pp.content_hash = ps.text ? sha256_hex(*ps.text) : sha256_hex(ps.source);
    p.passages.push_back(std::move(pp));
  }
  p.streams = streams;
  p.codecs = codecs;
  return p;
}

}  // namespace kvlab::experiment
