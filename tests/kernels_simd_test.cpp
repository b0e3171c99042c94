// The hand-vectorised (AVX2) kernels against the scalar references, at every
// SIMD level this CPU offers:
//  - the lattice pipeline (encode, decode, fused roundtrip) bit-exact against
//    lattice_*_rows_ref over D4/E8, D = 8 .. 2048 and Q = 1 .. 32767;
//  - the AVX2 closest-point tiles against the scalar in-box decoders on
//    inputs made of exact ties (multiples of 1/4) and points just inside
//    and outside the box, where every tie rule and the box logic matter;
//  - the FP8 kernels on every float magnitude in [0, 448] (strided; set
//    KVLAB_FP8_SWEEP_STRIDE=1 for all 1.1e9) and on exact E4M3 ties;
//  - the FWHT at every level against fwht_normalized_ref;
//  - the level switch itself (KVLAB_SIMD=scalar, no AVX2 on a CPU without).
// On a CPU without AVX2 only the scalar level runs (and the switch test
// checks that AVX2 cannot be selected there).
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/error.h"
#include "kernels/fp8_block.h"
#include "kernels/fp_formats.h"
#include "kernels/hadamard.h"
#include "kernels/lattice.h"
#include "kernels/parity.h"
#include "kernels/scalar_quant.h"
#include "kernels/simd.h"
#include "testutil/testutil.h"

