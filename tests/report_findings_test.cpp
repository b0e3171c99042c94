// Tests for the FINDINGS and MAX_USABLE_CR reports (src/report/reports.h)
// on hand-built experiment data: the published n = 8 run read straight from
// ../shared/reference/stage075_n8.json into stats::ExperimentData (no
// database), and a synthetic Q sweep. The database round trip (import,
// CLI) is tested in report_cli_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "report/derived.h"
#include "report/reports.h"
#include "stats/study.h"
#include "testutil/testutil.h"

namespace kvlab::report {
namespace {

constexpr auto& lines_of = testutil::md_lines;
constexpr auto& section = testutil::md_section;
constexpr auto& cells = testutil::md_cells;
constexpr auto& count = testutil::count_occurrences;

using stats::ExperimentData;

std::string codec_of(const std::string& published) {
  if (published == "fp8_per64_baseline") return "fp8_per64";
  // v14_d4_Q10 / v15_e8_Q38
  const auto a = published.find('_');
  const auto b = published.rfind("_Q");
  return published.substr(a + 1, b - a - 1) + ":q=" + published.substr(b + 2);
}

ExperimentData load_published_json() {
  std::ifstream in(testutil::reference_path("stage075_n8.json"));
  EXPECT_TRUE(in.good());
  const auto j = nlohmann::json::parse(in);
  ExperimentData d;
  d.info.id = 1;
  d.info.name = "stage075_n8";
  d.info.origin = "published";
  d.info.spec_hash = std::string(64, 'a');
  d.info.created_at = j.at("generated_at").get<std::string>();
  d.info.params_json = R"({"seqlen":2048,"stream_dtype":"bf16","device":"cuda","weights":"trained V4-Flash",)"
                       R"("host":"Qwen/Qwen2-0.5B","layer_mix":{"sliding_window_kv":3,"csa_pool_kv_ratio4":20,)"
                       R"("hca_pool_kv_ratio128":20},"report":{"codec":"e8:q=38","compare":"d4:q=38"},)"
                       R"("forecast":{"kv_memory_gib_per_node":512,"context_tokens":1048576}})";
  d.info.layer_mix = {{"sliding_window_kv", 3}, {"csa_pool_kv_ratio4", 20}, {"hca_pool_kv_ratio128", 20}};
  d.info.report_codec = "e8:q=38";
  d.info.report_compare = "d4:q=38";
  d.info.stream_dtype = "bf16";
  d.info.device = "cuda";
  std::int64_t run_id = 1;
  for (const auto& p : j.at("per_passage")) {
    const int pid = p.at("passage_id").get<int>();
    stats::PassageInfo pi;
    pi.id = 100 + pid;
    pi.idx = pid;
    pi.name = "p" + std::to_string(pid);
    pi.content_hash = std::string(64, static_cast<char>('0' + pid));
    pi.source = "published:stage075_n8.json#" + std::to_string(pid);
    d.passages.push_back(pi);
    for (const auto& r : p.at("results")) {
      const std::string stream = r.at("stream").get<std::string>();
      for (const auto& [name, v] : r.at("codecs").items()) {
        stats::RunResult rr;
        rr.run_id = run_id++;
        rr.passage_id = pi.id;
        rr.stream = stream;
        rr.codec = codec_of(name);
        const auto spec = stats::parse_codec_spec(rr.codec);
        rr.q = spec.rate;
        rr.bits_per_vector = v.at("bits_per_vector").get<double>();
        rr.rel_mse = v.at("rel_mse").get<double>();
        rr.cos_sim = v.at("cos_sim").get<double>();
        rr.dim = 512;
        d.results.push_back(rr);
      }
      const auto& a = r.at("audit");
      stats::AuditResult ar;
      ar.passage_id = pi.id;
      ar.stream = stream;
      ar.excess_kurtosis_abs = a.at("excess_kurtosis_abs").get<double>();
      ar.isotropy_variance_ratio = a.at("isotropy_variance_ratio").get<double>();
      ar.hadamard_post_variance_ratio = a.at("hadamard_post_variance_ratio").get<double>();
      ar.rms_wasserstein2_over_sigma_per_dim = a.at("rms_wasserstein2_over_sigma_per_dim").get<double>();
      ar.n_vectors = a.at("num_vectors").get<std::int64_t>();
      ar.dim = a.at("D").get<int>();
      d.audits.push_back(ar);
    }
  }
  d.info.counts.done = static_cast<std::int64_t>(d.results.size());
  return d;
}

ReportProvenance published_provenance() {
  ReportProvenance p;
  p.database_file = "test.db";
  p.database_sha256 = std::string(64, 'f');
  p.generator = "kvlab test";
  p.first_run = "2026-04-26T05:43:37Z";
  p.last_run = "2026-04-26T05:43:37Z";
  p.host_kinds = {"published"};
  return p;
}

// The table row of `lines` that starts with "| <first cell>".
std::string row(const std::vector<std::string>& lines, const std::string& first_cell) {
  for (const auto& l : lines) {
    if (l.rfind("| " + first_cell, 0) == 0) return l;
  }
  return "";
}

bool has_cell(const std::string& line, const std::string& cell) {
  for (const auto& c : cells(line)) {
    if (c == cell) return true;
  }
  return false;
}

class PublishedFindings : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = new ExperimentData(load_published_json());
    summary_ = new stats::StudySummary(stats::summarize(*data_));
    FindingsOptions o;
    o.file_stem = "FINDINGS_N8";
    report_ = new RenderedReport(render_findings(*summary_, published_provenance(), o));
  }
  static void TearDownTestSuite() {
    delete report_;
    delete summary_;
    delete data_;
  }
  static ExperimentData* data_;
  static stats::StudySummary* summary_;
  static RenderedReport* report_;
};
ExperimentData* PublishedFindings::data_ = nullptr;
stats::StudySummary* PublishedFindings::summary_ = nullptr;
RenderedReport* PublishedFindings::report_ = nullptr;

