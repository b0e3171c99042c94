// V4Config parsing and validation. See config.h.
#include "model/config.h"

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "common/error.h"

namespace kvlab::model {

namespace {

using json = nlohmann::json;

std::string brief(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

double get_num(const json& v, const std::string& where, const std::string& key) {
  KVLAB_CHECK(v.is_number(), "{}: '{}' must be a number, got {}", where, key, brief(v));
  return v.get<double>();
}

int64_t get_int(const json& v, const std::string& where, const std::string& key) {
  KVLAB_CHECK(v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() &&
                                        std::fabs(v.get<double>()) < 9.0e15),
              "{}: '{}' must be an integer, got {}", where, key, brief(v));
  return v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(v.get<double>());
}

bool get_bool(const json& v, const std::string& where, const std::string& key) {
  KVLAB_CHECK(v.is_boolean(), "{}: '{}' must be true or false, got {}", where, key, brief(v));
  return v.get<bool>();
}

}  // namespace

std::vector<int64_t> flash_compress_ratios() {
  std::vector<int64_t> r = {0, 0};
  for (int i = 0; i < 20; ++i) {
    r.push_back(4);
    r.push_back(128);
  }
  r.push_back(0);
  return r;
}

std::vector<int64_t> v4_flash_config_compress_ratios() {
  std::vector<int64_t> r = {0, 0};
  for (int i = 0; i < 20; ++i) {
    r.push_back(4);
    r.push_back(128);
  }
  r.push_back(4);
  r.push_back(0);  // the MTP slot
  return r;
}

std::vector<int64_t> v4_flash_layer_ratios() {
  std::vector<int64_t> r = v4_flash_config_compress_ratios();
  r.pop_back();
  return r;
}

const char* layer_kind_stream(LayerKind k) {
  switch (k) {
    case LayerKind::SWA: return kStreamSWA;
    case LayerKind::CSA: return kStreamCSA;
    case LayerKind::HCA: return kStreamHCA;
  }
  return "?";
}

const char* write_path_name(WritePath m) { return m == WritePath::kV4 ? "v4" : "published"; }

WritePath parse_write_path(const std::string& s, const std::string& where) {
  if (s == "published") return WritePath::kPublished;
  if (s == "v4") return WritePath::kV4;
  throw Error(fmt::format("{}: write path '{}'; expected published or v4", where, s));
}

std::vector<int64_t> parse_compress_ratios(const json& cr, int64_t num_hidden_layers, int64_t mtp_layers,
                                           int64_t csa_ratio, int64_t hca_ratio, const std::string& where) {
  KVLAB_CHECK(cr.is_array(), "{}: 'compress_ratios' must be an array of integers, got {}", where, brief(cr));
  std::vector<int64_t> out;
  for (std::size_t i = 0; i < cr.size(); ++i) {
    const int64_t v = get_int(cr[i], where, fmt::format("compress_ratios[{}]", i));
    KVLAB_CHECK(v == 0 || v == csa_ratio || v == hca_ratio,
                "{}: compress_ratios[{}] = {}: expected 0 (SWA), {} (CSA) or {} (HCA)", where, i, v, csa_ratio,
                hca_ratio);
    out.push_back(v);
  }
  if (num_hidden_layers >= 0) {
    const auto n = static_cast<int64_t>(out.size());
    if (mtp_layers >= 0)
      KVLAB_CHECK(n == num_hidden_layers + mtp_layers,
                  "{}: compress_ratios has {} entries; expected num_hidden_layers + num_nextn_predict_layers = {} + {} "
                  "= {}",
                  where, n, num_hidden_layers, mtp_layers, num_hidden_layers + mtp_layers);
    // DeepSeek configs list extra entries (MTP layers) after the main stack.
    KVLAB_CHECK(num_hidden_layers > 0 && num_hidden_layers <= n,
                "{}: num_hidden_layers = {} but compress_ratios has {} entries", where, num_hidden_layers, n);
    out.resize(static_cast<std::size_t>(num_hidden_layers));
  }
  return out;
}

const char* layer_kind_name(LayerKind k) {
  switch (k) {
    case LayerKind::SWA: return "swa";
    case LayerKind::CSA: return "csa";
    case LayerKind::HCA: return "hca";
  }
  return "?";
}

V4Config V4Config::flash() {
  V4Config c;
  c.compress_ratios = flash_compress_ratios();
  return c;
}

V4Config V4Config::from_json(const json& j, const std::string& where) {
  KVLAB_CHECK(j.is_object(), "{}: config must be a JSON object, got {}", where, brief(j));
  V4Config c = flash();
  // A model config.json is recognised by its HF / DeepSeek keys; there we
  // read what we need and ignore the rest. A reference-style object must
  // contain only known keys (typos fail loudly).
  const bool hf = j.contains("compress_ratios") || j.contains("num_hidden_layers") || j.contains("model_type") ||
                  j.contains("architectures") || j.contains("rope_scaling");
  static const std::set<std::string> ref_keys = {
      "hidden_size",   "head_dim",  "qk_rope_head_dim", "rope_theta_main",     "rope_theta_compress",
      "rope_factor",   "original_seq_len", "beta_fast", "beta_slow",          "rms_norm_eps",
      "fp8_block_size_nope", "fp8_max", "simulate_fp8", "compress_ratio", "window_size",
      "compress_ratios", "csa_ratio", "hca_ratio", "v4_compress_ratios", "write_path"};
  if (!hf)
    for (auto it = j.begin(); it != j.end(); ++it)
      KVLAB_CHECK(ref_keys.count(it.key()), "{}: unknown config key '{}'", where, it.key());

  auto num = [&](const char* key, double* out) {
    if (j.contains(key)) *out = get_num(j[key], where, key);
  };
  auto integer = [&](const char* key, int64_t* out) {
    if (j.contains(key)) *out = get_int(j[key], where, key);
  };
  integer("hidden_size", &c.hidden_size);
  integer("head_dim", &c.head_dim);
  integer("qk_rope_head_dim", &c.qk_rope_head_dim);
  num("rope_theta_main", &c.rope_theta_main);
  num("rope_theta", &c.rope_theta_main);
  num("rope_theta_compress", &c.rope_theta_compress);
  num("compress_rope_theta", &c.rope_theta_compress);
  num("rope_factor", &c.rope_factor);
  integer("original_seq_len", &c.original_seq_len);
  num("beta_fast", &c.beta_fast);
  num("beta_slow", &c.beta_slow);
  num("rms_norm_eps", &c.rms_norm_eps);
  integer("fp8_block_size_nope", &c.fp8_block_size_nope);
  num("fp8_max", &c.fp8_max);
  integer("csa_ratio", &c.csa_ratio);
  integer("hca_ratio", &c.hca_ratio);
  if (j.contains("simulate_fp8")) c.simulate_fp8 = get_bool(j["simulate_fp8"], where, "simulate_fp8");
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    const json& rs = j["rope_scaling"];
    KVLAB_CHECK(rs.is_object(), "{}: 'rope_scaling' must be an object, got {}", where, brief(rs));
    const std::string w = where + ": rope_scaling";
    if (rs.contains("factor")) c.rope_factor = get_num(rs["factor"], w, "factor");
    if (rs.contains("original_max_position_embeddings"))
      c.original_seq_len = get_int(rs["original_max_position_embeddings"], w, "original_max_position_embeddings");
    if (rs.contains("beta_fast")) c.beta_fast = get_num(rs["beta_fast"], w, "beta_fast");
    if (rs.contains("beta_slow")) c.beta_slow = get_num(rs["beta_slow"], w, "beta_slow");
  }
  if (j.contains("compress_ratios")) {
    // One model, one layer list: both modes use the file's.
    const int64_t n = j.contains("num_hidden_layers") ? get_int(j["num_hidden_layers"], where, "num_hidden_layers") : -1;
    KVLAB_CHECK(!j.contains("num_hidden_layers") || n > 0, "{}: num_hidden_layers = {} (expected > 0)", where, n);
    const int64_t mtp = j.contains("num_nextn_predict_layers") && n > 0
                            ? get_int(j["num_nextn_predict_layers"], where, "num_nextn_predict_layers")
                            : -1;
    KVLAB_CHECK(!j.contains("num_nextn_predict_layers") || n < 0 || mtp >= 0,
                "{}: num_nextn_predict_layers = {} (expected >= 0)", where, mtp);
    c.compress_ratios = parse_compress_ratios(j["compress_ratios"], n, mtp, c.csa_ratio, c.hca_ratio, where);
    c.v4_compress_ratios = c.compress_ratios;
  }
  if (j.contains("v4_compress_ratios"))
    c.v4_compress_ratios = parse_compress_ratios(j["v4_compress_ratios"], -1, -1, c.csa_ratio, c.hca_ratio,
                                                 where + ": v4_compress_ratios");
  if (j.contains("write_path")) {
    KVLAB_CHECK(j["write_path"].is_string(), "{}: 'write_path' must be \"published\" or \"v4\", got {}", where,
                brief(j["write_path"]));
    c.write_path = parse_write_path(j["write_path"].get<std::string>(), where);
  }
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", where, e.what()));
  }
  return c;
}