namespace kvlab::kernels {
namespace {

std::vector<SimdLevel> levels() {
  std::vector<SimdLevel> v{SimdLevel::kScalar};
  if (cpu_has_avx2()) v.push_back(SimdLevel::kAvx2);
  if (cpu_has_avx512()) v.push_back(SimdLevel::kAvx512);
  return v;
}

// Restores the process's SIMD level when a test ends.
struct LevelGuard {
  SimdLevel saved = simd_level();
  ~LevelGuard() { set_simd_level(saved); }
};

std::vector<float> t3_rows(int64_t n, int64_t d, unsigned seed) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> t(3.f);
  std::vector<float> v(static_cast<size_t>(n * d));
  for (auto& x : v) x = t(rng);
  for (int64_t j = 0; j < d; ++j) v[static_cast<size_t>(j)] = 0.f;  // row 0: the zero vector
  // Row 1: one huge coordinate (the qmax of its row sits on a single block).
  if (n > 1) v[static_cast<size_t>(d + d / 3)] = 1e3f;
  return v;
}

TEST(Simd, LevelSwitch) {
  LevelGuard g;
  set_simd_level(SimdLevel::kScalar);
  EXPECT_EQ(simd_level(), SimdLevel::kScalar);
  set_simd_level(SimdLevel::kAvx2);
  EXPECT_EQ(simd_level(), cpu_has_avx2() ? SimdLevel::kAvx2 : SimdLevel::kScalar);
  set_simd_level(SimdLevel::kAvx512);
  EXPECT_EQ(simd_level(), cpu_best_simd_level());
  EXPECT_EQ(cpu_has_avx512(), cpu_best_simd_level() == SimdLevel::kAvx512);
  EXPECT_STREQ(simd_level_name(SimdLevel::kScalar), "scalar");
  EXPECT_STREQ(simd_level_name(SimdLevel::kAvx2), "avx2");
  EXPECT_STREQ(simd_level_name(SimdLevel::kAvx512), "avx512");
}

TEST(Simd, EnvironmentForcesScalar) {
  // A fresh process reads KVLAB_SIMD at its first kernel call; the codec
  // benchmark reports the level it ran.
  const std::string bench = testutil::kvlab_binary() +
                            " bench codecs --json --codecs e8:q=38 --dims 64 --sizes 16 --threads 1 --min-time 0";
  std::string out;
  ASSERT_EQ(testutil::run_command(fmt::format("KVLAB_SIMD=scalar {}", bench), &out), 0) << out;
  EXPECT_NE(out.find("\"simd\": \"scalar\""), std::string::npos) << out;
  ASSERT_EQ(testutil::run_command(fmt::format("env -u KVLAB_SIMD {}", bench), &out), 0) << out;
  const char* best = simd_level_name(cpu_best_simd_level());
  EXPECT_NE(out.find(fmt::format("\"simd\": \"{}\"", best)), std::string::npos) << out;
  if (cpu_has_avx2()) {
    ASSERT_EQ(testutil::run_command(fmt::format("KVLAB_SIMD=avx2 {}", bench), &out), 0) << out;
    EXPECT_NE(out.find("\"simd\": \"avx2\""), std::string::npos) << out;
  }
  ASSERT_NE(testutil::run_command(fmt::format("{} --simd sse9", bench), &out), 0);
  EXPECT_NE(out.find("sse9"), std::string::npos) << out;
}

TEST(Simd, LatticePipelineBitExactAtEveryLevel) {
  LevelGuard g;
  for (SimdLevel lv : levels()) {
    set_simd_level(lv);
    for (auto k : {LatticeKind::kD4, LatticeKind::kE8})
      for (int64_t d : {8, 16, 32, 64, 128, 512, 2048})
        for (int q : {1, 2, 3, 10, 38, 1000, kLatticeMaxQ}) {
          // Coarse Q: many rows, so that outputs of exactly 0 (and the sign
          // of that zero) occur.
          const int64_t n = q <= 3 ? 96 : 13;
          const auto x = t3_rows(n, d, unsigned(d * 131 + q));
          const size_t nd = static_cast<size_t>(n * d);
          std::vector<uint16_t> n1(n), n2(n), q1(n), q2(n);
          std::vector<int32_t> p1(nd), p2(nd);
          lattice_encode_rows(k, q, x.data(), n, d, n1.data(), q1.data(), p1.data());
          lattice_encode_rows_ref(k, q, x.data(), n, d, n2.data(), q2.data(), p2.data());
          const std::string what = std::string(simd_level_name(lv)) + " " + lattice_name(k) +
                                   " D=" + std::to_string(d) + " Q=" + std::to_string(q);
          ASSERT_TRUE(check_parity(n1.data(), n2.data(), n).ok()) << what;
          ASSERT_TRUE(check_parity(q1.data(), q2.data(), n).ok()) << what;
          const auto pr = check_parity(p1.data(), p2.data(), n * d);
          ASSERT_TRUE(pr.ok()) << what << ": " << pr.summary();
          std::vector<float> o1(nd), o2(nd), o3(nd);
          lattice_decode_rows(q, n2.data(), q2.data(), p2.data(), n, d, o1.data());
          lattice_decode_rows_ref(q, n2.data(), q2.data(), p2.data(), n, d, o2.data());
          const auto dr = check_parity(o1.data(), o2.data(), n * d);
          ASSERT_TRUE(dr.ok()) << what << " decode: " << dr.summary();
          lattice_roundtrip_rows(k, q, x.data(), n, d, o3.data());
          const auto rr = check_parity(o3.data(), o2.data(), n * d);
          ASSERT_TRUE(rr.ok()) << what << " roundtrip: " << rr.summary();
        }
  }
}

// Scalar in-box decoder of one block (the oracle for the tile kernels).
void oracle_block(LatticeKind k, const float* z, int q, int32_t* out2) {
  if (k == LatticeKind::kD4)
    d4_closest_in_box(z, q, out2);
  else
    e8_closest_in_box(z, q, out2);
}

TEST(Simd, TilesMatchScalarOnTiesAndBoxEdges) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "this CPU has no AVX2: the scalar level is the only one (tested above)";
  std::mt19937 rng(99);
  for (auto k : {LatticeKind::kD4, LatticeKind::kE8})
    for (int q : {1, 2, 3, 5, 38}) {
      const int64_t d = 256;
      const int b = lattice_block_dim(k);
      std::uniform_int_distribution<int> quarter(-4 * q - 6, 4 * q + 6);  // ties, box edge, beyond
      // Ties well inside the box: whole tiles take the kernels' unboxed path.
      std::uniform_int_distribution<int> inner(std::min(0, -4 * q + 5), std::max(0, 4 * q - 5));
      std::uniform_real_distribution<float> jitter(-1e-6f, 1e-6f);
      std::vector<float> y(static_cast<size_t>(d));
      std::vector<int32_t> fast(static_cast<size_t>(d)), want(static_cast<size_t>(d));
      for (int rep = 0; rep < 400; ++rep) {
        for (auto& v : y) {
          v = float(rep % 8 < 4 ? quarter(rng) : inner(rng)) * 0.25f;
          if (rep % 4 == 3) v += jitter(rng);  // just beside the ties and edges
        }
        ASSERT_EQ(avx2::quantize_blocks(k, q, y.data(), d, 1.0f, fast.data()), d);
        for (int64_t j = 0; j < d; j += b) oracle_block(k, &y[static_cast<size_t>(j)], q, &want[static_cast<size_t>(j)]);
        if (cpu_has_avx512()) {
          std::vector<int32_t> wide(static_cast<size_t>(d));
          ASSERT_EQ(avx512::quantize_blocks(k, q, y.data(), d, 1.0f, wide.data()), d);
          const auto r = check_parity(wide.data(), want.data(), d);
          ASSERT_TRUE(r.ok()) << "avx512 " << lattice_name(k) << " Q=" << q << " rep " << rep << ": " << r.summary();
        }
        const auto r = check_parity(fast.data(), want.data(), d);
        ASSERT_TRUE(r.ok()) << lattice_name(k) << " Q=" << q << " rep " << rep << ": " << r.summary();
      }
    }
}

