// Tests for src/report/svg.{h,cpp}: tick algorithms, and rendered documents
// parsed back with a small strict XML parser (well-formedness, element counts,
// coordinates inside the canvas, determinism, input validation).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/error.h"
#include "report/svg.h"
#include "testutil/testutil.h"

namespace kvlab::report::svg {
namespace {

// ---- a minimal strict XML parser (elements, attributes, text, entities) ----
struct Node {
  std::string name;
  std::map<std::string, std::string> attrs;
  std::vector<std::unique_ptr<Node>> children;
  std::string text;
};

class XmlParser {
 public:
  explicit XmlParser(const std::string& s) : s_(s) {}

  std::unique_ptr<Node> parse() {
    skip_ws();
    if (s_.compare(i_, 5, "<?xml") == 0) {
      const auto e = s_.find("?>", i_);
      if (e == std::string::npos) fail("unterminated XML declaration");
      i_ = e + 2;
    }
    skip_misc();
    auto root = element();
    skip_misc();
    if (i_ != s_.size()) fail("content after the root element");
    return root;
  }

 private:
  [[noreturn]] void fail(const std::string& why) {
    throw std::runtime_error("XML error at offset " + std::to_string(i_) + ": " + why);
  }
  void skip_ws() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  void skip_misc() {
    for (;;) {
      skip_ws();
      if (s_.compare(i_, 4, "<!--") == 0) {
        const auto e = s_.find("-->", i_);
        if (e == std::string::npos) fail("unterminated comment");
        i_ = e + 3;
      } else {
        return;
      }
    }
  }
  std::string name() {
    const std::size_t b = i_;
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '-' ||
                              s_[i_] == '_' || s_[i_] == ':' || s_[i_] == '.')) {
      ++i_;
    }
    if (b == i_) fail("expected a name");
    return s_.substr(b, i_ - b);
  }
  std::string decode(const std::string& raw) {
    std::string out;
    for (std::size_t k = 0; k < raw.size(); ++k) {
      if (raw[k] == '<') fail("'<' in text or attribute");
      if (raw[k] != '&') {
        out += raw[k];
        continue;
      }
      const auto e = raw.find(';', k);
      if (e == std::string::npos) fail("unterminated entity");
      const std::string ent = raw.substr(k + 1, e - k - 1);
      if (ent == "amp") out += '&';
      else if (ent == "lt") out += '<';
      else if (ent == "gt") out += '>';
      else if (ent == "quot") out += '"';
      else if (ent == "apos") out += '\'';
      else fail("unknown entity &" + ent + ";");
      k = e;
    }
    return out;
  }
  std::unique_ptr<Node> element() {
    if (i_ >= s_.size() || s_[i_] != '<') fail("expected '<'");
    ++i_;
    auto n = std::make_unique<Node>();
    n->name = name();
    for (;;) {
      skip_ws();
      if (i_ >= s_.size()) fail("unterminated start tag");
      if (s_.compare(i_, 2, "/>") == 0) {
        i_ += 2;
        return n;
      }
      if (s_[i_] == '>') {
        ++i_;
        break;
      }
      const std::string an = name();
      skip_ws();
      if (i_ >= s_.size() || s_[i_] != '=') fail("expected '=' after attribute " + an);
      ++i_;
      skip_ws();
      if (i_ >= s_.size() || s_[i_] != '"') fail("attribute value must be double-quoted");
      const auto e = s_.find('"', i_ + 1);
      if (e == std::string::npos) fail("unterminated attribute value");
      if (n->attrs.count(an)) fail("duplicate attribute " + an);
      n->attrs[an] = decode(s_.substr(i_ + 1, e - i_ - 1));
      i_ = e + 1;
    }
    for (;;) {
      const auto lt = s_.find('<', i_);
      if (lt == std::string::npos) fail("unterminated element " + n->name);
      n->text += decode(s_.substr(i_, lt - i_));
      i_ = lt;
      if (s_.compare(i_, 4, "<!--") == 0) {
        skip_misc();
        continue;
      }
      if (s_.compare(i_, 2, "</") == 0) {
        i_ += 2;
        const std::string close = name();
        if (close != n->name) fail("</" + close + "> closes <" + n->name + ">");
        skip_ws();
        if (i_ >= s_.size() || s_[i_] != '>') fail("bad end tag");
        ++i_;
        return n;
      }
      n->children.push_back(element());
    }
  }

