// SVG scatter plots; see svg.h.
#include "report/svg.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numbers>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "common/error.h"

namespace kvlab::report::svg {
namespace {

constexpr double kGlyphWidth = 6.6;  // average width of a 12 px sans glyph
constexpr const char* kFont = "DejaVu Sans, Helvetica, Arial, sans-serif";

// Heckbert's nice number: 1, 2, 5 or 10 times a power of ten.
double nice_number(double x, bool round) {
  const double e = std::floor(std::log10(x));
  const double f = x / std::pow(10.0, e);
  double nf;
  if (round) {
    nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  } else {
    nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  }
  return nf * std::pow(10.0, e);
}

// Tick spacing: the nice number closest to (hi - lo) / (target - 1). (Heckbert
// first rounds the range itself up to a nice number, which can halve the
// tick count; rounding the step directly keeps it near `target`.)
double tick_step(double lo, double hi, int target) {
  return nice_number((hi - lo) / (target - 1), true);
}

// Removes float noise from k * step (0.30000000000000004 -> 0.3).
double clean(double v) {
  if (v == 0.0) return 0.0;
  return std::stod(fmt::format("{:.12g}", v));
}

std::string num0(double v) { return fmt::format("{:.0f}", v); }

std::string num(double v) {
  std::string s = fmt::format("{:.2f}", v);
  if (s == "-0.00") s = "0.00";
  return s;
}

void check_finite(double v, const std::string& what) {
  KVLAB_CHECK(std::isfinite(v), "plot: {} is {}; expected a finite number", what, v);
}

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return !(lo <= hi); }
};

// Final axis range [lo, hi] and its ticks.
struct AxisLayout {
  double lo = 0, hi = 1;
  Scale scale = Scale::kLinear;
  std::vector<std::pair<double, std::string>> ticks;
  double f(double v) const { return scale == Scale::kLog ? std::log10(v) : v; }
};

AxisLayout layout_axis(const Axis& axis, Range data, const std::string& name) {
  AxisLayout a;
  a.scale = axis.scale;
  for (const auto& [v, text] : axis.ticks) data.add(v);
  KVLAB_CHECK(!data.empty() || (axis.min && axis.max), "plot: nothing to draw on the {} axis", name);
  if (axis.scale == Scale::kLog) {
    KVLAB_CHECK(data.empty() || data.lo > 0, "plot: {} axis is logarithmic but the data include {}",
                name, data.lo);
    double l = std::log10(axis.min ? *axis.min : data.lo);
    double h = std::log10(axis.max ? *axis.max : data.hi);
    const double span = std::max(h - l, 0.1);
    if (!axis.min) l -= 0.06 * span;
    if (!axis.max) h += 0.06 * span;
    a.lo = std::pow(10.0, l);
    a.hi = std::pow(10.0, h);
  } else {
    double lo = axis.min ? *axis.min : data.lo;
    double hi = axis.max ? *axis.max : data.hi;
    if (!axis.ticks.empty()) {
      if (!axis.min) lo -= 0.5;
      if (!axis.max) hi += 0.5;
    } else {
      if (hi == lo) {
        const double d = lo == 0 ? 1.0 : std::fabs(lo) * 0.1;
        lo -= d;
        hi += d;
      }
      const double pad = 0.05 * (hi - lo);
      if (!axis.min) lo -= pad;
      if (!axis.max) hi += pad;
      if (!axis.min || !axis.max) {
        const auto [nlo, nhi] = nice_range_linear(lo, hi);
        if (!axis.min) lo = nlo;
        if (!axis.max) hi = nhi;
      }
    }
    a.lo = lo;
    a.hi = hi;
  }
  KVLAB_CHECK(a.lo < a.hi, "plot: {} axis range [{}, {}] is empty or inverted", name, a.lo, a.hi);
  if (!axis.ticks.empty()) {
    for (const auto& t : axis.ticks) {
      if (t.first >= a.lo && t.first <= a.hi) a.ticks.push_back(t);
    }
  } else {
    const auto vals =
        axis.scale == Scale::kLog ? nice_ticks_log(a.lo, a.hi) : nice_ticks_linear(a.lo, a.hi);
    for (double v : vals) a.ticks.emplace_back(v, tick_label(v));
  }
  return a;
}

