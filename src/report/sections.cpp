// Shared report sections; see sections.h.
#include "report/sections.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "report/derived.h"

namespace kvlab::report::detail {

std::string stream_short(const std::string& stream) {
  if (stream == "sliding_window_kv") return "SWA";
  if (stream == "csa_pool_kv_ratio4") return "CSA";
  if (stream == "hca_pool_kv_ratio128") return "HCA";
  return stream;
}

std::string stream_cell(const std::string& stream) {
  const std::string s = stream_short(stream);
  if (s == stream) return "`" + stream + "`";
  return "`" + stream + "` (" + s + ")";
}

std::string codec_label(const std::string& codec) {
  if (codec == "fp8_per64") return "FP8 per-64";
  if (codec == "v4_native") return "V4 native";
  try {
    const auto spec = stats::parse_codec_spec(codec);
    std::string fam = spec.family;
    for (char& c : fam) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (spec.family == "d4" || spec.family == "e8") return fmt::format("{} Q={}", fam, spec.q());
    if (spec.family == "int" || spec.family == "hadamard_int")
      return fmt::format("{}{}/{} {}", spec.family == "int" ? "INT" : "H-INT", spec.q(), spec.param("block"),
                         spec.param("scale"));
    if (spec.family == "hadamard_lloyd") return fmt::format("H-Lloyd {}b", spec.q());
    return spec.canonical;
  } catch (const Error&) {
    return codec;
  }
}

std::string family_label(const std::string& variant) {
  try {
    // Any rate in the family's range parses the variant; its smallest will do.
    const auto* info = find_codec_family(variant.substr(0, variant.find(':')));
    const auto spec = parse_codec_spec(variant, info && info->min_rate > 0 ? info->min_rate : 1);
    const std::string l = codec_label(spec.canonical);
    if (spec.family == "d4" || spec.family == "e8") return l.substr(0, 2);
    if (spec.family == "int" || spec.family == "hadamard_int") {
      return fmt::format("{}/{} {}", spec.family == "int" ? "INT" : "H-INT", spec.param("block"), spec.param("scale"));
    }
    if (spec.family == "hadamard_lloyd") return "H-Lloyd";
    return l;
  } catch (const Error&) {
    return variant;
  }
}

std::string rate_label(const std::string& variant, int rate) {
  const std::string fam = variant.substr(0, variant.find(':'));
  return fam == "d4" || fam == "e8" ? fmt::format("Q={}", rate) : fmt::format("{}b", rate);
}

std::string codec_glossary(const std::vector<std::string>& codecs) {
  std::vector<std::string> seen, parts;
  for (const auto& c : codecs) {
    CodecSpec spec;
    try {
      spec = parse_codec_spec(c);
    } catch (const Error&) {
      continue;
    }
    if (std::find(seen.begin(), seen.end(), spec.family) != seen.end()) continue;
    seen.push_back(spec.family);
    const auto& info = spec.info();
    std::string name;
    if (spec.family == "fp8_per64" || spec.family == "v4_native") name = codec_label(spec.family);
    else if (spec.family == "d4" || spec.family == "e8") name = family_label(spec.family) + " Q=q";
    else if (spec.family == "int") name = "INTk/block scale";
    else if (spec.family == "hadamard_int") name = "H-INTk/block scale";
    else if (spec.family == "hadamard_lloyd") name = "H-Lloyd kb";
    else name = spec.family;
    parts.push_back(fmt::format("*{}* (`{}`): {}; stores {}", name, spec.family, info.description, info.byte_format));
  }
  if (parts.empty()) return "";
  return "Codec names: " + fmt::format("{}", fmt::join(parts, ". ")) + ".";
}

std::string fmt_ratio(const stats::Summary& s) { return fmt_pm_fixed(s.mean, s.ci95_hw, 3); }

std::string fmt_relmse(const stats::Summary& s) { return fmt_pm_sig(s.mean, s.ci95_hw, 2, 4); }

int column_exponent(const std::vector<double>& values) {
  double m = 0;
  for (double v : values) {
    if (std::isfinite(v)) m = std::max(m, std::fabs(v));
  }
  if (m == 0) return 0;
  return static_cast<int>(std::floor(std::log10(m)));
}

std::string fmt_relmse_scaled(const stats::Summary& s, int e) {
  const double u = std::pow(10.0, e);
  std::optional<double> hw;
  if (s.ci95_hw) hw = *s.ci95_hw / u;
  return fmt_pm_sig(s.mean / u, hw, 2, 4);
}

std::string unit_suffix(int e) { return e == 0 ? "" : fmt::format(" (x 1e{})", e); }

std::string fmt_bits(double bits) {
  if (std::isfinite(bits) && bits == std::floor(bits) && std::fabs(bits) < 1e15) {
    return fmt_int(static_cast<long long>(bits));
  }
  return fmt_fixed(bits, 1);
}

std::string fmt_cr(std::optional<double> cr) {
  if (!cr) return kNotAvailable;
  return fmt_fixed(*cr, 3) + "x";
}

std::string fmt_cr(double cr) { return fmt_cr(std::optional<double>(cr)); }

std::string fmt_interval(const stats::Summary& s, int decimals) {
  const auto lo = s.lower();
  const auto hi = s.upper();
  if (!lo || !hi) return kNoInterval;
  return fmt_range_fixed(*lo, *hi, decimals);
}

std::string json_value_text(const std::string& params_json, const std::string& key) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(params_json);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("experiment params_json is not valid JSON: {}", e.what()));
  }
  if (!j.is_object() || !j.contains(key) || j.at(key).is_null()) return "";
  const auto& v = j.at(key);
  if (v.is_string()) return v.get<std::string>();
  return v.dump();  // nlohmann::json objects keep keys sorted: deterministic
}

