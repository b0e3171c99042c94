// Shared helpers of the ingest parsers: see bundle.h.
#include "ingest/bundle.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "common/error.h"

namespace kvlab::ingest {

const std::vector<std::string>& published_stream_names() {
  static const std::vector<std::string> s = {"sliding_window_kv", "csa_pool_kv_ratio4", "hca_pool_kv_ratio128"};
  return s;
}

void check_layer_mix(const LayerMix& lm) {
  KVLAB_CHECK(!lm.empty(), "an import needs the model's layer mix (layers per stream)");
  for (const auto& [s, n] : lm)
    KVLAB_CHECK(n >= 0 && std::isfinite(n), "layer mix: stream {} has {} layers; expected a count >= 0", s, n);
}

nlohmann::json layer_mix_json(const LayerMix& lm) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [s, n] : lm) j[s] = n;
  return j;
}

void check_stream(const std::string& where, const std::string& s) {
  const auto& known = published_stream_names();
  for (const auto& k : known)
    if (k == s) return;
  throw Error(fmt::format("{}: unknown stream '{}'; expected one of: {}, {}, {}", where, s, known[0], known[1], known[2]));
}

std::string read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  KVLAB_CHECK(f.good(), "cannot open '{}' for reading", path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string experiment_name(const std::string& path, const ImportOptions& options) {
  return options.experiment.empty() ? std::filesystem::path(path).stem().string() : options.experiment;
}

void set_params(store::ImportBundle& b, nlohmann::json params) {
  int best_q = 0;
  std::set<std::string> codecs;
  for (const auto& r : b.runs) codecs.insert(r.codec);
  for (const auto& r : b.runs)
    if (r.codec.rfind("e8:", 0) == 0 && r.q && *r.q > best_q) best_q = *r.q;
  if (best_q > 0) {
    params["report"]["codec"] = fmt::format("e8:q={}", best_q);
    if (codecs.count(fmt::format("d4:q={}", best_q))) params["report"]["compare"] = fmt::format("d4:q={}", best_q);
  }
  b.params_json = params.dump();
}

}  // namespace kvlab::ingest