TEST_F(PublishedFindings, PerStreamTableShowsSpecSection6Figures) {
  const auto sec = section(report_->markdown, "Per stream");
  ASSERT_FALSE(sec.empty()) << report_->markdown;
  const auto swa = row(sec, "`sliding_window_kv`");
  const auto csa = row(sec, "`csa_pool_kv_ratio4`");
  const auto hca = row(sec, "`hca_pool_kv_ratio128`");
  EXPECT_NE(swa.find("0.790 ± 0.005"), std::string::npos) << swa;
  EXPECT_NE(csa.find("0.900 ± 0.006"), std::string::npos) << csa;
  EXPECT_NE(hca.find("1.043 ± 0.051"), std::string::npos) << hca;
  // Verdicts from the intervals: SWA and CSA below 1, HCA straddles 1.
  EXPECT_TRUE(has_cell(swa, "win")) << swa;
  EXPECT_TRUE(has_cell(csa, "win")) << csa;
  EXPECT_TRUE(has_cell(hca, "tied")) << hca;
  EXPECT_TRUE(has_cell(swa, "8")) << swa;  // n passages
  // rel-MSE columns share one scale: SWA FP8 (1.05e-3) and E8 (8.3e-4) in units of 1e-3.
  EXPECT_TRUE(has_cell(swa, "1.051 ± 0.037")) << swa;
  EXPECT_TRUE(has_cell(swa, "0.830 ± 0.032")) << swa;
}

TEST_F(PublishedFindings, LayerWeightedAndBits) {
  const auto lw = section(report_->markdown, "Layer-weighted");
  const auto e8 = row(lw, "**E8 Q=38**");
  EXPECT_NE(e8.find("0.959 ± 0.024"), std::string::npos) << e8;
  EXPECT_NE(e8.find("-4.1 %"), std::string::npos) << e8;  // MSE change = 0.959 - 1
  const auto weights = row(lw, "`hca_pool_kv_ratio128`");
  EXPECT_TRUE(has_cell(weights, "20")) << weights;
  const auto bits = section(report_->markdown, "Bits per vector");
  const auto b = row(bits, "**E8 Q=38**");
  EXPECT_TRUE(has_cell(b, "3296")) << b;
  EXPECT_TRUE(has_cell(b, "4224")) << b;
  EXPECT_TRUE(has_cell(b, "-22.0 %")) << b;
  EXPECT_TRUE(has_cell(b, "1.282x")) << b;  // 4224 / 3296
}

