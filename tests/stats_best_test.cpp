// stats::best_operating_point on hand-built experiments whose answers are
// worked out on paper: the lowest-bit point of a family per stream and
// layer weighted, on rel-MSE and on a run_metrics metric, point and CI-safe
// views, another baseline, metric aliases and the error messages.
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.h"
#include "stats/best.h"
#include "stats/study.h"
#include "testutil/study_builder.h"

namespace ks = kvlab::stats;

namespace {

constexpr const char* kS = "sliding_window_kv";
constexpr const char* kH = "hca_pool_kv_ratio128";
const double kT3 = 3.182446305284263;  // t(0.975, 3)

struct Builder : kvlab::testutil::StudyBuilder {
  // Layer weights 0.25 / 0.75.
  Builder() : StudyBuilder(4, {{kS, 1}, {kH, 3}}, [](int) { return std::string("h"); }) {
    cos_of = [](double) { return 0.99; };
  }
  static std::vector<double> times(const std::vector<double>& base, const std::vector<double>& ratio) {
    std::vector<double> out;
    for (std::size_t i = 0; i < base.size(); ++i) out.push_back(base[i] * ratio[i]);
    return out;
  }
  // Baseline rel {1,2,1,2}, attn {1,1,1,1}. int bits=4 / 6 / 8 with rel ratios
  // r4, r6, r8 per stream and attn ratios 0.5 (bits 8), 1.1 (6), 3 (4).
  static Builder standard() {
    Builder b;
    const std::vector<double> base = {1, 2, 1, 2}, one = {1, 1, 1, 1};
    for (const char* s : {kS, kH}) {
      b.add(s, "fp8_per64", 4224, base, one);
      const bool swa = std::string(s) == kS;
      b.add(s, "int:bits=4,block=64,scale=fp16", 2304, times(base, {2, 2, 2, 2}), {3, 3, 3, 3});
      b.add(s, "int:bits=6,block=64,scale=fp16", 3328,
            times(base, swa ? std::vector<double>{0.9, 0.9, 0.9, 0.9} : std::vector<double>{0.9, 1.2, 0.9, 1.2}),
            {1.1, 1.1, 1.1, 1.1});
      b.add(s, "int:bits=8,block=64,scale=fp16", 4352, times(base, {0.1, 0.1, 0.1, 0.1}), {0.5, 0.5, 0.5, 0.5});
    }
    return b;
  }
};

ks::BestResult best(const ks::ExperimentData& d, const std::string& family, const std::string& th, bool ci_safe,
                    const std::string& metric = "rel_mse", const std::string& baseline = "") {
  ks::SummaryOptions o;
  o.metric = metric;
  o.baseline = baseline;
  const auto s = ks::summarize(d, o);
  return ks::best_operating_point(s, {family, ks::parse_threshold(th), ci_safe});
}

}  // namespace

