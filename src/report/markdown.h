// Markdown building blocks for kvlab's generated reports: number formatting
// with a fixed number of decimals or significant digits, "mean ± half-width"
// cells, pipe tables with aligned columns, and a document builder.
//
// This file only turns numbers that were computed elsewhere (src/stats/) into
// text; it never aggregates. Output is a pure function of the input: no
// locale, no clock, no hash-map ordering, so the same inputs give the same
// bytes on every machine.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace kvlab::report {

// Text printed where a confidence interval does not exist (fewer than two
// passages; DESIGN.md habit 5: no interval is not "± 0").
inline constexpr const char* kNoInterval = "n/a (n < 2)";
// Text printed for a value that is absent (not measured / not applicable).
inline constexpr const char* kNotAvailable = "n/a";

// Fixed-point with `decimals` digits after the point ("0.790"). Negative zero
// prints without a sign; NaN prints "nan", infinities "inf" / "-inf".
std::string fmt_fixed(double v, int decimals);

// `sig` significant digits (>= 1). Plain notation for 1e-3 <= |v| < 1e6
// ("0.00123", "4224"), otherwise scientific with a two-digit exponent
// ("1.23e-05"). Zero prints as "0".
std::string fmt_sig(double v, int sig);

// Shortest form with up to 6 significant digits ("0.5", "20", "1e-05"), for
// parameters such as gates and layer counts.
std::string fmt_short(double v);

// Integers and integer-valued doubles ("4224"); asserts the value is integral.
std::string fmt_int(long long v);

// A signed percentage with `decimals` digits: -0.2196 -> "-22.0 %",
// 0.05 -> "+5.0 %". Zero prints "0.0 %".
std::string fmt_percent(double fraction, int decimals = 1);

// "mean ± hw" with both printed to `decimals` places ("0.790 ± 0.005");
// a missing half-width prints "0.790 ± n/a (n < 2)".
std::string fmt_pm_fixed(double mean, std::optional<double> hw, int decimals);

// "mean ± hw" where the half-width is printed with `hw_sig` significant
// digits and the mean to the same decimal position ("0.0031004 ± 0.0000021"
// style is avoided: values below 1e-3 or above 1e6, and half-widths of 1e4
// or more, share one exponent: "(3.1004 ± 0.0021)e-03", "(7.3 ± 1.4)e+05"). A missing or zero half-width prints the mean with
// `mean_sig` significant digits followed by "± n/a (n < 2)" (missing) or
// "± 0" (a true zero spread, e.g. identical bit counts).
std::string fmt_pm_sig(double mean, std::optional<double> hw, int hw_sig = 2, int mean_sig = 4);

// Always scientific: fmt_sci(9.915e-4, 4) = "9.915e-04", fmt_sci(0.001002, 4)
// = "1.002e-03"; for columns whose values span decades.
std::string fmt_sci(double v, int sig);

// fmt_pm_sig, always in the shared-exponent form "(9.9 ± 0.8)e-04".
std::string fmt_pm_sci(double mean, std::optional<double> hw, int hw_sig = 2, int mean_sig = 4);

// "[lo, hi]" with `decimals` places.
std::string fmt_range_fixed(double lo, double hi, int decimals);

// Escapes text for a markdown table cell: '|' -> "\|", newlines -> space.
std::string escape_cell(const std::string& s);

// Display width of UTF-8 text in a monospace font, counting code points
// (every code point is one column; enough for the symbols reports use:
// ±, −, ≤, ≥, ×, µ, Δ).
std::size_t display_width(const std::string& utf8);

enum class Align { kLeft, kRight, kCenter };

// A GitHub-flavoured pipe table whose columns are padded to equal width so
// the raw markdown reads as a table too.
class Table {
 public:
  // `aligns` may be empty (all left) or have one entry per header.
  explicit Table(std::vector<std::string> headers, std::vector<Align> aligns = {});

  // Adds a row; the number of cells must equal the number of headers
  // (checked: an internal invariant of the report code).
  void add_row(std::vector<std::string> cells);

  std::size_t columns() const { return headers_.size(); }
  std::size_t rows() const { return rows_.size(); }

  // Lines end with '\n'; no trailing blank line.
  std::string render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<Align> aligns_;
  std::vector<std::vector<std::string>> rows_;
};

// Sequential markdown document. Blocks are separated by one blank line; the
// rendered text ends with exactly one '\n'.
class Document {
 public:
  void heading(int level, const std::string& text);
  void paragraph(const std::string& text);
  void bullets(const std::vector<std::string>& items);
  void table(const Table& t);
  // A table followed by a one-line italic note (units, definitions).
  void table(const Table& t, const std::string& note);
  void image(const std::string& alt, const std::string& relative_path);
  void code(const std::string& text, const std::string& lang = "");
  // Inserted verbatim as one block.
  void raw(const std::string& block);

  std::string str() const;

 private:
  std::vector<std::string> blocks_;
};

}  // namespace kvlab::report