TEST_F(PublishedFindings, PerPassageTable) {
  const auto sec = section(report_->markdown, "Per passage");
  for (int i = 0; i < 8; ++i) EXPECT_NE(row(sec, "p" + std::to_string(i)), "") << i;
  const auto mean = row(sec, "**mean**");
  EXPECT_NE(mean.find("0.790"), std::string::npos) << mean;
  EXPECT_NE(mean.find("1.043"), std::string::npos) << mean;
  const auto hw = row(sec, "**95 % CI half-width**");
  EXPECT_NE(hw.find("0.051"), std::string::npos) << hw;
  // Passage 0's SWA ratio, from the JSON rows: 0.000803381.../0.001022539...
  const double r0 = 0.0008033818448893726 / 0.0010225395672023296;
  EXPECT_NE(row(sec, "p0").find(fmt::format("{:.3f}", r0)), std::string::npos) << row(sec, "p0");
  EXPECT_NE(report_->markdown.find("](FINDINGS_N8_passages.svg)"), std::string::npos);
}

TEST_F(PublishedFindings, AuditTableGates) {
  const auto sec = section(report_->markdown, "Audit");
  int fires = 0;
  for (const auto& l : sec) {
    if (l.find("`excess_kurtosis_abs`") != std::string::npos) {
      EXPECT_TRUE(has_cell(l, "0.5")) << l;
      // Every published stream has |excess kurtosis| well above 0.5 on every passage.
      EXPECT_TRUE(has_cell(l, "8 / 8")) << l;
      EXPECT_TRUE(has_cell(l, "yes")) << l;
      ++fires;
    }
  }
  EXPECT_EQ(fires, 3);
  EXPECT_EQ(count(report_->markdown, "`rms_wasserstein2_over_sigma_per_dim` |"), 3);
}

TEST_F(PublishedFindings, E8AgainstD4) {
  const auto sec = section(report_->markdown, "E8 against D4");
  ASSERT_FALSE(sec.empty());
  // Q=38 SWA: mean rel-MSE E8 / D4 and its gain in dB, from the summary.
  const auto* e8 = summary_->find_cell("sliding_window_kv", "e8:q=38");
  const auto* d4 = summary_->find_cell("sliding_window_kv", "d4:q=38");
  ASSERT_TRUE(e8 && d4);
  const std::string ratio = fmt::format("{:.3f}", e8->rel_mse.mean / d4->rel_mse.mean);
  const std::string gain = fmt::format("{:.2f} dB", 10 * std::log10(d4->rel_mse.mean / e8->rel_mse.mean));
  bool found = false;
  for (const auto& l : sec) {
    const auto c = cells(l);
    if (c.size() == 8 && c[0] == "38" && c[1] == "`sliding_window_kv` (SWA)") {
      found = true;
      EXPECT_EQ(c[2], "3232") << l;
      EXPECT_EQ(c[3], "3296") << l;
      EXPECT_EQ(c[6], ratio) << l;
      EXPECT_EQ(c[7], gain) << l;
    }
  }
  EXPECT_TRUE(found);
  // Both matched Q values of the published run appear (10 and 38), 3 streams each.
  int rows = 0;
  for (const auto& l : sec) rows += (has_cell(l, "10") || has_cell(l, "38")) && l.find("`") != std::string::npos;
  EXPECT_EQ(rows, 6);
}

TEST_F(PublishedFindings, DeploymentForecastFromSpecParameters) {
  const auto sec = section(report_->markdown, "Deployment forecast");
  // V4's stored cache per context token (SPEC-V4-ATTENTION.md section 5) at S = 1048576 with the 3/20/20
  // mix: a 128-token window on all 43 layers, S/4 CSA and S/128 HCA entries, 132-B indexer keys per CSA entry.
  const double S = 1048576, window = 43 * 128 / S, csa = 20 / 4.0, hca = 20 / 128.0;
  const double fp8 = (window + csa + hca) * 4224 / 8 + csa * 132;
  const auto fp8row = row(sec, "FP8 per-64");
  EXPECT_TRUE(has_cell(fp8row, fmt::format("{:.1f}", fp8))) << fp8row;
  EXPECT_TRUE(has_cell(fp8row, fmt::format("{:.0f}", std::floor(512.0 * kGiB / (fp8 * S))))) << fp8row;
  // Only codecs that clear threshold A on every stream are forecast: on the published run E8 Q=38's HCA
  // interval reaches 1.094 and D4 Q=38's reaches 1.652 on HCA (its worst stream; it also loses on SWA), so
  // neither gets a row; the text names each one's worst stream.
  EXPECT_EQ(row(sec, "E8 Q=38"), "");
  EXPECT_EQ(row(sec, "D4 Q=38"), "");
  std::string all;
  for (const auto& l : sec) all += l + "\n";
  EXPECT_NE(all.find("E8 Q=38 (paired ratio interval reaches 1.094 on HCA)"), std::string::npos) << all;
  EXPECT_NE(all.find("D4 Q=38 (paired ratio interval reaches 1.652 on HCA)"), std::string::npos) << all;
}

