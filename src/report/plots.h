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

// The thresholds (A, B, C, ...) of the summary's best-Q answers, in the order it holds them.
std::vector<stats::Threshold> thresholds_of(const stats::StudySummary& s);

// Bits per vector (x) vs rel-MSE ratio to FP8 (y, log) with 95 % CI bars:
// one series per (stream, lattice family), the FP8 point and the ratio-1
// reference line. Each stream has its own marker shape and colour, each
// family its own fill (the first filled) and polyline dash. `families` selects the families and their order (the
// first gets filled markers); empty = all, in the summary's order.
svg::Plot pareto_plot(const stats::StudySummary& s, const std::string& title,
                      const std::vector<std::string>& families = {});

// `codec` / FP8 rel-MSE ratio per passage (x: passages in first-seen order),
// one series per stream with a ratio, and the ratio-1 reference line.
svg::Plot passages_plot(const stats::StudySummary& s, const std::string& codec);

// The findings report's Pareto plot: pareto_plot() of the findings' codec
// family first, then `compare`'s, then the rest, each point labelled with
// its Q (once per family, Q and bits).
svg::Plot findings_pareto_plot(const stats::StudySummary& s, const std::string& codec, const std::string& compare);

// The max-usable-CR report's plot, two panels: the whole sweep (log ratio)
// and a zoom on ratios 0.6 to 1.5 x the largest threshold (linear), both with
// the threshold lines (the one at 1.00 shares the FP8 line) and a ring on the
// recommended Q of every (stream, family, threshold) in the CI-safe view (the
// first view the summary has when it lacks that one); in the zoom the rings
// are labelled "SWA: A B" and the other points with their Q.
std::vector<svg::Plot> max_usable_panels(const stats::StudySummary& s);

// The findings report's plots: "<stem>_pareto.svg" (the findings' codec
// family first, then `compare`'s, then the rest) and "<stem>_passages.svg"
// when some stream of `codec` has per-passage ratios. `codec` and `compare`
// are canonical; `compare` may be empty.
std::vector<RenderedFile> findings_plots(const stats::StudySummary& s, const std::string& codec,
                                         const std::string& compare, const std::string& stem);

// The max-usable-CR report's plot: "<stem>_pareto.svg", the panels of
// max_usable_panels() stacked.
std::vector<RenderedFile> max_usable_plots(const stats::StudySummary& s, const std::string& stem);

}  // namespace kvlab::report::detail