void marker_svg(std::string& out, Marker m, double x, double y, const std::string& color,
                bool filled, const std::string& cls, const std::string& extra_attrs) {
  const std::string fill = filled ? color : "#ffffff";
  const std::string common = fmt::format(R"( fill="{}" stroke="{}" stroke-width="1.5"{})", fill,
                                         color, extra_attrs);
  const std::string c = cls.empty() ? "" : fmt::format(R"( class="{}")", cls);
  switch (m) {
    case Marker::kSquare:
      out += fmt::format(R"(<rect{} x="{}" y="{}" width="8.00" height="8.00"{}/>)", c, num(x - 4),
                         num(y - 4), common);
      break;
    case Marker::kDiamond:
      out += fmt::format(R"(<path{} d="M{} {}L{} {}L{} {}L{} {}Z"{}/>)", c, num(x), num(y - 5.5),
                         num(x + 5.5), num(y), num(x), num(y + 5.5), num(x - 5.5), num(y), common);
      break;
    case Marker::kTriangle:
      out += fmt::format(R"(<path{} d="M{} {}L{} {}L{} {}Z"{}/>)", c, num(x), num(y - 5.5),
                         num(x + 5), num(y + 4), num(x - 5), num(y + 4), common);
      break;
    case Marker::kCross:
      out += fmt::format(R"(<path{} d="M{} {}L{} {}M{} {}L{} {}" fill="none" stroke="{}" stroke-width="2"{}/>)",
                         c, num(x - 4.5), num(y - 4.5), num(x + 4.5), num(y + 4.5), num(x - 4.5),
                         num(y + 4.5), num(x + 4.5), num(y - 4.5), color, extra_attrs);
      break;
    case Marker::kCircle:
    default:
      out += fmt::format(R"(<circle{} cx="{}" cy="{}" r="4.00"{}/>)", c, num(x), num(y), common);
      break;
  }
}

}  // namespace

std::string xml_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char ch : s) {
    switch (ch) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += ch;
    }
  }
  return o;
}

std::string palette(int i) {
  static const char* kColors[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                  "#E69F00", "#56B4E9", "#000000", "#F0E442"};
  constexpr int n = sizeof(kColors) / sizeof(kColors[0]);
  return kColors[((i % n) + n) % n];
}

std::string tick_label(double v) { return fmt::format("{:g}", clean(v)); }

std::pair<double, double> nice_range_linear(double lo, double hi, int target) {
  KVLAB_ASSERT(lo < hi && target >= 2, "nice_range_linear({}, {}, {})", lo, hi, target);
  const double d = tick_step(lo, hi, target);
  return {clean(std::floor(lo / d) * d), clean(std::ceil(hi / d) * d)};
}

std::vector<double> nice_ticks_linear(double lo, double hi, int target) {
  KVLAB_ASSERT(lo < hi && target >= 2, "nice_ticks_linear({}, {}, {})", lo, hi, target);
  const double d = tick_step(lo, hi, target);
  const double eps = d * 1e-9;
  std::vector<double> t;
  for (long long k = static_cast<long long>(std::ceil((lo - eps) / d));
       k * d <= hi + eps; ++k) {
    t.push_back(clean(static_cast<double>(k) * d));
  }
  return t;
}

std::vector<double> nice_ticks_log(double lo, double hi) {
  KVLAB_ASSERT(lo > 0 && lo < hi, "nice_ticks_log({}, {})", lo, hi);
  const double decades = std::log10(hi / lo);
  if (decades < 1.0) return nice_ticks_linear(lo, hi, 5);
  const double eps = 1e-9;
  std::vector<double> t;
  const int e0 = static_cast<int>(std::floor(std::log10(lo)));
  const int e1 = static_cast<int>(std::ceil(std::log10(hi)));
  const int step = decades > 8 ? 2 : 1;
  for (int e = e0; e <= e1; e += (decades <= 3 ? 1 : step)) {
    const double p = std::pow(10.0, e);
    const std::vector<double> mults = decades <= 3 ? std::vector<double>{1, 2, 5}
                                                   : std::vector<double>{1};
    for (double m : mults) {
      const double v = clean(m * p);
      if (v >= lo * (1 - eps) && v <= hi * (1 + eps)) t.push_back(v);
    }
  }
  return t;
}

