// Tests for render_max_usable_cr (src/report/reports.h) on a hand-built Q
// sweep: every table row agrees with the stats::StudySummary it formats,
// the monotonicity warning planted in the data is reported, the output is
// deterministic, and data without a baseline is refused.
#include <gtest/gtest.h>
#include <fmt/format.h>

#include "testutil/testutil.h"

#include <cmath>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "report/markdown.h"
#include "report/published_link.h"
#include "report/reports.h"
#include "stats/study.h"

namespace kvlab::report {
namespace {

constexpr auto& lines_of = testutil::md_lines;
constexpr auto& section = testutil::md_section;
constexpr auto& cells = testutil::md_cells;
constexpr auto& count = testutil::count_occurrences;

const std::vector<std::string> kStreams = {"sliding_window_kv", "csa_pool_kv_ratio4", "hca_pool_kv_ratio128"};
const std::vector<int> kQs = {10, 20, 38, 40, 76};

double e8_bits(int q) { return 64 * std::ceil(8 * std::log2(2.0 * q + 1)) + 32; }

// rel-MSE model: FP8 ~ 1e-3 per passage; E8 ~ c_s / (2Q+1)^2 with c_s putting
// Q = 38 at 0.80 / 0.90 / 1.04 x FP8; on CSA, Q = 40 is planted slightly
// worse than Q = 38 (a monotonicity violation at equal bits).
stats::ExperimentData sweep(int passages = 4, const std::vector<int>& qs = kQs, double hca_target = 1.04) {
  stats::ExperimentData d;
  d.info.id = 7;
  d.info.name = "qsweep_test";
  d.info.origin = "sweep";
  d.info.params_json = R"({"seqlen":2048,"layer_mix":{"sliding_window_kv":3,"csa_pool_kv_ratio4":20,)"
                       R"("hca_pool_kv_ratio128":20},"weights":{"kind":"random","seed":7},)"
                       R"("host":{"kind":"synthetic","seed":1}})";
  d.info.layer_mix = {{kStreams[0], 3}, {kStreams[1], 20}, {kStreams[2], 20}};
  const double target[3] = {0.80, 0.90, hca_target};
  std::int64_t id = 1;
  for (int p = 0; p < passages; ++p) {
    stats::PassageInfo pi;
    pi.id = 10 + p;
    pi.idx = p;
    pi.name = "s" + std::to_string(p);
    pi.content_hash = std::string(64, static_cast<char>('a' + p));
    pi.source = "synthetic:seed=" + std::to_string(p);
    d.passages.push_back(pi);
    const double pf = 1.0 + 0.02 * ((p * 37) % 7 - 3);  // passage factor
    for (int s = 0; s < 3; ++s) {
      const double fp8 = 1e-3 * pf * (1 + 0.1 * s);
      stats::RunResult r;
      r.passage_id = pi.id;
      r.stream = kStreams[s];
      r.dim = 512;
      r.run_id = id++;
      r.codec = "fp8_per64";
      r.bits_per_vector = 4224;
      r.rel_mse = fp8;
      r.cos_sim = 0.999;
      d.results.push_back(r);
      const double c = target[s] * fp8 * 77 * 77;
      for (int q : qs) {
        r.run_id = id++;
        r.codec = "e8:q=" + std::to_string(q);
        r.q = q;
        r.bits_per_vector = e8_bits(q);
        double m = c / ((2.0 * q + 1) * (2.0 * q + 1));
        if (s == 1 && q == 40) m = c / (77.0 * 77.0) * (1.01 + 0.001 * p);
        r.rel_mse = m * (1 + 0.003 * ((p * 13 + q) % 5 - 2));
        d.results.push_back(r);
      }
      r.q.reset();
    }
  }
  d.info.counts.done = static_cast<std::int64_t>(d.results.size());
  return d;
}

ReportProvenance prov() {
  ReportProvenance p;
  p.database_file = "sweep.db";
  p.database_sha256 = std::string(64, '0');
  p.generator = "kvlab test";
  p.first_run = "2026-01-01T00:00:00Z";
  p.last_run = "2026-01-01T00:01:00Z";
  return p;
}

// Table body rows (not header or separator) of a section.
std::vector<std::vector<std::string>> body_rows(const std::vector<std::string>& sec) {
  std::vector<std::vector<std::string>> rows;
  bool header_seen = false;
  for (const auto& l : sec) {
    if (l.rfind("|", 0) != 0) {
      header_seen = false;
      continue;
    }
    if (l.find("---") != std::string::npos && l.find_first_not_of("|-: ") == std::string::npos) {
      header_seen = true;
      continue;
    }
    if (header_seen) rows.push_back(cells(l));
  }
  return rows;
}

std::string view_label(stats::QView v) {
  return v == stats::QView::kPoint ? "point" : v == stats::QView::kCiSafe ? "CI-safe" : "paired CI-safe";
}

class MaxUsable : public ::testing::Test {
 protected:
  void SetUp() override {
    data = sweep();
    s = stats::summarize(data);
    r = render_max_usable_cr(s, prov(), MaxUsableOptions{});
  }
  stats::ExperimentData data;
  stats::StudySummary s;
  RenderedReport r;
};

TEST_F(MaxUsable, BestQRowsMatchTheSummary) {
  const auto rows = body_rows(section(r.markdown, "Max usable Q per stream"));
  ASSERT_EQ(rows.size(), s.best_q.size());
  int checked = 0;
  for (const auto& b : s.best_q) {
    const std::string stream_prefix = "`" + b.stream + "`";
    bool found = false;
    for (const auto& row : rows) {
      if (row.size() != 11 || row[0].rfind(stream_prefix, 0) != 0 || row[1].rfind(b.threshold.name + " ", 0) != 0 ||
          row[2] != view_label(b.view)) {
        continue;
      }
      found = true;
      if (b.admissible) {
        EXPECT_EQ(row[3], std::to_string(*b.q_min)) << b.stream << " " << b.threshold.name;
        EXPECT_EQ(row[5], fmt::format("{}", static_cast<long long>(b.bits)));
      } else {
        EXPECT_EQ(row[3], "not admissible");
      }
      ++checked;
    }
    EXPECT_TRUE(found) << b.stream << " " << b.threshold.name << " " << view_label(b.view);
  }
  EXPECT_EQ(checked, static_cast<int>(s.best_q.size()));
  // The planted model: SWA meets A (1.00 x FP8) at Q = 38 in the point view; HCA
  // (1.04 x FP8 at Q = 38) misses A at 38 but meets it at 40, which costs the
  // same 3296 bits.
  const auto* swa = s.find_best_q("sliding_window_kv", "e8", "A", stats::QView::kPoint);
  ASSERT_TRUE(swa && swa->q_min);
  EXPECT_EQ(*swa->q_min, 38);
  const auto* hca = s.find_best_q("hca_pool_kv_ratio128", "e8", "A", stats::QView::kPoint);
  ASSERT_TRUE(hca && hca->q_min);
  EXPECT_EQ(*hca->q_min, 40);
  EXPECT_EQ(hca->bits, 3296);
}

TEST_F(MaxUsable, OverviewShowsRecommendedQ) {
  const auto rows = body_rows(section(r.markdown, "Overview"));
  ASSERT_EQ(rows.size(), 3u);
  // Columns: stream, then (A, B, C) x (point, CI-safe).
  ASSERT_EQ(rows[0].size(), 7u);
  // SWA meets A at Q = 38; Q = 40 has the same bits and is recommended.
  EXPECT_EQ(rows[0][1], "Q=40, 3296 bits, 1.282x");
  // HCA, A, CI-safe needs Q = 76 (3808 bits).
  EXPECT_EQ(rows[2][2], "Q=76, 3808 bits, 1.109x");
}

TEST_F(MaxUsable, StrategiesParetoAndPlot) {
  EXPECT_EQ(body_rows(section(r.markdown, "Deployment strategies")).size(), s.strategies.size());
  const auto pareto = body_rows(section(r.markdown, "Pareto table"));
  ASSERT_EQ(pareto.size(), s.pareto.size());
  // 3 streams x (FP8 + 5 Q values).
  EXPECT_EQ(pareto.size(), 18u);
  // Bits and CR of E8 Q=38: 3296 bits, 4224 / 3296 and 8192 / 3296.
  bool seen = false;
  for (const auto& row : pareto) {
    if (row[1] == "E8 Q=38" && row[0].rfind("`sliding_window_kv`", 0) == 0) {
      seen = true;
      EXPECT_EQ(row[2], "3296");
      EXPECT_EQ(row[3], "1.282x");
      EXPECT_EQ(row[4], "2.485x");
      // Q=40 costs the same bits with a lower error on SWA: Q=38 is dominated there.
      EXPECT_EQ(row[8], "dominated by E8 Q=40");
      EXPECT_EQ(row[9], "A B C");  // meets every threshold in the point view
    }
    // On CSA Q=40 is planted worse than Q=38 at the same bits: there Q=40 is the dominated one.
    if (row[0].rfind("`csa_pool_kv_ratio4`", 0) == 0 && row[1] == "E8 Q=38") EXPECT_EQ(row[8], "") << row[1];
    if (row[0].rfind("`csa_pool_kv_ratio4`", 0) == 0 && row[1] == "E8 Q=40") {
      EXPECT_EQ(row[8], "dominated by E8 Q=38");
    }
  }
  EXPECT_TRUE(seen);
  ASSERT_EQ(r.files.size(), 1u);
  EXPECT_EQ(r.files[0].name, "MAX_USABLE_CR_pareto.svg");
  // Two panels (the whole sweep and the zoom near ratio 1), each with every point.
  EXPECT_EQ(count(r.files[0].content, "class=\"point\""), 2 * (3 * 5 + 1));
  EXPECT_NE(r.markdown.find("](MAX_USABLE_CR_pareto.svg)"), std::string::npos);
}

TEST_F(MaxUsable, MonotonicityWarningIsReported) {
  ASSERT_FALSE(s.monotonicity.empty());
  std::vector<std::vector<std::string>> rows;  // the mean rel-MSE table (9 columns); the per-view one has 8
  for (const auto& row : body_rows(section(r.markdown, "Monotonicity check"))) {
    if (row.size() == 9) rows.push_back(row);
  }
  ASSERT_EQ(rows.size(), s.monotonicity.size());
  bool planted = false;
  for (const auto& row : rows) {
    if (row[0].rfind("`csa_pool_kv_ratio4`", 0) == 0 && row[2] == "38" && row[3] == "40") {
      planted = true;
      EXPECT_EQ(row[6], "yes");  // Q = 38 and 40 share 3296 bits
    }
  }
  EXPECT_TRUE(planted);
}

TEST_F(MaxUsable, SuggestionsFromSummary) {
  const auto rows = body_rows(section(r.markdown, "Suggested Q values"));
  EXPECT_EQ(rows.size(), s.suggestions.size());
}

TEST_F(MaxUsable, Deterministic) {
  const auto again = render_max_usable_cr(stats::summarize(sweep()), prov(), MaxUsableOptions{});
  EXPECT_EQ(again.markdown, r.markdown);
  EXPECT_EQ(again.files[0].content, r.files[0].content);
}

TEST(ReportMaxUsable, RefusesDataWithoutBaseline) {
  auto d = sweep(2);
  std::vector<stats::RunResult> keep;
  for (const auto& x : d.results) {
    if (x.codec != "fp8_per64") keep.push_back(x);
  }
  d.results = keep;
  try {
    render_max_usable_cr(stats::summarize(d), prov(), MaxUsableOptions{});
    FAIL() << "expected kvlab::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("qsweep_test"), std::string::npos) << e.what();
  }
}

// Summary first: the paired CI-safe answer per stream and threshold with its CI, the grid status (a
// lower bound while the Q below Q_min was not run, exact once it was run and fails), the published
// CI-safe and point answers beside it; then the caveats, then published vs run, then the details.
TEST(ReportMaxUsable, SummaryAnswerWithGridStatus) {
  const auto data = sweep(4, {10, 20, 37, 38, 40, 76});
  stats::SummaryOptions so;
  so.bits_of = [](const std::string&, int q, int) { return e8_bits(q); };
  const auto s = stats::summarize(data, so);
  MaxUsableOptions o;
  o.bits_of = so.bits_of;
  const auto r = render_max_usable_cr(s, prov(), o);
  const auto& md = r.markdown;
  EXPECT_LT(md.find("## Summary"), md.find("## Caveats"));
  EXPECT_LT(md.find("## Caveats"), md.find("## Published vs this run"));
  EXPECT_LT(md.find("## Published vs this run"), md.find("## Provenance"));
  const auto rows = body_rows(section(md, "Summary"));
  auto find = [&](const std::string& stream, const std::string& th) -> std::vector<std::string> {
    for (const auto& row : rows) {
      if (row.size() == 10 && row[0].rfind("`" + stream + "`", 0) == 0 && row[1].rfind(th, 0) == 0) return row;
    }
    return {};
  };
  // SWA, A: Q=37 passes (0.80 x (77/75)^2 = 0.84), Q=20 fails, 21..36 not run: a lower bound.
  const auto swa = find("sliding_window_kv", "A");
  ASSERT_EQ(swa.size(), 10u) << md;
  EXPECT_EQ(swa[2], "Q=37");
  EXPECT_EQ(swa[3], "3232");
  EXPECT_EQ(swa[7], "lower bound on the CR: Q_min in 21..37 (Q=20 fails; 21..36 not run)");
  const auto* cell = s.find_cell("sliding_window_kv", "e8:q=37");
  ASSERT_TRUE(cell && cell->ratio_vs_fp8);
  EXPECT_EQ(swa[5], fmt::format("{:.3f} [{:.3f}, {:.3f}]", cell->ratio_vs_fp8->mean, *cell->ratio_vs_fp8->lower(),
                                *cell->ratio_vs_fp8->upper()));
  // HCA, B: Q=38 at 1.04 x FP8 passes 1.05, Q=37 at 1.10 x fails and is the next Q: exact.
  const auto hca = find("hca_pool_kv_ratio128", "B");
  ASSERT_EQ(hca.size(), 10u) << md;
  EXPECT_EQ(hca[2], "Q=40");  // Q_min = 38; Q=40 costs the same 3296 bits and fits too
  // Q=37 (3232 bits) is the largest Q with fewer bits than Q_min's 3296: what was checked, said as such.
  EXPECT_EQ(hca[7], "exact (Q=37, the largest Q with fewer bits, fails)");
  EXPECT_NE(md.find("**Grid.** Where the table says *lower bound*"), std::string::npos);
  EXPECT_NE(md.find("**What this means.**"), std::string::npos);
  EXPECT_NE(md.find("stored bytes per token"), std::string::npos);
  // The whole-cache table has memory-weighted bits: at seqlen 2048 the window share is 43 x 128 / 2048.
  const double w_swa = 43 * 128 / 2048.0, w_csa = 5, w_hca = 20 / 128.0;
  const auto* st = s.find_strategy("per_stream", "e8", "A", stats::QView::kPairedCiSafe);
  ASSERT_TRUE(st && st->admissible);
  double num = 0, den = 0;
  for (const auto& ss : st->streams) {
    const double w = ss.stream == kStreams[0] ? w_swa : ss.stream == kStreams[1] ? w_csa : w_hca;
    num += w * ss.bits;
    den += w * ss.fp8_bits;
  }
  bool seen = false;
  for (const auto& row : rows) {
    if (row.size() == 9 && row[0].rfind("A ", 0) == 0 && row[1] == "paired CI-safe" && row[2] == "per_stream") {
      seen = true;
      EXPECT_EQ(row[4], fmt::format("{:.1f}", num / (w_swa + w_csa + w_hca)));
      EXPECT_EQ(row[5], fmt::format("{:.3f}x", den / num));
    }
  }
  EXPECT_TRUE(seen) << md;
}

TEST(ReportMaxUsable, DecisionsStateThePassagesNeeded) {
  const auto s = stats::summarize(sweep());
  MaxUsableOptions o;
  store::DecisionRow a;
  a.stream = "sliding_window_kv";
  a.codec = "e8:q=38";
  a.metric = "rel_mse";
  a.threshold = "A";
  a.factor = 1.0;
  a.alpha = 0.05;
  a.n_evaluated = 12;
  a.ratio_mean = 0.8;
  a.ratio_ci95_hw = 0.01;
  a.verdict = "below";
  a.n_needed = 5;
  store::DecisionRow b = a;
  b.stream = "hca_pool_kv_ratio128";
  b.verdict = "unresolved";
  b.n_needed.reset();
  o.decisions = {a, b};
  const auto md = render_max_usable_cr(s, prov(), o).markdown;
  const auto sec = section(md, "Summary");  // a ### subsection of the summary
  std::string text;
  for (const auto& l : sec) text += l + "\n";
  EXPECT_NE(text.find("### Passages each decision needed"), std::string::npos) << text;
  EXPECT_NE(text.find("1 of 2 decisions resolved, the slowest after 5 passages"), std::string::npos) << text;
  std::vector<std::vector<std::string>> rows;
  for (const auto& row : body_rows(sec)) {
    if (row.size() == 8) rows.push_back(row);
  }
  ASSERT_EQ(rows.size(), 2u) << text;
  EXPECT_EQ(rows[0][7], "5");
  EXPECT_EQ(rows[1][7], "not yet");
  EXPECT_EQ(rows[1][6], "12");
  // Without decisions there is no such section.
  EXPECT_EQ(render_max_usable_cr(s, prov(), MaxUsableOptions{}).markdown.find("Passages each decision needed"),
            std::string::npos);
}

// Attention metrics recorded with the runs appear beside rel-MSE (paired ratio and CI) in the per-stream
// tables of both reports; the findings' forecast lists only codecs clearing threshold A on every stream.
TEST(ReportMaxUsable, AttentionMetricColumnsAndClearingForecast) {
  auto data = sweep();
  for (auto& r : data.results) r.metrics["kl_mean"] = r.rel_mse * (r.codec == "fp8_per64" ? 2.0 : 1.0);
  data.info.params_json.insert(data.info.params_json.size() - 1,
                               R"(,"forecast":{"kv_memory_gib_per_node":512,"context_tokens":1048576})");
  const auto s = stats::summarize(data);
  const auto* cell = s.find_cell("sliding_window_kv", "e8:q=76");
  ASSERT_TRUE(cell && cell->metric_ratio("kl_mean"));
  const auto& kl = *cell->metric_ratio("kl_mean");
  const std::string expect =
      fmt::format("{:.3f} [{:.3f}, {:.3f}]", kl.mean, *kl.lower(), *kl.upper());
  const auto mu = render_max_usable_cr(s, prov(), MaxUsableOptions{}).markdown;
  const auto pareto = section(mu, "Pareto table");
  std::string header;
  for (const auto& l : pareto) {
    if (l.rfind("| stream", 0) == 0) header = l;
  }
  EXPECT_NE(header.find("KL mean ratio [95 % CI]"), std::string::npos) << header;
  bool seen = false;
  for (const auto& row : body_rows(pareto)) {
    if (row[0].rfind("`sliding_window_kv`", 0) == 0 && row[1] == "E8 Q=76") {
      seen = true;
      EXPECT_EQ(row[7], expect);
    }
  }
  EXPECT_TRUE(seen);
  FindingsOptions fo;
  fo.codec = "e8:q=76";
  const auto fm = render_findings(s, prov(), fo).markdown;
  const auto per = section(fm, "Per stream");
  bool found = false;
  for (const auto& row : body_rows(per)) {
    if (row[0].rfind("`sliding_window_kv`", 0) == 0) {
      found = true;
      ASSERT_EQ(row.size(), 8u);
      EXPECT_EQ(row[7], expect + ", win");
    }
  }
  EXPECT_TRUE(found) << fm;
  // E8 Q=38 fails A on HCA (1.04 x FP8): not forecast; Q=76 clears A everywhere and is.
  const auto fc = section(fm, "Deployment forecast");
  bool q76 = false, q38 = false;
  for (const auto& row : body_rows(fc)) {
    q76 = q76 || row[0] == "E8 Q=76";
    q38 = q38 || row[0] == "E8 Q=38";
  }
  EXPECT_TRUE(q76);
  EXPECT_FALSE(q38);
}

std::string text_of(const std::vector<std::string>& sec) {
  std::string t;
  for (const auto& l : sec) t += l + "\n";
  return t;
}

// Finding 3: the question names the data (random seeded weights, synthetic hidden states), not "DeepSeek-V4's
// KV cache"; with a checkpoint and a non-synthetic host it says so instead.
TEST(ReportMaxUsable, QuestionNamesTheDataSource) {
  const auto md = render_max_usable_cr(stats::summarize(sweep()), prov(), MaxUsableOptions{}).markdown;
  const auto q = text_of(section(md, "Summary"));
  const auto at = q.find("**Question.**");
  ASSERT_NE(at, std::string::npos) << q;
  const auto question = q.substr(at, q.find('\n', at) - at);
  EXPECT_NE(question.find("V4 write path with random (seeded) weights on synthetic hidden states (not the trained "
                          "V4-Flash cache)"),
            std::string::npos)
      << question;
  EXPECT_EQ(question.find("DeepSeek-V4's KV cache"), std::string::npos) << question;
  auto d = sweep();
  d.info.params_json = R"({"seqlen":2048,"weights":{"kind":"checkpoint"},"host":{"kind":"kv-file"}})";
  const auto md2 = render_max_usable_cr(stats::summarize(d), prov(), MaxUsableOptions{}).markdown;
  const auto q2 = text_of(section(md2, "Summary"));
  EXPECT_NE(q2.find("with the loaded checkpoint's weights on the host model's hidden states"), std::string::npos)
      << q2;
  EXPECT_EQ(q2.find("random (seeded)"), std::string::npos) << q2;
}

// Finding 6: the saving is stated as bits of the compressed streams, and the KV bytes per token add V4's
// uncompressed FP8 indexer keys (CSA layers / 4 keys of 132 B per token), as the findings forecast counts them.
TEST(ReportMaxUsable, BytesPerTokenCountTheIndexerKeys) {
  const auto s = stats::summarize(sweep());
  const auto md = render_max_usable_cr(s, prov(), MaxUsableOptions{}).markdown;
  const auto* st = s.find_strategy("per_stream", "e8", "A", stats::QView::kPairedCiSafe);
  ASSERT_TRUE(st && st->admissible);
  const double w_swa = 43 * 128 / 2048.0, w_csa = 5, w_hca = 20 / 128.0;  // stored vectors per token at S = 2048
  double num = 0, den = 0;
  for (const auto& ss : st->streams) {
    const double w = ss.stream == kStreams[0] ? w_swa : ss.stream == kStreams[1] ? w_csa : w_hca;
    num += w * ss.bits;
    den += w * ss.fp8_bits;
  }
  const double keys = 5 * 132.0;  // 20 CSA layers / 4 indexer keys per token
  const double bytes = num / 8 + keys, base = den / 8 + keys;
  const auto sum = text_of(section(md, "Summary"));
  EXPECT_NE(sum.find(fmt::format("{:.1f} % fewer bits in the compressed streams", 100 * (1 - num / den))),
            std::string::npos)
      << sum;
  EXPECT_NE(sum.find(fmt::format("{:.1f} % fewer KV bytes per token", 100 * (1 - bytes / base))), std::string::npos)
      << sum;
  EXPECT_EQ(sum.find("fewer stored bytes"), std::string::npos) << sum;
  bool seen = false;
  for (const auto& row : body_rows(section(md, "Summary"))) {
    if (row.size() == 9 && row[0].rfind("A ", 0) == 0 && row[1] == "paired CI-safe" && row[2] == "per_stream") {
      seen = true;
      EXPECT_EQ(row[7].substr(0, row[7].find(' ')), fmt::format("{:.1f}", bytes)) << row[7];
    }
  }
  EXPECT_TRUE(seen) << md;
}

// Finding 13 and 21: the whole-cache table shows the CI-safe view beside the paired headline, answers with a
// margin under 2 % are flagged marginal, the summary says the headline's robustness comes from the small HCA
// weight, and a margin names its Q where Q_min and the recommended Q differ.
TEST(ReportMaxUsable, MarginalAnswersAndTheSmallHcaWeight) {
  // HCA at 1.09 x FP8 for Q = 38: Q = 40 passes A in the paired view at 0.985 (upper end ~0.993).
  const auto s = stats::summarize(sweep(4, kQs, 1.09));
  const auto md = render_max_usable_cr(s, prov(), MaxUsableOptions{}).markdown;
  const auto* b = s.find_best_q(kStreams[2], "e8", "A", stats::QView::kPairedCiSafe);
  ASSERT_TRUE(b && b->q_min);
  ASSERT_LT(b->margin, 0.02);
  const auto rows = body_rows(section(md, "Summary"));
  bool hca = false, ci_view = false, smallest = false;
  for (const auto& row : rows) {
    if (row.size() == 10 && row[0].rfind("`hca_pool_kv_ratio128`", 0) == 0 && row[1].rfind("A ", 0) == 0) {
      hca = true;
      EXPECT_EQ(row[6], fmt_percent(b->margin) + " marginal");
    }
    if (row.size() == 9 && row[1] == "CI-safe") ci_view = true;
    if (row.size() == 9 && row[0].rfind("A ", 0) == 0 && row[1] == "paired CI-safe" && row[2] == "per_stream") {
      smallest = true;
      EXPECT_EQ(row[8], fmt_percent(b->margin) + " marginal (HCA)");
    }
  }
  EXPECT_TRUE(hca && ci_view && smallest) << md;
  const auto sum = text_of(section(md, "Summary"));
  EXPECT_NE(sum.find("only because its weight is small"), std::string::npos) << sum;
  EXPECT_NE(sum.find("HCA holds only 2.0 % of the stored vectors"), std::string::npos) << sum;
  // Without a marginal or view-dependent small stream the sentence is absent.
  const auto plain = render_max_usable_cr(stats::summarize(sweep(4, kQs, 0.80)), prov(), MaxUsableOptions{});
  EXPECT_EQ(plain.markdown.find("only because its weight is small"), std::string::npos);
  // Finding 21: SWA, A, point: Q_min = 38, recommended Q = 40; the margin cell names both Q.
  const auto* swa = s.find_best_q(kStreams[0], "e8", "A", stats::QView::kPoint);
  ASSERT_TRUE(swa && swa->q_min && swa->q_recommended);
  ASSERT_EQ(*swa->q_min, 38);
  ASSERT_EQ(*swa->q_recommended, 40);
  double m40 = 0;
  for (const auto& ch : swa->checks) {
    if (ch.q == 40) m40 = ch.margin;
  }
  bool found = false;
  for (const auto& row : body_rows(section(md, "Max usable Q per stream"))) {
    if (row.size() == 11 && row[0].rfind("`sliding_window_kv`", 0) == 0 && row[1].rfind("A ", 0) == 0 &&
        row[2] == "point") {
      found = true;
      EXPECT_EQ(row[9], fmt::format("{} at Q_min=38; {} at Q=40", fmt_percent(swa->margin), fmt_percent(m40)));
    }
  }
  EXPECT_TRUE(found);
}

// Finding 14: the monotonicity check also runs in the views the answers use, and flags a rise below an answer,
// which the grid paragraph then names instead of claiming every lower Q fails.
TEST(ReportMaxUsable, MonotonicityInTheViewsUsed) {
  std::vector<int> qs;
  for (int q = 1; q <= 40; ++q) qs.push_back(q);
  qs.push_back(76);
  auto d = sweep(4, qs);
  stats::SummaryOptions so;
  so.bits_of = [](const std::string&, int q, int) { return e8_bits(q); };
  MaxUsableOptions o;
  o.bits_of = so.bits_of;
  const auto md = render_max_usable_cr(stats::summarize(d, so), prov(), o).markdown;
  const auto sum = text_of(section(md, "Summary"));
  EXPECT_NE(sum.find("a swept Q at or above the largest Q with fewer bits (the top of the next cheaper bit class) "
                     "was run and fails"),
            std::string::npos)
      << sum;
  EXPECT_NE(sum.find("never rises with Q below an answer"), std::string::npos) << sum;
  EXPECT_EQ(sum.find("each Q below it with fewer bits was run"), std::string::npos) << sum;
  // The planted CSA rise (Q = 40 worse than 38 and 39) shows in the paired view, above CSA's answers.
  bool planted = false;
  for (const auto& row : body_rows(section(md, "Monotonicity check"))) {
    if (row.size() == 8 && row[0].rfind("`csa_pool_kv_ratio4`", 0) == 0 && row[2] == "paired CI-safe" &&
        row[3] == "39" && row[4] == "40") {
      planted = true;
      EXPECT_EQ(row[7], "no");
    }
  }
  EXPECT_TRUE(planted) << md;
  // Plant a rise below HCA's answer: Q = 12 better than Q = 13 (both far above every budget).
  for (auto& r : d.results) {
    if (r.stream == kStreams[2] && r.q && *r.q == 12) r.rel_mse *= 0.5;
  }
  const auto md2 = render_max_usable_cr(stats::summarize(d, so), prov(), o).markdown;
  const auto sum2 = text_of(section(md2, "Summary"));
  EXPECT_NE(sum2.find("it rises below an answer at "), std::string::npos) << sum2;
  EXPECT_NE(sum2.find("HCA E8 paired CI-safe view, Q=12 to 13"), std::string::npos) << sum2;
  EXPECT_EQ(sum2.find("never rises with Q below an answer"), std::string::npos) << sum2;
}

// A hand-made aggregate-only published import: FP8 1e-3 (hw 1e-5) on every stream, E8 Q=38 at 1.02e-3 and Q=44
// at 0.8e-3 (hw 2e-5), as the qsweep files hold them.
PublishedInput aggregate_pub() {
  std::string agg;
  for (const auto& st : kStreams) {
    agg += fmt::format(
        R"({}"{}":{{"fp8_per64":{{"rel_mse":{{"mean":1e-3,"ci95_hw":1e-5,"n":8}},"bits":4224}},)"
        R"("e8:q=38":{{"rel_mse":{{"mean":1.02e-3,"ci95_hw":2e-5,"n":8}},"bits":3296}},)"
        R"("e8:q=44":{{"rel_mse":{{"mean":0.8e-3,"ci95_hw":2e-5,"n":8}},"bits":3360}}}})",
        agg.empty() ? "" : ",", st);
  }
  PublishedInput p;
  p.experiment = "pubq";
  p.database_file = "pub.db";
  p.params_json = R"({"seqlen":2048,"host":{"kind":"published","spec":"Qwen/Qwen2-0.5B"},)"
                  R"("weights":{"layers":{"0":"SWA"}},"published_aggregate":{)" + agg + "}}";
  return p;
}

// Finding 8: the published study's own answers (the published solver on its summaries) beside this run's,
// with the published grid; the run's CI-safe column no longer reads as the published answer.
TEST(ReportMaxUsable, PublishedStudysOwnAnswers) {
  const auto s = stats::summarize(sweep());
  MaxUsableOptions o;
  o.published = aggregate_pub();
  const auto md = render_max_usable_cr(s, prov(), o).markdown;
  EXPECT_EQ(md.find("Q (CI-safe, published)"), std::string::npos);
  EXPECT_NE(md.find("| Q (CI-safe view) |"), std::string::npos) << md;
  const auto sec = section(md, "Published vs this run");
  EXPECT_NE(text_of(sec).find("The published grid is Q = 38, 44"), std::string::npos) << text_of(sec);
  std::map<std::string, std::vector<std::string>> rows;
  for (const auto& row : body_rows(sec)) {
    if (row.size() == 10 && row[0].rfind("`hca_pool_kv_ratio128`", 0) == 0) rows[row[1].substr(0, 1) + row[2]] = row;
  }
  ASSERT_EQ(rows.size(), 6u) << text_of(sec);
  // A: Q=38 (1.02) fails, Q=44 fits with margin (1 - 0.8) = 20 %; CR 4224 / 3360.
  EXPECT_EQ(rows["Apoint"][3], "44");
  EXPECT_EQ(rows["Apoint"][4], "3360");
  EXPECT_EQ(rows["Apoint"][5], "1.257x");
  EXPECT_EQ(rows["Apoint"][6], "+20.0 %");
  EXPECT_EQ(rows["Apoint"][7], "Q=38 fails; Q=39-43 not run");
  // B: Q=38 fits 1.05 with margin 0.03 / 1.05; CI-safe (1.04) with 0.01 / 1.05: marginal; nothing below 38.
  EXPECT_EQ(rows["Bpoint"][3], "38");
  EXPECT_EQ(rows["Bpoint"][6], fmt_percent(0.03 / 1.05));
  EXPECT_EQ(rows["BCI-safe"][6], fmt_percent(0.01 / 1.05) + " marginal");
  EXPECT_EQ(rows["BCI-safe"][7], "nothing: Q_min is the grid's smallest Q");
  // This run's answer in the same view sits beside it.
  const auto* mine = s.find_best_q(kStreams[2], "e8", "A", stats::QView::kCiSafe);
  ASSERT_TRUE(mine);
  EXPECT_EQ(rows["ACI-safe"][8], mine->admissible ? "Q=" + std::to_string(mine->q_recommended.value_or(*mine->q_min))
                                                  : "not admissible");
}

// Finding 7: an aggregate-only import is linked to the per-passage import of the same runs (equal means), its
// paired ratio and stated weights / simulate_fp8 are used and named, and the ratio of means is labelled apart.
TEST(ReportMaxUsable, AggregateLinkedToTheSameRuns) {
  const auto per_passage = stats::summarize(sweep(8));
  const std::string linked_params =
      R"({"seqlen":2048,"host":{"kind":"published","spec":"Qwen/Qwen2-0.5B"},)"
      R"("weights":{"kind":"trained","simulate_fp8":true}})";
  // The aggregate of the same runs: per stream FP8 and E8 Q=38 / 76 means with n.
  std::string agg;
  for (const auto& st : kStreams) {
    std::string codecs;
    for (const char* c : {"fp8_per64", "e8:q=38", "e8:q=76"}) {
      const auto* cell = per_passage.find_cell(st, c);
      ASSERT_TRUE(cell);
      codecs += fmt::format(R"({}"{}":{{"rel_mse":{{"mean":{:.17g},"ci95_hw":{:.17g},"n":{}}},"bits":{}}})",
                            codecs.empty() ? "" : ",", c, cell->rel_mse.mean, *cell->rel_mse.ci95_hw,
                            cell->rel_mse.n, cell->bits_per_vector);
    }
    agg += fmt::format(R"({}"{}":{{{}}})", agg.empty() ? "" : ",", st, codecs);
  }
  PublishedInput p;
  p.experiment = "pubq";
  p.database_file = "pub.db";
  p.params_json = R"({"seqlen":2048,"host":{"kind":"published","spec":"Qwen/Qwen2-0.5B"},)"
                  R"("weights":{"layers":{"0":"SWA"}},"published_aggregate":{)" + agg + "}}";
  std::string why;
  EXPECT_TRUE(same_published_runs(p, linked_params, per_passage, &why)) << why;
  // Another draw of the runs (4 passages: different n and means) is not the same study.
  EXPECT_FALSE(same_published_runs(p, linked_params, stats::summarize(sweep(4)), &why));
  EXPECT_NE(why.find("differs"), std::string::npos) << why;
  // A different seqlen is refused too.
  EXPECT_FALSE(same_published_runs(p, R"({"seqlen":4096})", per_passage));

  p.linked_experiment = "pubn8";
  p.linked_params_json = linked_params;
  p.linked_summary = per_passage;
  MaxUsableOptions o;
  o.published = p;
  const auto md = render_max_usable_cr(stats::summarize(sweep()), prov(), o).markdown;
  const auto sec = section(md, "Published vs this run");
  const auto txt = text_of(sec);
  const auto* cell = per_passage.find_cell(kStreams[2], "e8:q=38");
  ASSERT_TRUE(cell && cell->ratio_vs_fp8);
  const auto* f = per_passage.find_cell(kStreams[2], "fp8_per64");
  bool row_seen = false;
  for (const auto& row : body_rows(sec)) {
    if (row.size() == 5 && row[0].rfind("`hca_pool_kv_ratio128`", 0) == 0) {
      row_seen = true;
      EXPECT_EQ(row[2], fmt::format("{:.3f} [{:.3f}, {:.3f}]", cell->ratio_vs_fp8->mean, *cell->ratio_vs_fp8->lower(),
                                    *cell->ratio_vs_fp8->upper()));
      EXPECT_EQ(row[3], fmt::format("paired per passage, n = 8, from `pubn8` (the same runs); ratio of the file's "
                                    "means {:.3f}",
                                    cell->rel_mse.mean / f->rel_mse.mean));
    }
  }
  EXPECT_TRUE(row_seen) << txt;
  EXPECT_EQ(txt.find("published simulate_fp8 = not stated"), std::string::npos) << txt;
  EXPECT_EQ(txt.find("weights kind not stated"), std::string::npos) << txt;
  EXPECT_NE(txt.find("simulate_fp8 = true (from `pubn8`, the same runs)"), std::string::npos) << txt;
  EXPECT_NE(txt.find("weights kind trained (from `pubn8`, the same runs)"), std::string::npos) << txt;
}

}  // namespace
}  // namespace kvlab::report