json read_json_file(const std::string& path) {
  std::ifstream in(path);
  KVLAB_CHECK(in.good(), "{}: cannot open config file", path);
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw Error(fmt::format("{}: not valid JSON: {}", path, e.what()));
  }
}

V4Config V4Config::from_json_file(const std::string& path) { return from_json(read_json_file(path), path); }

json V4Config::to_json() const {
  json j{{"hidden_size", hidden_size},
              {"head_dim", head_dim},
              {"qk_rope_head_dim", qk_rope_head_dim},
              {"rope_theta_main", rope_theta_main},
              {"rope_theta_compress", rope_theta_compress},
              {"rope_factor", rope_factor},
              {"original_seq_len", original_seq_len},
              {"beta_fast", beta_fast},
              {"beta_slow", beta_slow},
              {"rms_norm_eps", rms_norm_eps},
              {"fp8_block_size_nope", fp8_block_size_nope},
              {"fp8_max", fp8_max},
              {"simulate_fp8", simulate_fp8},
              {"csa_ratio", csa_ratio},
              {"hca_ratio", hca_ratio},
              {"compress_ratios", compress_ratios}};
  if (v4_compress_ratios != compress_ratios) j["v4_compress_ratios"] = v4_compress_ratios;
  if (write_path != WritePath::kPublished) j["write_path"] = write_path_name(write_path);
  return j;
}

