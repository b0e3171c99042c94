// The study summary on small hand-built experiments whose answers can be
// worked out on paper (ratios, layer weighting, best Q, strategies,
// monotonicity, suggestions, Pareto frontier).
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.h"
#include "stats/compare.h"
#include "stats/study.h"
#include "testutil/study_builder.h"

namespace ks = kvlab::stats;

namespace {

constexpr const char* kS = "sliding_window_kv";
constexpr const char* kC = "csa_pool_kv_ratio4";
constexpr const char* kH = "hca_pool_kv_ratio128";
const double kT3 = 3.182446305284263;  // t(0.975, 3)

// SPEC section 3 bit accounting at D (tests only; the CLI uses kvlab::codec).
double spec_bits(const std::string& family, int q, int dim) {
  if (family == "e8") return (dim / 8) * std::ceil(8 * std::log2(2.0 * q + 1)) + 32;
  if (family == "d4") return (dim / 4) * std::ceil(4 * std::log2(2.0 * q + 1) - 1) + 32;
  throw kvlab::Error("unknown family " + family);
}

struct Builder : kvlab::testutil::StudyBuilder {
  explicit Builder(int passages) : StudyBuilder(passages, {{kS, 3}, {kC, 20}, {kH, 20}}) {
    d.info.id = 1;
    cos_of = [](double rel) { return 1.0 - rel / 10; };
  }
  // FP8 rel {1,2,1,2} on every stream; e8 at Q=10 (ratio 2) and Q=38 with the given per-passage ratios.
  static Builder standard() {
    Builder b(4);
    const std::vector<double> fp8 = {1, 2, 1, 2};
    const std::vector<std::pair<const char*, std::vector<double>>> r38 = {
        {kS, {0.8, 0.9, 0.8, 0.9}}, {kC, {0.9, 0.9, 0.9, 0.9}}, {kH, {1.0, 1.2, 1.0, 1.2}}};
    for (const auto& [s, ratios] : r38) {
      b.add(s, "fp8_per64", 4224, fp8);
      std::vector<double> q10, q38;
      for (int i = 0; i < 4; ++i) {
        q10.push_back(2.0 * fp8[i]);
        q38.push_back(ratios[i] * fp8[i]);
      }
      b.add(s, "e8:q=10", 2336, q10);
      b.add(s, "e8:q=38", 3296, q38);
    }
    return b;
  }
};

}  // namespace

