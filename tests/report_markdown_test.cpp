// Tests for src/report/markdown.{h,cpp}: number formatting, intervals,
// tables and the document builder.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "report/markdown.h"

namespace kvlab::report {
namespace {

TEST(ReportFormat, FixedDecimals) {
  EXPECT_EQ(fmt_fixed(0.7899826095204807, 3), "0.790");
  EXPECT_EQ(fmt_fixed(1.0430402372519307, 3), "1.043");
  EXPECT_EQ(fmt_fixed(2.5, 0), "2");  // round half to even (printf semantics)
  EXPECT_EQ(fmt_fixed(-0.0001, 3), "0.000");  // no "-0.000"
  EXPECT_EQ(fmt_fixed(-0.0006, 3), "-0.001");
  EXPECT_EQ(fmt_fixed(std::numeric_limits<double>::quiet_NaN(), 3), "nan");
  EXPECT_EQ(fmt_fixed(-std::numeric_limits<double>::infinity(), 3), "-inf");
}

TEST(ReportFormat, SignificantDigits) {
  EXPECT_EQ(fmt_sig(0.7899826, 3), "0.790");
  EXPECT_EQ(fmt_sig(9.996, 3), "10.0");  // rounding carries into a new decade
  EXPECT_EQ(fmt_sig(4224, 4), "4224");
  EXPECT_EQ(fmt_sig(4224, 2), "4200");
  EXPECT_EQ(fmt_sig(0.0012345, 3), "0.00123");
  EXPECT_EQ(fmt_sig(0.00012345, 3), "1.23e-04");
  EXPECT_EQ(fmt_sig(-0.00012345, 3), "-1.23e-04");
  EXPECT_EQ(fmt_sig(1.2345e7, 3), "1.23e+07");
  EXPECT_EQ(fmt_sig(0.0, 3), "0");
  EXPECT_EQ(fmt_sig(999999.0, 3), "1.00e+06");  // rounds out of the plain range
}

TEST(ReportFormat, Percent) {
  EXPECT_EQ(fmt_percent((3296.0 - 4224.0) / 4224.0), "-22.0 %");
  EXPECT_EQ(fmt_percent(0.05), "+5.0 %");
  EXPECT_EQ(fmt_percent(0.0), "0.0 %");
  EXPECT_EQ(fmt_percent(-0.00001), "0.0 %");
  EXPECT_EQ(fmt_percent(0.12345, 2), "+12.35 %");
}

TEST(ReportFormat, IntervalFixed) {
  EXPECT_EQ(fmt_pm_fixed(0.7899826095204807, 0.004668667181434451, 3), "0.790 ± 0.005");
  EXPECT_EQ(fmt_pm_fixed(0.9004255962636896, 0.006315458675696769, 3), "0.900 ± 0.006");
  EXPECT_EQ(fmt_pm_fixed(1.0430402372519307, 0.05114899111804311, 3), "1.043 ± 0.051");
  EXPECT_EQ(fmt_pm_fixed(1.0, std::nullopt, 3), "1.000 ± n/a (n < 2)");
}

TEST(ReportFormat, IntervalSignificant) {
  // Half-width to two significant digits, mean to the same decimal place.
  EXPECT_EQ(fmt_pm_sig(0.7899826, 0.0046687), "0.7900 ± 0.0047");
  EXPECT_EQ(fmt_pm_sig(12.3456, 1.234), "12.3 ± 1.2");
  EXPECT_EQ(fmt_pm_sig(1234.7, 56.0), "1235 ± 56");
  // Small values share one exponent instead of long runs of zeros.
  EXPECT_EQ(fmt_pm_sig(3.1004e-5, 2.1e-7), "(3.100 ± 0.021)e-05");
  EXPECT_EQ(fmt_pm_sig(1.0e7, 2.5e5), "(1.000 ± 0.025)e+07");
  // A half-width >= 1e4 switches to the shared exponent too (no spurious digits).
  EXPECT_EQ(fmt_pm_sig(732436.66, 136845.73), "(7.3 ± 1.4)e+05");
  EXPECT_EQ(fmt_pm_sig(434.22, 165.77), "434 ± 166");
  EXPECT_EQ(fmt_pm_sig(0.5, std::nullopt), "0.5000 ± n/a (n < 2)");
  EXPECT_EQ(fmt_pm_sig(4224.0, 0.0), "4224 ± 0");
  // A half-width far below the mean does not print a runaway number of digits.
  EXPECT_EQ(fmt_pm_sig(1.0, 1e-15), "1.0000000 ± 0.0000000");
}

TEST(ReportFormat, Scientific) {
  EXPECT_EQ(fmt_sci(9.915e-4, 4), "9.915e-04");
  EXPECT_EQ(fmt_sci(0.0010016, 4), "1.002e-03");
  EXPECT_EQ(fmt_pm_sci(0.001000, 0.000082), "(1.000 ± 0.082)e-03");
  EXPECT_EQ(fmt_pm_sci(8.01e-4, 6.6e-5), "(8.01 ± 0.66)e-04");
  EXPECT_EQ(fmt_pm_sci(0.5, std::nullopt), "5.000e-01 ± n/a (n < 2)");
}

TEST(ReportFormat, Short) {
  EXPECT_EQ(fmt_short(0.5), "0.5");
  EXPECT_EQ(fmt_short(20.0), "20");
  EXPECT_EQ(fmt_short(0.0078125), "0.0078125");
  EXPECT_EQ(fmt_short(1e-5), "1e-05");
}

TEST(ReportFormat, RangeAndEscape) {
  EXPECT_EQ(fmt_range_fixed(0.7853, 0.7946, 3), "[0.785, 0.795]");
  EXPECT_EQ(escape_cell("a|b\nc"), "a\\|b c");
  EXPECT_EQ(display_width("0.790 ± 0.005"), 13u);
  EXPECT_EQ(display_width("≤ 1.05×"), 7u);
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string l;
  while (std::getline(in, l)) out.push_back(l);
  return out;
}

TEST(ReportTable, AlignedColumns) {
  Table t({"stream", "ratio", "verdict"}, {Align::kLeft, Align::kRight, Align::kCenter});
  t.add_row({"sliding_window_kv", "0.790 ± 0.005", "win"});
  t.add_row({"hca", "1.043 ± 0.051", "tied"});
  const std::string r = t.render();
  const auto lines = lines_of(r);
  ASSERT_EQ(lines.size(), 4u);
  // Every line has the same display width: the raw markdown reads as a table.
  for (const auto& l : lines) EXPECT_EQ(display_width(l), display_width(lines[0])) << l;
  EXPECT_EQ(lines[0], "| stream            |         ratio | verdict |");
  EXPECT_EQ(lines[1], "| ----------------- | ------------: | :-----: |");
  EXPECT_EQ(lines[2], "| sliding_window_kv | 0.790 ± 0.005 |   win   |");
  EXPECT_EQ(lines[3], "| hca               | 1.043 ± 0.051 |  tied   |");
  EXPECT_EQ(r.back(), '\n');
}

TEST(ReportTable, EscapesPipes) {
  Table t({"a"});
  t.add_row({"x|y"});
  EXPECT_NE(t.render().find("x\\|y"), std::string::npos);
}

TEST(ReportTable, WrongCellCountIsAnInvariantViolation) {
  Table t({"a", "b"});
  EXPECT_DEATH(t.add_row({"only one"}), "row has 1 cells");
}

TEST(ReportDocument, BlocksSeparatedByOneBlankLine) {
  Document d;
  d.heading(1, "Findings");
  d.paragraph("Text.");
  d.bullets({"one", "two"});
  Table t({"k", "v"});
  t.add_row({"a", "1"});
  d.table(t, "note");
  d.image("plot", "FINDINGS_pareto.svg");
  d.code("kvlab report findings\n", "sh");
  const std::string expect =
      "# Findings\n\nText.\n\n- one\n- two\n\n| k   | v   |\n| --- | --- |\n| a   | 1   |\n\n*note*\n\n"
      "![plot](FINDINGS_pareto.svg)\n\n```sh\nkvlab report findings\n```\n";
  EXPECT_EQ(d.str(), expect);
}

TEST(ReportDocument, Deterministic) {
  auto build = [] {
    Document d;
    d.heading(2, "x");
    Table t({"v"}, {Align::kRight});
    for (int i = 0; i < 20; ++i) t.add_row({fmt_sig(std::pow(1.7, i), 4)});
    d.table(t);
    return d.str();
  };
  EXPECT_EQ(build(), build());
}

}  // namespace
}  // namespace kvlab::report
