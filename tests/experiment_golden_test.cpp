// Regression golden: rerun experiments/smoke.ini on the embedded default
// (real torch executor: synthetic host -> V4 write path -> codecs) and
// compare every run and audit with tests/golden/smoke.json within the
// tolerances stated in that file. A failure names the run and the metric;
// `kvlab golden update` rewrites the file on purpose.
// Also checks that the comparison itself can fail (planted changes).
#include <cstdio>

#include <fmt/format.h>

#include <gtest/gtest.h>

#include "experiment/golden.h"
#include "testutil/testutil.h"

namespace kvlab::experiment {
namespace {

TEST(ExperimentGolden, SmokeRerunMatchesTheGoldenFile) {
  const auto expected = read_golden(testutil::source_path("tests/golden/smoke.json"));
  ASSERT_EQ(expected.spec, "experiments/smoke.ini");
  const auto actual = compute_golden(testutil::source_path(expected.spec), expected.executor);
  const auto diffs = compare_golden(expected, actual);
  std::printf("golden: %zu runs, %zu audits compared (rel_mse rel tol %.1e, cos_sim abs tol %.1e, audit rel tol %.1e)\n",
              actual.runs.size(), actual.audits.size(), expected.tolerance.rel_mse_rel, expected.tolerance.cos_sim_abs,
              expected.tolerance.audit_rel);
  std::string all;
  for (const auto& d : diffs) all += "  " + d + "\n";
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences from tests/golden/smoke.json "
                             << "(if intended: `kvlab golden update` and commit the diff):\n"
                             << all;
  EXPECT_EQ(actual.runs.size(), 24u);
  EXPECT_EQ(actual.audits.size(), 6u);
}

TEST(ExperimentGolden, ComparisonNamesTheRunAndMetricThatMoved) {
  const auto g = read_golden(testutil::source_path("tests/golden/smoke.json"));
  ASSERT_FALSE(g.runs.empty());
  EXPECT_TRUE(compare_golden(g, g).empty());
  // Within tolerance: accepted.
  auto small = g;
  small.runs[3].rel_mse *= 1 + 0.5 * g.tolerance.rel_mse_rel;
  EXPECT_TRUE(compare_golden(g, small).empty());
  // Beyond tolerance: named.
  auto moved = g;
  moved.runs[3].rel_mse *= 1 + 3 * g.tolerance.rel_mse_rel;
  moved.runs[5].bits_per_vector += 8;
  moved.audits[1].excess_kurtosis_abs *= 1.1;
  const auto d = compare_golden(g, moved);
  ASSERT_EQ(d.size(), 3u);
  const auto& r3 = g.runs[3];
  EXPECT_NE(d[0].find(fmt::format("run {} / {} / {}: rel_mse", r3.passage, r3.stream, r3.codec)), std::string::npos)
      << d[0];
  EXPECT_NE(d[1].find("bits_per_vector"), std::string::npos) << d[1];
  EXPECT_NE(d[2].find("excess_kurtosis_abs"), std::string::npos) << d[2];
  // Missing and extra runs are reported too.
  auto fewer = g;
  fewer.runs.pop_back();
  EXPECT_EQ(compare_golden(g, fewer).size(), 1u);
  EXPECT_NE(compare_golden(g, fewer)[0].find("missing from the rerun"), std::string::npos);
  EXPECT_NE(compare_golden(fewer, g)[0].find("new in the rerun"), std::string::npos);
  // JSON round trip is exact.
  const auto back = golden_from_json(golden_to_json(g));
  EXPECT_TRUE(compare_golden(g, back).empty());
  EXPECT_EQ(back.runs.size(), g.runs.size());
  EXPECT_EQ(back.runs[0].rel_mse, g.runs[0].rel_mse);
}

}  // namespace
}  // namespace kvlab::experiment
