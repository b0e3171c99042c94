// The plots of the generated reports, built from a stats::StudySummary as
// svg::Plot values and rendered to SVG files (svg.h draws them). Internal to
// src/report/ (the public entry points are in reports.h).
#pragma once

#include <string>
#include <vector>

#include "report/reports.h"
#include "report/svg.h"
#include "stats/study.h"

namespace kvlab::report::detail {

// Bits per vector (x) vs rel-MSE ratio to FP8 (y, log) with 95 % CI bars:
// one series per (stream, lattice family), the FP8 point and the ratio-1
// reference line. `families` selects the families and their order (the
// first gets filled circles); empty = all, in the summary's order.
svg::Plot pareto_plot(const stats::StudySummary& s, const std::string& title,
                      const std::vector<std::string>& families = {});

// `codec` / FP8 rel-MSE ratio per passage (x: passages in first-seen order),
// one series per stream with a ratio, and the ratio-1 reference line.
svg::Plot passages_plot(const stats::StudySummary& s, const std::string& codec);

// The findings report's plots: "<stem>_pareto.svg" (the findings' codec
// family first, then `compare`'s, then the rest) and "<stem>_passages.svg"
// when some stream of `codec` has per-passage ratios. `codec` and `compare`
// are canonical; `compare` may be empty.
std::vector<RenderedFile> findings_plots(const stats::StudySummary& s, const std::string& codec,
                                         const std::string& compare, const std::string& stem);

// The max-usable-CR report's plot: "<stem>_pareto.svg".
std::vector<RenderedFile> max_usable_plots(const stats::StudySummary& s, const std::string& stem);

}  // namespace kvlab::report::detail
