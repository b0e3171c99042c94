// stats::compute_frontier on hand-built run sets: the per-point values
// (bits/dim, entropy, bounds and the distance to them in dB, the paired
// ratio to the baseline), the Pareto and lower-hull flags, and the
// matched-rate table: the bits rule (<= the lattice point's bits per
// vector, lattices excluded), the pairing by passage id and the verdicts.
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.h"
#include "stats/frontier.h"

namespace ks = kvlab::stats;

namespace {

constexpr const char* kS = "sliding_window_kv";
constexpr const char* kC = "csa_pool_kv_ratio4";
const double kT3 = 3.182446305284263;  // t(0.975, 3)

std::string canon(const std::string& c) { return ks::parse_codec_spec(c).canonical; }

struct Data {
  ks::ExperimentData d;
  Data() {
    d.info.name = "hand";
    d.info.baseline = "v4_native";
    d.info.write_path = "v4";
    for (int i = 1; i <= 6; ++i) d.passages.push_back({i, i - 1, "p" + std::to_string(i), "h" + std::to_string(i), ""});
  }
  ks::RunResult& row(const std::string& stream, const std::string& codec, std::int64_t passage, double rel,
                     double bits) {
    ks::RunResult r;
    r.run_id = static_cast<std::int64_t>(d.results.size()) + 1;
    r.passage_id = passage;
    r.stream = stream;
    r.codec = canon(codec);
    r.q = ks::parse_codec_spec(codec).rate;
    r.bits_per_vector = bits;
    r.rel_mse = rel;
    r.cos_sim = 1 - rel;
    r.dim = 512;
    d.results.push_back(r);
    return d.results.back();
  }
};

const ks::FrontierPoint& point(const ks::FrontierStream& s, const std::string& codec) {
  for (const auto& p : s.points)
    if (p.codec == canon(codec)) return p;
  throw std::runtime_error("no point " + codec);
}

const ks::MatchedRateRow& matched(const ks::FrontierStream& s, const std::string& lattice) {
  for (const auto& m : s.matched)
    if (m.lattice == canon(lattice)) return m;
  throw std::runtime_error("no matched row " + lattice);
}

// Passage values that vary over three decades while the lattice / scalar
// ratio stays near 0.5: only a per-passage pairing gives a narrow interval.
const double kScale[4] = {1e-4, 1e-3, 1e-2, 1e-1};
const double kRatio[4] = {0.50, 0.52, 0.48, 0.50};

Data matched_set() {
  Data t;
  for (int i = 0; i < 4; ++i) {
    const std::int64_t p = i + 1;
    t.row(kS, "v4_native", p, 2 * kScale[i], 4672);
    t.row(kS, "e8:q=10", p, kRatio[i] * kScale[i], 1000);
    // Same bits as the lattice (allowed: no more bits) and the least error among those allowed.
    t.row(kS, "int:bits=2", p, kScale[i], 1000);
    // Fewer bits, more error: allowed but not the best.
    t.row(kS, "hadamard_lloyd:bits=1", p, 3 * kScale[i], 528);
    // One bit more than the lattice and far less error: must not be chosen.
    t.row(kS, "int:bits=3", p, 0.01 * kScale[i], 1001);
    // A lattice with fewer bits and less error: never the comparator.
    t.row(kS, "d4:q=3", p, 0.1 * kScale[i], 900);
  }
  // Passages the other side lacks: lattice-only p5 and scalar-only p6 must be left out of the pairing.
  t.row(kS, "e8:q=10", 5, 1.0, 1000);
  t.row(kS, "int:bits=2", 6, 1e-9, 1000);
  return t;
}

TEST(StatsFrontier, MatchedRateTakesTheBestNonLatticeCodecAtNoMoreBits) {
  const auto f = ks::compute_frontier(matched_set().d);
  ASSERT_EQ(f.streams.size(), 1u);
  const auto& m = matched(f.streams[0], "e8:q=10");
  ASSERT_TRUE(m.scalar.has_value());
  EXPECT_EQ(*m.scalar, canon("int:bits=2"));  // not int:bits=3 (1001 bits), not d4 (a lattice)
  EXPECT_DOUBLE_EQ(m.scalar_bits, 1000);
  EXPECT_DOUBLE_EQ(m.lattice_bits, 1000);
  EXPECT_DOUBLE_EQ(m.lattice_bits_per_dim, 1000.0 / 512);
  EXPECT_DOUBLE_EQ(m.rate_gap_bits_per_dim, 0.0);
  EXPECT_FALSE(m.lattice_pareto);  // d4:q=3 has fewer bits and less error
  // d4:q=3 at 900 bits: the best non-lattice codec at <= 900 bits is hadamard_lloyd (528 bits).
  const auto& d4 = matched(f.streams[0], "d4:q=3");
  ASSERT_TRUE(d4.scalar.has_value());
  EXPECT_EQ(*d4.scalar, canon("hadamard_lloyd:bits=1"));
  EXPECT_DOUBLE_EQ(d4.rate_gap_bits_per_dim, (900.0 - 528.0) / 512);
  EXPECT_TRUE(d4.lattice_pareto);
  EXPECT_EQ(f.streams[0].matched.size(), 2u);  // one row per lattice point, none for scalar codecs
  EXPECT_EQ(f.streams[0].matched[0].lattice, canon("d4:q=3"));  // ascending bits
}

TEST(StatsFrontier, MatchedRateRatioIsPairedByPassageId) {
  const auto f = ks::compute_frontier(matched_set().d);
  const auto& m = matched(f.streams[0], "e8:q=10");
  // Passages 1-4 only (p5 has no scalar run, p6 no lattice run).
  EXPECT_EQ(m.ratio.n, 4);
  EXPECT_NEAR(m.ratio.mean, 0.5, 1e-12);
  const double sd = std::sqrt((0.0004 + 0.0004) / 3.0);
  ASSERT_TRUE(m.ratio.ci95_hw.has_value());
  EXPECT_NEAR(*m.ratio.ci95_hw, kT3 * sd / 2.0, 1e-12);
  EXPECT_EQ(m.verdict, ks::MatchedVerdict::kLatticeBetter);
  EXPECT_STREQ(ks::to_string(m.verdict), "lattice better");
  // The two rel-MSE summaries are each cell's own (p5 / p6 included).
  EXPECT_EQ(m.lattice_rel_mse.n, 5);
  EXPECT_EQ(m.scalar_rel_mse.n, 5);
}

TEST(StatsFrontier, VerdictsReadTheInterval) {
  Data t;
  const double worse[3] = {1.5, 1.6, 1.4};
  const double tied[3] = {0.9, 1.1, 1.0};
  for (int i = 0; i < 3; ++i) {
    const std::int64_t p = i + 1;
    t.row(kS, "v4_native", p, 1e-3, 4672);
    t.row(kS, "int:bits=4", p, 1e-3 * (1 + i), 2000);
    t.row(kS, "e8:q=20", p, worse[i] * 1e-3 * (1 + i), 2100);
    t.row(kC, "v4_native", p, 1e-3, 4672);
    t.row(kC, "int:bits=4", p, 1e-3 * (1 + i), 2000);
    t.row(kC, "e8:q=20", p, tied[i] * 1e-3 * (1 + i), 2040);  // gap 0.078 bits/dim: within the tolerance
    t.row(kC, "e8:q=1", p, 0.5, 200);  // nothing non-lattice at <= 200 bits
  }
  t.row(kS, "d4:q=30", 1, 1e-4, 2500);  // one passage: no interval
  const auto f = ks::compute_frontier(t.d);
  ASSERT_EQ(f.streams.size(), 2u);
  EXPECT_EQ(f.streams[0].stream, kS);  // canonical stream order
  EXPECT_EQ(matched(f.streams[0], "e8:q=20").verdict, ks::MatchedVerdict::kLatticeWorse);
  EXPECT_EQ(matched(f.streams[0], "d4:q=30").verdict, ks::MatchedVerdict::kNoInterval);
  EXPECT_EQ(matched(f.streams[0], "d4:q=30").ratio.n, 1);
  EXPECT_EQ(matched(f.streams[1], "e8:q=20").verdict, ks::MatchedVerdict::kTied);
  const auto& none = matched(f.streams[1], "e8:q=1");
  EXPECT_EQ(none.verdict, ks::MatchedVerdict::kNoScalar);
  EXPECT_FALSE(none.scalar.has_value());
}

// Scalar points at 2 and 4 bits/dim and a lattice point at 3 bits/dim whose
// error lies between them: the cheaper scalar codec alone (the no-more-bits
// comparator) loses to the lattice, but time-sharing the two at 3 bits/dim
// beats it.
Data envelope_set(double lattice_factor) {
  Data t;
  const double noise[4] = {1.00, 1.02, 0.98, 1.01};
  for (int i = 0; i < 4; ++i) {
    const std::int64_t p = i + 1;
    const double sc = kScale[i];
    t.row(kS, "v4_native", p, 2e-2 * sc, 4672);             // 9.125 bits/dim: not on the hull (more error than int8)
    t.row(kS, "int:bits=2", p, 4.0 * sc, 1024);              // 2 bits/dim
    t.row(kS, "int:bits=3", p, 3.5 * sc, 1536);              // 3 bits/dim, above the 2-4 chord: not a hull vertex
    t.row(kS, "int:bits=4", p, 0.1 * sc, 2048);              // 4 bits/dim
    t.row(kS, "int:bits=8", p, 1e-3 * sc, 4096);             // 8 bits/dim, least error
    t.row(kS, "e8:q=10", p, lattice_factor * noise[i] * sc, 1536);  // 3 bits/dim
    t.row(kS, "d4:q=1", p, 0.5 * sc, 512);                   // 1 bit/dim: below every scalar rate
    t.row(kS, "e8:q=90", p, 1e-4 * sc, 4608);                // 9 bits/dim: beyond the last vertex (8), gap 1
    t.row(kS, "e8:q=38", p, 1.0 * sc, 2048);                 // exactly at a vertex (int:bits=4), worse
  }
  return t;
}

TEST(StatsFrontier, EnvelopeAtMatchedRateTimeSharesTheNeighbouringHullVertices) {
  // Lattice 3.0x the scale; the envelope at 3 bits/dim: 0.5 x 4.0 + 0.5 x 0.1 = 2.05 (x scale): lattice worse.
  const auto f = ks::compute_frontier(envelope_set(3.0).d);
  const auto& m = matched(f.streams.at(0), "e8:q=10");
  // At no more bits the comparator is int:bits=3 (3.5x, same bits: gap 0): lattice better there.
  ASSERT_TRUE(m.scalar.has_value());
  EXPECT_EQ(*m.scalar, canon("int:bits=3"));
  EXPECT_EQ(m.verdict, ks::MatchedVerdict::kLatticeBetter);
  const auto& e = m.envelope;
  EXPECT_EQ(e.lower, canon("int:bits=2"));  // int:bits=3 lies above the chord: not a neighbour
  EXPECT_EQ(e.upper, canon("int:bits=4"));
  EXPECT_DOUBLE_EQ(e.weight_upper, 0.5);
  EXPECT_DOUBLE_EQ(e.bits_per_dim, 3.0);
  EXPECT_DOUBLE_EQ(e.rate_gap_bits_per_dim, 0.0);
  const double mean_scale = (1e-4 + 1e-3 + 1e-2 + 1e-1) / 4;
  EXPECT_NEAR(e.rel_mse, 2.05 * mean_scale, 1e-12);
  // Paired per passage: 3.0 noise_i / 2.05.
  EXPECT_EQ(e.ratio.n, 4);
  EXPECT_NEAR(e.ratio.mean, 3.0 * (1.00 + 1.02 + 0.98 + 1.01) / 4 / 2.05, 1e-12);
  EXPECT_EQ(e.verdict, ks::MatchedVerdict::kLatticeWorse);
  // Lattice 1.5x: better than the envelope (2.05x).
  EXPECT_EQ(matched(ks::compute_frontier(envelope_set(1.5).d).streams.at(0), "e8:q=10").envelope.verdict,
            ks::MatchedVerdict::kLatticeBetter);
}

TEST(StatsFrontier, EnvelopeBeatsTheLatticeWhereTheCheaperScalarCodecDoesNot) {
  // Without int:bits=3 the no-more-bits comparator is int:bits=2, one bit/dim cheaper: the lattice (3.0x)
  // beats it (4.0x), which is "not comparable" across a 1 bit/dim gap, while the envelope (2.05x) beats the lattice.
  Data t = envelope_set(3.0);
  std::erase_if(t.d.results, [](const ks::RunResult& r) { return r.codec == canon("int:bits=3"); });
  const auto f = ks::compute_frontier(t.d);
  const auto& m = matched(f.streams.at(0), "e8:q=10");
  EXPECT_EQ(*m.scalar, canon("int:bits=2"));
  EXPECT_DOUBLE_EQ(m.rate_gap_bits_per_dim, 1.0);
  EXPECT_LT(*m.ratio.upper(), 1.0);  // the interval alone would say "lattice better"
  EXPECT_EQ(m.verdict, ks::MatchedVerdict::kNotComparable);
  EXPECT_STREQ(ks::to_string(m.verdict), "not comparable (rate gap)");
  EXPECT_EQ(m.envelope.verdict, ks::MatchedVerdict::kLatticeWorse);
  // A wide tolerance gives the no-more-bits verdict back.
  ks::FrontierOptions o;
  o.rate_gap_tolerance = 1.5;
  EXPECT_EQ(matched(ks::compute_frontier(t.d, o).streams.at(0), "e8:q=10").verdict,
            ks::MatchedVerdict::kLatticeBetter);
  o.rate_gap_tolerance = -0.1;
  EXPECT_THROW(ks::compute_frontier(t.d, o), kvlab::Error);
}

TEST(StatsFrontier, EnvelopeBelowTheGridAtAVertexAndBeyondTheLastVertex) {
  const auto f = ks::compute_frontier(envelope_set(3.0).d);
  const auto& s = f.streams.at(0);
  // 1 bit/dim: no scalar codec that cheap, no time-sharing reaches it.
  const auto& below = matched(s, "d4:q=1").envelope;
  EXPECT_EQ(below.verdict, ks::MatchedVerdict::kBelowEnvelope);
  EXPECT_TRUE(below.lower.empty());
  EXPECT_EQ(matched(s, "d4:q=1").verdict, ks::MatchedVerdict::kNoScalar);
  // At a vertex: the vertex itself (weight 0), ratio 10x: worse.
  const auto& at = matched(s, "e8:q=38").envelope;
  EXPECT_EQ(at.lower, canon("int:bits=4"));
  EXPECT_DOUBLE_EQ(at.weight_upper, 0.0);
  EXPECT_NEAR(at.ratio.mean, 10.0, 1e-9);
  EXPECT_EQ(at.verdict, ks::MatchedVerdict::kLatticeWorse);
  // 9 bits/dim, beyond int:bits=8 (8 bits/dim, the least-error vertex; v4_native is not on the hull): the
  // envelope is int:bits=8 at a 1 bit/dim gap; the lattice's lower error there is not comparable.
  const auto& beyond = matched(s, "e8:q=90").envelope;
  EXPECT_EQ(beyond.lower, canon("int:bits=8"));
  EXPECT_EQ(beyond.upper, canon("int:bits=8"));
  EXPECT_DOUBLE_EQ(beyond.bits_per_dim, 8.0);
  EXPECT_DOUBLE_EQ(beyond.rate_gap_bits_per_dim, 1.0);
  EXPECT_NEAR(beyond.ratio.mean, 0.1, 1e-9);
  EXPECT_EQ(beyond.verdict, ks::MatchedVerdict::kNotComparable);
}

TEST(StatsFrontier, VerdictRateGapTolerance) {
  ks::Summary better = ks::describe({0.5, 0.52, 0.48});
  ks::Summary tied = ks::describe({0.9, 1.1, 1.0});
  ks::Summary worse = ks::describe({1.5, 1.6, 1.4});
  EXPECT_EQ(ks::read_verdict(better, 0.1, 0.1), ks::MatchedVerdict::kLatticeBetter);  // at the tolerance: comparable
  EXPECT_EQ(ks::read_verdict(better, 0.1001, 0.1), ks::MatchedVerdict::kNotComparable);
  EXPECT_EQ(ks::read_verdict(tied, 0.5, 0.1), ks::MatchedVerdict::kNotComparable);
  EXPECT_EQ(ks::read_verdict(tied, 0.0, 0.1), ks::MatchedVerdict::kTied);
  EXPECT_EQ(ks::read_verdict(worse, 0.9, 0.1), ks::MatchedVerdict::kLatticeWorse);  // a loss with more bits stands
  EXPECT_EQ(ks::read_verdict(ks::describe({0.5}), 0.0, 0.1), ks::MatchedVerdict::kNoInterval);
}

TEST(StatsFrontier, PassagesWithRunsAreListed) {
  Data t;
  t.row(kS, "v4_native", 2, 1e-3, 4672);
  t.row(kS, "v4_native", 4, 1e-3, 4672);
  const auto f = ks::compute_frontier(t.d);
  ASSERT_EQ(f.passages.size(), 2u);
  EXPECT_EQ(f.passages[0].name, "p2");
  EXPECT_EQ(f.passages[1].name, "p4");
  EXPECT_DOUBLE_EQ(f.rate_gap_tolerance, ks::kRateGapTolerance);
}

TEST(StatsFrontier, PointsCarryRatesBoundsGapsAndBaselineRatio) {
  Data t;
  const double rel[3] = {2e-3, 4e-3, 8e-3};
  for (int i = 0; i < 3; ++i) {
    const std::int64_t p = i + 1;
    t.row(kS, "v4_native", p, 1e-3, 4672);
    auto& r = t.row(kS, "int:bits=4", p, rel[i], 2176);
    r.metrics["entropy_bits_per_dim"] = 3.0 + i;          // mean 4
    r.metrics["gauss_bound_rel_mse"] = rel[i] / 2;        // 3.0103 dB every passage
    r.metrics["rwf_bound_rel_mse"] = rel[i] / (10.0 + i);  // 10 log10(10 + i) dB
    r.metrics["attn_out_rel"] = 2 * rel[i];
    t.d.results[t.d.results.size() - 2].metrics["attn_out_rel"] = 1e-3;  // the baseline's
  }
  const auto f = ks::compute_frontier(t.d);
  EXPECT_EQ(f.baseline, "v4_native");
  EXPECT_EQ(f.write_path, "v4");
  EXPECT_EQ(f.n_passages, 3);
  const auto& s = f.streams.at(0);
  ASSERT_EQ(s.points.size(), 2u);
  EXPECT_EQ(s.points[0].codec, canon("int:bits=4"));  // ascending bits
  const auto& p = point(s, "int:bits=4");
  EXPECT_EQ(p.family, "int");
  EXPECT_EQ(p.variant, "int:block=64,scale=fp16");
  EXPECT_EQ(p.rate, 4);
  EXPECT_FALSE(p.lattice);
  EXPECT_FALSE(p.is_baseline);
  EXPECT_DOUBLE_EQ(p.bits_per_dim, 2176.0 / 512);
  ASSERT_TRUE(p.entropy_bits_per_dim && p.gauss_bound && p.rwf_bound && p.gauss_gap_db && p.rwf_gap_db);
  EXPECT_DOUBLE_EQ(p.entropy_bits_per_dim->mean, 4.0);
  EXPECT_NEAR(p.gauss_bound->mean, (1e-3 + 2e-3 + 4e-3) / 3, 1e-15);
  EXPECT_NEAR(p.gauss_gap_db->mean, 10 * std::log10(2.0), 1e-12);
  EXPECT_NEAR(*p.gauss_gap_db->ci95_hw, 0.0, 1e-12);
  EXPECT_NEAR(p.rwf_gap_db->mean, 10 * (std::log10(10.0) + std::log10(11.0) + std::log10(12.0)) / 3, 1e-12);
  ASSERT_TRUE(p.ratio_vs_baseline.has_value());
  EXPECT_NEAR(p.ratio_vs_baseline->mean, (2.0 + 4.0 + 8.0) / 3, 1e-12);
  ASSERT_TRUE(p.attn_out_rel && p.attn_out_ratio);
  EXPECT_NEAR(p.attn_out_ratio->mean, (4.0 + 8.0 + 16.0) / 3, 1e-12);
  const auto& b = point(s, "v4_native");
  EXPECT_TRUE(b.is_baseline);
  EXPECT_FALSE(b.ratio_vs_baseline.has_value());
  EXPECT_FALSE(b.entropy_bits_per_dim.has_value());  // not recorded: absent, not zero
  EXPECT_FALSE(b.gauss_gap_db.has_value());
  // No lattice point: no matched rows.
  EXPECT_TRUE(s.matched.empty());
}

TEST(StatsFrontier, LowerHullKeepsConvexVerticesUpToTheLeastError) {
  //            0     1    2    3    4    5    6 (same x as 1, higher)
  const std::vector<double> xs = {1, 2, 3, 4, 5, 6, 2};
  const std::vector<double> ys = {10, 5, 4, 1, 0.5, 0.6, 7};
  EXPECT_EQ(ks::lower_hull(xs, ys), (std::vector<std::size_t>{0, 1, 3, 4}));
  // Collinear middle points are not vertices.
  EXPECT_EQ(ks::lower_hull({1, 2, 3}, {3, 2, 1}), (std::vector<std::size_t>{0, 2}));
  // Non-finite values are skipped; a single point is its own hull.
  EXPECT_EQ(ks::lower_hull({1, 2}, {NAN, 4}), (std::vector<std::size_t>{1}));
  EXPECT_THROW(ks::lower_hull({1, 2}, {1}), kvlab::Error);
}

TEST(StatsFrontier, ParetoAndHullFlagsPerStream) {
  Data t;
  for (std::int64_t p = 1; p <= 2; ++p) {
    t.row(kS, "v4_native", p, 1e-3, 4672);       // 9.125 bits/dim
    t.row(kS, "e8:q=10", p, 4e-2, 1024);          // 2 bits/dim: hull vertex
    t.row(kS, "int:bits=3", p, 3e-2, 1536);       // 3: above the 2-4 segment (mid 2.05e-2), not on hull, Pareto
    t.row(kS, "int:bits=4", p, 1e-3 + 1e-4, 2048);  // 4: hull vertex
    t.row(kS, "int:bits=5", p, 2e-3, 2560);       // 5: dominated by int:bits=4
    t.row(kS, "int:bits=8", p, 5e-4, 4096);       // 8: least error, last hull vertex
  }
  const auto f = ks::compute_frontier(t.d);
  const auto& s = f.streams.at(0);
  EXPECT_TRUE(point(s, "e8:q=10").on_hull);
  EXPECT_FALSE(point(s, "int:bits=3").on_hull);
  EXPECT_TRUE(point(s, "int:bits=3").pareto);
  EXPECT_TRUE(point(s, "int:bits=4").on_hull);
  EXPECT_FALSE(point(s, "int:bits=5").pareto);
  EXPECT_FALSE(point(s, "int:bits=5").on_hull);
  EXPECT_TRUE(point(s, "int:bits=8").on_hull);
  EXPECT_FALSE(point(s, "v4_native").on_hull);  // more bits and more error than int:bits=8
  EXPECT_FALSE(point(s, "v4_native").pareto);
}

TEST(StatsFrontier, StreamFilterAndBaselineOption) {
  Data t;
  for (std::int64_t p = 1; p <= 2; ++p) {
    t.row(kS, "v4_native", p, 1e-3, 4672);
    t.row(kS, "fp8_per64", p, 2e-3, 4224);
    t.row(kC, "v4_native", p, 1e-3, 4672);
  }
  ks::FrontierOptions o;
  o.streams = {kS};
  o.baseline = "fp8_per64";
  const auto f = ks::compute_frontier(t.d, o);
  ASSERT_EQ(f.streams.size(), 1u);
  EXPECT_EQ(f.baseline, "fp8_per64");
  ASSERT_TRUE(point(f.streams[0], "v4_native").ratio_vs_baseline.has_value());
  EXPECT_NEAR(point(f.streams[0], "v4_native").ratio_vs_baseline->mean, 0.5, 1e-12);
  o.streams = {"hca_pool_kv_ratio128"};
  try {
    ks::compute_frontier(t.d, o);
    FAIL() << "expected an error for a stream without runs";
  } catch (const kvlab::Error& e) {
    EXPECT_NE(std::string(e.what()).find("hca_pool_kv_ratio128"), std::string::npos) << e.what();
  }
}

}  // namespace
