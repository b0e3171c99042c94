// End-to-end tests of `kvlab report findings` / `kvlab report max-usable-cr`
// through the built executable: the golden test of issue 5 (import the
// published n = 8 JSON into a fresh database, regenerate FINDINGS_N8.md and
// find the SPEC section 6 figures in its tables), byte-identical output on a
// second run, the database hash in the provenance, and errors with their
// exit codes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/hash.h"
#include "testutil/testutil.h"

namespace kvlab::report {
namespace {

constexpr auto& cells = testutil::md_cells;

namespace fs = std::filesystem;
using testutil::kvlab_binary;
using testutil::run_command;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Cells of the first table row in section `heading` whose first cell starts with `first`.
std::vector<std::string> find_row(const std::string& md, const std::string& heading, const std::string& first) {
  std::istringstream in(md);
  std::string l;
  bool inside = false;
  while (std::getline(in, l)) {
    if (l.rfind("## ", 0) == 0) inside = l.rfind("## " + heading, 0) == 0;
    if (!inside || l.rfind("|", 0) != 0) continue;
    auto c = cells(l);
    if (!c.empty() && c[0].rfind(first, 0) == 0) return c;
  }
  return {};
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
  for (const auto& e : v) {
    if (e == x) return true;
  }
  return false;
}

// One imported database per test suite (each kvlab start loads LibTorch).
class ReportCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite_dir_ = testutil::make_temp_dir("kvlab-report-cli");
    suite_db_ = suite_dir_ + "/k.db";
    if (!fs::exists(kvlab_binary())) return;  // reported by SetUp
    import_rc_ = run_command(kvlab_binary() + " import published " + testutil::reference_path("stage075_n8.json") +
                                 " --db " + suite_db_,
                             &import_out_);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(suite_dir_, ec);
  }
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kvlab_binary()))
        << "the kvlab executable is needed (build target kvlab): " << kvlab_binary();
    ASSERT_EQ(import_rc_, 0) << import_out_;
    dir_ = testutil::make_temp_dir("kvlab-report-out");
    db_ = suite_db_;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  static inline std::string suite_dir_, suite_db_, import_out_;
  static inline int import_rc_ = -1;
  int report(const std::string& kind, const std::string& out_md, std::string* output,
             const std::string& extra = "") {
    return run_command(kvlab_binary() + " report " + kind + " --db " + db_ + " --experiment stage075_n8 --out " +
                           out_md + " " + extra,
                       output);
  }
  std::string dir_, db_;
};

TEST_F(ReportCli, GoldenFindingsFromImportedPublishedRun) {
  std::string out;
  const std::string md_path = dir_ + "/reports/FINDINGS_N8.md";
  ASSERT_EQ(report("findings", md_path, &out), 0) << out;
  const std::string md = slurp(md_path);
  // SPEC section 6: E8 Q=38 / FP8 per stream, with the verdict from the interval.
  const auto swa = find_row(md, "Per stream", "`sliding_window_kv`");
  const auto csa = find_row(md, "Per stream", "`csa_pool_kv_ratio4`");
  const auto hca = find_row(md, "Per stream", "`hca_pool_kv_ratio128`");
  ASSERT_EQ(swa.size(), 7u) << md;
  EXPECT_EQ(swa[4], "0.790 ± 0.005");
  EXPECT_EQ(swa[6], "win");
  ASSERT_EQ(csa.size(), 7u);
  EXPECT_EQ(csa[4], "0.900 ± 0.006");
  EXPECT_EQ(csa[6], "win");
  ASSERT_EQ(hca.size(), 7u);
  EXPECT_EQ(hca[4], "1.043 ± 0.051");
  EXPECT_EQ(hca[6], "tied");
  // Layer weighted 0.959 ± 0.024 (published root-sum-square interval).
  const auto lw = find_row(md, "Layer-weighted", "**E8 Q=38**");
  ASSERT_EQ(lw.size(), 6u) << md;
  EXPECT_EQ(lw[3], "0.959 ± 0.024");
  // 3296 vs 4224 bits (-22.0 %).
  const auto bits = find_row(md, "Bits per vector", "**E8 Q=38**");
  ASSERT_EQ(bits.size(), 7u);
  EXPECT_EQ(bits[1], "3296");
  EXPECT_EQ(bits[2], "4224");
  EXPECT_EQ(bits[3], "-22.0 %");
  // Q=38..40 cost the same 3296 bits: Q=38 is flagged as a dominated operating point.
  EXPECT_EQ(bits[6], "Q=38-40 share these bits: dominated by Q=40 (lower error expected; not run)");
  // Provenance names the database bytes the report was computed from.
  const auto dbrow = find_row(md, "Provenance", "database");
  ASSERT_EQ(dbrow.size(), 2u);
  EXPECT_NE(dbrow[1].find(sha256_file(db_)), std::string::npos) << dbrow[1];
  EXPECT_TRUE(contains(find_row(md, "Provenance", "passages (n)"), "8"));
  // Plots next to the markdown, linked by relative name.
  EXPECT_TRUE(fs::exists(dir_ + "/reports/FINDINGS_N8_pareto.svg"));
  EXPECT_TRUE(fs::exists(dir_ + "/reports/FINDINGS_N8_passages.svg"));
  EXPECT_NE(md.find("](FINDINGS_N8_pareto.svg)"), std::string::npos);
}

