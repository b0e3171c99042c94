// Plain-text (console) renderers of the query commands: `kvlab stats`,
// `kvlab best_q`, `kvlab best` and `kvlab status`. Each takes the structs
// that src/stats/ (or store/runs.h for status) computed and returns the
// text the command prints; nothing here computes a statistic.
//
// Not here: JSON (report/stats_json.h), markdown reports (reports.h),
// option parsing (src/cli/).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "stats/best.h"
#include "stats/study.h"
#include "store/decisions.h"
#include "store/runs.h"

namespace kvlab::report {

// What `kvlab best_q` shows of a summary: one threshold and view, the
// families listed, and whether to add the suggestions.
struct BestQSelection {
  stats::Threshold threshold;
  stats::QView view = stats::QView::kPoint;
  std::vector<std::string> families;  // rate variants to show ("e8", "d4")
  bool suggest = false;
};

// The families to show: those named by --codec filters (their part before
// ':', the FP8 baseline left out), else every rate family of the summary.
std::vector<std::string> best_q_families(const stats::StudySummary& s, const std::vector<std::string>& codecs);
// True when some stream with a best_q row has no admissible Q in any family shown (exit code 3).
bool best_q_any_inadmissible(const stats::StudySummary& s, const BestQSelection& sel);
// One line describing a view, e.g. "CI-safe, paired (...)".
const char* view_text(stats::QView v);

// `kvlab stats`: per stream the cells (n, bits, CR, rel-MSE, cosine, ratio
// with CI95), every further recorded metric with its ratio, the
// layer-weighted ratios, the audits, warnings and notes.
std::string stats_text(const stats::StudySummary& s, bool per_passage);
// `kvlab best_q`: max usable Q per stream and family, the strategies and
// (sel.suggest) the Q values worth running.
std::string best_q_text(const stats::StudySummary& s, const BestQSelection& sel);
// `kvlab best`: the lowest-bit operating point per stream and layer weighted.
std::string best_text(const stats::BestResult& b);
// `kvlab run --until-resolved`: one line per threshold decision (stream,
// codec, threshold, ratio ± CI95, Holm-adjusted p, verdict, passages needed).
std::string decisions_text(const std::vector<store::DecisionRow>& rows);
// `kvlab status`: counts per experiment and state, the rate over the last
// `window_s` seconds (recent: experiment id -> runs finished in it) and the ETA.
std::string status_text(const std::vector<store::StatusRow>& rows, const std::map<std::int64_t, std::int64_t>& recent,
                        double window_s, const std::string& db_path);

}  // namespace kvlab::report