// Summary first: question, answer per stream with CI and verdict ("tied" when the interval contains 1),
// the verdict rules and what it means; then the caveats, then published vs run, then the details.
TEST_F(PublishedFindings, SummaryFirstThenCaveatsThenDetails) {
  const auto& md = report_->markdown;
  const auto at = [&](const char* h) { return md.find(h); };
  ASSERT_NE(at("## Summary"), std::string::npos) << md;
  EXPECT_LT(at("## Summary"), at("## Caveats"));
  EXPECT_LT(at("## Caveats"), at("## Published vs this run"));
  EXPECT_LT(at("## Published vs this run"), at("## Provenance"));
  EXPECT_LT(at("## Provenance"), at("## Per stream"));
  const auto sum = section(md, "Summary");
  const auto hca = row(sum, "`hca_pool_kv_ratio128`");
  EXPECT_TRUE(has_cell(hca, "1.043 [0.992, 1.094]")) << hca;
  EXPECT_TRUE(has_cell(hca, "tied")) << hca;
  EXPECT_TRUE(has_cell(row(sum, "`sliding_window_kv`"), "win"));
  EXPECT_TRUE(has_cell(row(sum, "`sliding_window_kv`"), "3296 / 4224"));
  const auto all_layers = row(sum, "**all layers**");
  EXPECT_TRUE(has_cell(all_layers, "43")) << all_layers;
  EXPECT_TRUE(has_cell(all_layers, "3296 / 4224")) << all_layers;  // memory weighted, equal bits print as bits
  std::string text;
  for (const auto& l : sum) text += l + "\n";
  for (const char* w : {"**Question.**", "**Verdict rules.**", "**What this means.**", "stored bytes per token",
                        "On HCA the interval contains 1"}) {
    EXPECT_NE(text.find(w), std::string::npos) << w << "\n" << text;
  }
  // E8 Q=38 shares 3296 bits with Q=39 and 40 in the published accounting only when bits_of is given.
  EXPECT_EQ(text.find("Operating point"), std::string::npos) << text;
}

TEST_F(PublishedFindings, CaveatsAndProvenance) {
  const auto cav = section(report_->markdown, "Caveats");
  std::string all;
  for (const auto& l : cav) all += l + "\n";
  EXPECT_NE(all.find("not re-run by kvlab"), std::string::npos) << all;
  EXPECT_NE(all.find("One layer per stream type"), std::string::npos) << all;
  EXPECT_NE(all.find("only 16 vectors per passage"), std::string::npos) << all;
  EXPECT_EQ(all.find("Random V4 weights"), std::string::npos) << all;  // trained weights here
  const auto prov = section(report_->markdown, "Provenance");
  EXPECT_NE(row(prov, "database").find(std::string(64, 'f')), std::string::npos);
  EXPECT_NE(row(prov, "seqlen").find("2048"), std::string::npos);
  EXPECT_NE(row(prov, "passages (n)").find("8"), std::string::npos);
  // Imported runs record no GEMM path, and no bf16-GEMM caveat is made up.
  EXPECT_NE(row(prov, "projection GEMM").find("not recorded"), std::string::npos);
  EXPECT_EQ(all.find("projection GEMM ran on bf16"), std::string::npos) << all;
}