TEST(StatsBest, PointViewPerStreamAndLayerWeighted) {
  const auto b = best(Builder::standard().d, "int", "A", false);
  EXPECT_EQ(b.baseline, "fp8_per64");
  EXPECT_EQ(b.metric, "rel_mse");
  ASSERT_EQ(b.streams.size(), 2u);
  // SWA: bits=6 has ratio 0.9 <= 1 and fewer bits than bits=8.
  ASSERT_TRUE(b.streams[0].best.has_value());
  EXPECT_EQ(b.streams[0].best->codec, "int:bits=6,block=64,scale=fp16");
  EXPECT_DOUBLE_EQ(b.streams[0].best->bits_per_vector, 3328);
  EXPECT_DOUBLE_EQ(b.streams[0].best->bits_per_dim, 3328.0 / 512);
  EXPECT_NEAR(b.streams[0].best->used, 0.9, 1e-12);
  EXPECT_EQ(b.streams[0].candidates.size(), 3u);
  // HCA: bits=6 has mean ratio 1.05 > 1: bits=8 is the answer.
  ASSERT_TRUE(b.streams[1].best.has_value());
  EXPECT_EQ(b.streams[1].best->codec, "int:bits=8,block=64,scale=fp16");
  EXPECT_NEAR(b.streams[1].candidates[1].used, 1.05, 1e-12);
  // Layer weighted, one codec: bits=6 has 0.25 * 0.9 + 0.75 * {0.9, 1.2} -> mean 0.9 + 0.75 * 0.15 = 1.0125 > 1.
  ASSERT_TRUE(b.layer_weighted.best.has_value());
  EXPECT_EQ(b.layer_weighted.best->codec, "int:bits=8,block=64,scale=fp16");
  EXPECT_NEAR(b.layer_weighted.candidates[1].ratio.mean, 1.0125, 1e-12);
  EXPECT_DOUBLE_EQ(b.layer_weighted.baseline_bits, 4224);
  // Per-stream points: 0.25 * 3328 + 0.75 * 4352.
  EXPECT_TRUE(b.layer_weighted.per_stream_admissible);
  EXPECT_NEAR(b.layer_weighted.per_stream_bits, 0.25 * 3328 + 0.75 * 4352, 1e-9);
  EXPECT_NEAR(b.layer_weighted.per_stream_bits_per_dim, (0.25 * 3328 + 0.75 * 4352) / 512, 1e-12);
  EXPECT_FALSE(b.any_inadmissible());
  // Threshold C (1.20): HCA bits=6 (mean 1.05) clears, layer weighted too.
  const auto c = best(Builder::standard().d, "int", "C", false);
  EXPECT_EQ(c.streams[1].best->codec, "int:bits=6,block=64,scale=fp16");
  EXPECT_EQ(c.layer_weighted.best->codec, "int:bits=6,block=64,scale=fp16");
}

TEST(StatsBest, CiSafeUsesTheUpperEndOfThePairedRatio) {
  // Threshold C: HCA bits=6 ratios {0.9,1.2,0.9,1.2}: mean 1.05, sd sqrt(4 * 0.15^2 / 3), upper mean + t3 sd / 2.
  const auto b = best(Builder::standard().d, "int", "C", true);
  const double upper = 1.05 + kT3 * std::sqrt(0.03) / 2;
  EXPECT_GT(upper, 1.2);
  EXPECT_NEAR(b.streams[1].candidates[1].used, upper, 1e-12);
  EXPECT_EQ(b.streams[1].best->codec, "int:bits=8,block=64,scale=fp16");
  // SWA bits=6: zero spread, upper = 0.9.
  EXPECT_EQ(b.streams[0].best->codec, "int:bits=6,block=64,scale=fp16");
  // Layer weighted bits=6: per passage 0.25*0.9 + 0.75*{0.9,1.2}: {0.9, 1.125, ..}: sd = 0.75 * sqrt(0.03).
  EXPECT_NEAR(b.layer_weighted.candidates[1].used, 1.0125 + kT3 * 0.75 * std::sqrt(0.03) / 2, 1e-12);
  EXPECT_EQ(b.layer_weighted.best->codec, "int:bits=8,block=64,scale=fp16");
}