namespace {

// Validates every datum and returns the x and y data ranges (points, error
// bars, reference lines).
std::pair<Range, Range> data_ranges(const Plot& plot) {
  Range xr, yr;
  for (const auto& s : plot.series) {
    for (const auto& p : s.points) {
      const std::string where = fmt::format("series '{}'", s.name);
      check_finite(p.x, where + " x");
      check_finite(p.y, where + " y");
      KVLAB_CHECK(p.y_lo.has_value() == p.y_hi.has_value(),
                  "plot: {} has an error bar with only one end", where);
      xr.add(p.x);
      yr.add(p.y);
      if (p.y_lo) {
        check_finite(*p.y_lo, where + " error bar low end");
        check_finite(*p.y_hi, where + " error bar high end");
        KVLAB_CHECK(*p.y_lo <= p.y && p.y <= *p.y_hi,
                    "plot: {} error bar [{}, {}] does not contain y = {}", where, *p.y_lo, *p.y_hi,
                    p.y);
        // On a log axis a bar reaching <= 0 is clipped at the axis bottom.
        if (plot.y.scale != Scale::kLog || *p.y_lo > 0) yr.add(*p.y_lo);
        yr.add(*p.y_hi);
      }
    }
  }
  for (const auto& h : plot.hlines) {
    check_finite(h.value, "reference line '" + h.label + "'");
    yr.add(h.value);
  }
  for (const auto& v : plot.vlines) {
    check_finite(v.value, "reference line '" + v.label + "'");
    xr.add(v.value);
  }
  if (plot.x.scale == Scale::kLog && !xr.empty()) {
    KVLAB_CHECK(xr.lo > 0, "plot '{}': x axis is logarithmic but the data include x = {}",
                plot.title, xr.lo);
  }
  return {xr, yr};
}

constexpr double kTickFont = 11, kLabelFont = 10, kRefFont = 11, kLegendFont = 12, kTitleFont = 15,
                 kSubtitleFont = 11;

// An axis-aligned box in pixels.
struct Box {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  bool overlaps(const Box& o) const { return x0 < o.x1 && o.x0 < x1 && y0 < o.y1 && o.y0 < y1; }
  bool inside(const Box& o) const { return x0 >= o.x0 && x1 <= o.x1 && y0 >= o.y0 && y1 <= o.y1; }
};

enum class Anchor { kStart, kMiddle, kEnd };

const char* anchor_name(Anchor a) {
  return a == Anchor::kStart ? "start" : a == Anchor::kEnd ? "end" : "middle";
}

// Extent of level text at (x, baseline): ascent 0.76 em, descent 0.24 em.
Box text_box(double x, double baseline, const std::string& text, double font_px, Anchor a) {
  const double w = text_width(text, font_px);
  const double x0 = a == Anchor::kStart ? x : a == Anchor::kEnd ? x - w : x - w / 2;
  return {x0, baseline - 0.76 * font_px, x0 + w, baseline + 0.24 * font_px};
}

// Lines of at most `width` pixels, broken at spaces (a longer word stays
// whole on its own line); none for empty text.
std::vector<std::string> wrap_text(const std::string& text, double width, double font_px) {
  std::vector<std::string> lines;
  std::string line, word;
  auto flush_word = [&] {
    if (word.empty()) return;
    const std::string joined = line.empty() ? word : line + " " + word;
    if (!line.empty() && text_width(joined, font_px) > width) {
      lines.push_back(line);
      line = word;
    } else {
      line = joined;
    }
    word.clear();
  };
  for (char c : text) {
    if (c == ' ') {
      flush_word();
    } else {
      word += c;
    }
  }
  flush_word();
  if (!line.empty()) lines.push_back(line);
  return lines;
}

// x of centred text: the middle of the plot area, moved just enough to keep
// the text on a page `page_w` wide.
double centred_x(double mid, const std::string& text, double font_px, double page_w) {
  const double half = text_width(text, font_px) / 2 + 12;
  return std::clamp(mid, std::min(half, page_w / 2), std::max(page_w - half, page_w / 2));
}

// How the x tick labels are drawn: turned by `angle` degrees (0, 45 or 90;
// anchored at their end when turned) and only every `step`-th one.
struct XTickStyle {
  double angle = 0;
  int step = 1;
  double depth = 0;  // pixels the labels reach below the frame
};

// Page geometry: the plot area [L, L + pw] x [T, T + ph] and the data-to-
// pixel maps of both axes.
struct Frame {
  AxisLayout ax, ay;
  XTickStyle xt;
  std::vector<std::string> subtitle;  // wrapped to the page width
  double W = 0, H = 0, L = 0, T = 0, pw = 0, ph = 0;
  double px(double x) const { return L + (ax.f(x) - ax.f(ax.lo)) / (ax.f(ax.hi) - ax.f(ax.lo)) * pw; }
  double py(double y) const {
    return T + ph - (ay.f(y) - ay.f(ay.lo)) / (ay.f(ay.hi) - ay.f(ay.lo)) * ph;
  }
  Box area() const { return {L, T, L + pw, T + ph}; }
};

// Level labels when they clear each other by 6 px; else turned by 45 degrees
// when neighbours' baselines lie a line (13 px) apart, else by 90 degrees,
// thinned to every k-th label when even that is too tight.
XTickStyle x_tick_style(const Frame& f) {
  XTickStyle st;
  std::vector<double> xs;
  double maxw = 0;
  for (const auto& [v, text] : f.ax.ticks) {
    xs.push_back(f.px(v));
    maxw = std::max(maxw, text_width(text, kTickFont));
  }
  std::sort(xs.begin(), xs.end());
  double gap = std::numeric_limits<double>::infinity();
  for (std::size_t i = 1; i < xs.size(); ++i) gap = std::min(gap, xs[i] - xs[i - 1]);
  constexpr double kLine = 13;
  if (maxw + 6 <= gap) {
    st.depth = 18 + 0.24 * kTickFont;
    return st;
  }
  st.angle = gap * std::sin(std::numbers::pi / 4) >= kLine ? 45 : 90;
  if (st.angle == 90 && gap < kLine) st.step = static_cast<int>(std::ceil(kLine / gap));
  const double a = st.angle * std::numbers::pi / 180;
  st.depth = 10 + maxw * std::sin(a) + kTickFont * std::cos(a);
  return st;
}

Frame make_frame(const Plot& plot) {
  const auto [xr, yr] = data_ranges(plot);
  Frame f;
  f.ax = layout_axis(plot.x, xr, "x");
  f.ay = layout_axis(plot.y, yr, "y");
  double legend_text = 0;
  if (plot.legend) {
    for (const auto& s : plot.series) legend_text = std::max(legend_text, text_width(s.name, kLegendFont));
    for (const auto& h : plot.hlines) legend_text = std::max(legend_text, text_width(h.legend, kLegendFont));
    legend_text = std::max(legend_text, text_width(plot.highlight_legend, kLegendFont));
  }
  const double legend_w = plot.legend ? std::max(110.0, 40.0 + legend_text) : 0.0;
  f.W = plot.width;
  f.subtitle = wrap_text(plot.subtitle, f.W - 48, kSubtitleFont);
  f.T = 44 + 16 * static_cast<double>(f.subtitle.size());
  f.ph = plot.height - f.T - 54;
  f.L = 74;
  // Turned tick labels hang left of their tick: widen the left margin until
  // the first one stays on the page.
  for (int pass = 0; pass < 3; ++pass) {
    f.pw = f.W - f.L - (legend_w + 16);
    KVLAB_CHECK(f.pw > 80 && f.ph > 60, "plot '{}': {}x{} leaves no room for the plot area", plot.title,
                plot.width, plot.height);
    f.xt = x_tick_style(f);
    if (f.xt.angle == 0 || f.ax.ticks.empty()) break;
    const double a = f.xt.angle * std::numbers::pi / 180;
    double reach = 0;  // leftmost extent
    for (const auto& [v, text] : f.ax.ticks) {
      reach = std::min(reach, f.px(v) - text_width(text, kTickFont) * std::cos(a) - 4);
    }
    if (reach >= 0) break;
    f.L += -reach;
  }
  // The canvas grows below for turned tick labels; the plot area keeps its height.
  f.H = plot.height + std::ceil(std::max(0.0, f.xt.depth - (18 + 0.24 * kTickFont)));
  return f;
}

// XML prolog and <svg> element of a w x h document.
void write_prolog(std::string& o, double w, double h, const std::string& title) {
  o += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  o += fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{}" height="{}" viewBox="0 0 {} {}" font-family="{}" font-size="12">)",
      num0(w), num0(h), num0(w), num0(h), kFont);
  o += "\n";
  o += fmt::format(R"(<title>{}</title>)", xml_escape(title)) + "\n";
  o += fmt::format(R"(<rect x="0" y="0" width="{}" height="{}" fill="#ffffff"/>)", num0(w), num0(h)) + "\n";
}

// Clip path, title and subtitle of one panel.
void write_header(std::string& o, const Plot& plot, const Frame& f, const std::string& clip_id) {
  o += fmt::format(R"(<defs><clipPath id="{}"><rect x="{}" y="{}" width="{}" height="{}"/></clipPath></defs>)",
                   clip_id, num(f.L), num(f.T), num(f.pw), num(f.ph)) +
       "\n";
  o += fmt::format(R"(<text class="title" x="{}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{}</text>)",
                   num(centred_x(f.L + f.pw / 2, plot.title, 1.1 * kTitleFont, f.W)), xml_escape(plot.title)) +
       "\n";
  for (std::size_t i = 0; i < f.subtitle.size(); ++i) {
    o += fmt::format(R"(<text class="subtitle" x="{}" y="{}" text-anchor="middle" font-size="11" fill="#444444">{}</text>)",
                     num(centred_x(f.L + f.pw / 2, f.subtitle[i], kSubtitleFont, f.W)), num0(40 + 16 * static_cast<double>(i)),
                     xml_escape(f.subtitle[i])) +
         "\n";
  }
}