TEST(Simd, Fp8RoundtripBitExactAtEveryLevel) {
  LevelGuard g;
  std::mt19937 rng(17);
  std::student_t_distribution<float> t3(3.f);
  for (SimdLevel lv : levels()) {
    set_simd_level(lv);
    for (int64_t block : {8, 16, 32, 64, 128, 7})
      for (int64_t ncols : {block * 1, block * 8}) {
        const int64_t rows = 9;
        std::vector<float> x(static_cast<size_t>(rows * ncols));
        for (auto& v : x) v = t3(rng);
        for (int64_t j = 0; j < ncols; ++j) x[static_cast<size_t>(j)] = 0.f;          // zero row: the 1e-4 floor
        for (int64_t j = 0; j < ncols; ++j) x[static_cast<size_t>(ncols + j)] *= 1e-7f;  // E4M3 subnormals
        for (int64_t j = 0; j < ncols; ++j) x[static_cast<size_t>(2 * ncols + j)] *= 1e6f;
        x[static_cast<size_t>(3 * ncols)] = -0.0f;
        x[static_cast<size_t>(3 * ncols + 1)] = 1e-30f;
        // Rows 4..: exact E4M3 ties. A block holding 448 has scale 1, so the
        // other values are rounded as they are: every midpoint between two
        // neighbouring E4M3 values (ties to even), with both signs.
        std::vector<float> ties;
        for (int c = 0; c < 0x7e; ++c) {
          const float m = 0.5f * (e4m3_to_f32(uint8_t(c)) +
                                  e4m3_to_f32(uint8_t(c + 1)));
          ties.push_back(m);
          ties.push_back(-m);
        }
        for (int64_t j = 4 * ncols, t = 0; j < rows * ncols; ++j, ++t)
          x[static_cast<size_t>(j)] = (j % block == 0) ? 448.0f : ties[static_cast<size_t>(t) % ties.size()];
        const int64_t cs = fp8_block_code_size(ncols, block);
        std::vector<uint8_t> codes(static_cast<size_t>(rows * cs));
        std::vector<float> want(x.size()), got(x.size());
        fp8_block_encode_ref(x.data(), rows, ncols, block, codes.data());
        fp8_block_decode_ref(codes.data(), rows, ncols, block, want.data());
        fp8_block_roundtrip(x.data(), rows, ncols, block, got.data());
        const auto r = check_parity(got.data(), want.data(), rows * ncols);
        ASSERT_TRUE(r.ok()) << simd_level_name(lv) << " block " << block << " ncols " << ncols << ": " << r.summary();
        // The byte format: encode at this level == the reference encoder,
        // decode at this level == the reference decoder, on every code
        // value (NaN codes 0x7f / 0xff included) with varied scales.
        std::vector<uint8_t> fast_codes(codes.size());
        fp8_block_encode(x.data(), rows, ncols, block, fast_codes.data());
        const auto er = check_parity(fast_codes.data(), codes.data(), int64_t(codes.size()));
        ASSERT_TRUE(er.ok()) << simd_level_name(lv) << " encode block " << block << ": " << er.summary();
        for (size_t i = 0; i < codes.size(); ++i) codes[i] = uint8_t(i * 37 + 11);
        for (int64_t rr = 0; rr < rows; ++rr)  // keep every scale field a finite uf16 value
          for (int64_t k = 0; k < ncols / block; ++k) codes[static_cast<size_t>(rr * cs + 2 * k + 1)] &= 0x7f;
        fp8_block_decode_ref(codes.data(), rows, ncols, block, want.data());
        fp8_block_decode(codes.data(), rows, ncols, block, got.data());
        const auto dr = check_parity(got.data(), want.data(), rows * ncols);
        ASSERT_TRUE(dr.ok()) << simd_level_name(lv) << " decode block " << block << ": " << dr.summary();
      }
    // Errors name the row and column at every level.
    std::vector<float> x(128, 1.0f), out(128);
    x[64 + 5] = std::numeric_limits<float>::infinity();
    try {
      fp8_block_roundtrip(x.data(), 2, 64, 64, out.data());
      FAIL() << "inf accepted at " << simd_level_name(lv);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("row 1 column 5"), std::string::npos) << e.what();
    }
    x[64 + 5] = 1e10f;  // block max beyond the uf16 scale field
    EXPECT_THROW(fp8_block_roundtrip(x.data(), 2, 64, 64, out.data()), Error) << simd_level_name(lv);
  }
}

