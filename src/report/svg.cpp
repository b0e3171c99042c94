// SVG scatter plots; see svg.h.
#include "report/svg.h"

#include <algorithm>
#include <cmath>
#include <limits>
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

// Page geometry: the plot area [L, L + pw] x [T, T + ph] and the data-to-
// pixel maps of both axes.
struct Frame {
  AxisLayout ax, ay;
  double W = 0, H = 0, L = 0, T = 0, pw = 0, ph = 0;
  double px(double x) const { return L + (ax.f(x) - ax.f(ax.lo)) / (ax.f(ax.hi) - ax.f(ax.lo)) * pw; }
  double py(double y) const {
    return T + ph - (ay.f(y) - ay.f(ay.lo)) / (ay.f(ay.hi) - ay.f(ay.lo)) * ph;
  }
};

Frame make_frame(const Plot& plot) {
  const auto [xr, yr] = data_ranges(plot);
  Frame f;
  f.ax = layout_axis(plot.x, xr, "x");
  f.ay = layout_axis(plot.y, yr, "y");
  std::size_t legend_chars = 0;
  for (const auto& s : plot.series) legend_chars = std::max(legend_chars, s.name.size());
  const double legend_w = std::max(110.0, 34.0 + kGlyphWidth * static_cast<double>(legend_chars));
  f.W = plot.width;
  f.H = plot.height;
  f.L = 74;
  const double R = legend_w + 16;
  f.T = plot.subtitle.empty() ? 44 : 60;
  const double B = 54;
  f.pw = f.W - f.L - R;
  f.ph = f.H - f.T - B;
  KVLAB_CHECK(f.pw > 80 && f.ph > 60, "plot '{}': {}x{} leaves no room for the plot area", plot.title,
              plot.width, plot.height);
  return f;
}

// XML prolog, <svg>, background, clip path, title and subtitle.
void write_header(std::string& o, const Plot& plot, const Frame& f) {
  o += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  o += fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{}" height="{}" viewBox="0 0 {} {}" font-family="{}" font-size="12">)",
      plot.width, plot.height, plot.width, plot.height, kFont);
  o += "\n";
  o += fmt::format(R"(<title>{}</title>)", xml_escape(plot.title)) + "\n";
  o += fmt::format(R"(<rect x="0" y="0" width="{}" height="{}" fill="#ffffff"/>)", plot.width,
                   plot.height) +
       "\n";
  o += fmt::format(R"(<defs><clipPath id="plot-area"><rect x="{}" y="{}" width="{}" height="{}"/></clipPath></defs>)",
                   num(f.L), num(f.T), num(f.pw), num(f.ph)) +
       "\n";
  o += fmt::format(R"(<text class="title" x="{}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{}</text>)",
                   num(f.L + f.pw / 2), xml_escape(plot.title)) +
       "\n";
  if (!plot.subtitle.empty()) {
    o += fmt::format(R"(<text class="subtitle" x="{}" y="40" text-anchor="middle" font-size="11" fill="#444444">{}</text>)",
                     num(f.L + f.pw / 2), xml_escape(plot.subtitle)) +
         "\n";
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
  for (const auto& [v, text] : f.ax.ticks) {
    o += fmt::format(R"(<line class="tick" x1="{}" y1="{}" x2="{}" y2="{}" stroke="#333333"/>)",
                     num(f.px(v)), num(f.T + f.ph), num(f.px(v)), num(f.T + f.ph + 5)) +
         "\n";
    o += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle">{}</text>)", num(f.px(v)),
                     num(f.T + f.ph + 18), xml_escape(text)) +
         "\n";
  }
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