namespace {

std::string join_or(const std::vector<std::string>& v, const std::string& fallback,
                    const std::string& sep = "; ") {
  if (v.empty()) return fallback;
  std::string o;
  for (const auto& x : v) {
    if (x.empty()) continue;
    if (!o.empty()) o += sep;
    o += x;
  }
  return o.empty() ? fallback : o;
}

std::string code_or(const std::string& v, const std::string& fallback) {
  return v.empty() ? fallback : "`" + v + "`";
}

// "synthetic (spec synthetic:seed=1234)" style summary of a recorded JSON
// object: its "kind" (or `kind_fallback`) and its "spec" or "seed".
std::string short_json(const std::string& text, const std::string& kind_fallback, const std::string& none) {
  if (text.empty()) return kind_fallback.empty() ? none : kind_fallback;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
    return text;  // a plain string
  }
  if (!j.is_object()) return j.is_string() ? j.get<std::string>() : j.dump();
  std::string kind = j.contains("kind") && j["kind"].is_string() ? j["kind"].get<std::string>() : kind_fallback;
  std::string detail;
  for (const char* k : {"spec", "model", "seed", "path"}) {
    if (j.contains(k) && !j[k].is_null()) {
      detail = fmt::format("{} {}", k, j[k].is_string() ? j[k].get<std::string>() : j[k].dump());
      break;
    }
  }
  if (kind.empty()) return detail.empty() ? "see below" : detail;
  return detail.empty() ? kind : kind + " (" + detail + ")";
}

}  // namespace

void provenance_section(Document& d, const stats::StudySummary& s, const ReportProvenance& p) {
  const auto& e = s.experiment;
  const std::string kNotRecorded = "not recorded";
  d.heading(2, "Provenance");
  Table t({"item", "value"});
  t.add_row({"experiment", fmt::format("`{}` (id {}, origin {})", e.name, e.id, e.origin)});
  t.add_row({"spec hash (sha256)", code_or(e.spec_hash, kNotRecorded)});
  t.add_row({"experiment created", e.created_at.empty() ? kNotRecorded : e.created_at});
  std::string dates = kNotRecorded;
  if (!p.first_run.empty()) {
    dates = p.first_run == p.last_run || p.last_run.empty() ? p.first_run
                                                            : p.first_run + " to " + p.last_run;
  }
  t.add_row({"runs finished", dates});
  t.add_row({"runs", fmt::format("{} done, {} failed, {} queued, {} running", e.counts.done,
                                 e.counts.failed, e.counts.queued, e.counts.running)});
  t.add_row({"passages (n)", fmt_int(s.n_passages)});
  if (!s.passages.empty()) {
    std::vector<std::string> names;
    for (const auto& p : s.passages) {
      names.push_back(p.words ? fmt::format("`{}` ({} words)", p.name, fmt_int(*p.words)) : "`" + p.name + "`");
    }
    t.add_row({"passages", fmt::format("{}", fmt::join(names, ", "))});
  }
  const auto seqlen = params_seqlen(e.params_json);
  t.add_row({"seqlen (tokens per passage)", seqlen ? fmt_int(*seqlen) : kNotRecorded});
  std::string dtype = e.stream_dtype;
  if (dtype.empty()) dtype = join_or(p.stream_dtypes, kNotRecorded);
  t.add_row({"stream dtype", dtype});
  std::string device = join_or(p.devices, "");
  if (device.empty()) device = e.device.empty() ? kNotRecorded : e.device;
  t.add_row({"device", device});
  // Host and weights: a short form in the table (kind and its "spec" when the
  // JSON has one), the full recorded JSON below it.
  std::string host_params = join_or(p.hosts, "");
  if (host_params.empty()) host_params = json_value_text(e.params_json, "host");
  std::string weights = join_or(p.weights, "");
  if (weights.empty()) weights = json_value_text(e.params_json, "weights");
  t.add_row({"host (hidden states)", short_json(host_params, join_or(p.host_kinds, "", ", "), kNotRecorded)});
  t.add_row({"weights", short_json(weights, "", kNotRecorded)});
  t.add_row({"LibTorch", join_or(p.torch_versions, kNotRecorded)});
  t.add_row({"BLAS", join_or(p.blas, kNotRecorded)});
  t.add_row({"projection GEMM", join_or(p.gemm, kNotRecorded)});
  t.add_row({"runs made by", join_or(p.run_software, kNotRecorded)});
  t.add_row({"report generated by", p.generator.empty() ? kNotRecorded : p.generator});
  t.add_row({"database", fmt::format("`{}`, sha256 `{}`", p.database_file.empty() ? "?" : p.database_file,
                                     p.database_sha256.empty() ? "?" : p.database_sha256)});
  d.table(t);
  std::vector<std::string> full;
  if (!host_params.empty()) full.push_back("host parameters: `" + host_params + "`");
  if (!weights.empty()) full.push_back("weights: `" + weights + "`");
  d.bullets(full);
}

std::string generated_note(const std::string& command) {
  return "Generated by `" + command +
         "` from the kvlab result database. Every number below is computed from the recorded "
         "runs (src/stats/) and formatted by src/report/; do not edit this file by hand, "
         "regenerate it.";
}

}  // namespace kvlab::report::detail
