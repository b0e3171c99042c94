// Descriptive statistics on vectors that can be checked by hand.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.h"
#include "stats/descriptive.h"

namespace ks = kvlab::stats;

TEST(StatsDescriptive, StudentTQuantilesMatchTables) {
  // Printed t tables (two-sided 95 %): 12.706, 4.303, 2.3646, 2.1604, 1.960 (df -> inf).
  EXPECT_NEAR(ks::t975(1), 12.7062, 1e-4);
  EXPECT_NEAR(ks::t975(2), 4.3027, 1e-4);
  EXPECT_NEAR(ks::t975(7), 2.3646, 1e-4);
  EXPECT_NEAR(ks::t975(13), 2.1604, 1e-4);
  EXPECT_NEAR(ks::t975(1e7), 1.95996, 1e-4);
  // Fractional df (Welch) lies between its integer neighbours.
  EXPECT_GT(ks::t975(5.5), ks::t975(6));
  EXPECT_LT(ks::t975(5.5), ks::t975(5));
  EXPECT_NEAR(ks::student_t_quantile(0.5, 3), 0.0, 1e-12);
  EXPECT_THROW(ks::t975(0), kvlab::Error);
  EXPECT_THROW(ks::student_t_quantile(1.0, 5), kvlab::Error);
}

TEST(StatsDescriptive, MeanSdAndHalfWidthOfOneToEight) {
  // 1..8: mean 4.5, sum of squared deviations 42, sample variance 6.
  const std::vector<double> x = {1, 2, 3, 4, 5, 6, 7, 8};
  const ks::Summary s = ks::describe(x);
  EXPECT_EQ(s.n, 8);
  EXPECT_DOUBLE_EQ(s.mean, 4.5);
  ASSERT_TRUE(s.sd.has_value());
  EXPECT_NEAR(*s.sd, std::sqrt(6.0), 1e-12);
  ASSERT_TRUE(s.ci95_hw.has_value());
  // 2.3646 * sqrt(6) / sqrt(8) = 2.3646 * 0.8660254
  EXPECT_NEAR(*s.ci95_hw, 2.3646 * 0.8660254, 2e-4);
  EXPECT_NEAR(*s.lower(), 4.5 - *s.ci95_hw, 1e-12);
  EXPECT_NEAR(*s.upper(), 4.5 + *s.ci95_hw, 1e-12);
}

TEST(StatsDescriptive, FourteenValuesUseT13) {
  // 0,1,...,13: mean 6.5, sample variance = n(n+1)/12 = 14*15/12 = 17.5.
  std::vector<double> x;
  for (int i = 0; i < 14; ++i) x.push_back(i);
  const ks::Summary s = ks::describe(x);
  EXPECT_DOUBLE_EQ(s.mean, 6.5);
  EXPECT_NEAR(*s.sd, std::sqrt(17.5), 1e-12);
  EXPECT_NEAR(*s.ci95_hw, 2.1604 * std::sqrt(17.5) / std::sqrt(14.0), 2e-4);
}

TEST(StatsDescriptive, FewerThanTwoValuesGiveNoInterval) {
  const ks::Summary one = ks::describe(std::vector<double>{0.25});
  EXPECT_EQ(one.n, 1);
  EXPECT_DOUBLE_EQ(one.mean, 0.25);
  EXPECT_FALSE(one.sd.has_value());
  EXPECT_FALSE(one.ci95_hw.has_value());
  EXPECT_FALSE(one.has_interval());
  EXPECT_FALSE(one.upper().has_value());
  const ks::Summary none = ks::describe(std::vector<double>{});
  EXPECT_EQ(none.n, 0);
  EXPECT_TRUE(std::isnan(none.mean));
  EXPECT_FALSE(none.ci95_hw.has_value());
}

TEST(StatsDescriptive, ConstantSampleHasZeroWidthInterval) {
  // Two or more identical values: the spread is genuinely 0 (an interval exists).
  const ks::Summary s = ks::describe(std::vector<double>{3, 3, 3});
  ASSERT_TRUE(s.ci95_hw.has_value());
  EXPECT_EQ(*s.ci95_hw, 0.0);
}