// Horizontal and vertical reference lines with their labels.
void write_reflines(std::string& o, const Plot& plot, const Frame& f) {
  for (const auto& h : plot.hlines) {
    o += fmt::format(R"(<line class="refline" x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1.2"{}/>)",
                     num(f.L), num(f.py(h.value)), num(f.L + f.pw), num(f.py(h.value)), h.color,
                     h.dashed ? R"( stroke-dasharray="6 4")" : "") +
         "\n";
    if (!h.label.empty()) {
      // Left end: the right end is where the FP8 point (most bits) usually sits.
      o += fmt::format(R"(<text class="reflabel" x="{}" y="{}" text-anchor="start" font-size="11" fill="{}">{}</text>)",
                       num(f.L + 4), num(f.py(h.value) - 4), h.color, xml_escape(h.label)) +
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

// One series: its polyline (when connected), error bars, markers and point
// labels, shifted by dx pixels.
void write_series(std::string& o, const Series& s, const Frame& f, double dx) {
  o += fmt::format(R"(<g class="series" data-name="{}">)", xml_escape(s.name)) + "\n";
  if (s.connect && s.points.size() >= 2) {
    std::vector<const Point*> sorted;
    for (const auto& p : s.points) sorted.push_back(&p);
    std::stable_sort(sorted.begin(), sorted.end(), [](const Point* a, const Point* b) { return a->x < b->x; });
    std::string pts;
    for (const Point* p : sorted) {
      if (!pts.empty()) pts += ' ';
      pts += num(f.px(p->x) + dx) + "," + num(f.py(p->y));
    }
    o += fmt::format(R"(<polyline class="line" points="{}" fill="none" stroke="{}" stroke-width="1.2" stroke-opacity="0.6"/>)",
                     pts, s.color) +
         "\n";
  }
  for (const auto& p : s.points) {
    if (!p.y_lo) continue;
    const double x = f.px(p.x) + dx;
    const double y0 = (f.ay.scale == Scale::kLog && *p.y_lo <= 0) ? f.T + f.ph : f.py(*p.y_lo);
    const double y1 = f.py(*p.y_hi);
    o += fmt::format(R"(<path class="errorbar" d="M{} {}L{} {}M{} {}L{} {}M{} {}L{} {}" stroke="{}" stroke-width="1.3" fill="none"/>)",
                     num(x), num(y0), num(x), num(y1), num(x - 3.5), num(y0), num(x + 3.5), num(y0),
                     num(x - 3.5), num(y1), num(x + 3.5), num(y1), s.color) +
         "\n";
  }
  for (const auto& p : s.points) {
    const double x = f.px(p.x) + dx, y = f.py(p.y);
    if (p.tooltip.empty()) {
      marker_svg(o, s.marker, x, y, s.color, s.filled, "point", "");
      o += "\n";
    } else {
      o += "<g class=\"point-group\">";
      marker_svg(o, s.marker, x, y, s.color, s.filled, "point", "");
      o += "<title>" + xml_escape(p.tooltip) + "</title></g>\n";
    }
    if (!p.label.empty()) {
      o += fmt::format(R"(<text class="pointlabel" x="{}" y="{}" font-size="10" fill="{}">{}</text>)",
                       num(x + 6), num(y - 6), s.color, xml_escape(p.label)) +
           "\n";
    }
  }
  o += "</g>\n";
}

// Reference lines and every series, clipped to the plot area; series taking
// part in dodging are spread dodge_px apart around their true x.
void write_data(std::string& o, const Plot& plot, const Frame& f) {
  o += R"svg(<g clip-path="url(#plot-area)">)svg";
  o += "\n";
  write_reflines(o, plot, f);
  double n_dodged = 0;
  for (const auto& s : plot.series) n_dodged += s.dodge ? 1 : 0;
  double dodge_index = 0;
  for (const auto& s : plot.series) {
    double dx = 0;
    if (s.dodge) {
      dx = plot.dodge_px * (dodge_index - (n_dodged - 1) / 2);
      dodge_index += 1;
    }
    write_series(o, s, f, dx);
  }
  o += "</g>\n";
}

// Legend, right of the plot area.
void write_legend(std::string& o, const Plot& plot, const Frame& f) {
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
  o += "</g>\n";
}

}  // namespace

std::string render(const Plot& plot) {
  KVLAB_CHECK(!plot.series.empty(), "plot '{}': no series to draw", plot.title);
  KVLAB_CHECK(plot.width >= 200 && plot.height >= 150, "plot '{}': size {}x{} is too small",
              plot.title, plot.width, plot.height);
  const Frame f = make_frame(plot);
  std::string o;
  write_header(o, plot, f);
  write_axes(o, plot, f);
  write_data(o, plot, f);
  write_legend(o, plot, f);
  o += "</svg>\n";
  return o;
}

}  // namespace kvlab::report::svg