// Tick marks and labels of the x axis (level or turned, maybe thinned).
void write_x_ticks(std::string& o, const Frame& f) {
  int i = 0;
  for (const auto& [v, text] : f.ax.ticks) {
    o += fmt::format(R"(<line class="tick" x1="{}" y1="{}" x2="{}" y2="{}" stroke="#333333"/>)",
                     num(f.px(v)), num(f.T + f.ph), num(f.px(v)), num(f.T + f.ph + 5)) +
         "\n";
    if (i++ % f.xt.step != 0) continue;
    if (f.xt.angle == 0) {
      o += fmt::format(R"(<text class="xtick" x="{}" y="{}" text-anchor="middle">{}</text>)", num(f.px(v)),
                       num(f.T + f.ph + 18), xml_escape(text)) +
           "\n";
    } else {
      // Baseline end at the tick, turned counter-clockwise; shifted so the
      // glyphs' middle (not their baseline) ends at the tick.
      const double a = f.xt.angle * std::numbers::pi / 180;
      const double x = f.px(v) + 0.35 * kTickFont * std::sin(a), y = f.T + f.ph + 9;
      o += fmt::format(R"svg(<text class="xtick" x="{}" y="{}" text-anchor="end" transform="rotate(-{} {} {})">{}</text>)svg",
                       num(x), num(y), num0(f.xt.angle), num(x), num(y), xml_escape(text)) +
           "\n";
    }
  }
}

