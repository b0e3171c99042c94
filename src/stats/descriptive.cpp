// Descriptive statistics: see descriptive.h.
#include "stats/descriptive.h"

#include <cmath>
#include <limits>

#include <boost/math/distributions/students_t.hpp>

#include "common/error.h"

namespace kvlab::stats {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double two_sided_p(double t, double df) {
  if (!std::isfinite(t)) return std::isnan(t) ? kNaN : 0.0;
  boost::math::students_t dist(df);
  return 2.0 * boost::math::cdf(boost::math::complement(dist, std::fabs(t)));
}
}  // namespace

double t_two_sided_p(double t, double df) { return two_sided_p(t, df); }

double student_t_quantile(double p, double df) {
  KVLAB_CHECK(df > 0 && std::isfinite(df), "Student-t degrees of freedom must be positive and finite, got {}", df);
  KVLAB_CHECK(p > 0 && p < 1, "Student-t quantile probability must be in (0, 1), got {}", p);
  boost::math::students_t dist(df);
  return boost::math::quantile(dist, p);
}

double t975(double df) { return student_t_quantile(0.975, df); }

std::optional<double> Summary::lower() const {
  if (!ci95_hw) return std::nullopt;
  return mean - *ci95_hw;
}
std::optional<double> Summary::upper() const {
  if (!ci95_hw) return std::nullopt;
  return mean + *ci95_hw;
}

Summary describe(std::span<const double> xs) {
  Summary s;
  s.n = static_cast<int>(xs.size());
  if (xs.empty()) {
    s.mean = kNaN;
    return s;
  }
  double sum = 0.0;
  for (double x : xs) sum += x;
  s.mean = sum / static_cast<double>(xs.size());
  if (xs.size() < 2) return s;
  double ss = 0.0;
  for (double x : xs) ss += (x - s.mean) * (x - s.mean);
  const double n = static_cast<double>(xs.size());
  s.sd = std::sqrt(ss / (n - 1.0));
  s.ci95_hw = std::isfinite(*s.sd) ? t975(n - 1.0) * *s.sd / std::sqrt(n) : kNaN;
  return s;
}

bool Comparison::significant() const {
  return ci95_hw && std::isfinite(*ci95_hw) && std::fabs(diff) > *ci95_hw;
}

Comparison paired_difference(std::span<const double> a, std::span<const double> b) {
  KVLAB_CHECK(a.size() == b.size(), "paired comparison needs samples of equal length, got {} and {}", a.size(),
              b.size());
  std::vector<double> d(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  const Summary sa = describe(a), sb = describe(b), sd = describe(d);
  Comparison c;
  c.method = Comparison::Method::kPaired;
  c.n_a = sa.n;
  c.n_b = sb.n;
  c.mean_a = sa.mean;
  c.mean_b = sb.mean;
  c.diff = sd.mean;
  if (sd.n >= 2) {
    c.df = sd.n - 1.0;
    c.ci95_hw = sd.ci95_hw;
    const double se = *sd.sd / std::sqrt(static_cast<double>(sd.n));
    if (se > 0) {
      c.t = sd.mean / se;
      c.p_value = two_sided_p(*c.t, *c.df);
    }
  }
  return c;
}

Comparison welch_difference(std::span<const double> a, std::span<const double> b) {
  const Summary sa = describe(a), sb = describe(b);
  Comparison c;
  c.method = Comparison::Method::kWelch;
  c.n_a = sa.n;
  c.n_b = sb.n;
  c.mean_a = sa.mean;
  c.mean_b = sb.mean;
  c.diff = sa.mean - sb.mean;
  if (sa.n < 2 || sb.n < 2) return c;
  const double va = *sa.sd * *sa.sd / sa.n;
  const double vb = *sb.sd * *sb.sd / sb.n;
  const double se2 = va + vb;
  if (!(se2 > 0) || !std::isfinite(se2)) return c;
  const double df = se2 * se2 / (va * va / (sa.n - 1.0) + vb * vb / (sb.n - 1.0));
  const double se = std::sqrt(se2);
  c.df = df;
  c.ci95_hw = t975(df) * se;
  c.t = c.diff / se;
  c.p_value = two_sided_p(*c.t, df);
  return c;
}

}  // namespace kvlab::stats