TEST_F(PublishedFindings, Bf16GemmIsNamedInProvenanceAndCaveats) {
  auto p = published_provenance();
  p.gemm = {"bf16 (oneDNN 2.6.3 brg:avx512_core_amx_bf16)"};
  const auto r = render_findings(*summary_, p, FindingsOptions{});
  EXPECT_NE(row(section(r.markdown, "Provenance"), "projection GEMM").find("avx512_core_amx_bf16"), std::string::npos);
  std::string all;
  for (const auto& l : section(r.markdown, "Caveats")) all += l + "\n";
  EXPECT_NE(all.find("projection GEMM ran on bf16"), std::string::npos) << all;
}

TEST_F(PublishedFindings, PlotsAreWrittenWithOnePointPerDatum) {
  ASSERT_EQ(report_->files.size(), 2u);
  EXPECT_EQ(report_->files[0].name, "FINDINGS_N8_pareto.svg");
  EXPECT_EQ(report_->files[1].name, "FINDINGS_N8_passages.svg");
  // Pareto: 3 streams x 4 lattice codecs with CI bars, plus the FP8 point.
  EXPECT_EQ(count(report_->files[0].content, "class=\"point\""), 13);
  EXPECT_EQ(count(report_->files[0].content, "class=\"errorbar\""), 12);
  // Per passage: 3 streams x 8 passages.
  EXPECT_EQ(count(report_->files[1].content, "class=\"point\""), 24);
  EXPECT_NE(report_->markdown.find("](FINDINGS_N8_pareto.svg)"), std::string::npos);
}

TEST_F(PublishedFindings, SameInputSameBytes) {
  FindingsOptions o;
  o.file_stem = "FINDINGS_N8";
  const auto again = render_findings(stats::summarize(*data_), published_provenance(), o);
  EXPECT_EQ(again.markdown, report_->markdown);
  ASSERT_EQ(again.files.size(), report_->files.size());
  for (std::size_t i = 0; i < again.files.size(); ++i) EXPECT_EQ(again.files[i].content, report_->files[i].content);
}

TEST_F(PublishedFindings, CodecOverrideAndErrors) {
  FindingsOptions o;
  o.codec = "d4:q=38";
  o.compare = "e8:q=38";
  const auto r = render_findings(*summary_, published_provenance(), o);
  const auto swa = row(section(r.markdown, "Per stream"), "`sliding_window_kv`");
  EXPECT_TRUE(has_cell(swa, "loss")) << swa;  // D4 Q=38 is worse than FP8 on SWA
  o.codec = "e8:q=99";
  try {
    render_findings(*summary_, published_provenance(), o);
    FAIL() << "expected an error for a codec that was not run";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("e8:q=99"), std::string::npos) << e.what();
  }
  o.codec = "not a codec";
  EXPECT_THROW(render_findings(*summary_, published_provenance(), o), Error);
  stats::StudySummary no_codec = *summary_;
  no_codec.experiment.report_codec.clear();
  EXPECT_THROW(render_findings(no_codec, published_provenance(), FindingsOptions{}), UsageError);
}

TEST(ReportFindings, SinglePassageHasNoIntervalNoVerdict) {
  ExperimentData d = load_published_json();
  const std::int64_t keep = d.passages[0].id;
  d.passages.resize(1);
  std::vector<stats::RunResult> r;
  for (const auto& x : d.results) {
    if (x.passage_id == keep) r.push_back(x);
  }
  d.results = r;
  std::vector<stats::AuditResult> a;
  for (const auto& x : d.audits) {
    if (x.passage_id == keep) a.push_back(x);
  }
  d.audits = a;
  const auto rep = render_findings(stats::summarize(d), published_provenance(), FindingsOptions{});
  const auto swa = row(section(rep.markdown, "Per stream"), "`sliding_window_kv`");
  EXPECT_NE(swa.find("± n/a (n < 2)"), std::string::npos) << swa;
  const auto c = cells(swa);
  ASSERT_EQ(c.size(), 7u) << swa;
  EXPECT_EQ(c[5], "n/a (n < 2)") << swa;  // no interval
  EXPECT_EQ(c[6], "n/a (n < 2)") << swa;  // no verdict
  EXPECT_EQ(rep.markdown.find("± 0.000"), std::string::npos);
}