// Grid lines, the frame, tick marks, tick labels and the axis labels.
void write_axes(std::string& o, const Plot& plot, const Frame& f) {
  o += R"(<g class="grid" stroke="#e3e3e3" stroke-width="1">)";
  o += "\n";
  for (const auto& [v, text] : f.ax.ticks) {
    o += fmt::format(R"(<line x1="{}" y1="{}" x2="{}" y2="{}"/>)", num(f.px(v)), num(f.T), num(f.px(v)),
                     num(f.T + f.ph)) +
         "\n";
  }
  for (const auto& [v, text] : f.ay.ticks) {
    o += fmt::format(R"(<line x1="{}" y1="{}" x2="{}" y2="{}"/>)", num(f.L), num(f.py(v)), num(f.L + f.pw),
                     num(f.py(v))) +
         "\n";
  }
  o += "</g>\n";
  o += fmt::format(R"(<rect class="frame" x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#333333" stroke-width="1"/>)",
                   num(f.L), num(f.T), num(f.pw), num(f.ph)) +
       "\n";
  o += R"(<g class="ticks" font-size="11" fill="#222222">)";
  o += "\n";
  write_x_ticks(o, f);
  for (const auto& [v, text] : f.ay.ticks) {
    o += fmt::format(R"(<line class="tick" x1="{}" y1="{}" x2="{}" y2="{}" stroke="#333333"/>)",
                     num(f.L - 5), num(f.py(v)), num(f.L), num(f.py(v))) +
         "\n";
    o += fmt::format(R"(<text x="{}" y="{}" text-anchor="end">{}</text>)", num(f.L - 8),
                     num(f.py(v) + 4), xml_escape(text)) +
         "\n";
  }
  o += "</g>\n";
  o += fmt::format(R"(<text class="xlabel" x="{}" y="{}" text-anchor="middle" font-size="12">{}</text>)",
                   num(f.L + f.pw / 2), num(f.H - 14), xml_escape(plot.x.label)) +
       "\n";
  o += fmt::format(R"svg(<text class="ylabel" x="{}" y="{}" text-anchor="middle" font-size="12" transform="rotate(-90 {} {})">{}</text>)svg",
                   num(18), num(f.T + f.ph / 2), num(18), num(f.T + f.ph / 2), xml_escape(plot.y.label)) +
       "\n";
}

// A label's chosen place: baseline anchor and alignment.
struct Placed {
  double x = 0, y = 0;
  Anchor anchor = Anchor::kStart;
};

// Greedy label placement: every label takes the first of its candidate
// places whose box stays inside the plot area and overlaps neither a label
// placed before it nor an obstacle (markers, error bars, reference lines).
class Placer {
 public:
  explicit Placer(Box area) : area_(area) {}
  void block(const Box& b) { taken_.push_back(b); }
  std::optional<Placed> place(const std::string& text, double font_px, const std::vector<Placed>& candidates) {
    for (const auto& c : candidates) {
      const Box b = text_box(c.x, c.y, text, font_px, c.anchor);
      if (!b.inside(area_)) continue;
      const bool clash = std::any_of(taken_.begin(), taken_.end(), [&](const Box& t) { return b.overlaps(t); });
      if (clash) continue;
      taken_.push_back(b);
      return c;
    }
    return std::nullopt;
  }

 private:
  Box area_;
  std::vector<Box> taken_;
};

// Horizontal pixel shift of every point: the dodged points that share one
// x value (exactly) are spread Plot::dodge_px apart around it, in series
// order; a point alone at its x stays at its true x. Shifts therefore never
// grow with the number of series, only with the number of points that would
// otherwise sit on top of each other.
using Shifts = std::vector<std::vector<double>>;  // [series][point]

Shifts point_shifts(const Plot& plot) {
  Shifts dx(plot.series.size());
  std::map<double, std::vector<std::pair<std::size_t, std::size_t>>> at_x;
  for (std::size_t si = 0; si < plot.series.size(); ++si) {
    const auto& s = plot.series[si];
    dx[si].assign(s.points.size(), 0.0);
    if (!s.dodge || plot.dodge_px == 0) continue;
    for (std::size_t pi = 0; pi < s.points.size(); ++pi) at_x[s.points[pi].x].emplace_back(si, pi);
  }
  for (const auto& [x, pts] : at_x) {
    const double m = static_cast<double>(pts.size());
    for (std::size_t k = 0; k < pts.size(); ++k) {
      dx[pts[k].first][pts[k].second] = plot.dodge_px * (static_cast<double>(k) - (m - 1) / 2);
    }
  }
  return dx;
}