TEST(StatsBest, AnyThresholdableMetricAndAliases) {
  EXPECT_EQ(ks::resolve_threshold_metric("attn_out"), "attn_out_rel");
  EXPECT_EQ(ks::resolve_threshold_metric("kl"), "kl_mean");
  EXPECT_EQ(ks::resolve_threshold_metric("logit"), "logit_rel_mse");
  EXPECT_EQ(ks::resolve_threshold_metric("rel_mse"), "rel_mse");
  EXPECT_EQ(ks::resolve_threshold_metric("kl_p99"), "kl_p99");
  try {
    ks::resolve_threshold_metric("cos_sim");  // not thresholdable
    FAIL();
  } catch (const kvlab::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("attn_out"), std::string::npos) << e.what();
  }
  // attn_out ratios: bits=4 3.0, bits=6 1.1, bits=8 0.5: A -> bits=8, B (1.05) -> bits=8, C (1.2) -> bits=6.
  const auto d = Builder::standard().d;
  EXPECT_EQ(best(d, "int", "A", true, "attn_out_rel").streams[0].best->codec, "int:bits=8,block=64,scale=fp16");
  EXPECT_EQ(best(d, "int", "C", true, "attn_out_rel").streams[0].best->codec, "int:bits=6,block=64,scale=fp16");
  EXPECT_EQ(best(d, "int", "C", true, "attn_out_rel").metric, "attn_out_rel");
  // No run recorded kl_mean: a clear error naming the metrics that are there.
  try {
    best(d, "int", "A", false, "kl_mean");
    FAIL();
  } catch (const kvlab::Error& e) {
    const std::string w = e.what();
    EXPECT_NE(w.find("kl_mean"), std::string::npos) << w;
    EXPECT_NE(w.find("attn_out_rel, rel_mse"), std::string::npos) << w;
  }
}

TEST(StatsBest, AgainstAnotherBaselineAndFamilyErrors) {
  // Against int bits=8: bits=6 has rel ratio 9 on SWA: nothing below 8 bits clears A except... none.
  const auto b = best(Builder::standard().d, "int", "A", false, "rel_mse", "int:bits=8,block=64,scale=fp16");
  EXPECT_EQ(b.baseline, "int:bits=8,block=64,scale=fp16");
  ASSERT_EQ(b.streams.size(), 2u);
  EXPECT_EQ(b.streams[0].candidates.size(), 2u);  // the baseline itself is no candidate
  EXPECT_FALSE(b.streams[0].best.has_value());
  EXPECT_TRUE(b.any_inadmissible());
  EXPECT_FALSE(b.streams[0].note.empty());
  const auto d = Builder::standard().d;
  try {
    best(d, "fp8_per64", "A", false);
    FAIL();
  } catch (const kvlab::Error& e) {
    EXPECT_NE(std::string(e.what()).find("e8"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("hadamard_lloyd"), std::string::npos) << e.what();
  }
  try {
    best(d, "e8", "A", false);
    FAIL();
  } catch (const kvlab::Error& e) {
    EXPECT_NE(std::string(e.what()).find("ran no codec of family 'e8'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("int"), std::string::npos) << e.what();
  }
  // A variant selects only itself.
  EXPECT_EQ(best(d, "int:block=64,scale=fp16", "A", false).streams[0].best->codec, "int:bits=6,block=64,scale=fp16");
  EXPECT_THROW(best(d, "int:block=64,scale=ue8m0", "A", false), kvlab::Error);
}

TEST(StatsBest, NoLayerMixNoWeightedAnswer) {
  Builder b = Builder::standard();
  b.d.info.layer_mix.clear();
  const auto r = best(b.d, "int", "A", false);
  EXPECT_FALSE(r.layer_weighted.available);
  EXPECT_FALSE(r.layer_weighted.best.has_value());
  EXPECT_EQ(r.streams.size(), 2u);
}

TEST(StatsBest, AStreamWithoutItsBaselineIsLeftOutWithANote) {
  Builder b = Builder::standard();
  std::vector<ks::RunResult> kept;
  for (const auto& r : b.d.results)
    if (!(r.stream == kH && r.codec == "fp8_per64")) kept.push_back(r);
  b.d.results = kept;
  const auto r = best(b.d, "int", "A", false);
  ASSERT_EQ(r.streams.size(), 1u);
  EXPECT_EQ(r.streams[0].stream, kS);
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_NE(r.warnings[0].find(kH), std::string::npos) << r.warnings[0];
  EXPECT_TRUE(r.layer_weighted.candidates.empty());  // HCA has no ratio: no codec on every weighted stream
  EXPECT_FALSE(r.layer_weighted.best.has_value());
}