TEST_F(ReportCli, SameDatabaseSameBytes) {
  std::string out;
  ASSERT_EQ(report("findings", dir_ + "/a/FINDINGS_N8.md", &out), 0) << out;
  ASSERT_EQ(report("findings", dir_ + "/b/FINDINGS_N8.md", &out), 0) << out;
  for (const char* f : {"FINDINGS_N8.md", "FINDINGS_N8_pareto.svg", "FINDINGS_N8_passages.svg"}) {
    EXPECT_EQ(slurp(dir_ + "/a/" + f), slurp(dir_ + "/b/" + f)) << f;
  }
  ASSERT_EQ(report("max-usable-cr", dir_ + "/a/MAX_USABLE_CR.md", &out), 0) << out;
  ASSERT_EQ(report("max-usable-cr", dir_ + "/b/MAX_USABLE_CR.md", &out), 0) << out;
  EXPECT_EQ(slurp(dir_ + "/a/MAX_USABLE_CR.md"), slurp(dir_ + "/b/MAX_USABLE_CR.md"));
  EXPECT_EQ(slurp(dir_ + "/a/MAX_USABLE_CR_pareto.svg"), slurp(dir_ + "/b/MAX_USABLE_CR_pareto.svg"));
  // The same with a published experiment beside the run (the main job's form of both commands).
  const std::string pub = dir_ + "/pub.db";
  ASSERT_EQ(run_command(kvlab_binary() + " import published " + testutil::reference_path("stage075_n8.json") +
                            " --db " + pub + " --experiment published_n8",
                        &out),
            0)
      << out;
  const std::string with = " --published-db " + pub + " --published-experiment published_n8";
  for (const char* kind : {"findings", "max-usable-cr"}) {
    ASSERT_EQ(report(kind, dir_ + "/c/R.md", &out, with), 0) << out;
    ASSERT_EQ(report(kind, dir_ + "/d/R.md", &out, with), 0) << out;
    const std::string a = slurp(dir_ + "/c/R.md");
    EXPECT_NE(a.find("## Summary"), std::string::npos) << kind;
    EXPECT_NE(a.find("`published_n8`"), std::string::npos) << kind;
    EXPECT_EQ(a, slurp(dir_ + "/d/R.md")) << kind;
  }
}

TEST_F(ReportCli, MaxUsableOnThePublishedGrid) {
  std::string out;
  const std::string md_path = dir_ + "/MAX_USABLE_CR.md";
  ASSERT_EQ(report("max-usable-cr", md_path, &out), 0) << out;
  const std::string md = slurp(md_path);
  for (const char* h : {"## Max usable Q per stream", "## Deployment strategies", "## Pareto table",
                        "## Monotonicity check", "## Suggested Q values"}) {
    EXPECT_NE(md.find(h), std::string::npos) << h;
  }
  // On the published grid (Q = 10, 38) SWA meets A with E8 at Q = 38 in the point view.
  bool found = false;
  std::istringstream in(md);
  std::string l;
  while (std::getline(in, l)) {
    const auto c = cells(l);
    if (c.size() == 11 && c[0].rfind("`sliding_window_kv`", 0) == 0 && c[1].rfind("A ", 0) == 0 && c[2] == "point" &&
        md.find("### E8") < md.find(l)) {
      found = true;
      EXPECT_EQ(c[3], "38") << l;
      EXPECT_EQ(c[5], "3296") << l;
    }
  }
  EXPECT_TRUE(found) << md;
}