Box marker_box(double x, double y) { return {x - 5.5, y - 5.5, x + 5.5, y + 5.5}; }

// Places of every reference-line label and point label; absent where no
// candidate place is free.
struct Labels {
  std::vector<std::optional<Placed>> hlines;
  std::vector<std::vector<std::optional<Placed>>> points;  // [series][point]
};

Labels place_labels(const Plot& plot, const Frame& f, const Shifts& dx) {
  Placer placer(f.area());
  Labels out;
  out.points.resize(plot.series.size());
  for (std::size_t si = 0; si < plot.series.size(); ++si) {
    for (std::size_t pi = 0; pi < plot.series[si].points.size(); ++pi) {
      const auto& p = plot.series[si].points[pi];
      const double x = f.px(p.x) + dx[si][pi], y = f.py(p.y);
      placer.block(marker_box(x, y));
      if (p.y_lo) {
        const double y0 = (f.ay.scale == Scale::kLog && *p.y_lo <= 0) ? f.T + f.ph : f.py(*p.y_lo);
        placer.block({x - 1.5, std::min(y0, f.py(*p.y_hi)), x + 1.5, std::max(y0, f.py(*p.y_hi))});
      }
    }
    out.points[si].resize(plot.series[si].points.size());
  }
  for (const auto& h : plot.hlines) {
    const double y = f.py(h.value);
    std::optional<Placed> at;
    if (!h.label.empty()) {
      at = placer.place(h.label, kRefFont,
                        {{f.L + 4, y - 4, Anchor::kStart}, {f.L + 4, y + 12, Anchor::kStart},
                         {f.L + f.pw - 4, y - 4, Anchor::kEnd}, {f.L + f.pw - 4, y + 12, Anchor::kEnd},
                         {f.L + f.pw / 2, y - 4, Anchor::kMiddle}, {f.L + f.pw / 2, y + 12, Anchor::kMiddle}});
    }
    out.hlines.push_back(at);
    placer.block({f.L, y - 1, f.L + f.pw, y + 1});
  }
  // Highlighted points' labels first: they name the chosen points.
  for (int pass = 0; pass < 2; ++pass) {
    for (std::size_t si = 0; si < plot.series.size(); ++si) {
      const auto& s = plot.series[si];
      for (std::size_t pi = 0; pi < s.points.size(); ++pi) {
        const auto& p = s.points[pi];
        if (p.label.empty() || p.highlight != (pass == 0)) continue;
        const double x = f.px(p.x) + dx[si][pi], y = f.py(p.y);
        if (!Box{x, y, x, y}.inside(f.area())) continue;  // clipped away: no label
        const double r = p.highlight ? 10 : 7;
        out.points[si][pi] = placer.place(
            p.label, kLabelFont,
            {{x + r, y - r + 2, Anchor::kStart}, {x + r, y + r + 5, Anchor::kStart}, {x - r, y - r + 2, Anchor::kEnd},
             {x - r, y + r + 5, Anchor::kEnd}, {x, y - r - 3, Anchor::kMiddle}, {x, y + r + 10, Anchor::kMiddle},
             {x + r + 2, y + 3.5, Anchor::kStart}, {x - r - 2, y + 3.5, Anchor::kEnd},
             // A line further out.
             {x + r, y + r + 17, Anchor::kStart}, {x + r, y - r - 10, Anchor::kStart},
             {x - r, y + r + 17, Anchor::kEnd}, {x - r, y - r - 10, Anchor::kEnd}, {x, y + r + 22, Anchor::kMiddle},
             {x, y - r - 15, Anchor::kMiddle}});
      }
    }
  }
  return out;
}

// Horizontal and vertical reference lines with their labels.
void write_reflines(std::string& o, const Plot& plot, const Frame& f, const Labels& labels) {
  for (std::size_t i = 0; i < plot.hlines.size(); ++i) {
    const auto& h = plot.hlines[i];
    o += fmt::format(R"(<line class="refline" x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1.2"{}/>)",
                     num(f.L), num(f.py(h.value)), num(f.L + f.pw), num(f.py(h.value)), h.color,
                     h.dashed ? R"( stroke-dasharray="6 4")" : "") +
         "\n";
    if (const auto& at = labels.hlines[i]) {
      o += fmt::format(R"(<text class="reflabel" x="{}" y="{}" text-anchor="{}" font-size="11" fill="{}">{}</text>)",
                       num(at->x), num(at->y), anchor_name(at->anchor), h.color, xml_escape(h.label)) +
           "\n";
    }
  }
  for (const auto& v : plot.vlines) {
    o += fmt::format(R"(<line class="refline" x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1.2"{}/>)",
                     num(f.px(v.value)), num(f.T), num(f.px(v.value)), num(f.T + f.ph), v.color,
                     v.dashed ? R"( stroke-dasharray="6 4")" : "") +
         "\n";
    if (!v.label.empty()) {
      o += fmt::format(R"svg(<text class="reflabel" x="{}" y="{}" text-anchor="end" font-size="11" fill="{}" transform="rotate(-90 {} {})">{}</text>)svg",
                       num(f.px(v.value) - 4), num(f.T + 4), v.color, num(f.px(v.value) - 4), num(f.T + 4),
                       xml_escape(v.label)) +
           "\n";
    }
  }
}

