// Pieces of the summary-first layout shared by the findings and
// max-usable-CR reports: the baseline and write-path wording, the one bits
// weighting (by stored bytes per token, V4 memory model of derived.h), the
// attention-metric columns driven by the metric table, the bit class of a
// lattice Q (which Q values share its bits), the published CI-safe check,
// the caveats and the sequential-decisions section. Internal to src/report/.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/metric_table.h"
#include "report/derived.h"
#include "report/markdown.h"
#include "report/reports.h"
#include "stats/study.h"

namespace kvlab::report::detail {

// "FP8 per-64" / "V4 native" (the codec every ratio is taken against).
std::string baseline_label(const stats::StudySummary& s);
// The baseline's stored format in words, with its recorded bits per vector.
std::string baseline_format(const stats::StudySummary& s);
// Where the KV streams came from, as the provenance and params_json record it.
struct DataSource {
  bool random_weights = false;  // seeded init, not a trained checkpoint
  bool synthetic_host = false;  // synthetic hidden states, not a host LLM
  bool published_import = false;
};
DataSource data_source(const stats::StudySummary& s, const ReportProvenance& prov);
// The KV streams in words for a report's first screen, e.g. "the KV streams of
// the V4 write path with random (seeded) weights on synthetic hidden states".
std::string data_source_text(const DataSource& d);

// "published" when params_json names none.
std::string write_path_of(const stats::StudySummary& s);

// The V4 memory model at the experiment's forecast context (else its seqlen);
// nullopt without a layer mix or a context. `context_source` says which.
std::optional<V4Memory> experiment_memory(const stats::StudySummary& s, std::string* context_source = nullptr);
// Memory-weighted bits per stored vector of `codec` over the layer-mix
// streams (nullopt when the codec is missing on a stream with memory).
std::optional<double> codec_memory_bits(const stats::StudySummary& s, const V4Memory& m, const std::string& codec);
// The sentence that states the weighting, with the shares.
std::string memory_weighting_note(const V4Memory& m, const std::string& context_source);

// Distortion metrics other than rel_mse (metric table order) with a paired
// ratio on some cell of `codec` (any codec when empty).
std::vector<const MetricInfo*> extra_metrics(const stats::StudySummary& s, const std::string& codec = "");
// "0.846 [0.840, 0.853]", "0.846 (n < 2)".
std::string ratio_with_ci(const stats::Summary& r);

// The Q values of a lattice family that share the bits of Q (bits_of at the
// cell's D), as [lo, hi] including q; nullopt when bits_of is empty or throws.
struct BitClass {
  int lo = 0;
  int hi = 0;
};
std::optional<BitClass> bit_class(const stats::BitsFn& bits_of, const std::string& family, int q, int dim);

// The published CI-safe test of threshold factor m: mean + 95 % half-width of
// the codec's rel-MSE <= m x mean baseline rel-MSE (unpaired).
struct CiSafeCheck {
  bool has_interval = false;
  bool fits = false;
  double used = 0.0;
  double budget = 0.0;
};
CiSafeCheck ci_safe_check(const stats::CellStats& codec, const stats::CellStats& base, double m);

// Lowest-error measured point of the same stream with at most the cell's
// bits and a lower mean rel-MSE (its dominator); nullptr when none.
const stats::CellStats* dominated_by(const stats::StudySummary& s, const stats::CellStats& cell);

// The caveats list (both reports print it right after the summary).
void caveats_section(Document& d, const stats::StudySummary& s, const ReportProvenance& prov,
                     const std::optional<PublishedInput>& pub);

// "Passages each decision needed" (only when `rows` is not empty).
void decisions_section(Document& d, const std::vector<store::DecisionRow>& rows);

}  // namespace kvlab::report::detail