// "Published vs this run": set beside a published per-passage import (paired
// intervals, overlap) and an aggregate-only import (ratio of means, no
// interval); without the options the section says none was given; the two
// options go together; the same databases give the same bytes.
TEST_F(ReportCli, PublishedVsRunSection) {
  std::string out;
  const std::string pub = dir_ + "/pub.db";
  for (const char* f : {"stage075_n8", "stage075_qsweep_fine_n8"}) {
    ASSERT_EQ(run_command(kvlab_binary() + " import published " + testutil::reference_path(std::string(f) + ".json") +
                              " --db " + pub + " --experiment pub_" + f,
                          &out),
              0)
        << out;
  }
  const std::string with = " --published-db " + pub + " --published-experiment pub_stage075_n8";
  ASSERT_EQ(report("findings", dir_ + "/a/F.md", &out, with), 0) << out;
  const std::string md = slurp(dir_ + "/a/F.md");
  const auto swa = find_row(md, "Published vs this run", "`sliding_window_kv`");
  ASSERT_EQ(swa.size(), 5u) << md;
  EXPECT_EQ(swa[1], "0.790 [0.785, 0.795]");  // this run is the published import itself
  EXPECT_EQ(swa[2], "0.790 [0.785, 0.795]");
  EXPECT_EQ(swa[4], "yes");
  EXPECT_NE(md.find("Known causes of a difference"), std::string::npos);
  ASSERT_EQ(report("findings", dir_ + "/b/F.md", &out, with), 0) << out;
  EXPECT_EQ(slurp(dir_ + "/a/F.md"), slurp(dir_ + "/b/F.md"));
  ASSERT_EQ(report("max-usable-cr", dir_ + "/c/M.md", &out,
                   " --published-db " + pub + " --published-experiment pub_stage075_qsweep_fine_n8"),
            0)
      << out;
  const std::string mu = slurp(dir_ + "/c/M.md");
  const auto agg = find_row(mu, "Published vs this run", "`hca_pool_kv_ratio128`");
  ASSERT_EQ(agg.size(), 5u);
  // The qsweep file has no per-passage values, but pub_stage075_n8 in the same database holds the same runs
  // (equal FP8 and E8 Q=38 means): its paired ratio is used, and the file's ratio of means is named beside it.
  EXPECT_EQ(agg[2], "1.043 [0.992, 1.094]");
  EXPECT_EQ(agg[3], "paired per passage, n = 8, from `pub_stage075_n8` (the same runs); ratio of the file's means 1.044");
  EXPECT_EQ(agg[4], "yes");
  EXPECT_EQ(mu.find("simulate_fp8 = not stated"), std::string::npos);
  EXPECT_NE(mu.find("published simulate_fp8 = true (from `pub_stage075_n8`, the same runs)"), std::string::npos);
  // The published study's own answers equal the JSON's "thresholds" (Q_min and margin) on every stream.
  const auto ref = nlohmann::json::parse(slurp(testutil::reference_path("stage075_qsweep_fine_n8.json")));
  int compared = 0;
  std::istringstream in(mu);
  for (std::string l; std::getline(in, l);) {
    const auto c = cells(l);
    if (c.size() != 10 || c[0].rfind("`", 0) != 0 || (c[2] != "point" && c[2] != "CI-safe")) continue;
    const std::string stream = c[0].substr(1, c[0].find('`', 1) - 1);
    const std::string th = c[1].substr(0, 1);
    const std::string key = (th == "A" ? "A_no_regression" : th == "B" ? "B_plus5pct" : "C_plus20pct") +
                            std::string(c[2] == "point" ? "_point" : "_ci95_conservative");
    const auto& t = ref["aggregate_by_stream"][stream]["thresholds"][key];
    ASSERT_TRUE(t.is_object()) << stream << " " << key;
    EXPECT_EQ(c[3], std::to_string(t["Q_min"].get<int>())) << stream << " " << key;
    const double m = t["margin_pct"].get<double>();
    EXPECT_EQ(c[6], fmt::format("{:+.1f} %", m) + (m < 2 ? " marginal" : "")) << stream << " " << key;
    ++compared;
  }
  EXPECT_EQ(compared, 18) << mu;
  ASSERT_EQ(report("findings", dir_ + "/d/F.md", &out), 0) << out;
  EXPECT_NE(slurp(dir_ + "/d/F.md").find("No published experiment was given"), std::string::npos);
  EXPECT_EQ(report("findings", dir_ + "/e/F.md", &out, " --published-db " + pub), 2) << out;
}

TEST_F(ReportCli, ErrorsAndExitCodes) {
  std::string out;
  EXPECT_EQ(run_command(kvlab_binary() + " report findings --db " + db_ + " --experiment nope --out " + dir_ +
                            "/x.md",
                        &out),
            1)
      << out;
  EXPECT_NE(out.find("nope"), std::string::npos) << out;
  EXPECT_EQ(report("findings", dir_ + "/x.txt", &out), 2) << out;  // --out must be .md
  EXPECT_NE(out.find(".md"), std::string::npos) << out;
  EXPECT_EQ(report("findings", dir_ + "/x.md", &out, "--codec e8:q=99"), 1) << out;
  EXPECT_NE(out.find("e8:q=99"), std::string::npos) << out;
  EXPECT_EQ(report("findings", dir_ + "/x.md", &out, "--bogus"), 2) << out;
  EXPECT_EQ(run_command(kvlab_binary() + " report findings --db " + dir_ + "/missing.db --out " + dir_ + "/x.md",
                        &out),
            1)
      << out;
  EXPECT_NE(out.find("missing.db"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dir_ + "/x.md"));
}

}  // namespace
}  // namespace kvlab::report
