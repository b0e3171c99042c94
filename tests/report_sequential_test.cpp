// The report text of the sequential decisions (report/summary.cpp
// decisions_section, report/console.cpp decisions_text): it states the
// look-corrected procedure with the stored per-look level, the one Holm
// family and the verdict words; rows of the earlier per-look rule are named
// as nominal instead of being presented as corrected.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "report/console.h"
#include "report/markdown.h"
#include "report/summary.h"
#include "store/decisions.h"

namespace kr = kvlab::report;
namespace kst = kvlab::store;

namespace {

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

// Two rows as experiment/sequential.cpp writes them with cap 32, alpha 0.05:
// a resolved one at its resolving look and one unresolved at the last look.
std::vector<kst::DecisionRow> corrected_rows() {
  kst::DecisionRow r;
  r.stream = "hca_pool_kv_ratio128";
  r.codec = "e8:q=38";
  r.metric = "rel_mse";
  r.threshold = "A";
  r.factor = 1.0;
  r.alpha = 0.05 / 31;
  r.n_evaluated = 8;
  r.ratio_mean = 0.901;
  r.ratio_ci95_hw = 0.0404;
  r.p_holm = 0.000826;
  r.verdict = "below";
  r.n_needed = 8;
  kst::DecisionRow u = r;
  u.codec = "d4:q=38";
  u.n_evaluated = 32;
  u.ratio_mean = 1.01;
  u.p_holm = 0.4;
  u.verdict = "unresolved";
  u.n_needed.reset();
  return {r, u};
}

std::string section(const std::vector<kst::DecisionRow>& rows) {
  kr::Document d;
  kr::detail::decisions_section(d, rows);
  return d.str();
}

}  // namespace

TEST(ReportSequential, SectionStatesTheLookCorrectedProcedure) {
  const std::string t = section(corrected_rows());
  EXPECT_TRUE(has(t, "### Passages each decision needed")) << t;
  EXPECT_TRUE(has(t, "1 of 2 decisions resolved, the slowest after 8 passages")) << t;
  EXPECT_TRUE(has(t, "unresolved at the last look, 32 passages")) << t;
  EXPECT_TRUE(has(t, "K = cap − 1 looks")) << t;
  EXPECT_TRUE(has(t, "α_look = 0.0016")) << t;           // the stored per-look level
  EXPECT_TRUE(has(t, "31 for the default α = 0.05")) << t;  // K = alpha / level
  EXPECT_TRUE(has(t, "all of the 2 decisions still open (one family")) << t;
  EXPECT_TRUE(has(t, "union bound")) << t;
  EXPECT_TRUE(has(t, "not widened for the looks or the family")) << t;
  EXPECT_FALSE(has(t, "earlier rule")) << t;
  // Verdict words defined and used; p, n and needed columns.
  EXPECT_TRUE(has(t, "| below (meets)") && has(t, "| unresolved")) << t;
  EXPECT_TRUE(has(t, "| p (Holm) |") && has(t, "|   n |") && has(t, "  needed |")) << t;
  EXPECT_TRUE(has(t, "| not yet |")) << t;
  EXPECT_TRUE(has(t, "threshold (rel_mse)")) << t;
  EXPECT_TRUE(section({}).empty());
}

TEST(ReportSequential, RowsOfTheEarlierRuleAreCalledNominal) {
  // The earlier rule stored alpha 0.05 and the latest n for every row (n_evaluated 5, needed 2).
  auto rows = corrected_rows();
  for (auto& r : rows) {
    r.alpha = 0.05;
    r.n_evaluated = 5;
  }
  rows[0].n_needed = 2;
  const std::string t = section(rows);
  EXPECT_TRUE(has(t, "earlier rule") && has(t, "nominal")) << t;
  EXPECT_FALSE(has(t, "The rule is corrected")) << t;
  const std::string c = kr::decisions_text(rows);
  EXPECT_TRUE(has(c, "note: rows of the earlier rule")) << c;
}

TEST(ReportSequential, ConsoleStatesTheLevelAndTheFamily) {
  const std::string c = kr::decisions_text(corrected_rows());
  EXPECT_TRUE(has(c, "family-wise level 0.00161")) << c;
  EXPECT_TRUE(has(c, "31 for the default alpha 0.05")) << c;
  EXPECT_TRUE(has(c, "all 2 in one family")) << c;
  EXPECT_TRUE(has(c, "passages needed")) << c;
  EXPECT_TRUE(has(c, "0.9010 ± 0.0404") && has(c, " 8\n") && has(c, "> 32")) << c;
  EXPECT_FALSE(has(c, "earlier rule")) << c;
}