TEST(StatsDescriptive, NaNPropagatesIntoTheMean) {
  const ks::Summary s = ks::describe(std::vector<double>{1.0, std::nan(""), 2.0});
  EXPECT_TRUE(std::isnan(s.mean));
}

TEST(StatsDescriptive, PairedDifference) {
  // d = a - b = {0.1, -0.1, 0.2, 0.2}: mean 0.1, deviations {0,-0.2,0.1,0.1}, ss 0.06, var 0.02.
  const std::vector<double> a = {1.1, 0.9, 1.3, 1.0};
  const std::vector<double> b = {1.0, 1.0, 1.1, 0.8};
  const ks::Comparison c = ks::paired_difference(a, b);
  EXPECT_EQ(c.method, ks::Comparison::Method::kPaired);
  EXPECT_NEAR(c.diff, 0.1, 1e-12);
  ASSERT_TRUE(c.df && c.ci95_hw && c.t && c.p_value);
  EXPECT_DOUBLE_EQ(*c.df, 3.0);
  const double se = std::sqrt(0.02 / 4.0);
  EXPECT_NEAR(*c.t, 0.1 / se, 1e-9);
  EXPECT_NEAR(*c.ci95_hw, 3.182446 * se, 1e-5);  // t(0.975, 3) = 3.1824
  EXPECT_EQ(c.significant(), std::fabs(c.diff) > *c.ci95_hw);
  EXPECT_FALSE(c.significant());  // 0.1 < 3.18 * 0.0707
  EXPECT_GT(*c.p_value, 0.05);
  EXPECT_THROW(ks::paired_difference(a, std::vector<double>{1.0}), kvlab::Error);
}

TEST(StatsDescriptive, WelchDifference) {
  // a: mean 2.5, var 5/3; b: mean 6, var 10.
  const std::vector<double> a = {1, 2, 3, 4};
  const std::vector<double> b = {2, 4, 6, 8, 10};
  const ks::Comparison c = ks::welch_difference(a, b);
  EXPECT_EQ(c.method, ks::Comparison::Method::kWelch);
  EXPECT_DOUBLE_EQ(c.diff, -3.5);
  const double va = (5.0 / 3.0) / 4.0, vb = 10.0 / 5.0;
  const double df = (va + vb) * (va + vb) / (va * va / 3.0 + vb * vb / 4.0);
  ASSERT_TRUE(c.df && c.ci95_hw && c.t && c.p_value);
  EXPECT_NEAR(*c.df, df, 1e-12);
  EXPECT_NEAR(*c.df, 5.5210, 1e-3);
  EXPECT_NEAR(*c.t, -3.5 / std::sqrt(va + vb), 1e-12);
  EXPECT_NEAR(*c.ci95_hw, ks::t975(df) * std::sqrt(va + vb), 1e-12);
  // |t| = 2.2514 vs t(0.975, 5.52) ~ 2.50: not significant, p between 0.05 and 0.1.
  EXPECT_FALSE(c.significant());
  EXPECT_GT(*c.p_value, 0.05);
  EXPECT_LT(*c.p_value, 0.10);
  // A sample of one on either side: no interval.
  const ks::Comparison d = ks::welch_difference(std::vector<double>{1.0}, b);
  EXPECT_FALSE(d.ci95_hw.has_value());
  EXPECT_FALSE(d.significant());
}

TEST(StatsDescriptive, PValueAtTheCriticalValueIsFivePercent) {
  // Build a paired sample whose t statistic equals t(0.975, 3) exactly.
  // d = {m+e, m-e, m+e, m-e}: sd = e * sqrt(4/3), se = e / sqrt(3), t = m sqrt(3) / e.
  const double e = 1.0, m = ks::t975(3) / std::sqrt(3.0);
  const std::vector<double> a = {m + e, m - e, m + e, m - e};
  const std::vector<double> zero = {0, 0, 0, 0};
  const ks::Comparison c = ks::paired_difference(a, zero);
  EXPECT_NEAR(*c.t, ks::t975(3), 1e-9);
  EXPECT_NEAR(*c.p_value, 0.05, 1e-9);
}
