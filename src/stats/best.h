// `kvlab best`: the lowest-bit operating point of one codec family that
// clears a threshold on one metric's paired ratio to the baseline, per
// stream and layer weighted. Computed from a StudySummary (study.h), whose
// cells already hold every metric's per-passage ratio to the baseline.
//
// Definitions:
//  - candidates: the cells whose codec belongs to the family (family name
//    "int" matches every variant of int; a variant "int:block=64,scale=fp16"
//    only itself) and has a rate parameter;
//  - a candidate clears threshold m when, for the metric's paired ratio
//    (mean of per-passage metric(codec) / metric(baseline)),
//      point view:   mean <= m
//      CI-safe view: upper end of the ratio's CI95 <= m (needs n >= 2);
//  - per stream: the cleared candidate with the fewest recorded bits per
//    vector (ties: the smaller ratio used, then the smaller codec spec);
//  - layer weighted (one codec on every weighted stream): per passage
//    sum_s w_s ratio_s over the passages present on every weighted stream,
//    w_s from the experiment's layer mix; the cleared codec with the fewest
//    weighted bits sum_s w_s bits_s;
//  - per-stream deployment: each weighted stream its own best point,
//    weighted bits sum_s w_s bits_s (admissible only when every weighted
//    stream has one).
// Bits are given per vector and per dimension (bits / D).
//
// Not here: SQL, formatting (src/report/console.h, stats_json.h).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "stats/study.h"

namespace kvlab::stats {

// "attn_out" -> "attn_out_rel", "kl" -> "kl_mean", "logit" -> "logit_rel_mse";
// full metric names pass through. Throws kvlab::UsageError naming the value
// and listing the aliases and the thresholdable metrics otherwise.
std::string resolve_threshold_metric(const std::string& name_or_alias);

// Families with a rate parameter (codec_family_table() order): "d4, e8, int, ...".
std::vector<std::string> rate_families();

struct BestOptions {
  std::string family;    // "e8", "int", or a variant "int:block=64,scale=fp16"
  Threshold threshold = {"A", 1.00};
  bool ci_safe = false;  // CI-safe view: the ratio's upper CI95 end must clear
};

// One candidate on one stream (or layer weighted: stream = "layer_weighted").
struct BestCandidate {
  std::string stream;
  std::string codec;    // canonical spec
  std::string variant;  // spec without its rate
  int rate = 0;
  double bits_per_vector = 0.0;
  double bits_per_dim = 0.0;
  int dim = 512;
  Summary ratio;        // paired ratio of the metric to the baseline
  double used = 0.0;    // mean (point) or upper CI95 end (CI-safe); NaN when absent
  bool has_interval = true;
  bool clears = false;
};

struct BestStream {
  std::string stream;
  double baseline_bits = 0.0;               // the baseline's recorded bits on this stream
  std::optional<BestCandidate> best;        // none when nothing clears
  std::vector<BestCandidate> candidates;    // every candidate, ascending bits
  std::string note;                         // why nothing clears
};

struct BestLayerWeighted {
  bool available = false;                   // the experiment has a layer mix
  std::optional<BestCandidate> best;        // one codec on every weighted stream
  std::vector<BestCandidate> candidates;    // codecs on every weighted stream, ascending weighted bits
  double baseline_bits = 0.0;               // sum w_s baseline bits_s
  std::string note;
  // Per-stream deployment: each weighted stream its own best point.
  bool per_stream_admissible = false;
  double per_stream_bits = 0.0;             // sum w_s bits_s
  double per_stream_bits_per_dim = 0.0;     // sum w_s bits_s / D_s
};

struct BestResult {
  std::string experiment;
  std::string family;
  std::string metric;    // full metric name
  std::string baseline;  // canonical spec
  Threshold threshold;
  bool ci_safe = false;
  std::vector<StreamWeight> weights;
  std::vector<BestStream> streams;  // canonical stream order, streams with a baseline and candidates
  BestLayerWeighted layer_weighted;
  std::vector<std::string> warnings;  // the summary's (e.g. a stream without its baseline)
  bool any_inadmissible() const;    // some stream has no cleared candidate
};

// Throws kvlab::Error when the family is unknown or has no rate parameter
// (listing the rate families), when the experiment ran no codec of it
// (listing the families it ran), or when no candidate recorded the metric.
BestResult best_operating_point(const StudySummary& s, const BestOptions& o);

}  // namespace kvlab::stats
