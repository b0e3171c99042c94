// Holm's step-down adjustment on a hand case and against the textbook
// rejection procedure, and the threshold decisions (one-sample t of the
// paired ratio against the threshold, Holm within stream x threshold).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.h"
#include "stats/sequential.h"

namespace ks = kvlab::stats;

TEST(StatsSequential, HolmHandCase) {
  // Sorted 0.005, 0.01, 0.03, 0.04 -> 4 * 0.005 = 0.02, 3 * 0.01 = 0.03, 2 * 0.03 = 0.06, max(0.06, 1 * 0.04) = 0.06.
  const auto adj = ks::holm_adjust({0.01, 0.04, 0.03, 0.005});
  ASSERT_EQ(adj.size(), 4u);
  EXPECT_DOUBLE_EQ(adj[0], 0.03);
  EXPECT_DOUBLE_EQ(adj[1], 0.06);
  EXPECT_DOUBLE_EQ(adj[2], 0.06);
  EXPECT_DOUBLE_EQ(adj[3], 0.02);
  EXPECT_EQ(ks::holm_adjust({0.7, 0.9}), (std::vector<double>{1.0, 1.0}));  // capped at 1
  EXPECT_EQ(ks::holm_adjust({0.2}), (std::vector<double>{0.2}));             // one test: unchanged
  EXPECT_TRUE(ks::holm_adjust({}).empty());
  EXPECT_THROW(ks::holm_adjust({0.1, 1.5}), kvlab::Error);
  EXPECT_THROW(ks::holm_adjust({std::nan("")}), kvlab::Error);
}

TEST(StatsSequential, HolmMatchesTheTextbookStepDown) {
  // Textbook (Holm 1979): order p ascending; reject H_(1..k-1) where k is the
  // first i with p_(i) > alpha / (m - i + 1). adjusted p < alpha must reject the same set.
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0.0, 0.2);
  for (int trial = 0; trial < 200; ++trial) {
    const std::size_t m = 1 + trial % 9;
    std::vector<double> p(m);
    for (auto& x : p) x = u(rng);
    const double alpha = 0.05;
    std::vector<std::size_t> order(m);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return p[a] < p[b]; });
    std::vector<bool> textbook(m, false);
    for (std::size_t i = 0; i < m; ++i) {
      if (p[order[i]] > alpha / static_cast<double>(m - i)) break;
      textbook[order[i]] = true;
    }
    const auto adj = ks::holm_adjust(p);
    for (std::size_t i = 0; i < m; ++i) EXPECT_EQ(adj[i] <= alpha, textbook[i]) << "trial " << trial << " i " << i;
  }
}

namespace {

ks::CellStats cell(const std::string& stream, const std::string& codec, ks::Summary ratio) {
  ks::CellStats c;
  c.stream = stream;
  c.codec = codec;
  c.metric_ratios["rel_mse"] = ratio;
  return c;
}

}  // namespace

TEST(StatsSequential, DecisionsTestTheRatioAgainstEachThreshold) {
  ks::StudySummary s;
  s.baseline = "fp8_per64";
  s.metric = "rel_mse";
  s.cells.push_back(cell("sliding_window_kv", "fp8_per64", {}));
  // ratio 0.8 +- sd 0.1 over n = 4: t vs 1.0 = -0.2 / 0.05 = -4 on 3 df.
  s.cells.push_back(cell("sliding_window_kv", "e8:q=38", {4, 0.8, 0.1, std::nullopt}));
  // ratio 1.01 +- sd 0.2: never resolved against A.
  s.cells.push_back(cell("sliding_window_kv", "e8:q=22", {4, 1.01, 0.2, std::nullopt}));
  // one passage: no p.
  s.cells.push_back(cell("hca_pool_kv_ratio128", "e8:q=38", {1, 0.5, std::nullopt, std::nullopt}));
  const auto d = ks::threshold_decisions(s, {ks::parse_threshold("A"), ks::parse_threshold("C")}, 0.05);
  ASSERT_EQ(d.size(), 6u);
  EXPECT_EQ(d[0].codec, "e8:q=38");
  EXPECT_EQ(d[0].threshold.name, "A");
  ASSERT_TRUE(d[0].p_value.has_value());
  EXPECT_NEAR(*d[0].p_value, ks::t_two_sided_p(-4.0, 3), 1e-15);
  EXPECT_NEAR(*d[0].p_value, 0.02799, 5e-5);  // 2 P(T_3 > 4)
  // Holm over the two SWA codecs at threshold A: the larger p (e8:q=22) is 1 x p, the smaller 2 x p.
  ASSERT_TRUE(d[2].p_value.has_value());
  EXPECT_NEAR(*d[0].p_holm, std::max(2 * *d[0].p_value, 0.0), 1e-15);
  EXPECT_NEAR(*d[2].p_holm, std::max(*d[2].p_value, 2 * *d[0].p_value), 1e-15);
  EXPECT_FALSE(d[0].resolved);  // 0.056 >= 0.05 after Holm although p = 0.028
  EXPECT_EQ(d[0].verdict, "unresolved");
  // Against C (1.2): t = -8 -> resolved below.
  EXPECT_EQ(d[1].threshold.name, "C");
  EXPECT_TRUE(d[1].resolved);
  EXPECT_EQ(d[1].verdict, "below");
  // n = 1: no p, unresolved.
  EXPECT_FALSE(d[4].p_value.has_value());
  EXPECT_EQ(d[4].verdict, "unresolved");
  // Zero spread: resolved whenever the mean differs from the threshold.
  ks::StudySummary z;
  z.baseline = "fp8_per64";
  z.cells.push_back(cell("sliding_window_kv", "e8:q=10", {3, 2.0, 0.0, 0.0}));
  const auto dz = ks::threshold_decisions(z, {ks::parse_threshold("B")}, 0.05);
  ASSERT_EQ(dz.size(), 1u);
  EXPECT_EQ(dz[0].verdict, "above");
  EXPECT_THROW(ks::threshold_decisions(z, {ks::parse_threshold("B")}, 1.5), kvlab::Error);
}