// Against v4_native every heading, column and caption names V4 native (not
// FP8), the question names the data source of a random-weights synthetic-host
// run, and the codec names are defined.
TEST(ReportFindings, V4NativeBaselineIsNamedAndTheDataSourceStated) {
  ExperimentData d = load_published_json();
  d.info.origin = "sweep";
  for (auto& r : d.results) {
    if (r.codec == "fp8_per64") {
      r.codec = "v4_native";
      r.bits_per_vector = 4672;
    }
  }
  ReportProvenance p = published_provenance();
  p.host_kinds = {"synthetic"};
  p.weights = {R"({"kind":"random","seed":0})"};
  const auto s = stats::summarize(d);
  ASSERT_EQ(s.baseline, "v4_native");
  const auto rep = render_findings(s, p, FindingsOptions{});
  const auto& md = rep.markdown;
  EXPECT_EQ(md.rfind("# Findings: E8 Q=38 against V4 native (", 0), 0u) << md.substr(0, 200);
  EXPECT_NE(md.find("## Per passage: E8 Q=38 / V4 native rel-MSE ratio"), std::string::npos);
  EXPECT_NE(md.find(" E8 / V4 native |"), std::string::npos);
  EXPECT_EQ(md.find("/ FP8"), std::string::npos);
  EXPECT_NE(md.find("with random (seeded) weights on synthetic hidden states (not the trained V4-Flash cache)"),
            std::string::npos);
  EXPECT_NE(md.find("Codec names: *V4 native* (`v4_native`)"), std::string::npos);
  EXPECT_NE(md.find("*E8 Q=q* (`e8`)"), std::string::npos);
}

// The repetition caveat of a text host follows the stored word counts: short
// texts are said to repeat (how many, how often), long ones are not; the
// provenance lists the passages with their words.
TEST(ReportFindings, RepetitionCaveatFollowsTheRecordedWordCounts) {
  ExperimentData d = load_published_json();
  d.info.origin = "sweep";
  ASSERT_TRUE(params_seqlen(d.info.params_json).has_value()) << d.info.params_json;
  const auto seqlen = *params_seqlen(d.info.params_json);
  ReportProvenance p = published_provenance();
  p.host_kinds = {"synthetic"};
  p.hosts = {R"({"kind":"synthetic","tokens":"whitespace words repeated to seqlen"})"};
  for (auto& ps : d.passages) ps.words = 160;
  d.passages[0].words = seqlen + 100;  // one long text
  auto md = render_findings(stats::summarize(d), p, FindingsOptions{}).markdown;
  const std::string n = std::to_string(d.passages.size());
  EXPECT_NE(md.find(std::to_string(d.passages.size() - 1) + " of the " + n + " texts are shorter"), std::string::npos)
      << md;
  EXPECT_NE(md.find("the shortest repeats about 13 times"), std::string::npos);
  EXPECT_NE(md.find("`" + d.passages[1].name + "` (160 words)"), std::string::npos);
  for (auto& ps : d.passages) ps.words = seqlen + 1;
  md = render_findings(stats::summarize(d), p, FindingsOptions{}).markdown;
  EXPECT_NE(md.find("so none is repeated"), std::string::npos);
  EXPECT_EQ(md.find("repeats about"), std::string::npos);
}

TEST(ReportDerived, VerdictFromInterval) {
  stats::Summary s;
  s.n = 8;
  s.mean = 0.9;
  s.ci95_hw = 0.05;
  EXPECT_EQ(verdict_of(s), Verdict::kWin);
  s.ci95_hw = 0.1;  // upper end exactly 1: touches 1, not below it
  EXPECT_EQ(verdict_of(s), Verdict::kTied);
  s.mean = 1.2;
  EXPECT_EQ(verdict_of(s), Verdict::kLoss);
  s.ci95_hw.reset();
  EXPECT_EQ(verdict_of(s), Verdict::kNoInterval);
  EXPECT_EQ(to_string(Verdict::kNoInterval), "n/a (n < 2)");
}