  const std::string& s_;
  std::size_t i_ = 0;
};

void walk(const Node& n, const std::function<void(const Node&)>& f) {
  f(n);
  for (const auto& c : n.children) walk(*c, f);
}

int count_class(const Node& root, const std::string& cls) {
  int k = 0;
  walk(root, [&](const Node& n) {
    auto it = n.attrs.find("class");
    if (it != n.attrs.end() && it->second == cls) ++k;
  });
  return k;
}

// ---- fixtures ----
Plot pareto_like() {
  Plot p;
  p.title = "Bits per vector vs rel-MSE ratio to FP8";
  p.subtitle = "E8, n = 8 passages, 95 % CI";
  p.x.label = "bits per vector";
  p.y.label = "rel-MSE / FP8 rel-MSE";
  p.y.scale = Scale::kLog;
  const std::vector<std::string> names = {"sliding_window_kv", "csa_pool_kv_ratio4",
                                          "hca_pool_kv_ratio128"};
  const double base[3] = {0.79, 0.90, 1.04};
  for (int s = 0; s < 3; ++s) {
    Series se;
    se.name = names[s];
    se.color = palette(s);
    se.connect = true;
    for (double bits : {2336.0, 3296.0}) {
      Point pt;
      pt.x = bits;
      pt.y = bits == 3296.0 ? base[s] : base[s] * 14.5;
      pt.y_lo = pt.y * 0.95;
      pt.y_hi = pt.y * 1.05;
      pt.label = bits == 3296.0 ? "Q=38" : "Q=10";
      pt.tooltip = names[s] + " & more";
      se.points.push_back(pt);
    }
    p.series.push_back(se);
  }
  Series fp8;
  fp8.name = "fp8_per64";
  fp8.color = "#000000";
  fp8.marker = Marker::kSquare;
  fp8.points.push_back({4224, 1.0, std::nullopt, std::nullopt, "", ""});
  p.series.push_back(fp8);
  p.hlines.push_back({1.0, "FP8 (ratio 1)", "#555555", true});
  return p;
}

TEST(ReportSvgTicks, LinearNiceNumbers) {
  EXPECT_EQ(nice_ticks_linear(0, 1, 6), (std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1.0}));
  EXPECT_EQ(nice_ticks_linear(2000, 4500, 6),
            (std::vector<double>{2000, 2500, 3000, 3500, 4000, 4500}));
  // Ticks stay within the range and are exact decimal values (no 0.30000000000000004).
  const auto t = nice_ticks_linear(0.13, 0.57, 5);
  EXPECT_EQ(t, (std::vector<double>{0.2, 0.3, 0.4, 0.5}));
  EXPECT_EQ(tick_label(t[1]), "0.3");
  const auto r = nice_range_linear(2102, 4426);
  EXPECT_EQ(r.first, 2000);
  EXPECT_EQ(r.second, 4500);
}

TEST(ReportSvgTicks, LogTicks) {
  EXPECT_EQ(nice_ticks_log(0.7, 30), (std::vector<double>{1, 2, 5, 10, 20}));
  EXPECT_EQ(nice_ticks_log(0.15, 17), (std::vector<double>{0.2, 0.5, 1, 2, 5, 10}));
  EXPECT_EQ(nice_ticks_log(1e-6, 1e-2), (std::vector<double>{1e-6, 1e-5, 1e-4, 1e-3, 1e-2}));
  // Less than a decade: linear nice ticks.
  EXPECT_EQ(nice_ticks_log(0.75, 1.1), (std::vector<double>{0.8, 0.9, 1.0, 1.1}));
  EXPECT_EQ(tick_label(1e-5), "1e-05");
  EXPECT_EQ(tick_label(4500), "4500");
}

