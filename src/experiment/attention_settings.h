// The [metrics] attention settings of an experiment as the executors read
// them from params_json (spec.cpp writes them): header-only and Torch-free,
// so that the stub executor (linked without LibTorch) reads them too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace kvlab::experiment {

// params["metrics"]: attention (bool), attention_queries (query positions
// sampled per passage and stream, >= 1), attention_seed (query sample and
// random query weights). Absent section or key: off / 256 / 0.
struct AttentionSettings {
  bool on = false;
  std::int64_t queries = 256;
  std::uint64_t seed = 0;

  // Throws kvlab::Error naming the key on a wrong type or value.
  static AttentionSettings from_params(const nlohmann::json& params) {
    AttentionSettings s;
    if (!params.contains("metrics") || params["metrics"].is_null()) return s;
    const auto& m = params["metrics"];
    KVLAB_CHECK(m.is_object(), "params metrics: expected an object, got {}", m.dump());
    if (m.contains("attention")) {
      KVLAB_CHECK(m["attention"].is_boolean(), "params metrics.attention: expected true or false, got {}",
                  m["attention"].dump());
      s.on = m["attention"].get<bool>();
    }
    if (m.contains("attention_queries")) {
      const auto& q = m["attention_queries"];
      KVLAB_CHECK(q.is_number_integer() && q.get<std::int64_t>() >= 1,
                  "params metrics.attention_queries: expected an integer >= 1, got {}", q.dump());
      s.queries = q.get<std::int64_t>();
    }
    if (m.contains("attention_seed")) {
      const auto& v = m["attention_seed"];
      KVLAB_CHECK(v.is_number_integer() && v.get<std::int64_t>() >= 0,
                  "params metrics.attention_seed: expected an integer >= 0, got {}", v.dump());
      s.seed = v.get<std::uint64_t>();
    }
    return s;
  }
};

// The run_metrics rows (common/metric_table.h names) the attention metrics
// fill, in metric-table order.
inline const std::vector<std::string>& attention_metric_names() {
  static const std::vector<std::string> names = {"logit_rel_mse", "kl_mean", "kl_p99", "attn_out_rel"};
  return names;
}

}  // namespace kvlab::experiment
