// The two generated reports of a kvlab study, each laid out summary first
// (question, answer per stream and weighted with 95 % CIs, verdict rules,
// what it means), then the caveats, then "published vs this run", then the
// details:
//  - render_findings(): FINDINGS_*.md, the results of one experiment for one
//    codec against the baseline (per stream, per passage, audit, layer
//    weighting, bits, E8 vs D4 at matched Q, deployment forecast);
//  - render_max_usable_cr(): MAX_USABLE_CR.md, the max usable compression
//    ratio of a Q sweep (thresholds A/B/C, deployment strategies, Pareto
//    table, monotonicity, suggested Q).
// Each returns the markdown and the SVG plots it links to (file names
// relative to the markdown file).
//
// These functions only format: every number comes from a
// stats::StudySummary (computed from the database by stats::summarize) or
// from ReportProvenance (read from the database by the caller), plus the
// closed-form transforms of derived.h. Output bytes depend on nothing else
// (no clock, no paths beyond the database file name), so the same database
// gives the same report.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "stats/study.h"
#include "store/decisions.h"

namespace kvlab::report {

// Where the numbers came from: filled by the caller from the database (via
// store/ queries) and the running binary. Lists hold distinct values in a
// deterministic (sorted) order; empty strings / lists print as "not recorded".
struct ReportProvenance {
  std::string database_file;    // file name of the database (no directory)
  std::string database_sha256;  // sha256 of the database file as read
  std::string generator;        // "kvlab <version> (<commit>)" of the report generator
  std::string first_run;        // ISO-8601 UTC of the earliest finished run
  std::string last_run;         // ... the latest
  std::vector<std::string> run_software;  // "kvlab <version> (<commit>[, dirty])" of the runs
  std::vector<std::string> devices;
  std::vector<std::string> host_kinds;    // 'synthetic' | 'kv-file' | 'hf' | 'published'
  std::vector<std::string> hosts;         // host_json (parameters, model, seed)
  std::vector<std::string> weights;       // weights_json (random seed or checkpoint)
  std::vector<std::string> stream_dtypes;
  std::vector<std::string> torch_versions;
  std::vector<std::string> blas;
  std::vector<std::string> gemm;  // projection GEMM path(s) that ran (schema 3)
};

struct RenderedFile {
  std::string name;     // file name relative to the markdown (e.g. "FINDINGS_N8_pareto.svg")
  std::string content;
};

struct RenderedReport {
  std::string markdown;
  std::vector<RenderedFile> files;
};

// A published experiment set beside the run (`--published-db`,
// `--published-experiment`): its summary when it has per-passage runs, and
// its params_json (aggregate-only imports keep their summaries there under
// "published_aggregate").
struct PublishedInput {
  std::string experiment;
  std::string database_file;
  std::string params_json;
  std::optional<stats::StudySummary> summary;  // absent for aggregate-only imports
  // Aggregate-only imports: the per-passage published experiment in the same
  // database that holds the same runs (report::same_published_runs,
  // published_link.h), whose paired ratios, weights and simulate_fp8 the
  // aggregate file lacks; empty name / no summary when none was found.
  std::string linked_experiment;
  std::string linked_params_json;
  std::optional<stats::StudySummary> linked_summary;
};

struct FindingsOptions {
  // Codec the findings are about and the one it is compared with; empty =
  // the experiment's params_json "report" {"codec", "compare"}.
  std::string codec;
  std::string compare;
  // Stem of the plot file names: "<stem>_pareto.svg", "<stem>_passages.svg".
  std::string file_stem = "FINDINGS";
  std::optional<PublishedInput> published;
  // Bits of a lattice (family, Q, D) in the experiment's accounting: places
  // unswept Q values that share a swept Q's bits (dominated operating
  // points); may be empty.
  stats::BitsFn bits_of;
  // sequential_decisions rows of the experiment (store::load_decisions); the
  // summary states how many passages each needed. Empty: no such section.
  std::vector<store::DecisionRow> decisions;
};

// Throws kvlab::Error when the codec is missing from the summary or has no
// FP8 baseline on any stream; kvlab::UsageError when no codec is given and
// the experiment names none.
RenderedReport render_findings(const stats::StudySummary& s, const ReportProvenance& prov,
                               const FindingsOptions& opt);

struct MaxUsableOptions {
  std::string file_stem = "MAX_USABLE_CR";
  std::optional<PublishedInput> published;
  std::string codec = "e8:q=38";  // the codec of the published-vs-run table
  stats::BitsFn bits_of;          // as in FindingsOptions
  std::vector<store::DecisionRow> decisions;
};

// Throws kvlab::Error when the summary has no lattice codec with an FP8
// baseline (nothing to report).
RenderedReport render_max_usable_cr(const stats::StudySummary& s, const ReportProvenance& prov,
                                    const MaxUsableOptions& opt);

}  // namespace kvlab::report