TEST(ReportSvg, WellFormedWithExpectedElements) {
  const Plot p = pareto_like();
  const std::string svg = render(p);
  std::unique_ptr<Node> root;
  ASSERT_NO_THROW(root = XmlParser(svg).parse()) << svg;
  EXPECT_EQ(root->name, "svg");
  EXPECT_EQ(root->attrs.at("xmlns"), "http://www.w3.org/2000/svg");
  EXPECT_EQ(root->attrs.at("width"), "780");
  // 3 streams x 2 points + the FP8 point; bars only where intervals were given.
  EXPECT_EQ(count_class(*root, "point"), 7);
  EXPECT_EQ(count_class(*root, "errorbar"), 6);
  EXPECT_EQ(count_class(*root, "refline"), 1);
  EXPECT_EQ(count_class(*root, "legend-entry"), 4);
  EXPECT_EQ(count_class(*root, "line"), 3);
  EXPECT_EQ(count_class(*root, "pointlabel"), 6);
  // Escaping: the tooltip's '&' survives the round trip.
  bool found_tooltip = false;
  walk(*root, [&](const Node& n) {
    if (n.name == "title" && n.text == "hca_pool_kv_ratio128 & more") found_tooltip = true;
  });
  EXPECT_TRUE(found_tooltip);
}

TEST(ReportSvg, MarkersInsideCanvasAndOrderedByValue) {
  const Plot p = pareto_like();
  auto root = XmlParser(render(p)).parse();
  std::vector<std::pair<double, double>> centres;
  walk(*root, [&](const Node& n) {
    auto it = n.attrs.find("class");
    if (it == n.attrs.end() || it->second != "point") return;
    if (n.name == "circle") {
      centres.emplace_back(std::stod(n.attrs.at("cx")), std::stod(n.attrs.at("cy")));
    } else if (n.name == "rect") {
      centres.emplace_back(std::stod(n.attrs.at("x")) + 4, std::stod(n.attrs.at("y")) + 4);
    }
  });
  ASSERT_EQ(centres.size(), 7u);
  for (const auto& [x, y] : centres) {
    EXPECT_GT(x, 0);
    EXPECT_LT(x, 780);
    EXPECT_GT(y, 0);
    EXPECT_LT(y, 480);
  }
  // Within one series (order: Q=10 point, Q=38 point): more bits -> further right;
  // a smaller ratio -> lower on the page (larger y in SVG coordinates).
  EXPECT_LT(centres[0].first, centres[1].first);
  EXPECT_LT(centres[0].second, centres[1].second);
  // The FP8 point (4224 bits, ratio 1) is right of every lattice point.
  for (int i = 0; i < 6; ++i) EXPECT_LT(centres[i].first, centres[6].first);
  // Log axis: equal ratios map to equal distances. SWA Q=38 (0.79) vs CSA (0.90)
  // and their Q=10 points (x 14.5) are separated by the same pixel offset.
  EXPECT_NEAR(centres[2].second - centres[0].second, centres[3].second - centres[1].second, 0.02);
}

TEST(ReportSvg, DeterministicBytes) {
  EXPECT_EQ(render(pareto_like()), render(pareto_like()));
}

TEST(ReportSvg, DodgeSeparatesEqualX) {
  Plot p;
  p.title = "per passage";
  p.x.ticks = {{0, "p0"}, {1, "p1"}};
  for (int s = 0; s < 2; ++s) {
    Series se;
    se.name = "s" + std::to_string(s);
    se.points = {{0, 1.0, std::nullopt, std::nullopt, "", ""}};
    p.series.push_back(se);
  }
  Series fixed;
  fixed.name = "fixed";
  fixed.dodge = false;
  fixed.points = {{0, 1.0, std::nullopt, std::nullopt, "", ""}};
  p.series.push_back(fixed);
  p.dodge_px = 10;
  auto root = XmlParser(render(p)).parse();
  std::vector<double> xs;
  walk(*root, [&](const Node& n) {
    if (n.attrs.count("class") && n.attrs.at("class") == "point") xs.push_back(std::stod(n.attrs.at("cx")));
  });
  ASSERT_EQ(xs.size(), 3u);
  EXPECT_NEAR(xs[1] - xs[0], 10.0, 1e-9);
  // The two dodged series sit symmetrically around the true x; the fixed one on it.
  EXPECT_NEAR((xs[0] + xs[1]) / 2, xs[2], 1e-9);
  // Categorical tick labels are drawn.
  int labels = 0;
  walk(*root, [&](const Node& n) {
    if (n.name == "text" && (n.text == "p0" || n.text == "p1")) ++labels;
  });
  EXPECT_EQ(labels, 2);
}