// One series: its polyline (when connected), error bars, markers, rings and
// placed point labels, each point shifted by its dx pixels.
void write_series(std::string& o, const Series& s, const Frame& f, const std::vector<double>& dx,
                  const std::vector<std::optional<Placed>>& labels) {
  o += fmt::format(R"(<g class="series" data-name="{}">)", xml_escape(s.name)) + "\n";
  if (s.connect && s.points.size() >= 2) {
    std::vector<std::size_t> sorted(s.points.size());
    for (std::size_t i = 0; i < sorted.size(); ++i) sorted[i] = i;
    std::stable_sort(sorted.begin(), sorted.end(),
                     [&](std::size_t a, std::size_t b) { return s.points[a].x < s.points[b].x; });
    std::string pts;
    for (const std::size_t i : sorted) {
      if (!pts.empty()) pts += ' ';
      pts += num(f.px(s.points[i].x) + dx[i]) + "," + num(f.py(s.points[i].y));
    }
    o += fmt::format(R"(<polyline class="line" points="{}" fill="none" stroke="{}" stroke-width="1.2" stroke-opacity="0.6"{}/>)",
                     pts, s.color, s.line_dash.empty() ? "" : fmt::format(R"( stroke-dasharray="{}")", s.line_dash)) +
         "\n";
  }
  for (std::size_t pi = 0; pi < s.points.size(); ++pi) {
    const auto& p = s.points[pi];
    if (!p.y_lo) continue;
    const double x = f.px(p.x) + dx[pi];
    const double y0 = (f.ay.scale == Scale::kLog && *p.y_lo <= 0) ? f.T + f.ph : f.py(*p.y_lo);
    const double y1 = f.py(*p.y_hi);
    o += fmt::format(R"(<path class="errorbar" d="M{} {}L{} {}M{} {}L{} {}M{} {}L{} {}" stroke="{}" stroke-width="1.3" fill="none"/>)",
                     num(x), num(y0), num(x), num(y1), num(x - 3.5), num(y0), num(x + 3.5), num(y0),
                     num(x - 3.5), num(y1), num(x + 3.5), num(y1), s.color) +
         "\n";
  }
  for (std::size_t pi = 0; pi < s.points.size(); ++pi) {
    const auto& p = s.points[pi];
    const double x = f.px(p.x) + dx[pi], y = f.py(p.y);
    if (p.tooltip.empty()) {
      marker_svg(o, s.marker, x, y, s.color, s.filled, "point", "");
      o += "\n";
    } else {
      o += "<g class=\"point-group\">";
      marker_svg(o, s.marker, x, y, s.color, s.filled, "point", "");
      o += "<title>" + xml_escape(p.tooltip) + "</title></g>\n";
    }
    if (p.highlight) {
      o += fmt::format(R"(<circle class="highlight" cx="{}" cy="{}" r="8.50" fill="none" stroke="#000000" stroke-width="1.6"/>)",
                       num(x), num(y)) +
           "\n";
    }
    if (const auto& at = labels[pi]) {
      o += fmt::format(R"(<text class="pointlabel" x="{}" y="{}" text-anchor="{}" font-size="10" fill="{}">{}</text>)",
                       num(at->x), num(at->y), anchor_name(at->anchor),
                       s.label_color.empty() ? s.color : s.label_color, xml_escape(p.label)) +
           "\n";
    }
  }
  o += "</g>\n";
}

