// Renderers of the rate-distortion frontier (stats/frontier.h):
//  - render_frontier(): reports/FRONTIER.md: a summary whose counts and
//    one-sentence conclusions read the matched-rate verdicts (each lattice
//    point vs the scalar envelope at its own rate, time-sharing, paired CI),
//    the matched-rate tables (that comparison, and the best non-lattice
//    codec at no more bits with its rate gap), per stream every codec's
//    rel-MSE vs bits/dim with CI, the entropy-coded rate, the Gaussian and
//    reverse water-filling bounds and the distance to them, one SVG per
//    stream (<stem>_<stream short>.svg), the passages (words vs seqlen,
//    other experiments' passage sets), data caveats keyed on the recorded
//    provenance and the provenance section;
//  - frontier_text() / frontier_json(): `kvlab frontier` on the console.
// Formatting only: every number comes from stats::Frontier or the
// provenance; the same inputs give the same bytes.
#pragma once

#include <string>

#include "report/reports.h"
#include "report/svg.h"
#include "stats/frontier.h"
#include "store/passage_sets.h"

namespace kvlab::report {

struct FrontierReportOptions {
  std::string file_stem = "FRONTIER";  // plots: <stem>_swa.svg, <stem>_csa.svg, ...
  // The command line quoted in the generated-file note.
  std::string command = "kvlab report frontier";
  // The experiment's passages with their texts (store::load_passage_texts):
  // word counts against seqlen say whether a text was repeated. Empty: the
  // names from the frontier only, repetition unknown.
  std::vector<store::PassageText> passages;
  // Every experiment of the database with its passages
  // (store::load_passage_sets): the report names those that ran on other
  // passages. Empty: no such note.
  std::vector<store::ExperimentPassageSet> passage_sets;
};

// Throws kvlab::Error when the frontier has no stream with points.
RenderedReport render_frontier(const stats::Frontier& f, const ReportProvenance& prov,
                               const FrontierReportOptions& opt = {});

// rel-MSE (log y) vs bits/dim of one stream: one series per codec variant
// (distinct colour and marker; the baseline in black squares), 95 % CI bars
// where the lower end is positive, the Gaussian and water-filling bounds as
// connected grey series at each recorded rate, and every codec again (grey
// hollow circles) at its entropy-coded rate where one was recorded.
svg::Plot frontier_plot(const stats::Frontier& f, const stats::FrontierStream& s);

// `kvlab frontier`: per stream the points and the matched-rate rows.
std::string frontier_text(const stats::Frontier& f);
// `kvlab frontier --json`: {"experiment", "baseline", "write_path",
// "n_passages", "rate_gap_tolerance_bits_per_dim", "passages": [{"name",
// "source"}], "streams": [{"stream", "points": [...], "matched": [...,
// "envelope": {...}]}], "warnings"}; summaries as {"n", "mean", "sd",
// "ci95_hw"}, absent values null.
std::string frontier_json(const stats::Frontier& f);

}  // namespace kvlab::report