// Every float32 magnitude in [0, 448] (a strided sweep of the bit patterns;
// KVLAB_FP8_SWEEP_STRIDE=1 makes it exhaustive) and a few beyond, with both
// signs, rounded by the fast kernels at scale 1 (a block holding 448 has
// s = 1): E4M3 values equal to the reference's, which also pins the
// float-arithmetic rounding of the AVX-512 kernel.
TEST(Simd, Fp8RoundingOfEveryMagnitudeAtEveryLevel) {
  LevelGuard g;
  const char* env = std::getenv("KVLAB_FP8_SWEEP_STRIDE");
  const uint32_t stride = env != nullptr ? uint32_t(std::max(1, std::atoi(env))) : 127u;
  const uint32_t top = f32_bits(448.0f) + 4096u;  // beyond 448: saturation
  const int64_t block = 16;
  std::vector<float> x;
  for (uint32_t u = 0, i = 0; u <= top; u += stride, ++i) {
    if (x.size() % block == 0) x.push_back(448.0f);
    x.push_back(bits_f32(u | (i % 2 == 1 ? 0x80000000u : 0u)));
  }
  while (x.size() % block != 0) x.push_back(0x1p-10f);  // an exact tie (to 0)
  const int64_t rows = int64_t(x.size()) / block;
  std::vector<uint8_t> codes(static_cast<size_t>(rows * fp8_block_code_size(block, block)));
  std::vector<float> want(x.size()), got(x.size());
  fp8_block_encode_ref(x.data(), rows, block, block, codes.data());
  fp8_block_decode_ref(codes.data(), rows, block, block, want.data());
  for (SimdLevel lv : levels()) {
    set_simd_level(lv);
    fp8_block_roundtrip(x.data(), rows, block, block, got.data());
    const auto r = check_parity(got.data(), want.data(), int64_t(x.size()));
    ASSERT_TRUE(r.ok()) << simd_level_name(lv) << ": " << r.summary();
    std::vector<uint8_t> fast_codes(codes.size());
    fp8_block_encode(x.data(), rows, block, block, fast_codes.data());
    const auto er = check_parity(fast_codes.data(), codes.data(), int64_t(codes.size()));
    ASSERT_TRUE(er.ok()) << simd_level_name(lv) << " encode: " << er.summary();
  }
}

TEST(Simd, Fp8RoundtripOfALargeTensorStreamsAndStaysExact) {
  // 2^24 values (64 MiB): large enough for the AVX-512 path's non-temporal
  // stores; the result must not change.
  const int64_t ncols = 512, rows = (int64_t(1) << 24) / ncols;
  const size_t n = static_cast<size_t>(rows * ncols);
  std::vector<float> x(n);
  std::mt19937 rng(3);
  std::normal_distribution<float> gauss;
  for (auto& v : x) v = gauss(rng);
  float* out = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  ASSERT_NE(out, nullptr);
  std::vector<uint8_t> codes(static_cast<size_t>(rows * fp8_block_code_size(ncols, 64)));
  std::vector<float> want(n);
  fp8_block_encode_ref(x.data(), rows, ncols, 64, codes.data());
  fp8_block_decode_ref(codes.data(), rows, ncols, 64, want.data());
  fp8_block_roundtrip(x.data(), rows, ncols, 64, out);
  const auto r = check_parity(out, want.data(), rows * ncols);
  std::free(out);
  EXPECT_TRUE(r.ok()) << simd_level_name(simd_level()) << ": " << r.summary();
}

TEST(Simd, HadamardBitExactAtEveryLevel) {
  LevelGuard g;
  std::mt19937 rng(5);
  std::normal_distribution<float> gauss;
  for (SimdLevel lv : levels()) {
    set_simd_level(lv);
    for (int64_t d = 1; d <= 4096; d *= 2) {
      std::vector<float> x(static_cast<size_t>(3 * d));
      for (auto& v : x) v = gauss(rng);
      auto a = x, b = x;
      fwht_normalized_rows(a.data(), 3, d, d);
      fwht_normalized_rows_ref(b.data(), 3, d, d);
      const auto r = check_parity(a.data(), b.data(), 3 * d);
      ASSERT_TRUE(r.ok()) << simd_level_name(lv) << " D=" << d << ": " << r.summary();
      auto c = x;
      fwht_normalized(c.data(), d);
      ASSERT_TRUE(check_parity(c.data(), b.data(), d).ok()) << simd_level_name(lv) << " D=" << d;
    }
  }
}

}  // namespace
}  // namespace kvlab::kernels