// Reference lines and every series, clipped to the plot area.
void write_data(std::string& o, const Plot& plot, const Frame& f, const std::string& clip_id) {
  const auto dx = point_shifts(plot);
  const Labels labels = place_labels(plot, f, dx);
  o += fmt::format(R"svg(<g clip-path="url(#{})">)svg", clip_id);
  o += "\n";
  write_reflines(o, plot, f, labels);
  for (std::size_t si = 0; si < plot.series.size(); ++si) write_series(o, plot.series[si], f, dx[si], labels.points[si]);
  o += "</g>\n";
}

// Legend, right of the plot area: series, the highlight ring, then the
// reference lines that ask for an entry.
void write_legend(std::string& o, const Plot& plot, const Frame& f) {
  if (!plot.legend) return;
  const double lx = f.L + f.pw + 14;
  double ly = f.T + 10;
  o += R"(<g class="legend" font-size="12">)";
  o += "\n";
  for (const auto& s : plot.series) {
    o += "<g class=\"legend-entry\">";
    marker_svg(o, s.marker, lx + 6, ly, s.color, s.filled, "", "");
    o += fmt::format(R"(<text x="{}" y="{}">{}</text>)", num(lx + 18), num(ly + 4), xml_escape(s.name));
    o += "</g>\n";
    ly += 20;
  }
  if (!plot.highlight_legend.empty()) {
    o += fmt::format(R"(<g class="legend-entry"><circle cx="{}" cy="{}" r="8.50" fill="none" stroke="#000000" stroke-width="1.6"/><text x="{}" y="{}">{}</text></g>)",
                     num(lx + 6), num(ly), num(lx + 18), num(ly + 4), xml_escape(plot.highlight_legend)) +
         "\n";
    ly += 22;
  }
  for (const auto& h : plot.hlines) {
    if (h.legend.empty()) continue;
    o += fmt::format(R"(<g class="legend-entry"><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1.2"{}/><text x="{}" y="{}">{}</text></g>)",
                     num(lx - 2), num(ly), num(lx + 14), num(ly), h.color, h.dashed ? R"( stroke-dasharray="6 4")" : "",
                     num(lx + 18), num(ly + 4), xml_escape(h.legend)) +
         "\n";
    ly += 20;
  }
  o += "</g>\n";
}

void check_plot(const Plot& plot) {
  KVLAB_CHECK(!plot.series.empty(), "plot '{}': no series to draw", plot.title);
  KVLAB_CHECK(plot.width >= 200 && plot.height >= 150, "plot '{}': size {}x{} is too small",
              plot.title, plot.width, plot.height);
}

// One panel's elements (everything but the document prolog).
void write_panel(std::string& o, const Plot& plot, const Frame& f, const std::string& clip_id) {
  write_header(o, plot, f, clip_id);
  write_axes(o, plot, f);
  write_data(o, plot, f, clip_id);
  write_legend(o, plot, f);
}

}  // namespace

double text_width(const std::string& text, double font_px) {
  // DejaVu Sans advance widths in em (units / 2048) for printable ASCII 32..126.
  static constexpr double kEm[95] = {
      0.318, 0.401, 0.460, 0.838, 0.636, 0.950, 0.780, 0.275, 0.390, 0.390, 0.500, 0.838, 0.318, 0.361, 0.318,
      0.337, 0.636, 0.636, 0.636, 0.636, 0.636, 0.636, 0.636, 0.636, 0.636, 0.636, 0.337, 0.337, 0.838, 0.838,
      0.838, 0.531, 1.000, 0.684, 0.686, 0.698, 0.770, 0.632, 0.575, 0.775, 0.752, 0.295, 0.295, 0.656, 0.557,
      0.863, 0.748, 0.787, 0.603, 0.787, 0.695, 0.635, 0.611, 0.732, 0.684, 0.989, 0.685, 0.611, 0.685, 0.390,
      0.337, 0.390, 0.838, 0.500, 0.500, 0.613, 0.635, 0.550, 0.635, 0.615, 0.352, 0.635, 0.634, 0.278, 0.278,
      0.579, 0.278, 0.974, 0.634, 0.612, 0.635, 0.635, 0.411, 0.521, 0.392, 0.634, 0.592, 0.818, 0.592, 0.592,
      0.525, 0.636, 0.337, 0.636, 0.838};
  double em = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 32 && c < 127) {
      em += kEm[c - 32];
    } else if ((c & 0xC0) != 0x80) {
      em += 0.72;  // the first byte of a non-ASCII code point
    }
  }
  return em * font_px;
}

std::string render(const Plot& plot) {
  check_plot(plot);
  const Frame f = make_frame(plot);
  std::string o;
  write_prolog(o, f.W, f.H, plot.title);
  write_panel(o, plot, f, "plot-area");
  o += "</svg>\n";
  return o;
}

std::string render_panels(const std::vector<Plot>& panels) {
  KVLAB_CHECK(!panels.empty(), "plot: no panels to draw");
  std::vector<Frame> frames;
  double w = 0, h = 0;
  for (const auto& p : panels) {
    check_plot(p);
    frames.push_back(make_frame(p));
    w = std::max(w, frames.back().W);
    h += frames.back().H;
  }
  std::string o;
  write_prolog(o, w, h, panels.front().title);
  double oy = 0;
  for (std::size_t i = 0; i < panels.size(); ++i) {
    o += fmt::format(R"svg(<g class="panel" transform="translate(0 {})">)svg", num0(oy)) + "\n";
    write_panel(o, panels[i], frames[i], fmt::format("plot-area-{}", i + 1));
    o += "</g>\n";
    oy += frames[i].H;
  }
  o += "</svg>\n";
  return o;
}

}  // namespace kvlab::report::svg
