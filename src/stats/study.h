// The statistics of one experiment, computed once from its recorded rows
// (DESIGN.md habit 6: compute once, render many). summarize() turns an
// ExperimentData into a StudySummary holding everything a findings report,
// `kvlab stats` and `kvlab best_q` show; src/report/ and src/cli/ only format
// these structs.
//
// Definitions follow SPEC section 5:
//  - per (stream, codec): mean ± CI95 of rel-MSE and cosine over passages;
//    the per-passage paired ratio rel_mse(codec) / rel_mse(fp8_per64);
//  - layer-weighted ratio with w_s = layers_s / sum layers: the published
//    root-sum-square half-width sqrt(sum (w_s hw_s)^2) AND the paired
//    per-passage interval of sum_s w_s ratio_s (labelled separately);
//  - max usable Q per stream and threshold (A 1.00, B 1.05, C 1.20):
//    budget = m * mean FP8 rel-MSE; point view (mean), published CI-safe
//    view (mean + hw) and a paired CI-safe view (upper end of the
//    per-passage ratio interval <= m); bits, CR vs FP8 and bf16, saving,
//    margin; the largest swept Q sharing Q_min's bit count is recommended;
//  - monotonicity of rel-MSE in Q over the swept grid (warnings);
//  - deployment strategies: one Q for all streams / per-stream Q, with
//    layer-weighted bits;
//  - suggestions: Q values worth running to pin down the frontier.
// Compression ratios come from recorded bits: CR vs FP8 = fp8 bits / bits
// (both as recorded for that stream), CR vs bf16 = 16 D / bits.
// Per-passage values average replicates of the same passage.
//
// Not here: SQL (store/query.h), formatting (src/report/, src/cli/).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/codec_spec.h"
#include "stats/descriptive.h"
#include "stats/experiment_data.h"

