// Dependency-free SVG scatter plots for kvlab reports: linear or log axes
// with "nice" ticks, several series with markers, optional vertical error
// bars (confidence intervals), highlighted points (a ring), point labels,
// horizontal and vertical reference lines (ratio 1.0 = FP8, thresholds), a
// legend outside the plot area, and panels stacked vertically in one file.
//
// Text is placed without overlap as far as the estimated text extents go
// (text_width(): DejaVu Sans advance widths): x tick labels turn by 45 or 90
// degrees (and only every k-th is drawn) when level ones would touch, the
// canvas growing below for them; point and reference-line labels try a few
// positions around their anchor and are left out when every position would
// overlap another label, a marker or the plot frame.
//
// Deterministic: coordinates are printed with two decimals, element order
// follows the input order, nothing depends on the clock or the locale, so the
// same Plot gives the same bytes. Every drawn datum carries a class attribute
// ("point", "errorbar", "refline", "legend-entry", "pointlabel", "reflabel",
// "highlight") so tests can count them.
//
// Not a general plotting library: no bar charts, no side-by-side panels.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kvlab::report::svg {

enum class Scale { kLinear, kLog };
enum class Marker { kCircle, kSquare, kDiamond, kTriangle, kCross };

struct Point {
  double x = 0;
  double y = 0;
  // Error bar ends (absolute y values, lo <= y <= hi); both or neither.
  std::optional<double> y_lo;
  std::optional<double> y_hi;
  std::string label;    // drawn beside the marker when non-empty (and placeable)
  std::string tooltip;  // <title> child (shown on hover by browsers)
  bool highlight = false;  // a ring around the marker (Plot::highlight_legend says what it means)
};

struct Series {
  std::string name;  // legend text
  std::string color = "#0072B2";
  Marker marker = Marker::kCircle;
  bool filled = true;
  bool connect = false;  // draw a polyline through the points in x order
  bool dodge = true;     // take part in Plot::dodge_px offsets (false: drawn at its true x)
  std::string line_dash;    // SVG stroke-dasharray of the polyline ("" = solid)
  std::string label_color;  // colour of point labels ("" = the series colour)
  std::vector<Point> points;
};

struct RefLine {
  double value = 0;  // y for a horizontal line, x for a vertical one
  std::string label;
  std::string color = "#555555";
  bool dashed = true;
  std::string legend;  // when non-empty: a legend entry (a line sample and this text)
};

struct Axis {
  std::string label;
  Scale scale = Scale::kLinear;
  // Range overrides; by default the data (incl. error bars and reference
  // lines) plus a margin.
  std::optional<double> min;
  std::optional<double> max;
  // Categorical ticks (value, text) replace the automatic ones when given.
  std::vector<std::pair<double, std::string>> ticks;
};

struct Plot {
  std::string title;
  std::string subtitle;  // smaller second line under the title
  Axis x;
  Axis y;
  std::vector<Series> series;
  std::vector<RefLine> hlines;
  std::vector<RefLine> vlines;
  // Horizontal pixel step between the points of different series that share
  // one x value (to keep overlapping error bars apart; a point alone at its x
  // is not moved); 0 = none. Purely visual, stated in the caption.
  double dodge_px = 0;
  bool legend = true;            // draw the legend (series, then reference lines with `legend`)
  std::string highlight_legend;  // legend text of the highlight ring ("" = no entry)
  int width = 780;
  int height = 480;  // grows by the room that turned x tick labels need
};

// Renders the plot as a standalone SVG 1.1 document (ends with '\n').
// Throws kvlab::Error for data that cannot be drawn: non-finite values,
// values <= 0 on a log axis, an empty plot, an inverted range, y_lo > y or
// y_hi < y.
std::string render(const Plot& plot);

// Several plots stacked top to bottom in one SVG document (each its own
// frame, axes, legend and clip path), as wide as the widest. Throws as
// render() does, and for an empty list.
std::string render_panels(const std::vector<Plot>& panels);

// Estimated advance width in pixels of `text` in DejaVu Sans at `font_px`
// (per-character widths of the common ASCII glyphs, 0.72 em for others),
// used for label placement.
double text_width(const std::string& text, double font_px);

// Tick positions for a linear axis: multiples of 1, 2 or 5 x 10^k covering
// [lo, hi] with about `target` ticks (after Heckbert, "Nice numbers for graph
// labels", Graphics Gems, 1990, rounding the step rather than the range).
// Returns the ticks within [lo, hi].
std::vector<double> nice_ticks_linear(double lo, double hi, int target = 6);

// Ticks for a log axis over [lo, hi] (lo > 0): powers of ten, with 2 and 5
// between them when the range spans at most three decades, and linear nice
// ticks when it spans less than one decade.
std::vector<double> nice_ticks_log(double lo, double hi);

// Nice range covering [lo, hi]: expanded to the enclosing linear nice ticks.
std::pair<double, double> nice_range_linear(double lo, double hi, int target = 6);

// Short tick label ("0.5", "1", "2000", "1e-05").
std::string tick_label(double v);

// Okabe & Ito colour-blind-safe palette, index modulo its size.
std::string palette(int i);

// Escapes &, <, >, " for XML text and attribute values.
std::string xml_escape(const std::string& s);

}  // namespace kvlab::report::svg