// V4's stored vectors per context token (SPEC-V4-ATTENTION.md section 5) and the memory-weighted bits.
TEST(ReportDerived, V4MemoryModel) {
  const std::vector<std::pair<std::string, double>> mix = {
      {"sliding_window_kv", 3}, {"csa_pool_kv_ratio4", 20}, {"hca_pool_kv_ratio128", 20}};
  const auto m = v4_memory(mix, 1048576);
  ASSERT_EQ(m.streams.size(), 3u);
  EXPECT_DOUBLE_EQ(m.streams[0].vectors_per_token, 43 * 128 / 1048576.0);  // window on every layer
  EXPECT_DOUBLE_EQ(m.streams[1].vectors_per_token, 5.0);                   // 20 CSA layers x S / 4
  EXPECT_DOUBLE_EQ(m.streams[2].vectors_per_token, 20 / 128.0);            // 20 HCA layers x S / 128
  EXPECT_DOUBLE_EQ(m.indexer_keys_per_token, 5.0);
  EXPECT_NEAR(m.share("sliding_window_kv") + m.share("csa_pool_kv_ratio4") + m.share("hca_pool_kv_ratio128"), 1.0,
              1e-12);
  // Equal bits on every stream weigh to the same bits; otherwise the CSA stream dominates at 1M tokens.
  EXPECT_DOUBLE_EQ(*memory_weighted_bits(m, {{"sliding_window_kv", 3296}, {"csa_pool_kv_ratio4", 3296},
                                             {"hca_pool_kv_ratio128", 3296}}),
                   3296.0);
  const double w = *memory_weighted_bits(m, {{"sliding_window_kv", 1000}, {"csa_pool_kv_ratio4", 2000},
                                             {"hca_pool_kv_ratio128", 3000}});
  EXPECT_NEAR(w, (m.streams[0].vectors_per_token * 1000 + 5 * 2000 + 20 / 128.0 * 3000) /
                     m.total_vectors_per_token(), 1e-9);
  EXPECT_FALSE(memory_weighted_bits(m, {{"sliding_window_kv", 1000}}));  // CSA and HCA missing
  // A context shorter than the window keeps every token in the window.
  EXPECT_DOUBLE_EQ(v4_memory(mix, 64).streams[0].vectors_per_token, 43.0);
  EXPECT_THROW(v4_memory(mix, 0), Error);
  EXPECT_THROW(v4_memory({}, 1024), Error);
}

TEST(ReportDerived, DbGainAndEqualWeights) {
  EXPECT_NEAR(db_gain(1.0, 10.0), 10.0, 1e-12);
  EXPECT_NEAR(db_gain(2.0, 1.0), -3.0103, 1e-4);
  EXPECT_THROW(db_gain(0.0, 1.0), Error);
  stats::Summary a, b;
  a.mean = 0.8;
  a.ci95_hw = 0.03;
  b.mean = 1.0;
  b.ci95_hw = 0.04;
  const auto m = equal_weight_mean({a, b});
  EXPECT_DOUBLE_EQ(m.mean, 0.9);
  ASSERT_TRUE(m.rss_hw);
  EXPECT_NEAR(*m.rss_hw, 0.025, 1e-12);  // sqrt(0.015^2 + 0.02^2)
  b.ci95_hw.reset();
  EXPECT_FALSE(equal_weight_mean({a, b}).rss_hw);
}

TEST(ReportDerived, ForecastParameters) {
  const auto p = parse_forecast(R"({"forecast":{"kv_memory_gib_per_node":80,"context_tokens":1000,)"
                                R"("vectors_per_token":{"sliding_window_kv":1}}})");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kv_memory_gib_per_node, 80);
  EXPECT_EQ(p->vectors_per_token.at("sliding_window_kv"), 1);
  EXPECT_FALSE(parse_forecast(R"({"seqlen":2048})"));
  try {
    parse_forecast(R"({"forecast":{"kv_memory_gib_per_node":"lots","context_tokens":1000}})");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("kv_memory_gib_per_node"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_forecast(R"({"forecast":{"kv_memory_gib_per_node":8}})"), Error);
  EXPECT_THROW(parse_forecast("{not json"), Error);
  const auto r = forecast({{"a", 2, 1.0, 64}, {"b", 4, 0.5, 128}}, {1.0, 1024, {}});
  EXPECT_DOUBLE_EQ(r.bytes_per_token, 2 * 8 + 4 * 0.5 * 16);
  EXPECT_DOUBLE_EQ(r.bytes_per_user, 48 * 1024);
  EXPECT_DOUBLE_EQ(r.users_per_node, std::floor(kGiB / (48 * 1024)));
}

}  // namespace
}  // namespace kvlab::report