TEST(StatsStudy, CodecSpecsAndThresholds) {
  EXPECT_EQ(ks::parse_codec_spec("e8:q=38").family, "e8");
  EXPECT_EQ(*ks::parse_codec_spec("e8:q=38").rate, 38);
  EXPECT_TRUE(ks::parse_codec_spec("fp8_per64").is_baseline());
  EXPECT_EQ(ks::parse_codec_spec("d4:q=10").canonical, "d4:q=10");
  EXPECT_THROW(ks::parse_codec_spec("e8"), kvlab::Error);
  EXPECT_THROW(ks::parse_codec_spec("e8:q=0"), kvlab::Error);
  EXPECT_THROW(ks::parse_codec_spec("e8:q=3x"), kvlab::Error);
  EXPECT_EQ(ks::parse_codec_spec("E8:q=3").canonical, "e8:q=3");  // one parser; runs must hold the canonical form:
  {
    Builder b = Builder::standard();
    b.d.results.front().codec = "FP8_PER64";
    EXPECT_THROW(ks::summarize(b.d), kvlab::Error);
  }
  EXPECT_DOUBLE_EQ(ks::parse_threshold("b").factor, 1.05);
  EXPECT_DOUBLE_EQ(ks::parse_threshold("C").factor, 1.20);
  try {
    ks::parse_threshold("D");
    FAIL() << "expected a usage error";
  } catch (const kvlab::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("'D'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("A (1.00"), std::string::npos);
  }
}

TEST(StatsStudy, CellsRatiosAndCompressionRatios) {
  const auto s = ks::summarize(Builder::standard().d);
  EXPECT_EQ(s.n_passages, 4);
  ASSERT_EQ(s.streams, (std::vector<std::string>{kS, kC, kH}));
  ASSERT_EQ(s.cells.size(), 9u);
  EXPECT_EQ(s.cells[0].codec, "fp8_per64");  // FP8 first, then Q ascending
  EXPECT_EQ(s.cells[1].codec, "e8:q=10");
  const ks::CellStats* c = s.find_cell(kS, "e8:q=38");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->n_passages, 4);
  EXPECT_NEAR(c->rel_mse.mean, (0.8 + 1.8 + 0.8 + 1.8) / 4, 1e-12);
  ASSERT_TRUE(c->ratio_vs_fp8.has_value());
  EXPECT_NEAR(c->ratio_vs_fp8->mean, 0.85, 1e-12);
  // ratios {0.8,0.9,0.8,0.9}: sd = sqrt(4 * 0.05^2 / 3), hw = t3 * sd / 2
  EXPECT_NEAR(*c->ratio_vs_fp8->ci95_hw, kT3 * std::sqrt(0.01 / 3) / 2, 1e-12);
  ASSERT_EQ(c->passages.size(), 4u);
  EXPECT_EQ(c->passages[1].passage, "p1");
  EXPECT_NEAR(c->passages[1].ratio, 0.9, 1e-12);
  EXPECT_NEAR(c->passages[1].fp8_rel_mse, 2.0, 1e-12);
  EXPECT_NEAR(*c->cr_vs_fp8, 4224.0 / 3296.0, 1e-12);
  EXPECT_NEAR(c->cr_vs_bf16, 8192.0 / 3296.0, 1e-12);
  EXPECT_NEAR(*c->bit_saving, 1 - 3296.0 / 4224.0, 1e-12);
  EXPECT_NEAR(*c->bit_saving, 0.220, 5e-4);
  const ks::CellStats* f = s.find_cell(kS, "fp8_per64");
  ASSERT_NE(f, nullptr);
  EXPECT_FALSE(f->ratio_vs_fp8.has_value());
  EXPECT_TRUE(s.monotonicity.empty());
}

TEST(StatsStudy, LayerWeightedPublishedAndPaired) {
  const auto s = ks::summarize(Builder::standard().d);
  const ks::LayerWeightedRatio* lw = s.find_layer_weighted("e8:q=38");
  ASSERT_NE(lw, nullptr);
  ASSERT_TRUE(lw->complete);
  const double ws = 3.0 / 43, wc = 20.0 / 43, wh = 20.0 / 43;
  EXPECT_NEAR(lw->mean, ws * 0.85 + wc * 0.9 + wh * 1.1, 1e-12);
  const double hw_s = kT3 * std::sqrt(0.01 / 3) / 2, hw_h = kT3 * std::sqrt(0.04 / 3) / 2;
  ASSERT_TRUE(lw->rss_hw.has_value());
  EXPECT_NEAR(*lw->rss_hw, std::sqrt(std::pow(ws * hw_s, 2) + std::pow(wh * hw_h, 2)), 1e-12);
  // Paired: per passage (3 r_s + 20 r_c + 20 r_h) / 43 = 40.4/43, 44.7/43, 40.4/43, 44.7/43.
  EXPECT_EQ(lw->paired.n, 4);
  EXPECT_NEAR(lw->paired.mean, 42.55 / 43, 1e-12);
  EXPECT_NEAR(*lw->paired.ci95_hw, kT3 * (2.15 / 43) * std::sqrt(4.0 / 3) / 2, 1e-12);
  EXPECT_NEAR(lw->weighted_bits, 3296, 1e-9);
  EXPECT_NEAR(lw->cr_vs_fp8, 4224.0 / 3296.0, 1e-12);
}

TEST(StatsStudy, BestQViewsDiffer) {
  const auto s = ks::summarize(Builder::standard().d);
  // Stream S, threshold A: budget = 1.0 * mean fp8 = 1.5.
  const ks::BestQ* point = s.find_best_q(kS, "e8", "A", ks::QView::kPoint);
  ASSERT_NE(point, nullptr);
  EXPECT_TRUE(point->admissible);
  EXPECT_EQ(*point->q_min, 38);       // Q=10: mean 3.0 > 1.5; Q=38: mean 1.3 <= 1.5
  EXPECT_DOUBLE_EQ(point->bits, 3296);
  EXPECT_NEAR(point->budget, 1.5, 1e-12);
  EXPECT_NEAR(point->margin, (1.5 - 1.3) / 1.5, 1e-12);
  ASSERT_EQ(point->checks.size(), 2u);
  EXPECT_FALSE(point->checks[0].fits);
  // CI-safe (published): 1.3 + t3 * sd(rel)/2, rel {0.8,1.8,0.8,1.8}: sd = sqrt(1/3) -> 2.22 > 1.5.
  const ks::BestQ* ci = s.find_best_q(kS, "e8", "A", ks::QView::kCiSafe);
  ASSERT_NE(ci, nullptr);
  EXPECT_FALSE(ci->admissible);
  EXPECT_EQ(ci->note, "not admissible (need Q > 38)");
  EXPECT_NEAR(ci->checks[1].used, 1.3 + kT3 * std::sqrt(1.0 / 3) / 2, 1e-12);
  // Paired CI-safe: ratio upper end 0.85 + 0.0919 <= 1.
  const ks::BestQ* pr = s.find_best_q(kS, "e8", "A", ks::QView::kPairedCiSafe);
  ASSERT_NE(pr, nullptr);
  EXPECT_TRUE(pr->admissible);
  EXPECT_EQ(*pr->q_min, 38);
  EXPECT_NEAR(pr->used, 0.85 + kT3 * std::sqrt(0.01 / 3) / 2, 1e-12);
  // HCA: ratio 1.1 mean fails A (point: 1.1*1.5 > 1.5) and passes C (1.2).
  EXPECT_FALSE(s.find_best_q(kH, "e8", "A", ks::QView::kPoint)->admissible);
  EXPECT_TRUE(s.find_best_q(kH, "e8", "C", ks::QView::kPoint)->admissible);
  EXPECT_FALSE(s.find_best_q(kH, "e8", "C", ks::QView::kPairedCiSafe)->admissible);  // 1.1 + 0.18 > 1.2
}

TEST(StatsStudy, StrategiesUseLayerWeightedBits) {
  Builder b = Builder::standard();
  // Make Q=10 good enough on CSA and HCA at threshold C (ratio 1.1 <= 1.2).
  for (auto& r : b.d.results)
    if (r.codec == "e8:q=10" && r.stream != std::string(kS)) r.rel_mse *= 0.55;
  const auto s = ks::summarize(b.d);
  const ks::Strategy* ps = s.find_strategy("per_stream", "e8", "C", ks::QView::kPoint);
  ASSERT_NE(ps, nullptr);
  ASSERT_TRUE(ps->admissible);
  ASSERT_EQ(ps->streams.size(), 3u);
  EXPECT_EQ(*ps->streams[0].q, 38);
  EXPECT_EQ(*ps->streams[1].q, 10);
  EXPECT_EQ(*ps->streams[2].q, 10);
  const double wb = (3 * 3296.0 + 40 * 2336.0) / 43;
  EXPECT_NEAR(ps->weighted_bits, wb, 1e-9);
  EXPECT_NEAR(ps->cr_vs_fp8, 4224.0 / wb, 1e-12);
  EXPECT_NEAR(ps->cr_vs_bf16, 8192.0 / wb, 1e-12);
  EXPECT_NEAR(ps->bit_saving, 1 - wb / 4224.0, 1e-12);
  const ks::Strategy* un = s.find_strategy("uniform", "e8", "C", ks::QView::kPoint);
  ASSERT_NE(un, nullptr);
  ASSERT_TRUE(un->admissible);
  EXPECT_EQ(*un->uniform_q, 38);  // Q=10 fails on SWA (ratio 2)
  EXPECT_NEAR(un->weighted_bits, 3296, 1e-9);
  // Threshold A: HCA never fits -> neither strategy is admissible.
  EXPECT_FALSE(s.find_strategy("per_stream", "e8", "A", ks::QView::kPoint)->admissible);
  EXPECT_FALSE(s.find_strategy("uniform", "e8", "A", ks::QView::kPoint)->admissible);
}

TEST(StatsStudy, BitClassPrefersLargestQ) {
  Builder b = Builder::standard();
  // Q=40 shares Q=38's 3296 bits and has lower error on SWA.
  b.add(kS, "e8:q=40", 3296, {0.7, 1.6, 0.7, 1.6});
  const auto s = ks::summarize(b.d);
  const ks::BestQ* p = s.find_best_q(kS, "e8", "A", ks::QView::kPoint);
  EXPECT_EQ(*p->q_min, 38);
  EXPECT_EQ(*p->q_recommended, 40);
  EXPECT_NE(p->note.find("Q=40"), std::string::npos);
  // Q=40 exists on one stream only: its layer-weighted ratio is incomplete.
  const ks::LayerWeightedRatio* lw = s.find_layer_weighted("e8:q=40");
  ASSERT_NE(lw, nullptr);
  EXPECT_FALSE(lw->complete);
  EXPECT_EQ(lw->missing_streams, (std::vector<std::string>{kC, kH}));
  // Pareto on SWA: Q=40 dominates Q=38 (same bits, lower error).
  // FP8 (4224 bits, mean 1.5) is dominated by Q=40 (3296 bits, mean 1.15) as well.
  for (const auto& r : s.pareto) {
    if (r.stream != kS) continue;
    const bool expect_frontier = r.codec == "e8:q=10" || r.codec == "e8:q=40";
    EXPECT_EQ(r.on_frontier, expect_frontier) << r.codec;
  }
}

TEST(StatsStudy, MonotonicityWarning) {
  Builder b = Builder::standard();
  b.add(kS, "e8:q=44", 3360, {1.0, 2.0, 1.0, 2.1});  // error rises from Q=38 to Q=44
  const auto s = ks::summarize(b.d);
  ASSERT_EQ(s.monotonicity.size(), 1u);
  const auto& w = s.monotonicity[0];
  EXPECT_EQ(w.stream, kS);
  EXPECT_EQ(w.q_lo, 38);
  EXPECT_EQ(w.q_hi, 44);
  EXPECT_FALSE(w.same_bits);
  ASSERT_TRUE(w.paired.has_value());
  EXPECT_NEAR(w.paired->diff, (0.2 + 0.2 + 0.2 + 0.3) / 4, 1e-12);
  EXPECT_TRUE(w.paired->significant());
  EXPECT_NE(w.message.find("significant"), std::string::npos);
}

TEST(StatsStudy, SuggestionsAreBitClassTopsBetweenFailAndPass) {
  ks::SummaryOptions opt;
  opt.bits_of = spec_bits;
  opt.max_suggestions_per_stream = 100;
  opt.views = {ks::QView::kPoint};
  opt.thresholds = {ks::parse_threshold("A")};
  const auto s = ks::summarize(Builder::standard().d, opt);
  std::vector<int> qs;
  for (const auto& sg : s.suggestions)
    if (sg.stream == kS) qs.push_back(sg.q);
  ASSERT_FALSE(qs.empty());
  // Every class top from Q=11 up to Q=40 (the top of Q=38's 3296-bit class).
  EXPECT_EQ(qs.back(), 40);
  for (int q : qs) {
    EXPECT_GT(q, 10);
    EXPECT_LE(q, 40);
    EXPECT_LT(spec_bits("e8", q, 512), spec_bits("e8", q + 1, 512)) << "Q=" << q << " is not the top of its class";
    EXPECT_NE(q, 38);
  }
  // The reasons say where each Q sits: below the passing Q "between", the
  // top of the passing Q's own class "same bits".
  for (const auto& sg : s.suggestions) {
    if (sg.stream != kS) continue;
    if (sg.q < 38)
      EXPECT_NE(sg.reason.find("between failing Q=10 and passing Q=38"), std::string::npos) << sg.q << ": " << sg.reason;
    else
      EXPECT_NE(sg.reason.find("same bits as passing Q=38"), std::string::npos) << sg.q << ": " << sg.reason;
  }
  // Every bit class strictly between 2336 and 3296 has its top suggested.
  int classes = 0;
  for (int q = 11; q <= 40; ++q)
    if (spec_bits("e8", q, 512) < spec_bits("e8", q + 1, 512) && q != 38) ++classes;
  EXPECT_EQ(static_cast<int>(qs.size()), classes);
  // HCA never fits A: probe above the grid.
  bool probe = false;
  for (const auto& sg : s.suggestions)
    if (sg.stream == kH && sg.q > 38) probe = true;
  EXPECT_TRUE(probe);
  // Capped lists keep both ends.
  opt.max_suggestions_per_stream = 3;
  const auto capped = ks::summarize(Builder::standard().d, opt);
  std::vector<int> cq;
  for (const auto& sg : capped.suggestions)
    if (sg.stream == kS) cq.push_back(sg.q);
  EXPECT_EQ(cq.size(), 3u);
  EXPECT_EQ(cq.front(), qs.front());
  EXPECT_EQ(cq.back(), 40);
}

TEST(StatsStudy, MissingBaselineAndSinglePassage) {
  Builder b(1);
  b.add(kS, "fp8_per64", 4224, {1.0});
  b.add(kS, "e8:q=38", 3296, {0.8});
  b.add(kC, "e8:q=38", 3296, {0.8});  // no FP8 on CSA
  const auto s = ks::summarize(b.d);
  bool warned = false;
  for (const auto& w : s.warnings) warned |= w.find(kC) != std::string::npos && w.find("no FP8 baseline") != std::string::npos;
  EXPECT_TRUE(warned);
  EXPECT_EQ(s.find_best_q(kC, "e8", "A", ks::QView::kPoint), nullptr);
  const ks::CellStats* c = s.find_cell(kS, "e8:q=38");
  EXPECT_FALSE(c->rel_mse.ci95_hw.has_value());  // n = 1: no interval, never +- 0
  EXPECT_TRUE(s.find_best_q(kS, "e8", "A", ks::QView::kPoint)->admissible);
  const ks::BestQ* ci = s.find_best_q(kS, "e8", "A", ks::QView::kCiSafe);
  EXPECT_FALSE(ci->admissible);
  EXPECT_NE(ci->note.find("fewer than 2 passages"), std::string::npos);
}

TEST(StatsStudy, ReplicatesAreAveragedPerPassage) {
  Builder b(2);
  b.add(kS, "fp8_per64", 4224, {1.0, 1.0});
  b.add(kS, "e8:q=38", 3296, {0.8, 0.6});
  b.add(kS, "e8:q=38", 3296, {1.0, 0.8});  // second replicate of each passage
  const auto s = ks::summarize(b.d);
  const ks::CellStats* c = s.find_cell(kS, "e8:q=38");
  EXPECT_EQ(c->n_passages, 2);
  EXPECT_NEAR(c->rel_mse.mean, 0.8, 1e-12);
  EXPECT_NEAR(c->passages[0].ratio, 0.9, 1e-12);
}

TEST(StatsStudy, FiltersAndBadRows) {
  ks::SummaryOptions opt;
  opt.streams = {kH};
  opt.codecs = {"e8:q=38"};
  const auto s = ks::summarize(Builder::standard().d, opt);
  ASSERT_EQ(s.streams, std::vector<std::string>{kH});
  ASSERT_EQ(s.cells.size(), 2u);  // the baseline is kept
  EXPECT_EQ(s.cells[1].codec, "e8:q=38");
  Builder bad = Builder::standard();
  bad.d.results[0].bits_per_vector = 0;
  EXPECT_THROW(ks::summarize(bad.d), kvlab::Error);
  Builder bad2 = Builder::standard();
  bad2.d.results[5].codec = "e8:q=39";  // disagrees with q = 10
  EXPECT_THROW(ks::summarize(bad2.d), kvlab::Error);
}

TEST(StatsStudy, AuditGates) {
  Builder b = Builder::standard();
  for (int i = 0; i < 4; ++i) {
    ks::AuditResult a;
    a.passage_id = 100 + i;
    a.stream = kS;
    a.excess_kurtosis_abs = i < 2 ? 0.4 : 0.8;  // mean 0.6 > 0.5 gate; 2 passages fire
    a.isotropy_variance_ratio = 1.2;
    a.hadamard_post_variance_ratio = 1.1;
    a.rms_wasserstein2_over_sigma_per_dim = 0.01;
    a.n_vectors = 2048;
    a.dim = 512;
    b.d.audits.push_back(a);
  }
  const auto s = ks::summarize(b.d);
  ASSERT_EQ(s.audits.size(), 1u);
  ASSERT_EQ(s.audits[0].metrics.size(), 4u);
  EXPECT_EQ(s.audits[0].metrics[0].metric, "excess_kurtosis_abs");
  EXPECT_NEAR(s.audits[0].metrics[0].value.mean, 0.6, 1e-12);
  EXPECT_TRUE(s.audits[0].metrics[0].fires);
  EXPECT_EQ(s.audits[0].metrics[0].passages_firing, 2);
  EXPECT_FALSE(s.audits[0].metrics[1].fires);
  EXPECT_EQ(s.audits[0].n_vectors, 2048);
}

TEST(StatsStudy, DiffPairedAndWelch) {
  Builder a = Builder::standard();
  Builder b = Builder::standard();
  for (auto& r : b.d.results) r.rel_mse *= 2.0;
  b.d.info.name = "doubled";
  b.add(kS, "e8:q=44", 3360, {1, 1, 1, 1});
  const ks::ExperimentDiff d = ks::diff_experiments(a.d, b.d);
  EXPECT_TRUE(d.paired);
  EXPECT_EQ(d.shared_passages, 4);
  EXPECT_EQ(d.cells.size(), 9u);
  EXPECT_EQ(d.only_b, std::vector<std::string>{std::string(kS) + " e8:q=44"});
  for (const auto& c : d.cells) {
    EXPECT_NEAR(c.ratio, 0.5, 1e-12);
    ASSERT_TRUE(c.paired_ratio.has_value());
    EXPECT_NEAR(c.paired_ratio->mean, 0.5, 1e-12);
    EXPECT_EQ(c.difference.method, ks::Comparison::Method::kPaired);
  }
  // Other passages on side B: Welch.
  for (auto& p : b.d.passages) p.content_hash += "-other";
  const ks::ExperimentDiff w = ks::diff_experiments(a.d, b.d);
  EXPECT_FALSE(w.paired);
  EXPECT_EQ(w.cells[0].difference.method, ks::Comparison::Method::kWelch);
  EXPECT_FALSE(w.cells[0].paired_ratio.has_value());
}
