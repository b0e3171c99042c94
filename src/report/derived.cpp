// Closed-form transforms of stats results; see derived.h.
#include "report/derived.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "report/markdown.h"

namespace kvlab::report {

Verdict verdict_of(const stats::Summary& ratio) {
  const auto lo = ratio.lower();
  const auto hi = ratio.upper();
  if (!lo || !hi) return Verdict::kNoInterval;
  if (*hi < 1.0) return Verdict::kWin;
  if (*lo > 1.0) return Verdict::kLoss;
  return Verdict::kTied;
}

std::string to_string(Verdict v) {
  switch (v) {
    case Verdict::kWin: return "win";
    case Verdict::kTied: return "tied";
    case Verdict::kLoss: return "loss";
    case Verdict::kNoInterval: return kNoInterval;
  }
  return "?";
}

double db_gain(double better, double worse) {
  KVLAB_CHECK(better > 0 && worse > 0 && std::isfinite(better) && std::isfinite(worse),
              "dB gain needs two positive finite errors, got {} and {}", better, worse);
  return 10.0 * std::log10(worse / better);
}

EqualWeightMean equal_weight_mean(const std::vector<stats::Summary>& per_stream) {
  EqualWeightMean r;
  r.k = static_cast<int>(per_stream.size());
  if (per_stream.empty()) return r;
  const double w = 1.0 / r.k;
  double sum = 0.0, ss = 0.0;
  bool all_intervals = true;
  for (const auto& s : per_stream) {
    sum += w * s.mean;
    if (s.ci95_hw) {
      ss += (w * *s.ci95_hw) * (w * *s.ci95_hw);
    } else {
      all_intervals = false;
    }
  }
  r.mean = sum;
  if (all_intervals) r.rss_hw = std::sqrt(ss);
  return r;
}

namespace {

double positive_number(const nlohmann::json& j, const std::string& key) {
  KVLAB_CHECK(j.contains(key), "params_json forecast: missing key '{}' (a positive number)", key);
  const auto& v = j.at(key);
  KVLAB_CHECK(v.is_number(), "params_json forecast: '{}' is {}; expected a positive number", key,
              v.dump());
  const double d = v.get<double>();
  KVLAB_CHECK(std::isfinite(d) && d > 0, "params_json forecast: '{}' = {}; expected a positive number",
              key, d);
  return d;
}

nlohmann::json parse_params(const std::string& params_json) {
  try {
    return nlohmann::json::parse(params_json);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("experiment params_json is not valid JSON: {}", e.what()));
  }
}

// Layer counts print as integers when integral ("20"), else with decimals.
std::string fmt_layers(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e9) return std::to_string(static_cast<long long>(v));
  return fmt::format("{:.3g}", v);
}

}  // namespace

std::optional<ForecastParams> parse_forecast(const std::string& params_json) {
  const auto j = parse_params(params_json);
  if (!j.is_object() || !j.contains("forecast") || j.at("forecast").is_null()) return std::nullopt;
  const auto& f = j.at("forecast");
  KVLAB_CHECK(f.is_object(), "params_json 'forecast' is {}; expected an object with "
              "kv_memory_gib_per_node and context_tokens", f.dump());
  ForecastParams p;
  p.kv_memory_gib_per_node = positive_number(f, "kv_memory_gib_per_node");
  p.context_tokens = positive_number(f, "context_tokens");
  if (f.contains("vectors_per_token")) {
    const auto& v = f.at("vectors_per_token");
    KVLAB_CHECK(v.is_object(), "params_json forecast: 'vectors_per_token' is {}; expected "
                "an object {{stream: number}}", v.dump());
    for (const auto& [stream, val] : v.items()) {
      KVLAB_CHECK(val.is_number() && val.get<double>() > 0,
                  "params_json forecast: vectors_per_token['{}'] is {}; expected a positive number",
                  stream, val.dump());
      p.vectors_per_token[stream] = val.get<double>();
    }
  }
  return p;
}

std::optional<long long> params_seqlen(const std::string& params_json) {
  const auto j = parse_params(params_json);
  if (!j.is_object() || !j.contains("seqlen")) return std::nullopt;
  const auto& v = j.at("seqlen");
  KVLAB_CHECK(v.is_number_integer() && v.get<long long>() > 0,
              "params_json 'seqlen' is {}; expected a positive integer", v.dump());
  return v.get<long long>();
}