void V4Config::validate() const {
  KVLAB_CHECK(hidden_size > 0, "hidden_size must be > 0, got {}", hidden_size);
  KVLAB_CHECK(head_dim > 0, "head_dim must be > 0, got {}", head_dim);
  KVLAB_CHECK(qk_rope_head_dim > 0 && qk_rope_head_dim % 2 == 0 && qk_rope_head_dim <= head_dim,
              "qk_rope_head_dim must be even and in (0, head_dim = {}], got {}", head_dim, qk_rope_head_dim);
  KVLAB_CHECK(fp8_block_size_nope > 0, "fp8_block_size_nope must be > 0, got {}", fp8_block_size_nope);
  KVLAB_CHECK(!simulate_fp8 || nope_dim() % fp8_block_size_nope == 0,
              "with simulate_fp8 the nope dims (head_dim - qk_rope_head_dim = {}) must be a multiple of "
              "fp8_block_size_nope = {}",
              nope_dim(), fp8_block_size_nope);
  KVLAB_CHECK(std::isfinite(fp8_max) && fp8_max > 0 && fp8_max <= 448.0,
              "fp8_max must be in (0, 448] (the largest finite E4M3FN value), got {}", fp8_max);
  KVLAB_CHECK(std::isfinite(rope_theta_main) && rope_theta_main > 1.0, "rope_theta_main must be > 1, got {}",
              rope_theta_main);
  KVLAB_CHECK(std::isfinite(rope_theta_compress) && rope_theta_compress > 1.0,
              "rope_theta_compress must be > 1, got {}", rope_theta_compress);
  KVLAB_CHECK(std::isfinite(rope_factor) && rope_factor > 0, "rope_factor must be > 0, got {}", rope_factor);
  KVLAB_CHECK(original_seq_len >= 0, "original_seq_len must be >= 0, got {}", original_seq_len);
  KVLAB_CHECK(std::isfinite(beta_fast) && std::isfinite(beta_slow) && beta_fast > 0 && beta_slow > 0,
              "beta_fast and beta_slow must be > 0, got {} and {}", beta_fast, beta_slow);
  KVLAB_CHECK(std::isfinite(rms_norm_eps) && rms_norm_eps > 0, "rms_norm_eps must be > 0, got {}", rms_norm_eps);
  KVLAB_CHECK(csa_ratio > 0 && hca_ratio > 0 && csa_ratio != hca_ratio,
              "csa_ratio and hca_ratio must be distinct and > 0, got {} and {}", csa_ratio, hca_ratio);
  for (std::size_t i = 0; i < compress_ratios.size(); ++i)
    KVLAB_CHECK(compress_ratios[i] == 0 || compress_ratios[i] == csa_ratio || compress_ratios[i] == hca_ratio,
                "compress_ratios[{}] = {}: expected 0 (SWA), {} (CSA) or {} (HCA)", i, compress_ratios[i], csa_ratio,
                hca_ratio);
  for (std::size_t i = 0; i < v4_compress_ratios.size(); ++i)
    KVLAB_CHECK(v4_compress_ratios[i] == 0 || v4_compress_ratios[i] == csa_ratio || v4_compress_ratios[i] == hca_ratio,
                "v4_compress_ratios[{}] = {}: expected 0 (SWA), {} (CSA) or {} (HCA)", i, v4_compress_ratios[i],
                csa_ratio, hca_ratio);
  KVLAB_CHECK(write_path == WritePath::kPublished || write_path == WritePath::kV4, "write_path has an invalid value {}",
              static_cast<int>(write_path));
}

LayerKind V4Config::layer_kind(int layer) const {
  KVLAB_CHECK(layer >= 0 && layer < num_layers(), "layer {} out of range: the config has {} layers (0..{})", layer,
              num_layers(), num_layers() - 1);
  int64_t r = layer_ratios()[static_cast<std::size_t>(layer)];
  return r == 0 ? LayerKind::SWA : r == csa_ratio ? LayerKind::CSA : LayerKind::HCA;
}

std::vector<int> V4Config::layers_of(LayerKind k) const {
  std::vector<int> out;
  for (int i = 0; i < num_layers(); ++i)
    if (layer_kind(i) == k) out.push_back(i);
  return out;
}

}  // namespace kvlab::model

namespace kvlab::model {

std::map<std::string, int> V4Config::layer_mix(WritePath m) const {
  const auto& ratios = m == WritePath::kV4 ? v4_compress_ratios : compress_ratios;
  std::map<std::string, int> mix{{kStreamSWA, 0}, {kStreamCSA, 0}, {kStreamHCA, 0}};
  for (int64_t r : ratios) ++mix[r == 0 ? kStreamSWA : r == csa_ratio ? kStreamCSA : kStreamHCA];
  return mix;
}

}  // namespace kvlab::model