// Dodging never moves a point that is alone at its x, however many series
// the plot has (a per-series offset would push the outer series' points by
// (n-1)/2 steps and misplace their rate), and spreads only the points that
// share an x value.
TEST(ReportSvg, DodgeMovesOnlyPointsThatShareAnX) {
  Plot p;
  p.title = "many series";
  p.x.min = 0;
  p.x.max = 100;
  for (int s = 0; s < 9; ++s) {
    Series se;
    se.name = "s" + std::to_string(s);
    // Each series has one point alone at its own x, and one at the shared x = 50.
    se.points = {{10.0 + s, 1.0, std::nullopt, std::nullopt, "", ""}, {50, 1.0, std::nullopt, std::nullopt, "", ""}};
    p.series.push_back(se);
  }
  p.dodge_px = 3;
  Plot undodged = p;
  undodged.dodge_px = 0;
  auto xs_of = [](const Plot& plot) {
    auto root = XmlParser(render(plot)).parse();
    std::vector<double> xs;
    walk(*root, [&](const Node& n) {
      if (n.attrs.count("class") && n.attrs.at("class") == "point") xs.push_back(std::stod(n.attrs.at("cx")));
    });
    return xs;
  };
  const auto xs = xs_of(p), x0 = xs_of(undodged);
  ASSERT_EQ(xs.size(), 18u);
  ASSERT_EQ(x0.size(), 18u);
  std::vector<double> shared;
  for (std::size_t i = 0; i < xs.size(); i += 2) {
    EXPECT_NEAR(xs[i], x0[i], 1e-9) << "lone point of series " << i / 2 << " moved";
    shared.push_back(xs[i + 1] - x0[i + 1]);
  }
  // The 9 points at x = 50: 3 px apart, symmetric around the true x.
  for (std::size_t k = 0; k < shared.size(); ++k) EXPECT_NEAR(shared[k], 3.0 * (static_cast<double>(k) - 4), 1e-9);
}

TEST(ReportSvg, RejectsUndrawableData) {
  Plot p = pareto_like();
  p.series[0].points[0].y = -1;  // negative on a log axis
  p.series[0].points[0].y_lo.reset();
  p.series[0].points[0].y_hi.reset();
  try {
    render(p);
    FAIL() << "expected kvlab::Error";
  } catch (const kvlab::Error& e) {
    EXPECT_NE(std::string(e.what()).find("logarithmic"), std::string::npos) << e.what();
  }
  Plot q = pareto_like();
  q.series[1].points[1].x = std::nan("");
  EXPECT_THROW(render(q), kvlab::Error);
  Plot r = pareto_like();
  r.series[1].points[1].y_lo = r.series[1].points[1].y * 2;  // bar not containing y
  EXPECT_THROW(render(r), kvlab::Error);
  Plot e;
  e.title = "empty";
  EXPECT_THROW(render(e), kvlab::Error);
}

TEST(ReportSvg, ParserRejectsBrokenXml) {
  // The checker used above must be able to fail.
  EXPECT_THROW(XmlParser("<svg><g></svg>").parse(), std::runtime_error);
  EXPECT_THROW(XmlParser("<svg a=\"1&x\"/>").parse(), std::runtime_error);
  EXPECT_THROW(XmlParser("<svg a='1'/>").parse(), std::runtime_error);
  EXPECT_NO_THROW(XmlParser("<?xml version=\"1.0\"?>\n<svg a=\"&amp;\"><g/>t</svg>\n").parse());
}

}  // namespace
}  // namespace kvlab::report::svg