ForecastResult forecast(const std::vector<ForecastStream>& streams, const ForecastParams& p) {
  KVLAB_CHECK(!streams.empty(), "deployment forecast: no streams in the layer mix");
  KVLAB_CHECK(p.kv_memory_gib_per_node > 0 && p.context_tokens > 0,
              "deployment forecast: memory {} GiB and context {} tokens must be positive",
              p.kv_memory_gib_per_node, p.context_tokens);
  ForecastResult r;
  for (const auto& s : streams) {
    KVLAB_CHECK(s.layers >= 0 && s.vectors_per_token > 0 && s.bits_per_vector > 0,
                "deployment forecast: stream {} has layers {}, vectors per token {}, bits {}; "
                "expected layers >= 0 and positive vectors and bits",
                s.stream, s.layers, s.vectors_per_token, s.bits_per_vector);
    r.bytes_per_token += s.layers * s.vectors_per_token * s.bits_per_vector / 8.0;
  }
  r.bytes_per_user = r.bytes_per_token * p.context_tokens;
  r.users_per_node = std::floor(p.kv_memory_gib_per_node * kGiB / r.bytes_per_user);
  return r;
}

V4Memory v4_memory(const std::vector<std::pair<std::string, double>>& layer_mix, double context_tokens) {
  KVLAB_CHECK(!layer_mix.empty(), "V4 memory model: the experiment defines no layer mix");
  KVLAB_CHECK(std::isfinite(context_tokens) && context_tokens > 0,
              "V4 memory model: context {} tokens; expected a positive number", context_tokens);
  double swa = 0, csa = 0, hca = 0;
  for (const auto& [stream, layers] : layer_mix) {
    KVLAB_CHECK(std::isfinite(layers) && layers >= 0, "V4 memory model: stream {} has {} layers; expected >= 0",
                stream, layers);
    if (stream == "sliding_window_kv") swa = layers;
    if (stream == "csa_pool_kv_ratio4") csa = layers;
    if (stream == "hca_pool_kv_ratio128") hca = layers;
  }
  V4Memory m;
  m.context_tokens = context_tokens;
  const double window = std::min(context_tokens, kV4Window) / context_tokens;
  for (const auto& [stream, layers] : layer_mix) {
    StoredStream st{stream, 0.0, ""};
    if (stream == "sliding_window_kv") {
      st.vectors_per_token = (swa + csa + hca) * window;
      st.how = fmt::format("window of every layer ({} SWA + {} CSA + {} HCA) x min(S, 128) / S",
                           fmt_layers(swa), fmt_layers(csa), fmt_layers(hca));
    } else if (stream == "csa_pool_kv_ratio4") {
      st.vectors_per_token = csa / 4.0;
      st.how = fmt::format("{} CSA layers x S / 4 / S", fmt_layers(csa));
    } else if (stream == "hca_pool_kv_ratio128") {
      st.vectors_per_token = hca / 128.0;
      st.how = fmt::format("{} HCA layers x S / 128 / S", fmt_layers(hca));
    } else {
      st.vectors_per_token = layers;
      st.how = fmt::format("{} layers x every token (not a V4 stream)", fmt_layers(layers));
    }
    m.streams.push_back(st);
  }
  m.indexer_keys_per_token = csa / 4.0;
  return m;
}

double V4Memory::total_vectors_per_token() const {
  double t = 0;
  for (const auto& s : streams) t += s.vectors_per_token;
  return t;
}

double V4Memory::share(const std::string& stream) const {
  const double t = total_vectors_per_token();
  for (const auto& s : streams) {
    if (s.stream == stream) return t > 0 ? s.vectors_per_token / t : 0.0;
  }
  return 0.0;
}

std::optional<double> memory_weighted_bits(const V4Memory& m, const std::map<std::string, double>& bits) {
  double out = 0;
  for (const auto& s : m.streams) {
    const double w = m.share(s.stream);
    if (w == 0) continue;
    auto it = bits.find(s.stream);
    if (it == bits.end()) return std::nullopt;
    out += w * it->second;
  }
  return out;
}

}  // namespace kvlab::report
