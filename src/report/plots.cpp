// Report plots; see plots.h.
#include "report/plots.h"

#include <algorithm>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "common/error.h"
#include "report/markdown.h"
#include "report/sections.h"

namespace kvlab::report::detail {

svg::Plot pareto_plot(const stats::StudySummary& s, const std::string& title,
                      const std::vector<std::string>& families) {
  svg::Plot plot;
  plot.title = title;
  plot.subtitle = fmt::format(
      "experiment {}, n = {} passages; bars: 95 % CI of the per-passage ratio; series offset by 3 px for legibility",
      s.experiment.name, s.n_passages);
  plot.x.label = "bits per vector";
  plot.y.label = "rel-MSE / FP8 rel-MSE (log scale)";
  plot.y.scale = svg::Scale::kLog;
  const std::vector<svg::Marker> markers = {svg::Marker::kCircle, svg::Marker::kTriangle,
                                            svg::Marker::kDiamond, svg::Marker::kCross};
  std::optional<double> fp8_bits;
  const std::vector<std::string>& fams = families.empty() ? s.families : families;
  for (std::size_t si = 0; si < s.streams.size(); ++si) {
    const std::string& stream = s.streams[si];
    for (std::size_t fi = 0; fi < fams.size(); ++fi) {
      const std::string& fam = fams[fi];
      svg::Series se;
      std::string fam_up = fam;
      for (char& c : fam_up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      se.name = stream_short(stream) + " " + fam_up;
      se.color = svg::palette(static_cast<int>(si));
      se.marker = markers[fi % markers.size()];
      se.filled = fi == 0;
      se.connect = true;
      for (const auto& c : s.cells) {
        if (c.stream != stream || c.family != fam || !c.ratio_vs_fp8) continue;
        svg::Point pt;
        pt.x = c.bits_per_vector;
        pt.y = c.ratio_vs_fp8->mean;
        if (c.ratio_vs_fp8->has_interval()) {
          pt.y_lo = *c.ratio_vs_fp8->lower();
          pt.y_hi = *c.ratio_vs_fp8->upper();
        }
        pt.tooltip = fmt::format("{} {}: {} bits, ratio {}", stream, c.codec, fmt_bits(c.bits_per_vector),
                                 fmt_ratio(*c.ratio_vs_fp8));
        se.points.push_back(pt);
        if (c.fp8_bits && !fp8_bits) fp8_bits = *c.fp8_bits;
      }
      if (!se.points.empty()) plot.series.push_back(std::move(se));
    }
  }
  KVLAB_CHECK(!plot.series.empty(),
              "experiment '{}' has no lattice codec with an FP8 baseline on the same passages; "
              "nothing to plot", s.experiment.name);
  if (fp8_bits) {
    svg::Series fp8;
    fp8.name = "FP8 per-64";
    fp8.color = "#000000";
    fp8.marker = svg::Marker::kSquare;
    fp8.dodge = false;  // the reference point sits at its true bits
    fp8.points.push_back({*fp8_bits, 1.0, std::nullopt, std::nullopt, "",
                          fmt::format("fp8_per64: {} bits, ratio 1 by definition", fmt_bits(*fp8_bits))});
    plot.series.push_back(std::move(fp8));
  }
  plot.hlines.push_back({1.0, "ratio 1 = FP8 error", "#555555", true});
  // Series at equal bits would hide each other's bars; a few pixels apart
  // (stated in the subtitle) keeps them readable.
  plot.dodge_px = 3;
  return plot;
}

svg::Plot passages_plot(const stats::StudySummary& s, const std::string& codec) {
  svg::Plot p;
  p.title = codec_label(codec) + " / FP8 rel-MSE ratio per passage";
  p.subtitle = fmt::format("experiment {}; below the dashed line the codec has the smaller error",
                           s.experiment.name);
  p.x.label = "passage";
  p.y.label = "rel-MSE ratio to FP8";
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
  const std::vector<svg::Marker> markers = {svg::Marker::kCircle, svg::Marker::kSquare,
                                            svg::Marker::kDiamond, svg::Marker::kTriangle};
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
    se.marker = markers[static_cast<std::size_t>(si) % markers.size()];
    for (const auto& pr : cell->passages) {
      se.points.push_back({static_cast<double>(index[pr.passage_id]), pr.ratio, std::nullopt,
                           std::nullopt, "",
                           fmt::format("{} {}: ratio {}", stream, pr.passage, fmt_fixed(pr.ratio, 4))});
    }
    p.series.push_back(std::move(se));
    ++si;
  }
  p.hlines.push_back({1.0, "ratio 1 = FP8 error", "#555555", true});
  p.dodge_px = 7;
  return p;
}

std::vector<RenderedFile> findings_plots(const stats::StudySummary& s, const std::string& codec,
                                         const std::string& compare, const std::string& stem) {
  std::vector<RenderedFile> files;
  // The findings' codec family first (filled markers), then the comparison's.
  std::vector<std::string> fams = {stats::parse_codec_spec(codec).family};
  if (!compare.empty()) fams.push_back(stats::parse_codec_spec(compare).family);
  for (const auto& f : s.families) {
    if (std::find(fams.begin(), fams.end(), f) == fams.end()) fams.push_back(f);
  }
  files.push_back({stem + "_pareto.svg",
                     svg::render(pareto_plot(s, "Bits per vector vs rel-MSE ratio to FP8", fams))});
  bool have_passages = false;
  for (const auto& stream : s.streams) {
    const auto* cell = s.find_cell(stream, codec);
    have_passages = have_passages || (cell && cell->ratio_vs_fp8 && !cell->passages.empty());
  }
  if (have_passages) files.push_back({stem + "_passages.svg", svg::render(passages_plot(s, codec))});
  return files;
}

std::vector<RenderedFile> max_usable_plots(const stats::StudySummary& s, const std::string& stem) {
  return {{stem + "_pareto.svg", svg::render(pareto_plot(s, "Rate and distortion of the Q sweep"))}};
}

}  // namespace kvlab::report::detail
