// Descriptive statistics over one value per passage (SPEC section 5):
// mean, sample standard deviation, the Student-t 95 % half-width with the
// exact quantile (Boost.Math), and two-sample comparisons (paired t, Welch).
//
// Pure functions on plain vectors. n < 2 gives no spread and no interval:
// the optionals stay empty (never "± 0"). Non-finite inputs propagate into
// the mean (a codec that produced NaN shows up as NaN, not as a silently
// dropped passage).
//
// Not here: what the values are (study.h), formatting (src/report/).
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <vector>

namespace kvlab::stats {

// Quantile of Student's t distribution with `df` degrees of freedom
// (df > 0, may be fractional as in Welch's test); p in (0, 1).
// Throws kvlab::Error for df <= 0 or p outside (0, 1).
double student_t_quantile(double p, double df);

// Two-sided p-value of a t statistic with df degrees of freedom: 2 P(T > |t|)
// (0 for an infinite t, NaN for a NaN t).
double t_two_sided_p(double t, double df);

// Two-sided 95 % critical value t(0.975, df).
double t975(double df);

// Mean, sample standard deviation (divisor n - 1) and CI95 half-width
// t(0.975, n-1) * sd / sqrt(n) of a sample.
struct Summary {
  int n = 0;
  double mean = 0.0;               // NaN when n == 0
  std::optional<double> sd;        // none when n < 2
  std::optional<double> ci95_hw;   // none when n < 2

  bool has_interval() const { return ci95_hw.has_value(); }
  // mean -/+ half-width; none when there is no interval.
  std::optional<double> lower() const;
  std::optional<double> upper() const;
};

Summary describe(std::span<const double> xs);
inline Summary describe(const std::vector<double>& xs) { return describe(std::span<const double>(xs)); }

// A difference of means a - b with its 95 % interval.
struct Comparison {
  enum class Method { kPaired, kWelch };
  Method method = Method::kWelch;
  int n_a = 0;
  int n_b = 0;
  double mean_a = 0.0;
  double mean_b = 0.0;
  double diff = 0.0;                // mean_a - mean_b (paired: mean of a_i - b_i, the same number)
  std::optional<double> ci95_hw;    // none when not estimable (n < 2 on a side, zero spread for Welch)
  std::optional<double> df;         // n - 1 (paired) or Welch-Satterthwaite
  std::optional<double> t;          // diff / standard error
  std::optional<double> p_value;    // two-sided
  // True when the interval excludes 0.
  bool significant() const;
};

// Paired t on a_i - b_i; a and b must have equal length (throws kvlab::Error otherwise).
Comparison paired_difference(std::span<const double> a, std::span<const double> b);
// Welch's unequal-variance t (Welch 1947; Satterthwaite 1946 degrees of freedom).
Comparison welch_difference(std::span<const double> a, std::span<const double> b);

}  // namespace kvlab::stats
