// The console number formats; see console_format.h.
#include "report/console_format.h"

#include <cmath>

#include <fmt/format.h>

namespace kvlab::report {

std::string console_num(double v, int sig) {
  if (std::isnan(v)) return "nan";
  return fmt::format("{:.{}g}", v, sig);
}

std::string console_ci(const stats::Summary& s, int sig) {
  if (s.n == 0) return "-";
  if (!s.ci95_hw) return fmt::format("{} (n={}, no CI)", console_num(s.mean, sig), s.n);
  return fmt::format("{} ± {}", console_num(s.mean, sig), console_num(*s.ci95_hw, 2));
}

std::string console_ci_fixed(const stats::Summary& s, int decimals) {
  if (s.n == 0) return "-";
  if (!s.ci95_hw) return fmt::format("{:.{}f} (n={}, no CI)", s.mean, decimals, s.n);
  return fmt::format("{:.{}f} ± {:.{}f}", s.mean, decimals, *s.ci95_hw, decimals);
}

}  // namespace kvlab::report
