// The number formats of the console renderers (report/console.h,
// report/console_runs.h): significant digits, mean ± CI95 half-width.
//
// Not here: the markdown reports' formats (report/markdown.h).
#pragma once

#include <string>

#include "stats/descriptive.h"

namespace kvlab::report {

// "%.{sig}g"; "nan" for NaN.
std::string console_num(double v, int sig = 4);
// "mean ± hw" with sig significant digits (hw: 2); "mean (n=N, no CI)"
// without an interval; "-" for an empty sample.
std::string console_ci(const stats::Summary& s, int sig = 4);
// The same with `decimals` fixed decimals on both.
std::string console_ci_fixed(const stats::Summary& s, int decimals = 3);

}  // namespace kvlab::report
