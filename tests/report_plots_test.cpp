// The report plots (src/report/plots.{h,cpp}) and the text layout of
// src/report/svg.cpp they rely on: x tick labels that would touch are turned
// (and thinned), point and reference-line labels never overlap each other
// by their estimated extents (svg::text_width), each stream's series has its
// own marker shape and colour, the max-usable-CR plot has threshold lines,
// rings on the recommended Q, a legend naming all of them and a zoom panel
// near ratio 1, and the findings' Pareto points carry their Q.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "report/plots.h"
#include "report/sections.h"
#include "report/svg.h"
#include "stats/study.h"
#include "testutil/testutil.h"

namespace kvlab::report::detail {
namespace {

constexpr auto& count = testutil::count_occurrences;

struct Text {
  std::string cls, anchor, content;
  double x = 0, y = 0, font = 12, angle = 0;
};

// Every <text class=...> element (attribute order as svg.cpp writes it).
std::vector<Text> texts(const std::string& svg, const std::string& cls) {
  static const std::regex re(
      R"re(<text class="(\w+)" x="([-\d.]+)" y="([-\d.]+)" text-anchor="(\w+)"(?: transform="rotate\(-([\d.]+) [-\d.]+ [-\d.]+\)")?(?: font-size="([\d.]+)")?[^>]*>([^<]*)</text>)re");
  std::vector<Text> out;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it) {
    const auto& m = *it;
    if (m[1] != cls) continue;
    Text t;
    t.cls = m[1];
    t.x = std::stod(m[2]);
    t.y = std::stod(m[3]);
    t.anchor = m[4];
    if (m[5].matched) t.angle = std::stod(m[5]);
    t.font = m[6].matched ? std::stod(m[6]) : 11;  // tick labels inherit the group's 11 px
    t.content = m[7];
    out.push_back(t);
  }
  return out;
}

struct Box {
  double x0, y0, x1, y1;
};

Box box_of(const Text& t) {
  const double w = svg::text_width(t.content, t.font);
  const double x0 = t.anchor == "start" ? t.x : t.anchor == "end" ? t.x - w : t.x - w / 2;
  return {x0, t.y - 0.76 * t.font, x0 + w, t.y + 0.24 * t.font};
}

bool overlap(const Box& a, const Box& b) { return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1; }

// No two labels of `cls` (level text) overlap, and each lies inside the frame.
void expect_labels_apart(const std::string& svg, const std::string& cls) {
  const auto ts = texts(svg, cls);
  static const std::regex frame_re(R"re(<rect class="frame" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)")re");
  std::smatch fm;
  ASSERT_TRUE(std::regex_search(svg, fm, frame_re));
  const Box frame{std::stod(fm[1]), std::stod(fm[2]), std::stod(fm[1]) + std::stod(fm[3]),
                  std::stod(fm[2]) + std::stod(fm[4])};
  for (std::size_t i = 0; i < ts.size(); ++i) {
    const Box a = box_of(ts[i]);
    EXPECT_TRUE(a.x0 >= frame.x0 - 0.01 && a.x1 <= frame.x1 + 0.01 && a.y0 >= frame.y0 - 0.01 &&
                a.y1 <= frame.y1 + 0.01)
        << cls << " '" << ts[i].content << "' leaves the plot area";
    for (std::size_t j = i + 1; j < ts.size(); ++j) {
      EXPECT_FALSE(overlap(a, box_of(ts[j]))) << "'" << ts[i].content << "' overlaps '" << ts[j].content << "'";
    }
  }
}

// The panels of a render_panels() document, each from its <g class="panel">.
std::vector<std::string> panels(const std::string& svg) {
  std::vector<std::string> out;
  std::size_t at = svg.find("<g class=\"panel\"");
  while (at != std::string::npos) {
    const std::size_t next = svg.find("<g class=\"panel\"", at + 1);
    out.push_back(svg.substr(at, next == std::string::npos ? std::string::npos : next - at));
    at = next;
  }
  return out;
}

// Shape and colour of the first marker of every series: "circle #0072B2",
// "path3 #D55E00" (a path with 3 line segments: a diamond).
std::map<std::string, std::string> series_markers(const std::string& svg) {
  static const std::regex series_re(R"re(<g class="series" data-name="([^"]+)">)re");
  static const std::regex marker_re(R"re(<(circle|rect|path) class="point" ([^>]*)/>)re");
  static const std::regex stroke_re(R"re(stroke="(#[0-9A-Fa-f]{6})")re");
  std::map<std::string, std::string> out;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), series_re); it != std::sregex_iterator(); ++it) {
    const std::string rest = svg.substr(static_cast<std::size_t>(it->position()));
    std::smatch m, s;
    if (!std::regex_search(rest, m, marker_re)) continue;
    std::string shape = m[1];
    const std::string attrs = m[2];
    if (shape == "path") shape += std::to_string(std::count(attrs.begin(), attrs.end(), 'L'));
    const std::string a = attrs;
    std::regex_search(a, s, stroke_re);
    out[(*it)[1]] = shape + " " + s[1].str();
  }
  return out;
}

const std::vector<std::string> kStreams = {"sliding_window_kv", "csa_pool_kv_ratio4", "hca_pool_kv_ratio128"};

double lattice_bits(const std::string& fam, int q) {
  const double dims = fam == "e8" ? 8 : 4;
  return 512 / dims * std::ceil(dims * std::log2(2.0 * q + 1)) + 32;
}

// n passages of FP8 and every (family, Q) on the three streams: rel-MSE
// c_s / (2Q+1)^2 with Q = 38 of E8 at 0.80 / 0.90 / 1.04 x FP8, D4 1.5x E8.
// `base`: the baseline codec recorded (fp8_per64 at 4224 bits or v4_native at 4672).
stats::StudySummary summary(const std::vector<std::string>& fams, const std::vector<int>& qs, int passages = 4,
                            const std::string& base = "fp8_per64") {
  stats::ExperimentData d;
  d.info.id = 3;
  d.info.name = "plots_test";
  d.info.origin = "sweep";
  d.info.params_json = R"({"seqlen":2048})";
  const double target[3] = {0.80, 0.90, 1.04};
  std::int64_t id = 1;
  for (int p = 0; p < passages; ++p) {
    stats::PassageInfo pi;
    pi.id = 10 + p;
    pi.idx = p;
    pi.name = "a_rather_long_passage_name_" + std::to_string(p);
    pi.content_hash = std::string(64, static_cast<char>('a' + p));
    d.passages.push_back(pi);
    const double pf = 1.0 + 0.02 * ((p * 37) % 7 - 3);
    for (int s = 0; s < 3; ++s) {
      stats::RunResult r;
      r.passage_id = pi.id;
      r.stream = kStreams[s];
      r.dim = 512;
      r.run_id = id++;
      r.codec = base;
      r.bits_per_vector = base == "v4_native" ? 4672 : 4224;
      r.rel_mse = 1e-3 * pf * (1 + 0.1 * s);
      r.cos_sim = 0.999;
      d.results.push_back(r);
      const double fp8 = r.rel_mse;
      for (const auto& fam : fams) {
        for (int q : qs) {
          r.run_id = id++;
          r.codec = fam + ":q=" + std::to_string(q);
          r.q = q;
          r.bits_per_vector = lattice_bits(fam, q);
          r.rel_mse = target[s] * fp8 * 77 * 77 / ((2.0 * q + 1) * (2.0 * q + 1)) * (fam == "d4" ? 1.5 : 1.0) *
                      (1 + 0.01 * ((p * 13 + q) % 5 - 2));
          d.results.push_back(r);
        }
      }
      r.q.reset();
    }
  }
  d.info.counts.done = static_cast<std::int64_t>(d.results.size());
  return stats::summarize(d);
}

TEST(ReportPlotsText, LongCategoricalTickLabelsTurnAndNeverTouch) {
  for (int n : {4, 8, 32, 80}) {
    svg::Plot p;
    p.title = "t";
    svg::Series se;
    se.name = "s";
    for (int i = 0; i < n; ++i) {
      p.x.ticks.emplace_back(i, "passage_about_topic_" + std::to_string(i));
      se.points.push_back({static_cast<double>(i), 1.0 + 0.01 * i, std::nullopt, std::nullopt, "", "", false});
    }
    p.series.push_back(se);
    const std::string out = svg::render(p);
    const auto ts = texts(out, "xtick");
    ASSERT_GE(ts.size(), 2u) << n;
    // 4 names of 22 characters fit level; 8 or more do not: turned.
    if (n == 4) {
      EXPECT_EQ(ts[0].angle, 0);
      for (std::size_t i = 1; i < ts.size(); ++i) EXPECT_FALSE(overlap(box_of(ts[i - 1]), box_of(ts[i])));
      continue;
    }
    EXPECT_GT(ts[0].angle, 0) << n;
    const double a = ts[0].angle * M_PI / 180;
    static const std::regex h_re(R"re(<svg [^>]*height="(\d+)")re");
    std::smatch hm;
    ASSERT_TRUE(std::regex_search(out, hm, h_re));
    const double height = std::stod(hm[1]);
    for (std::size_t i = 0; i < ts.size(); ++i) {
      EXPECT_EQ(ts[i].angle, ts[0].angle);
      const double w = svg::text_width(ts[i].content, 11);
      EXPECT_GE(ts[i].x - w * std::cos(a), 0.0) << "label " << i << " leaves the page on the left";
      EXPECT_LE(ts[i].y + w * std::sin(a), height) << "label " << i << " leaves the page at the bottom";
      // Parallel turned labels: the distance between neighbouring baselines
      // is their x spacing times sin(angle); it must exceed a line.
      if (i > 0) EXPECT_GE((ts[i].x - ts[i - 1].x) * std::sin(a), 11.0) << n << " labels, pair " << i;
    }
    if (n == 80) EXPECT_LT(ts.size(), 80u);  // thinned: every k-th name only
    if (n <= 32) EXPECT_EQ(ts.size(), static_cast<std::size_t>(n));
  }
}

TEST(ReportPlotsText, ShortTickLabelsStayLevelAndApart) {
  svg::Plot p;
  p.title = "t";
  svg::Series se;
  se.name = "s";
  for (int i = 0; i < 8; ++i) {
    p.x.ticks.emplace_back(i, "p" + std::to_string(i));
    se.points.push_back({static_cast<double>(i), 1.0, std::nullopt, std::nullopt, "", "", false});
  }
  p.series.push_back(se);
  const auto ts = texts(svg::render(p), "xtick");
  ASSERT_EQ(ts.size(), 8u);
  for (std::size_t i = 0; i < ts.size(); ++i) {
    EXPECT_EQ(ts[i].angle, 0);
    if (i > 0) EXPECT_FALSE(overlap(box_of(ts[i - 1]), box_of(ts[i])));
  }
}

TEST(ReportPlotsText, CrowdedPointLabelsAreSpreadOrLeftOutNeverOverlapping) {
  svg::Plot p;
  p.title = "crowded";
  p.hlines.push_back({1.0, "reference line label", "#555555", true, ""});
  for (int s = 0; s < 3; ++s) {
    svg::Series se;
    se.name = "series " + std::to_string(s);
    for (int i = 0; i < 20; ++i) {
      se.points.push_back({100.0 + i, 1.0 + 0.002 * i + 0.001 * s, std::nullopt, std::nullopt,
                           "Q=" + std::to_string(10 + i), "", i % 5 == 0});
    }
    p.series.push_back(se);
  }
  const std::string out = svg::render(p);
  const auto labels = texts(out, "pointlabel");
  EXPECT_GE(labels.size(), 4u);   // some fit
  EXPECT_LT(labels.size(), 60u);  // not all 60 can
  EXPECT_EQ(texts(out, "reflabel").size(), 1u);
  expect_labels_apart(out, "pointlabel");
  // Reference and point labels together.
  for (auto& t : texts(out, "reflabel")) {
    for (auto& l : labels) EXPECT_FALSE(overlap(box_of(t), box_of(l))) << l.content;
  }
  EXPECT_EQ(count(out, "class=\"highlight\""), 12);
}

TEST(ReportPlotsText, TextWidthFollowsDejaVuAdvances) {
  EXPECT_NEAR(svg::text_width("0123456789", 10), 63.6, 0.05);  // digits: 0.636 em
  EXPECT_NEAR(svg::text_width("Q=38", 10), 7.87 + 8.38 + 6.36 + 6.36, 0.05);
  EXPECT_GT(svg::text_width("WWW", 12), svg::text_width("iii", 12) * 3);
  EXPECT_NEAR(svg::text_width("±", 10), 7.2, 1e-9);  // non-ASCII: one 0.72 em glyph per code point
  EXPECT_EQ(svg::text_width("", 12), 0.0);
}

TEST(ReportPlots, MaxUsableHasThresholdsRingsLegendAndAZoomNearOne) {
  const auto s = summary({"e8"}, {10, 20, 36, 38, 40, 44, 76});
  const auto files = max_usable_plots(s, "M");
  ASSERT_EQ(files.size(), 1u);
  const std::string& out = files[0].content;
  const auto ps = panels(out);
  ASSERT_EQ(ps.size(), 2u);
  // Legend (top panel): the three streams, FP8, the ring and the thresholds.
  for (const char* entry : {"SWA E8", "CSA E8", "HCA E8", "FP8 per-64", "recommended Q (paired CI-safe)",
                            "ratio 1 = FP8 = threshold A", "threshold B = 1.05x FP8", "threshold C = 1.20x FP8"}) {
    EXPECT_NE(ps[0].find(std::string(">") + entry + "</text></g>"), std::string::npos) << entry;
  }
  EXPECT_EQ(count(ps[0], "class=\"legend-entry\""), 8);
  EXPECT_EQ(count(ps[1], "class=\"legend-entry\""), 0);  // the zoom uses the legend above
  // Distinct marker shape and colour per stream.
  const auto markers = series_markers(ps[0]);
  std::set<std::string> shapes, colours;
  for (const char* name : {"SWA E8", "CSA E8", "HCA E8"}) {
    ASSERT_TRUE(markers.count(name)) << name;
    shapes.insert(markers.at(name).substr(0, markers.at(name).find(' ')));
    colours.insert(markers.at(name).substr(markers.at(name).find(' ') + 1));
  }
  EXPECT_EQ(shapes.size(), 3u);
  EXPECT_EQ(colours.size(), 3u);
  // Threshold lines (A shares the ratio-1 line) in both panels, labelled in the zoom.
  EXPECT_EQ(count(ps[0], "class=\"refline\""), 3);
  EXPECT_EQ(count(ps[1], "class=\"refline\""), 3);
  EXPECT_EQ(texts(ps[1], "reflabel").size(), 3u);
  // One ring per chosen (stream, codec) of the paired CI-safe view (the headline's), in both panels.
  std::set<std::pair<std::string, int>> chosen;
  for (const auto& b : s.best_q) {
    if (b.view == stats::QView::kPairedCiSafe && b.admissible && b.q_min)
      chosen.insert({b.stream, b.q_recommended.value_or(*b.q_min)});
  }
  ASSERT_FALSE(chosen.empty());
  EXPECT_EQ(count(ps[0], "class=\"highlight\""), static_cast<int>(chosen.size()));
  EXPECT_EQ(count(ps[1], "class=\"highlight\""), static_cast<int>(chosen.size()));
  // The zoom names every ring: "SWA Q=38: A B C".
  const auto zl = texts(ps[1], "pointlabel");
  int ring_labels = 0;
  for (const auto& t : zl) ring_labels += t.content.find(": ") != std::string::npos;
  EXPECT_EQ(ring_labels, static_cast<int>(chosen.size()));
  expect_labels_apart(ps[1], "pointlabel");
  expect_labels_apart(ps[1], "reflabel");
  // The zoom's y axis is linear around 1 (0.5 to 1.15 x the largest threshold).
  static const std::regex ytick_re(R"re(<text x="[\d.]+" y="[\d.]+" text-anchor="end">([\d.]+)</text>)re");
  std::vector<double> yt;
  for (auto it = std::sregex_iterator(ps[1].begin(), ps[1].end(), ytick_re); it != std::sregex_iterator(); ++it)
    yt.push_back(std::stod((*it)[1]));
  ASSERT_GE(yt.size(), 3u);
  EXPECT_GE(yt.front(), 0.5);
  EXPECT_LE(yt.back(), 1.2 * 1.15 + 1e-9);
}

TEST(ReportPlots, FindingsParetoPointsCarryTheirQOncePerFamilyAndBits) {
  const auto s = summary({"e8", "d4"}, {10, 38});
  const std::string out = svg::render(findings_pareto_plot(s, "e8:q=38", "d4:q=38"));
  const auto labels = texts(out, "pointlabel");
  std::multiset<std::string> seen;
  for (const auto& t : labels) seen.insert(t.content);
  for (const char* l : {"E8 Q=10", "E8 Q=38", "D4 Q=10", "D4 Q=38"}) EXPECT_EQ(seen.count(l), 1u) << l;
  expect_labels_apart(out, "pointlabel");
  // E8 filled, D4 open, same shape per stream.
  const auto markers = series_markers(out);
  EXPECT_EQ(markers.at("SWA E8"), markers.at("SWA D4"));
  EXPECT_NE(markers.at("SWA E8"), markers.at("CSA E8"));
  EXPECT_NE(out.find("stroke-dasharray=\"6 3\""), std::string::npos);  // D4's polyline dash
}

TEST(ReportPlots, PassagesPlotTurnsLongNamesAndKeepsOneTickPerPassage) {
  const auto s = summary({"e8"}, {38}, 8);
  const std::string out = svg::render(passages_plot(s, "e8:q=38"));
  const auto ts = texts(out, "xtick");
  ASSERT_EQ(ts.size(), 8u);
  EXPECT_EQ(ts[0].content, "a_rather_long_passage_name_0");
  EXPECT_GT(ts[0].angle, 0);
  EXPECT_EQ(count(out, "class=\"legend-entry\""), 3);
  EXPECT_EQ(svg::render(passages_plot(s, "e8:q=38")), out);  // deterministic
}

// Family labels read as the tables' codec labels without the rate, for
// every rate family (scalar families start at 2 bits, not 1).
TEST(ReportPlots, FamilyAndRateLabels) {
  EXPECT_EQ(family_label("e8"), "E8");
  EXPECT_EQ(family_label("int:block=64,scale=fp16"), "INT/64 fp16");
  EXPECT_EQ(family_label("hadamard_int:block=32,scale=ue8m0"), "H-INT/32 ue8m0");
  EXPECT_EQ(family_label("hadamard_lloyd"), "H-Lloyd");
  EXPECT_EQ(rate_label("e8", 38), "Q=38");
  EXPECT_EQ(rate_label("int:block=64,scale=fp16", 4), "4b");
}

// Every plot names the experiment's baseline: against v4_native nothing may
// say FP8 (titles, axis labels, reference lines, threshold lines, legend).
TEST(ReportPlots, PlotsNameTheExperimentsBaselineNotFp8) {
  const auto v4 = summary({"e8"}, {10, 38}, 4, "v4_native");
  ASSERT_EQ(v4.baseline, "v4_native");
  std::vector<std::string> outs = {svg::render(findings_pareto_plot(v4, "e8:q=38", "")),
                                   svg::render(passages_plot(v4, "e8:q=38")),
                                   svg::render(pareto_plot(v4, "t"))};
  for (const auto& p : max_usable_panels(v4)) outs.push_back(svg::render(p));
  for (const auto& out : outs) {
    EXPECT_EQ(out.find("FP8"), std::string::npos) << out.substr(0, 400);
    EXPECT_NE(out.find("V4 native"), std::string::npos);
  }
  EXPECT_NE(outs[0].find("ratio 1 = V4 native error"), std::string::npos);
  EXPECT_NE(outs[1].find("V4 native rel-MSE ratio per passage"), std::string::npos);
  // The published stand-in keeps its name.
  const auto fp8 = summary({"e8"}, {10, 38});
  const std::string f = svg::render(findings_pareto_plot(fp8, "e8:q=38", ""));
  EXPECT_NE(f.find("ratio 1 = FP8 error"), std::string::npos);
  EXPECT_NE(f.find("FP8 per-64"), std::string::npos);
}

}  // namespace
}  // namespace kvlab::report::detail