namespace kvlab::stats {

// ---------------------------------------------------------------- codec specs

// Codec specs are common/codec_spec.h's (one parser for every layer). A
// cell's "family" in this file is the spec's variant ("e8", "d4",
// "int:block=64,scale=fp16"): the rate-distortion curve its rate moves along;
// its "q" is the rate parameter (Q of a lattice, bits of a scalar codec).
using kvlab::CodecSpec;
using kvlab::parse_codec_spec;

// ---------------------------------------------------------------- thresholds

struct Threshold {
  std::string name;  // "A", "B", "C"
  double factor;     // 1.00, 1.05, 1.20
};
// The published thresholds A (1.00), B (1.05), C (1.20).
const std::vector<Threshold>& published_thresholds();
// "A" / "B" / "C" (case-insensitive). Throws kvlab::UsageError naming the value otherwise.
Threshold parse_threshold(const std::string& name);

enum class QView {
  kPoint,         // mean rel-MSE <= budget
  kCiSafe,        // published: mean + hw <= budget (hw of the codec's rel-MSE)
  kPairedCiSafe,  // upper end of the per-passage ratio vs FP8 interval <= m
};
const char* to_string(QView v);  // "point", "ci_safe", "paired_ci_safe"

// Bits per vector of a lattice codec family at Q and dimension D, in the
// accounting the experiment recorded. Used only to place Q values that were
// not swept (suggestions, bit classes); may be empty (then suggestions are
// limited to swept Q). Should throw kvlab::Error for unknown families.
using BitsFn = std::function<double(const std::string& family, int q, int dim)>;

// ---------------------------------------------------------------- results

struct PassageRatio {
  std::int64_t passage_id = 0;
  std::string passage;      // passage name
  double rel_mse = 0.0;     // this codec
  double fp8_rel_mse = 0.0;
  double ratio = 0.0;       // rel_mse / fp8_rel_mse
};

// One (stream, codec) cell: everything `kvlab stats` prints for it.
struct CellStats {
  std::string stream;
  std::string codec;           // canonical spec
  std::string family;          // 'fp8_per64', 'd4', 'e8'
  std::optional<int> q;
  int n_passages = 0;
  double bits_per_vector = 0.0;  // recorded (the value of the first row)
  bool bits_consistent = true;   // every row recorded the same bits
  int dim = 512;                 // recorded D (512 where unknown)
  bool dim_recorded = false;
  std::optional<double> fp8_bits;     // recorded FP8 bits on this stream
  std::optional<double> cr_vs_fp8;    // fp8_bits / bits
  double cr_vs_bf16 = 0.0;            // 16 D / bits
  std::optional<double> bit_saving;   // 1 - bits / fp8_bits (0.22 = 22 % fewer bits)
  Summary rel_mse;
  Summary cos_sim;
  std::optional<Summary> ratio_vs_fp8;  // paired per-passage rel-MSE ratio; none for the baseline itself or without one
  std::vector<PassageRatio> passages;   // per passage (empty without baseline)
  double bits_per_dim = 0.0;            // bits_per_vector / D
  // Every recorded metric (common/metric_table.h), rel_mse and cos_sim included.
  std::map<std::string, Summary> metrics;
  // Paired per-passage ratio metric(codec) / metric(baseline) of every
  // distortion metric both recorded (rel_mse's equals ratio_vs_fp8).
  std::map<std::string, Summary> metric_ratios;
  // The same ratios per passage: metric -> passage id -> ratio.
  std::map<std::string, std::map<std::int64_t, double>> passage_metric_ratios;
  const Summary* metric(const std::string& name) const;
  const Summary* metric_ratio(const std::string& name) const;
};

struct AuditMetricStats {
  std::string metric;  // column name, e.g. 'excess_kurtosis_abs'
  double gate = 0.0;   // published gate
  Summary value;       // over passages
  bool fires = false;  // mean > gate
  int passages_firing = 0;
};

struct StreamAuditStats {
  std::string stream;
  int n_passages = 0;
  std::int64_t n_vectors = 0;  // per passage (first row)
  int dim = 0;
  std::vector<AuditMetricStats> metrics;  // the four SPEC section 4 metrics, in that order
};

struct StreamWeight {
  std::string stream;
  double layers = 0.0;
  double weight = 0.0;  // layers / total
};

// Layer-weighted ratio vs the baseline (FP8 or v4_native) of one codec over the streams of the layer mix.
struct LayerWeightedRatio {
  std::string codec;
  std::string family;
  std::optional<int> q;
  bool complete = false;                     // every weighted stream has this codec and a baseline
  std::vector<std::string> missing_streams;  // when not complete
  double mean = 0.0;                         // sum w_s * mean_s
  std::optional<double> rss_hw;              // published: sqrt(sum (w_s hw_s)^2)
  Summary paired;                            // per passage sum_s w_s ratio_s (passages present in all streams)
  double weighted_bits = 0.0;                // sum w_s bits_s
  double weighted_fp8_bits = 0.0;            // sum w_s fp8_bits_s
  double cr_vs_fp8 = 0.0;                    // weighted_fp8_bits / weighted_bits
  double cr_vs_bf16 = 0.0;                   // sum w_s 16 D_s / weighted_bits
  double bit_saving = 0.0;                   // 1 - weighted_bits / weighted_fp8_bits
};

// How one swept Q fares against one threshold and view.
struct QCheck {
  int q = 0;
  double bits = 0.0;
  double used = 0.0;    // point: mean; ci_safe: mean + hw; paired: ratio upper end
  double budget = 0.0;  // point/ci_safe: m * mean fp8 rel-MSE; paired: m
  bool fits = false;
  double margin = 0.0;  // (budget - used) / budget
  bool has_interval = true;  // false when the view needs an interval that n < 2 cannot give
};

// Max usable Q (smallest admissible swept Q) of one family on one stream.
struct BestQ {
  std::string stream;
  std::string family;
  Threshold threshold;
  QView view = QView::kPoint;
  bool admissible = false;
  std::optional<int> q_min;          // published answer: smallest swept Q that fits
  std::optional<int> q_recommended;  // largest swept Q with q_min's bits that fits (>= q_min)
  double bits = 0.0;                 // recorded bits at q_min
  std::optional<double> fp8_bits;
  std::optional<double> cr_vs_fp8;
  double cr_vs_bf16 = 0.0;
  std::optional<double> bit_saving;
  double margin = 0.0;               // at q_min
  double budget = 0.0;
  double used = 0.0;
  int max_swept_q = 0;
  int dim = 512;
  std::vector<QCheck> checks;        // every swept Q, ascending
  std::string note;                  // e.g. "not admissible (need Q > 38)"
};

struct MonotonicityWarning {
  std::string stream;
  std::string family;
  int q_lo = 0;
  int q_hi = 0;                       // next swept Q
  double mean_lo = 0.0;               // rel-MSE at q_lo
  double mean_hi = 0.0;               // rel-MSE at q_hi (> mean_lo: error rose with Q)
  bool same_bits = false;             // q_lo and q_hi share a bit count
  std::optional<Comparison> paired;   // per passage rel_mse(q_hi) - rel_mse(q_lo)
  std::string message;
};

struct StrategyStream {
  std::string stream;
  double weight = 0.0;
  std::optional<int> q;
  double bits = 0.0;
  double fp8_bits = 0.0;
  int dim = 512;
};

// A deployment: one Q for every stream ("uniform") or each stream its own
// Q_min ("per_stream"), with layer-weighted bits.
struct Strategy {
  std::string name;  // "uniform" | "per_stream"
  std::string family;
  Threshold threshold;
  QView view = QView::kPoint;
  bool admissible = false;
  std::optional<int> uniform_q;         // "uniform" only
  std::vector<StrategyStream> streams;  // weighted streams
  double weighted_bits = 0.0;
  double weighted_fp8_bits = 0.0;
  double cr_vs_fp8 = 0.0;
  double cr_vs_bf16 = 0.0;
  double bit_saving = 0.0;
  std::string note;
};

// A Q value worth running (not yet swept).
struct Suggestion {
  std::string stream;
  std::string family;
  int q = 0;
  double bits = 0.0;
  std::string threshold;  // threshold name that motivated it
  QView view = QView::kPoint;
  std::string reason;
  std::string codec() const { return family + ":q=" + std::to_string(q); }
};

// One swept point on the rate-distortion plane of a stream.
struct ParetoRow {
  std::string stream;
  std::string codec;
  std::string family;
  std::optional<int> q;
  double bits = 0.0;
  Summary rel_mse;
  std::optional<Summary> ratio_vs_fp8;
  bool on_frontier = false;  // no other row has <= bits and lower mean rel-MSE
};

struct SummaryOptions {
  std::vector<Threshold> thresholds = published_thresholds();
  std::vector<QView> views = {QView::kPoint, QView::kCiSafe, QView::kPairedCiSafe};
  // Restrict to these streams / codec families or specs (empty = all).
  std::vector<std::string> streams;
  std::vector<std::string> codecs;  // 'e8' (family) or 'e8:q=38' (spec)
  BitsFn bits_of;                   // for suggestions; may be empty
  int max_suggestions_per_stream = 8;
  // The codec every ratio is taken against ("fp8_per64", "v4_native"); empty:
  // the experiment's own (ExperimentInfo::baseline), else fp8_per64 when
  // recorded, else the first baseline-family codec recorded.
  std::string baseline;
  // The metric thresholds and best operating points use (a metric_table()
  // row with thresholds_apply).
  std::string metric = "rel_mse";
};

struct StudySummary {
  ExperimentInfo experiment;
  std::string baseline;                 // the codec ratios are against ('' when none recorded)
  std::string metric = "rel_mse";       // the metric of best_q / strategies / suggestions
  int n_passages = 0;
  std::vector<PassageInfo> passages;    // every passage of the experiment, by idx (names, words)
  std::vector<std::string> streams;     // present in the data, canonical order
  std::vector<std::string> families;    // lattice families present ('d4', 'e8')
  std::vector<StreamWeight> weights;    // from the layer mix (empty without one)
  std::vector<CellStats> cells;         // stream-major, FP8 first, then family, Q ascending
  std::vector<StreamAuditStats> audits;
  std::vector<LayerWeightedRatio> layer_weighted;  // one per lattice codec spec
  std::vector<BestQ> best_q;            // stream x family x threshold x view
  std::vector<Strategy> strategies;     // family x threshold x view x {uniform, per_stream}
  std::vector<MonotonicityWarning> monotonicity;
  std::vector<Suggestion> suggestions;  // deduplicated per (stream, codec)
  std::vector<ParetoRow> pareto;
  std::vector<std::string> warnings;    // e.g. a stream without FP8 baseline

  const CellStats* find_cell(const std::string& stream, const std::string& codec) const;
  const LayerWeightedRatio* find_layer_weighted(const std::string& codec) const;
  const BestQ* find_best_q(const std::string& stream, const std::string& family, const std::string& threshold,
                           QView view) const;
  const Strategy* find_strategy(const std::string& name, const std::string& family, const std::string& threshold,
                                QView view) const;
};

// Published audit gates (SPEC section 4): metric name and gate, in order.
const std::vector<std::pair<std::string, double>>& audit_gates();

// Computes every statistic above. Throws kvlab::Error for data it cannot
// interpret (unparsable codec spec, non-positive bits).
StudySummary summarize(const ExperimentData& data, const SummaryOptions& options = {});

}  // namespace kvlab::stats
