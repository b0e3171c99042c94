// Parity with the published implementation (shared/reference, see its
// README): E4M3 rounding (exact), D4/E8 codec outputs at D = 512 and 128 for
// every Q and input (per vector, gated by the published tie / fp16 margins),
// the blocks where the published point is not an in-box lattice point
// (counted, never matched), aggregate rel-MSE/cosine, the FP8 baseline
// (published uniform stand-in reproduced exactly; real E4M3 and the uf16
// scale measured against it) and the audit values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "codec/lattice_codec.h"
#include "io/safetensors.h"
#include "kernels/fp8_block.h"
#include "kernels/fp_formats.h"
#include "kernels/hadamard.h"
#include "kernels/metrics.h"
#include "testutil/testutil.h"

namespace kvlab::codec {
namespace {

using io::SafetensorsFile;

// Per-vector output tolerance relative to max|x| for vectors whose decisions
// are not near a tie: the README measured <= 7.6e-6 (edge) and <= 2.2e-6
// (others) for an independent float64 port; this port measures 7.63e-6
// (the edge set, both codecs; printed by CodecParity).
constexpr double kOutputRelTol = 1e-5;
// Margins below which another summation order may legitimately flip a
// decision (README "Suggested test rule").
constexpr double kTieMarginGate = 1e-4;
constexpr double kFp16MarginGate = 1e-3;
// Aggregate rel-MSE: ours / published. The honest in-box codec replaces the
// published clamp points (closer but uncodable), so it may only be higher;
// measured on gauss/t3/aniso: D4 <= 1.00001, E8 <= 1.0194 (printed by
// CodecParity).
// On the 16-row `edge` and 9-row `clamp_probe` sets one replaced vector
// can move the aggregate more (measured up to 1.087, E8 D = 128 Q = 40).
constexpr double kRelMseRatioLow = 1.0 - 1e-4;
constexpr double kRelMseRatioHigh = 1.025;
constexpr double kRelMseRatioHighSmallSets = 1.10;
// Reference metric values (float32 torch) vs our double evaluation of the
// same tensors: README measured <= 3.1e-7 relative.
constexpr double kMetricRelTol = 1e-6;
// Audit: README measured float32 vs float64 <= 2e-6 relative; our double
// implementation against the published float32 values measures <= 4.3e-7.
constexpr double kAuditRelTol = 3e-6;

const SafetensorsFile& ref_file(const std::string& name) {
  static std::map<std::string, SafetensorsFile> files;
  auto it = files.find(name);
  if (it == files.end()) it = files.emplace(name, SafetensorsFile::open(testutil::reference_path(name))).first;
  return it->second;
}

double meta_double(const SafetensorsFile& f, const std::string& key) {
  const auto& m = f.metadata();
  auto it = m.find(key);
  if (it == m.end()) throw std::runtime_error("missing metadata " + key);
  return std::strtod(it->second.c_str(), nullptr);
}

TEST(E4m3Reference, EveryRoundingCaseBitExact) {
  const auto& f = ref_file("e4m3fn_rounding.safetensors");
  const auto in = f.to_f32("input");
  const auto sat = f.to_f32("expected_sat");
  const auto sat_code = f.to_f32("expected_sat_code");
  const auto nonsat_code = f.to_f32("expected_nonsat_code");
  ASSERT_EQ(in.size(), 4096u);
  for (size_t i = 0; i < in.size(); ++i) {
    const uint8_t c = kernels::f32_to_e4m3(in[i], true);
    ASSERT_EQ(int(c), int(sat_code[i])) << "input " << in[i] << " index " << i;
    const float v = kernels::e4m3_to_f32(c);
    if (std::isnan(sat[i])) {
      ASSERT_TRUE(std::isnan(v)) << i;
    } else {
      ASSERT_EQ(kernels::f32_bits(v), kernels::f32_bits(sat[i])) << i;
    }
    ASSERT_EQ(int(kernels::f32_to_e4m3(in[i], false)), int(nonsat_code[i])) << "input " << in[i] << " index " << i;
  }
}

// Doubled lattice coordinates recovered from a published output vector:
// pts2 = round(2 * H(out / n16) / s). Returns false if the output is not
// within 0.02 lattice units of such a half-integer grid.
bool recover_points(const float* out, const float* x, int64_t d, int q, std::vector<int32_t>& pts2) {
  double ss = 0;
  for (int64_t j = 0; j < d; ++j) ss += double(x[j]) * x[j];
  const float n = std::max(float(std::sqrt(ss)), 0x1p-23f);
  const float n16 = kernels::f16_to_f32(kernels::f32_to_f16(n));
  std::vector<float> y(x, x + d);
  for (auto& v : y) v /= n;
  kernels::fwht_normalized(y.data(), d);
  float m = 0x1p-23f;
  for (float v : y) m = std::max(m, std::fabs(v));
  const double s = double(kernels::f16_to_f32(kernels::f32_to_f16(m))) / q;
  std::vector<float> u(out, out + d);
  kernels::fwht_normalized(u.data(), d);  // H is its own inverse
  pts2.resize(size_t(d));
  for (int64_t j = 0; j < d; ++j) {
    const double t = 2.0 * double(u[j]) / (double(n16) * s);
    pts2[j] = int32_t(std::lround(t));
    if (std::fabs(t - pts2[j]) > 0.04) return false;
  }
  return true;
}

bool block_valid(bool e8, const int32_t* p, int q) {
  const int b = e8 ? 8 : 4;
  const int par = p[0] & 1;
  if (!e8 && par) return false;
  int64_t s = 0;
  for (int i = 0; i < b; ++i) {
    if ((p[i] & 1) != par || std::abs(p[i]) > 2 * q) return false;
    s += (p[i] - par) / 2;
  }
  return (s & 1) == 0;
}

struct ParityTotals {
  int64_t vectors = 0, compared = 0, gated = 0, nonlattice_vectors = 0, overflow_rows = 0;
  double max_rel_diff = 0, worst_ratio_hi = 0, worst_ratio_lo = 10, worst_ratio_hi_random = 0;
};

void check_codec_file(const std::string& file, const std::string& family) {
  const auto& f = ref_file(file);
  const bool e8 = family == "e8";
  ParityTotals tot;
  for (int64_t d : {512, 128}) {
    for (const std::string input : {"gauss", "t3", "aniso", "edge", "fp16_overflow", "clamp_probe"}) {
      const auto x = f.to_f32("input/D" + std::to_string(d) + "/" + input);
      const auto fm = f.to_f32("fp16_margin/D" + std::to_string(d) + "/" + input);
      const int64_t n = int64_t(x.size()) / d;
      for (int q : {1, 2, 3, 10, 38, 40, 44, 76, 152}) {
        const std::string key = "D" + std::to_string(d) + "/" + input + "/Q" + std::to_string(q);
        SCOPED_TRACE(family + " " + key);
        const auto ref = f.to_f32("output/" + key);
        const auto tie = f.to_f32("tie_margin/" + key);
        auto codec = make_codec(family + ":q=" + std::to_string(q), d);
        EXPECT_EQ(codec->published_bits_per_vector(), meta_double(f, "bits/D" + std::to_string(d) + "/Q" + std::to_string(q)));
        std::vector<float> ours(x.size());
        codec->roundtrip(x.data(), n, ours.data());
        int64_t nonlattice_blocks = 0, nonlattice_vectors = 0;
        for (int64_t i = 0; i < n; ++i) {
          const float* xi = x.data() + i * d;
          const float* ri = ref.data() + i * d;
          const float* oi = ours.data() + i * d;
          ++tot.vectors;
          for (int64_t j = 0; j < d; ++j) ASSERT_TRUE(std::isfinite(oi[j]));
          double xmax = 0, nrm = 0;
          for (int64_t j = 0; j < d; ++j) xmax = std::max(xmax, double(std::fabs(xi[j]))), nrm += double(xi[j]) * xi[j];
          nrm = std::sqrt(nrm);
          if (nrm >= 65520.0) {
            // Published output is inf/NaN (fp16 norm). Ours is finite and
            // exactly 16x our output for x / 16 (a norm fp16 holds): the
            // pipeline is equivariant under power-of-two scaling.
            ++tot.overflow_rows;
            std::vector<float> xs(xi, xi + d), os(static_cast<size_t>(d));
            for (auto& v : xs) v /= 16.f;
            codec->roundtrip(xs.data(), 1, os.data());
            for (int64_t j = 0; j < d; ++j) ASSERT_EQ(oi[j], 16.f * os[j]) << "overflow row " << i;
            continue;
          }
          std::vector<int32_t> pts;
          bool valid = recover_points(ri, xi, d, q, pts);
          int bad_blocks = 0;
          if (valid)
            for (int64_t j = 0; j < d; j += (e8 ? 8 : 4)) bad_blocks += !block_valid(e8, &pts[j], q);
          nonlattice_blocks += bad_blocks;
          if (bad_blocks) {
            ++nonlattice_vectors;
            continue;  // published point is not codable: never matched
          }
          const bool subnormal_norm = nrm < 0x1p-14 && nrm > 0x1p-23;  // fp16 subnormal vs uf16 normal
          if (tie[i] < kTieMarginGate || fm[2 * i] < kFp16MarginGate || fm[2 * i + 1] < kFp16MarginGate ||
              subnormal_norm || !valid) {
            ++tot.gated;
            continue;
          }
          double md = 0;
          for (int64_t j = 0; j < d; ++j) md = std::max(md, double(std::fabs(oi[j] - ri[j])));
          const double rel = xmax > 0 ? md / xmax : md;
          tot.max_rel_diff = std::max(tot.max_rel_diff, rel);
          ++tot.compared;
          EXPECT_LE(rel, kOutputRelTol) << "vector " << i;
        }
        // Our count of non-lattice blocks equals the generator's.
        tot.nonlattice_vectors += nonlattice_vectors;
        if (input == "fp16_overflow") continue;  // the generator also counts blocks of the inf/NaN rows
        EXPECT_EQ(nonlattice_blocks, int64_t(meta_double(f, "nonlattice_blocks/" + key)));
        EXPECT_EQ(nonlattice_vectors, int64_t(meta_double(f, "clamp_changed_vectors/" + key)));
        // Metric functions on the published tensors.
        EXPECT_NEAR(kernels::rel_mse(x.data(), ref.data(), n, d) / meta_double(f, "rel_mse/" + key), 1.0,
                    kMetricRelTol);
        EXPECT_NEAR(kernels::mean_cosine(x.data(), ref.data(), n, d), meta_double(f, "cosine/" + key),
                    kMetricRelTol);
        const double ratio = kernels::rel_mse(x.data(), ours.data(), n, d) / meta_double(f, "rel_mse/" + key);
        tot.worst_ratio_hi = std::max(tot.worst_ratio_hi, ratio);
        tot.worst_ratio_lo = std::min(tot.worst_ratio_lo, ratio);
        EXPECT_GE(ratio, kRelMseRatioLow);
        const bool small_set = input == "edge" || input == "clamp_probe";
        if (!small_set) tot.worst_ratio_hi_random = std::max(tot.worst_ratio_hi_random, ratio);
        EXPECT_LE(ratio, small_set ? kRelMseRatioHighSmallSets : kRelMseRatioHigh);
      }
    }
  }
  std::printf("[%s parity] vectors %lld, compared exactly %lld (max |diff|/max|x| %.3g), gated by margins %lld, "
              "published non-lattice vectors %lld, fp16-overflow rows %lld, rel-MSE ours/published in [%.5f, %.5f] "
              "(gauss/t3/aniso max %.5f)\n",
              family.c_str(), (long long)tot.vectors, (long long)tot.compared, tot.max_rel_diff,
              (long long)tot.gated, (long long)tot.nonlattice_vectors, (long long)tot.overflow_rows,
              tot.worst_ratio_lo, tot.worst_ratio_hi, tot.worst_ratio_hi_random);
  // Most vectors are compared exactly (E8: ~15 % hold a published clamp
  // point, ~25 % a near-tie block).
  EXPECT_GT(tot.compared, tot.vectors / 2);
}

TEST(CodecParity, D4) { check_codec_file("codecs_d4.safetensors", "d4"); }
TEST(CodecParity, E8) { check_codec_file("codecs_e8.safetensors", "e8"); }

TEST(Fp8Reference, UniformStandInReproducedAndRealE4m3Measured) {
  const auto& f = ref_file("fp8_uniform_baseline.safetensors");
  for (int64_t d : {512, 128}) {
    EXPECT_EQ(make_codec("fp8_per64", d)->published_bits_per_vector(),
              meta_double(f, "bits_per_vector/D" + std::to_string(d)));
    for (const std::string input : {"gauss", "t3", "aniso", "edge"}) {
      const std::string key = "D" + std::to_string(d) + "/" + input;
      SCOPED_TRACE(key);
      const auto x = f.to_f32("input/" + key);
      const auto ref = f.to_f32("output/" + key);
      const int64_t n = int64_t(x.size()) / d;
      // The published CPU fallback (a uniform 255-level quantiser, not E4M3),
      // reproduced bit for bit to pin down what the published numbers are.
      std::vector<float> uni(x.size());
      const float step = float(448.0 / 127.0);
      for (int64_t b = 0; b < int64_t(x.size()); b += 64) {
        float amax = 0;
        for (int j = 0; j < 64; ++j) amax = std::max(amax, std::fabs(x[b + j]));
        const float scale = std::max(amax, 1e-4f) / 448.f;
        for (int j = 0; j < 64; ++j) {
          const float xs = std::min(std::max(x[b + j] / scale, -448.f), 448.f);
          uni[b + j] = std::nearbyint(xs / step) * step * scale;
        }
      }
      for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(uni[i], ref[i]) << i;
      EXPECT_NEAR(kernels::rel_mse(x.data(), ref.data(), n, d) / meta_double(f, "rel_mse/" + key), 1.0,
                  kMetricRelTol);
      // Real E4M3 (SPEC) with a float32 scale, and the codec with its uf16 scale.
      std::vector<float> sim = x, codec_out(x.size());
      kernels::fp8_simulate_rows(sim.data(), n, d, d);
      make_codec("fp8_per64", d)->roundtrip(x.data(), n, codec_out.data());
      const double e_uni = kernels::rel_mse(x.data(), ref.data(), n, d);
      const double e_sim = kernels::rel_mse(x.data(), sim.data(), n, d);
      const double e_codec = kernels::rel_mse(x.data(), codec_out.data(), n, d);
      std::printf("[fp8 %s] uniform stand-in %.4g, E4M3 fp32 scale %.6g, E4M3 uf16 scale %.6g (%+.4f %%), "
                  "E4M3 / stand-in %.1fx\n",
                  key.c_str(), e_uni, e_sim, e_codec, 100.0 * (e_codec / e_sim - 1.0), e_sim / e_uni);
      // On these 16-64-row sets a few blocks dominate rel-MSE, so the
      // 16-bit scale's effect is sampling noise of a few tenths of a
      // percent; the < 0.1 % claim is tested on full streams below.
      EXPECT_LT(std::fabs(e_codec / e_sim - 1.0), 5e-3);
      // The stand-in underestimates the FP8 error by an order of magnitude.
      EXPECT_GT(e_sim / e_uni, 3.0);
    }
  }
}

// The 16-bit (uf16 block max) scale changes the FP8 error of whole streams
// by less than 0.1 %: the V4-architecture streams of dsv4_small (D = 128)
// and large synthetic streams at D = 512.
constexpr double kFp8ScaleEffectMax = 1e-3;

TEST(Fp8Reference, Uf16ScaleEffectOnStreamsBelowTenthPercent) {
  const auto& f = ref_file("dsv4_small.safetensors");
  auto measure = [](const std::string& what, const std::vector<float>& x, int64_t d) {
    const int64_t n = int64_t(x.size()) / d;
    std::vector<float> sim = x, out(x.size());
    kernels::fp8_simulate_rows(sim.data(), n, d, d);
    make_codec("fp8_per64", d)->roundtrip(x.data(), n, out.data());
    const double e_sim = kernels::rel_mse(x.data(), sim.data(), n, d);
    const double e_codec = kernels::rel_mse(x.data(), out.data(), n, d);
    std::printf("[fp8 scale effect] %s (%lld x %lld): fp32 scale %.6g, uf16 block max %.6g (%+.4f %%)\n",
                what.c_str(), (long long)n, (long long)d, e_sim, e_codec, 100.0 * (e_codec / e_sim - 1.0));
    EXPECT_LT(std::fabs(e_codec / e_sim - 1.0), kFp8ScaleEffectMax) << what;
  };
  for (const std::string s : {"S1024_noyarn/sliding_window_kv", "S1024_yarn/csa_pool_kv",
                              "S1024_noyarn/csa_pool_kv", "S512/sliding_window_kv"})
    measure(s, f.to_f32("output/" + s), 128);
  std::mt19937 rng(77);
  std::normal_distribution<float> g;
  std::student_t_distribution<float> t(3.f);
  std::vector<float> x(size_t(8192) * 512);
  for (auto& v : x) v = g(rng);
  measure("gauss", x, 512);
  for (auto& v : x) v = t(rng);
  measure("student-t3", x, 512);
}

TEST(AuditReference, MatchesPublishedValues) {
  const auto& f = ref_file("audit.safetensors");
  for (const std::string t : {"T2048", "T512", "T16"}) {
    SCOPED_TRACE(t);
    const auto& info = f.info("input/" + t);
    const auto x = f.to_f32("input/" + t);
    const int64_t d = info.shape.back();
    const int64_t n = int64_t(x.size()) / d;
    const auto a = kernels::non_gaussian_audit(x.data(), n, d);
    EXPECT_EQ(a.n_vectors, int64_t(meta_double(f, "audit/" + t + "/num_vectors")));
    EXPECT_EQ(a.dim, int64_t(meta_double(f, "audit/" + t + "/D")));
    for (const auto& g : kernels::kAuditGates) {
      const double want = meta_double(f, "audit/" + t + "/" + std::string(g.name));
      const double want64 = meta_double(f, "audit_f64/" + t + "/" + std::string(g.name));
      const double got = a.*(g.value);
      EXPECT_NEAR(got / want, 1.0, kAuditRelTol) << g.name;
      EXPECT_NEAR(got / want64, 1.0, kAuditRelTol) << g.name;
      std::printf("[audit %s] %s = %.10g (published %.10g, rel diff %.2g)\n", t.c_str(), std::string(g.name).c_str(),
                  got, want, got / want - 1.0);
    }
  }
}

}  // namespace
}  // namespace kvlab::codec
