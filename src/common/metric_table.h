// The one table of per-run metrics. A metric is a number measured once per
// run (passage, stream, codec); the table says how to read it, and drives
// storage (store/: every metric but the two historical columns lives in the
// long table run_metrics(run_id, metric, value)), the statistics (stats/:
// mean and CI95 per cell, paired ratio to the baseline), `kvlab best
// --metric`, and the report columns. Adding a metric = computing it where
// the run is measured + one row here.
//
// Not here: computing metrics (kernels/metrics.h, model/v4_attention.h).
#pragma once

#include <string>
#include <vector>

namespace kvlab {

enum class MetricKind {
  kDistortion,  // an error: lower is better, thresholds vs the baseline apply
  kSimilarity,  // higher is better (cosine)
  kRate,        // bits per dimension (lower is cheaper)
  kBound,       // a theoretical limit for the run's rate, same unit as rel_mse
};

struct MetricInfo {
  const char* name;     // "attn_out_rel"
  const char* label;    // short column label, "attn-out err"
  const char* unit;     // "" (ratio), "bits/dim", "nats"
  MetricKind kind;
  bool lower_is_better;
  bool thresholds_apply;  // `best --metric` may use it (ratio to the baseline <= A/B/C)
  bool results_column;    // stored in results.<name> (rel_mse, cos_sim), else in run_metrics
  const char* description;
};

const std::vector<MetricInfo>& metric_table();
const MetricInfo* find_metric(const std::string& name);
// Throws kvlab::Error naming the value and listing the metrics (thresholds_only:
// only those thresholds apply to).
const MetricInfo& metric_or_throw(const std::string& name, bool thresholds_only = false);

}  // namespace kvlab