namespace kvlab::kernels {
namespace {

// The AVX-512 hadamard_lloyd kernels compare each rotated value y with
// per-row thresholds T_k (the least float with fl(T_k / sig) > thr_k)
// instead of dividing every y by sig. Rows x = a e_0 rotate to y_j =
// fl(a / sqrt(D)) for every j; sweeping a through the consecutive floats
// around thr_k * sig * sqrt(D) puts y on both sides of, and on, every
// boundary, for scales from the smallest uf16 subnormal to its maximum
// (the thr = 0 boundary sits at y ~ sig * 2^-150, in the subnormals).
TEST(Simd, LloydDivisionFreeIndexMatchesDivisionAtEveryBoundary) {
  if (!cpu_has_avx512()) GTEST_SKIP() << "no AVX-512 on this CPU: the kernel under test does not run here";
  const int64_t d = 512;
  const float c = hadamard_norm_factor(d);
  long crossings = 0, checked = 0;
  for (int bits = 1; bits <= 4; ++bits) {
    const auto& q = lloyd_max_gaussian(bits);
    float thr[16], lev[16];
    std::fill(thr, thr + 16, std::numeric_limits<float>::infinity());
    std::fill(lev, lev + 16, 0.0f);
    for (int k = 0; k + 1 < q.levels; ++k) thr[k] = q.threshold_f[static_cast<size_t>(k)];
    for (int k = 0; k < q.levels; ++k) lev[k] = q.level_f[static_cast<size_t>(k)];
    for (const float sig : {0x1p-24f, 0.37f, 1.0f, 3.999f, 4.0f, 17.3f, 1000.0f, 65504.0f}) {
      for (int k = 0; k + 1 < q.levels; ++k) {
        const double t = thr[k];
        const double ystar = t != 0 ? t * sig : std::ldexp(double(sig), -150);
        const float a0 = float(ystar / c);
        std::vector<float> x(static_cast<size_t>(d), 0.0f), y(static_cast<size_t>(d)), scratch(static_cast<size_t>(d));
        std::vector<float> out(static_cast<size_t>(d));
        std::vector<int32_t> idx(static_cast<size_t>(d));
        bool below = false, above = false;
        float a = a0;
        for (int s = 0; s < 64; ++s) a = std::nextafter(a, -std::numeric_limits<float>::infinity());
        for (int s = 0; s < 129; ++s, a = std::nextafter(a, std::numeric_limits<float>::infinity())) {
          x[0] = a;
          y = x;
          fwht_normalized_ref(y.data(), d);
          int32_t want = 0;
          for (int j = 0; j < 15; ++j) want += y[0] / sig > thr[j] ? 1 : 0;
          (want > k ? above : below) = true;
          avx512::lloyd_rotate_index(x.data(), d, bits, thr, sig, scratch.data(), idx.data());
          avx512::lloyd_roundtrip_row(x.data(), d, bits, thr, lev, sig, scratch.data(), out.data(), false);
          std::vector<float> rt(static_cast<size_t>(d));
          for (int64_t j = 0; j < d; ++j) {
            int32_t w = 0;
            for (int i = 0; i < 15; ++i) w += y[static_cast<size_t>(j)] / sig > thr[i] ? 1 : 0;
            ASSERT_EQ(idx[static_cast<size_t>(j)], w)
                << "K=" << bits << " sig=" << sig << " thr_" << k << "=" << thr[k] << " a=" << a << " y=" << y[j];
            rt[static_cast<size_t>(j)] = lev[w] * sig;
          }
          fwht_normalized_ref(rt.data(), d);
          for (int64_t j = 0; j < d; ++j)
            ASSERT_EQ(std::bit_cast<uint32_t>(out[static_cast<size_t>(j)]), std::bit_cast<uint32_t>(rt[static_cast<size_t>(j)]))
                << "roundtrip K=" << bits << " sig=" << sig << " a=" << a << " j=" << j;
          ++checked;
        }
        // Every sweep must straddle its boundary, or it tested nothing.
        ASSERT_TRUE(below && above) << "K=" << bits << " sig=" << sig << " thr_" << k << ": the sweep missed it";
        ++crossings;
      }
    }
  }
  EXPECT_EQ(crossings, 8 * (1 + 3 + 7 + 15));
  EXPECT_GT(checked, 0);
}

}  // namespace
}  // namespace kvlab::kernels
