// Report plots; see plots.h.
#include "report/plots.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "common/error.h"
#include "report/markdown.h"
#include "report/sections.h"

namespace kvlab::report::detail {

namespace {

// Every stream its own marker shape and colour, so series that sit on top of
// each other stay apart; every family its own fill and line dash. The square
// is the baseline's (the reports say so) unless there are more than four streams.
const std::vector<svg::Marker> kStreamMarkers = {svg::Marker::kCircle, svg::Marker::kTriangle,
                                                 svg::Marker::kDiamond, svg::Marker::kCross,
                                                 svg::Marker::kSquare};
const std::vector<std::string> kFamilyDash = {"", "6 3", "2 2", "8 3 2 3"};

// The baseline's short name in plot text: "FP8" for the published stand-in
// (and when the summary names none), else the codec's label ("V4 native").
std::string base_short(const stats::StudySummary& s) {
  return s.baseline.empty() || s.baseline == "fp8_per64" ? std::string("FP8") : codec_label(s.baseline);
}

std::string ratio_one(const stats::StudySummary& s) { return "ratio 1 = " + base_short(s) + " error"; }

// Ring labels keyed by (stream, codec): the points to highlight.
using Highlights = std::map<std::pair<std::string, std::string>, std::string>;

struct ParetoStyle {
  bool label_q = false;  // "Q=38" beside the first stream's point of each (family, Q, bits)
  Highlights highlights;
};

svg::Point pareto_point(const stats::CellStats& c) {
  svg::Point pt;
  pt.x = c.bits_per_vector;
  pt.y = c.ratio_vs_fp8->mean;
  if (c.ratio_vs_fp8->has_interval()) {
    pt.y_lo = *c.ratio_vs_fp8->lower();
    pt.y_hi = *c.ratio_vs_fp8->upper();
  }
  pt.tooltip = fmt::format("{} {}: {} bits, ratio {}", c.stream, c.codec, fmt_bits(c.bits_per_vector),
                           fmt_ratio(*c.ratio_vs_fp8));
  return pt;
}

// One series per (stream, family) with a point per swept codec, then the baseline point.
void add_pareto_series(svg::Plot& plot, const stats::StudySummary& s, const std::vector<std::string>& fams,
                       const ParetoStyle& style) {
  std::optional<double> fp8_bits;
  std::set<std::tuple<std::string, int, double>> q_labelled;
  for (std::size_t si = 0; si < s.streams.size(); ++si) {
    const std::string& stream = s.streams[si];
    for (std::size_t fi = 0; fi < fams.size(); ++fi) {
      const std::string& fam = fams[fi];
      svg::Series se;
      se.name = stream_short(stream) + " " + family_label(fam);
      se.color = svg::palette(static_cast<int>(si));
      se.marker = kStreamMarkers[si % kStreamMarkers.size()];
      se.filled = fi == 0;
      se.line_dash = kFamilyDash[fi % kFamilyDash.size()];
      se.label_color = "#333333";
      se.connect = true;
      for (const auto& c : s.cells) {
        if (c.stream != stream || c.family != fam || !c.ratio_vs_fp8) continue;
        svg::Point pt = pareto_point(c);
        auto h = style.highlights.find({stream, c.codec});
        if (h != style.highlights.end()) {
          pt.highlight = true;
          pt.label = h->second;
        } else if (style.label_q && c.q && q_labelled.insert({fam, *c.q, c.bits_per_vector}).second) {
          pt.label = fams.size() > 1 ? family_label(fam) + " " + rate_label(fam, *c.q) : rate_label(fam, *c.q);
        }
        se.points.push_back(pt);
        if (c.fp8_bits && !fp8_bits) fp8_bits = *c.fp8_bits;
      }
      if (!se.points.empty()) plot.series.push_back(std::move(se));
    }
  }
  KVLAB_CHECK(!plot.series.empty(),
              "experiment '{}' has no lattice codec with a {} baseline on the same passages; "
              "nothing to plot", s.experiment.name, s.baseline.empty() ? std::string("fp8_per64") : s.baseline);
  // Fixed-rate formats other than the baseline (fp8_per64 against
  // v4_native): one open square per stream at their own bits.
  std::vector<std::string> fixed;
  for (const auto& c : s.cells) {
    if (!c.q && c.codec != s.baseline && c.ratio_vs_fp8 &&
        std::find(fixed.begin(), fixed.end(), c.codec) == fixed.end())
      fixed.push_back(c.codec);
  }
  for (const auto& codec : fixed) {
    svg::Series se;
    se.name = codec_label(codec) + " (one point per stream)";
    se.color = "#777777";
    se.marker = svg::Marker::kSquare;
    se.filled = false;
    for (const auto& c : s.cells) {
      if (c.codec == codec && c.ratio_vs_fp8) se.points.push_back(pareto_point(c));
    }
    plot.series.push_back(std::move(se));
  }
  if (fp8_bits) {
    svg::Series fp8;
    const std::string base = s.baseline.empty() ? std::string("fp8_per64") : s.baseline;
    fp8.name = codec_label(base);
    fp8.color = "#000000";
    fp8.marker = svg::Marker::kSquare;
    fp8.dodge = false;  // the reference point sits at its true bits
    fp8.points.push_back({*fp8_bits, 1.0, std::nullopt, std::nullopt, "",
                          fmt::format("{}: {} bits, ratio 1 by definition", base, fmt_bits(*fp8_bits)), false});
    plot.series.push_back(std::move(fp8));
  }
}

svg::Plot pareto_base(const stats::StudySummary& s, const std::string& title, const std::vector<std::string>& families,
                      const ParetoStyle& style) {
  svg::Plot plot;
  plot.title = title;
  plot.subtitle = fmt::format(
      "experiment {}, n = {} passages; bars: 95 % CI of the per-passage ratio; points at equal bits set 3 px apart for legibility",
      s.experiment.name, s.n_passages);
  plot.x.label = "bits per vector";
  plot.y.label = "rel-MSE / " + base_short(s) + " rel-MSE (log scale)";
  plot.y.scale = svg::Scale::kLog;
  add_pareto_series(plot, s, families.empty() ? s.families : families, style);
  // Series at equal bits would hide each other's bars; a few pixels apart
  // (stated in the subtitle) keeps them readable.
  plot.dodge_px = 3;
  return plot;
}

// The view whose recommended Q the plot marks: the paired CI-safe view (the
// one MAX_USABLE_CR's headline answers in) when the summary has it, else
// CI-safe (published), else the first view it has.
std::optional<stats::QView> marked_view(const stats::StudySummary& s) {
  std::optional<stats::QView> v;
  for (const stats::QView want : {stats::QView::kPairedCiSafe, stats::QView::kCiSafe}) {
    for (const auto& b : s.best_q) {
      if (b.view == want) return b.view;
    }
  }
  for (const auto& b : s.best_q) {
    if (!v) v = b.view;
  }
  return v;
}

std::string view_name(stats::QView v) {
  switch (v) {
    case stats::QView::kPoint: return "point";
    case stats::QView::kCiSafe: return "CI-safe";
    case stats::QView::kPairedCiSafe: return "paired CI-safe";
  }
  return "?";
}

// The recommended Q of every (stream, family, threshold) in `view`, as ring
// labels "SWA Q=38: A B" on the chosen (stream, codec) points.
Highlights chosen_points(const stats::StudySummary& s, stats::QView view) {
  Highlights h;
  for (const auto& stream : s.streams) {
    for (const auto& fam : s.families) {
      for (const auto& th : thresholds_of(s)) {
        const auto* b = s.find_best_q(stream, fam, th.name, view);
        if (!b || !b->admissible || !b->q_min) continue;
        const int q = b->q_recommended.value_or(*b->q_min);
        for (const auto& c : s.cells) {
          if (c.stream != stream || c.family != fam || c.q != q) continue;
          auto& label = h[{stream, c.codec}];
          label += (label.empty() ? fmt::format("{} Q={}:", stream_short(stream), q) : "") + " " + th.name;
        }
      }
    }
  }
  return h;
}

// Threshold lines: the one at 1.00 shares the baseline (ratio 1) line. `labels`: written
// on the lines (else only in the legend).
void add_threshold_lines(svg::Plot& plot, const stats::StudySummary& s, const std::vector<stats::Threshold>& ths,
                         bool labels) {
  const std::string base = base_short(s);
  static const std::vector<std::string> kColors = {"#7B3294", "#A6611A", "#1B7837", "#555555"};
  std::string at_one;
  std::size_t ci = 0;
  for (const auto& th : ths) {
    if (std::fabs(th.factor - 1.0) < 1e-12) {
      at_one += (at_one.empty() ? "" : ", ") + th.name;
      continue;
    }
    const std::string text = fmt::format("threshold {} = {}x {}", th.name, fmt_fixed(th.factor, 2), base);
    plot.hlines.push_back({th.factor, labels ? text : "", kColors[ci++ % kColors.size()], true, text});
  }
  const std::string one =
      at_one.empty() ? "ratio 1 = " + base + " error" : "ratio 1 = " + base + " = threshold " + at_one;
  plot.hlines.insert(plot.hlines.begin(), svg::RefLine{1.0, labels ? one : "", "#555555", true, one});
}

// The zoom panel's ranges: ratios from 0.5 to 1.15 x the largest threshold
// (linear), bits of the lattice points inside that band plus a margin (FP8
// stays outside unless it falls in it: its error is the ratio-1 line).
void zoom_ranges(svg::Plot& zoom, const stats::StudySummary& s, const std::vector<stats::Threshold>& ths) {
  double top = 1.0;
  for (const auto& th : ths) top = std::max(top, th.factor);
  const double ylo = 0.5, yhi = 1.15 * top;
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo;
  for (const auto& c : s.cells) {
    if (!c.q || !c.ratio_vs_fp8 || c.ratio_vs_fp8->mean < ylo || c.ratio_vs_fp8->mean > yhi) continue;
    xlo = std::min(xlo, c.bits_per_vector);
    xhi = std::max(xhi, c.bits_per_vector);
  }
  zoom.y.scale = svg::Scale::kLinear;
  zoom.y.min = ylo;
  zoom.y.max = yhi;
  if (xlo <= xhi) {
    const double pad = std::max(0.08 * (xhi - xlo), 30.0);
    zoom.x.min = xlo - pad;
    zoom.x.max = xhi + pad;
  }
}

}  // namespace

std::vector<stats::Threshold> thresholds_of(const stats::StudySummary& s) {
  std::vector<stats::Threshold> out;
  for (const auto& b : s.best_q) {
    if (std::none_of(out.begin(), out.end(), [&](const auto& t) { return t.name == b.threshold.name; })) {
      out.push_back(b.threshold);
    }
  }
  return out;
}

svg::Plot pareto_plot(const stats::StudySummary& s, const std::string& title,
                      const std::vector<std::string>& families) {
  svg::Plot plot = pareto_base(s, title, families, {});
  plot.hlines.push_back({1.0, ratio_one(s), "#555555", true, ""});
  return plot;
}

svg::Plot passages_plot(const stats::StudySummary& s, const std::string& codec) {
  svg::Plot p;
  p.title = codec_label(codec) + " / " + base_short(s) + " rel-MSE ratio per passage";
  p.subtitle = fmt::format("experiment {}; below the dashed line the codec has the smaller error",
                           s.experiment.name);
  p.x.label = "passage";
  p.y.label = "rel-MSE ratio to " + base_short(s);
  std::map<std::int64_t, int> index;
  std::vector<std::pair<std::int64_t, std::string>> order;
  for (const auto& stream : s.streams) {
    const auto* cell = s.find_cell(stream, codec);
    if (!cell || !cell->ratio_vs_fp8) continue;
    for (const auto& pr : cell->passages) {
      if (!index.count(pr.passage_id)) {
        index[pr.passage_id] = static_cast<int>(order.size());
        order.emplace_back(pr.passage_id, pr.passage);
      }
    }
  }
  for (std::size_t i = 0; i < order.size(); ++i) {
    p.x.ticks.emplace_back(static_cast<double>(i), order[i].second);
  }
  int si = 0;
  for (const auto& stream : s.streams) {
    const auto* cell = s.find_cell(stream, codec);
    if (!cell || !cell->ratio_vs_fp8) {
      ++si;
      continue;
    }
    svg::Series se;
    se.name = stream_short(stream);
    se.color = svg::palette(si);
    se.marker = kStreamMarkers[static_cast<std::size_t>(si) % kStreamMarkers.size()];
    for (const auto& pr : cell->passages) {
      se.points.push_back({static_cast<double>(index[pr.passage_id]), pr.ratio, std::nullopt, std::nullopt, "",
                           fmt::format("{} {}: ratio {}", stream, pr.passage, fmt_fixed(pr.ratio, 4)), false});
    }
    p.series.push_back(std::move(se));
    ++si;
  }
  p.hlines.push_back({1.0, ratio_one(s), "#555555", true, ""});
  p.dodge_px = 7;
  return p;
}

svg::Plot findings_pareto_plot(const stats::StudySummary& s, const std::string& codec, const std::string& compare) {
  // The findings' codec family first (filled markers), then the comparison's.
  std::vector<std::string> fams = {stats::parse_codec_spec(codec).family};
  if (!compare.empty()) fams.push_back(stats::parse_codec_spec(compare).family);
  for (const auto& f : s.families) {
    if (std::find(fams.begin(), fams.end(), f) == fams.end()) fams.push_back(f);
  }
  ParetoStyle style;
  style.label_q = true;
  svg::Plot plot = pareto_base(s, "Bits per vector vs rel-MSE ratio to " + base_short(s), fams, style);
  plot.subtitle += "; labels: Q of a lattice, bits (b) of a scalar codec";
  plot.hlines.push_back({1.0, ratio_one(s), "#555555", true, ""});
  return plot;
}

std::vector<svg::Plot> max_usable_panels(const stats::StudySummary& s) {
  const auto ths = thresholds_of(s);
  const auto view = marked_view(s);
  ParetoStyle style;
  if (view) style.highlights = chosen_points(s, *view);
  svg::Plot full = pareto_base(s, "Rate and distortion of the Q sweep", {}, style);
  for (auto& se : full.series) {
    for (auto& p : se.points) p.label.clear();  // the zoom below names the chosen points
  }
  add_threshold_lines(full, s, ths, false);
  if (view) full.highlight_legend = fmt::format("recommended Q ({})", view_name(*view));
  full.height = 440;

  style.label_q = true;
  svg::Plot zoom = pareto_base(s, "Zoom: ratios near 1 (linear scale)", {}, style);
  zoom.subtitle = fmt::format(
      "{}other labels: Q; points at equal bits set 8 px apart; legend above",
      view ? fmt::format("rings: recommended Q per stream in the {} view, labelled with the thresholds it meets; ",
                         view_name(*view))
           : "");
  zoom.y.label = "rel-MSE / " + base_short(s) + " rel-MSE";
  zoom.dodge_px = 8;
  zoom.legend = false;
  add_threshold_lines(zoom, s, ths, true);
  zoom_ranges(zoom, s, ths);
  zoom.height = 520;
  return {full, zoom};
}

std::vector<RenderedFile> findings_plots(const stats::StudySummary& s, const std::string& codec,
                                         const std::string& compare, const std::string& stem) {
  std::vector<RenderedFile> files;
  files.push_back({stem + "_pareto.svg", svg::render(findings_pareto_plot(s, codec, compare))});
  bool have_passages = false;
  for (const auto& stream : s.streams) {
    const auto* cell = s.find_cell(stream, codec);
    have_passages = have_passages || (cell && cell->ratio_vs_fp8 && !cell->passages.empty());
  }
  if (have_passages) files.push_back({stem + "_passages.svg", svg::render(passages_plot(s, codec))});
  return files;
}

std::vector<RenderedFile> max_usable_plots(const stats::StudySummary& s, const std::string& stem) {
  return {{stem + "_pareto.svg", svg::render_panels(max_usable_panels(s))}};
}

}  // namespace kvlab::report::detail
