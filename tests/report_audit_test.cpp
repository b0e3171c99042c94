// The findings report's audit section beside its Gaussian null (report/audit.h).
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include <fmt/format.h>

#include "report/audit.h"
#include "report/markdown.h"
#include "stats/audit_null.h"
#include "stats/study.h"

namespace kvlab::report::detail {
namespace {

stats::AuditMetricStats metric(const std::string& name, double gate, double mean) {
  stats::AuditMetricStats m;
  m.metric = name;
  m.gate = gate;
  m.value.n = 8;
  m.value.mean = mean;
  m.value.sd = 0.01;
  m.value.ci95_hw = 0.01;
  m.fires = mean > gate;
  m.passages_firing = m.fires ? 8 : 0;
  return m;
}

stats::StreamAuditStats stream(const std::string& name, std::int64_t n, int dim, double kurt, double w2) {
  stats::StreamAuditStats a;
  a.stream = name;
  a.n_passages = 8;
  a.n_vectors = n;
  a.dim = dim;
  a.metrics = {metric("excess_kurtosis_abs", 0.5, kurt), metric("isotropy_variance_ratio", 1.5, 12.0),
               metric("hadamard_post_variance_ratio", 1.5, 11.0),
               metric("rms_wasserstein2_over_sigma_per_dim", 0.05, w2)};
  return a;
}

// The table row of (stream, metric), split into trimmed cells.
std::vector<std::string> row(const std::string& md, const std::string& stream, const std::string& metric) {
  std::istringstream in(md);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("`" + stream + "`") == std::string::npos || line.find("`" + metric + "`") == std::string::npos)
      continue;
    std::vector<std::string> cells;
    std::string cell;
    std::istringstream ls(line.substr(1));
    while (std::getline(ls, cell, '|')) {
      const auto b = cell.find_first_not_of(' '), e = cell.find_last_not_of(' ');
      cells.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
    }
    return cells;
  }
  return {};
}

std::string render(const stats::StudySummary& s) {
  Document d;
  audit_section(d, s);
  return d.str();
}

TEST(ReportAudit, EachMetricSitsBesideItsNullAndSaysWhetherItExceedsThe99Quantile) {
  stats::StudySummary s;
  // HCA-like: 16 vectors. A kurtosis of 0.72 fires the 0.5 gate but lies
  // inside the Gaussian null (median about 0.7); a W2 of 0.9 is far above it.
  s.audits = {stream("hca", 16, 512, 0.72, 0.9), stream("odd", 16, 48, 0.72, 0.9)};
  const std::string md = render(s);
  const auto& null = stats::audit_null(16, 512);
  const auto* kn = null.find("excess_kurtosis_abs");
  ASSERT_LT(kn->q50, 0.72);
  ASSERT_GT(kn->q99, 0.72);

  const auto k = row(md, "hca", "excess_kurtosis_abs");
  ASSERT_EQ(k.size(), 10u) << md;
  EXPECT_EQ(k[6], "yes");  // fires the gate
  EXPECT_EQ(k[7], fmt_sig(kn->q50, 3) + " / " + fmt_sig(kn->q95, 3) + " / " + fmt_sig(kn->q99, 3));
  EXPECT_EQ(k[8], fmt::format("{} of {}", null.replicates, null.replicates));  // every Gaussian of this shape fires it
  EXPECT_EQ(k[9], "no");     // but the stream is within the null
  const auto w = row(md, "hca", "rms_wasserstein2_over_sigma_per_dim");
  ASSERT_EQ(w.size(), 10u);
  EXPECT_EQ(w[9], "yes");
  // D = 48 is not a power of two: the audit's shape has no null.
  const auto o = row(md, "odd", "excess_kurtosis_abs");
  ASSERT_EQ(o.size(), 10u);
  EXPECT_EQ(o[7], kNotAvailable);
  EXPECT_EQ(o[9], kNotAvailable);
  EXPECT_NE(md.find("does not invalidate the measured rel-MSE"), std::string::npos);
  EXPECT_NE(md.find("within the null: kurtosis"), std::string::npos);
  EXPECT_NE(md.find(fmt::format("null from {} replicates", null.replicates)), std::string::npos);
  // Reproducible bytes (seeded, no clock).
  EXPECT_EQ(md, render(s));
}

// A null of fewer than 100 replicates has no usable 99 % quantile: "beyond
// the null" then means above every replicate, and the text says so.
TEST(ReportAudit, SmallNullsCompareWithTheirLargestReplicate) {
  const auto& null = stats::audit_null(2048, 512);
  ASSERT_LT(null.replicates, 100);
  const auto* kn = null.find("excess_kurtosis_abs");
  ASSERT_LT(kn->q99, kn->max);
  stats::StudySummary s;
  // Between the interpolated 99 % quantile and the largest replicate: not beyond.
  s.audits = {stream("swa", 2048, 512, (kn->q99 + kn->max) / 2, 0.107)};
  std::string md = render(s);
  EXPECT_EQ(row(md, "swa", "excess_kurtosis_abs")[9], "no") << md;
  EXPECT_NE(md.find(fmt::format("above all {} null replicates", null.replicates)), std::string::npos) << md;
  s.audits = {stream("swa", 2048, 512, kn->max * 1.01, 0.107)};
  md = render(s);
  EXPECT_EQ(row(md, "swa", "excess_kurtosis_abs")[9], "yes") << md;
}

TEST(ReportAudit, NoAuditsSaysSo) {
  stats::StudySummary s;
  EXPECT_NE(render(s).find("No audit rows were recorded"), std::string::npos);
}

}  // namespace
}  // namespace kvlab::report::detail
