// Property tests of the V4 write-path operators (src/model/ops.h): E4M3
// rounding and FP8 block simulation bit-exact against kernels/, RoPE on the
// last dims only, the overlap window layout, gated pooling.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "io/safetensors.h"
#include "kernels/fp8_block.h"
#include "kernels/fp_formats.h"
#include "model/ops.h"
#include "testutil/testutil.h"

using namespace kvlab::model;

namespace {

at::Tensor from_vec(const std::vector<float>& v, std::vector<int64_t> shape) {
  return at::from_blob(const_cast<float*>(v.data()), at::IntArrayRef(shape), at::TensorOptions().dtype(at::kFloat))
      .clone();
}

// Number of positions where the float32 bit patterns differ (so -0 != +0).
int64_t bit_mismatches(const at::Tensor& a, const at::Tensor& b) {
  return a.contiguous().view(at::kInt).ne(b.contiguous().view(at::kInt)).sum().item<int64_t>();
}

}  // namespace

TEST(E4m3Round, MatchesKernelOnReferenceRoundingSet) {
  auto f = kvlab::io::SafetensorsFile::open(kvlab::testutil::reference_path("e4m3fn_rounding.safetensors"));
  std::vector<float> in = f.to_f32("input");
  std::vector<float> expect = f.to_f32("expected_sat");
  std::vector<float> xs, want;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (!std::isfinite(in[i]) || std::fabs(in[i]) > 448.f) continue;  // the op's domain (callers clamp first)
    xs.push_back(in[i]);
    want.push_back(expect[i]);
  }
  ASSERT_GT(xs.size(), 3000u);
  at::Tensor got = e4m3_round(from_vec(xs, {static_cast<int64_t>(xs.size())}));
  EXPECT_EQ(bit_mismatches(got, from_vec(want, {static_cast<int64_t>(want.size())})), 0);
}

TEST(E4m3Round, MatchesKernelOnFloat32Sweep) {
  // Every 257th float32 bit pattern with |x| <= 448, both signs (all 2.2e9
  // would be slow; an odd stride visits every binade and mantissa residue).
  std::vector<float> xs;
  const uint32_t max_bits = kvlab::kernels::f32_bits(448.f);
  for (uint32_t u = 0; u <= max_bits; u += 257) {
    xs.push_back(kvlab::kernels::bits_f32(u));
    xs.push_back(-kvlab::kernels::bits_f32(u));
  }
  std::vector<float> want(xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) want[i] = kvlab::kernels::e4m3_to_f32(kvlab::kernels::f32_to_e4m3(xs[i]));
  const int64_t n = static_cast<int64_t>(xs.size());
  EXPECT_EQ(bit_mismatches(e4m3_round(from_vec(xs, {n})), from_vec(want, {n})), 0);
}

TEST(Fp8Simulate, BitExactAgainstKernel) {
  std::mt19937 rng(17);
  std::normal_distribution<float> g(0.f, 1.f);
  std::student_t_distribution<float> t3(3.f);
  const int64_t rows = 300, D = 512;
  std::vector<float> x(static_cast<std::size_t>(rows * D));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < D; ++j) {
      float v;
      switch (r % 5) {
        case 0: v = g(rng); break;
        case 1: v = t3(rng) * 30.f; break;
        case 2: v = g(rng) * 1e-6f; break;    // amax below the 1e-4 floor
        case 3: v = g(rng) * std::ldexp(1.f, static_cast<int>(r % 40) - 20); break;
        default: v = (j % 64 == 0) ? 1000.f : g(rng) * 1e-3f; break;  // one spike per block: subnormal codes
      }
      x[static_cast<std::size_t>(r * D + j)] = v;
    }
  }
  // Only the first 448 coordinates (the nope dims) are simulated.
  std::vector<float> want = x;
  kvlab::kernels::fp8_simulate_rows(want.data(), rows, D, 448, 64, 448.f);
  at::Tensor got = fp8_simulate(from_vec(x, {rows, D}), 448, 64, 448.0);
  EXPECT_EQ(bit_mismatches(got, from_vec(want, {rows, D})), 0);
  // Rope dims untouched.
  EXPECT_TRUE(at::equal(got.narrow(1, 448, 64), from_vec(x, {rows, D}).narrow(1, 448, 64)));
  // A 3-D input gives the same values.
  at::Tensor got3 = fp8_simulate(from_vec(x, {3, 100, D}), 448, 64, 448.0);
  EXPECT_TRUE(at::equal(got3.reshape({rows, D}), got));
  // Different fp8_max also matches.
  std::vector<float> want2 = x;
  kvlab::kernels::fp8_simulate_rows(want2.data(), rows, D, D, 64, 240.f);
  EXPECT_EQ(bit_mismatches(fp8_simulate(from_vec(x, {rows, D}), D, 64, 240.0), from_vec(want2, {rows, D})), 0);
}

TEST(Fp8Simulate, ZeroBlockStaysZeroAndAmaxMapsToTopCode) {
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0.f, 3.f);
  std::vector<float> x(64 * 4, 0.f);
  for (std::size_t i = 64; i < x.size(); ++i) x[i] = g(rng);
  at::Tensor in = from_vec(x, {1, 256});
  at::Tensor out = fp8_simulate(in, 256, 64, 448.0);
  EXPECT_TRUE(at::equal(out.narrow(1, 0, 64), at::zeros({1, 64})));
  for (int b = 1; b < 4; ++b) {
    at::Tensor blk = in.narrow(1, 64 * b, 64);
    const int64_t k = blk.abs().argmax().item<int64_t>();
    const float amax = std::fabs(blk[0][k].item<float>());
    const float s = amax / 448.f;
    // The amax element lands on the top code +-448 (448 is representable) ...
    const float q = (blk[0][k].item<float>() / s);
    EXPECT_EQ(std::fabs(e4m3_round(at::full({1}, std::min(std::fabs(q), 448.f))).item<float>()), 448.f);
    // ... so it is reproduced as 448 * s: exactly amax, or within one float32
    // ulp when fl32(amax / 448) * 448 != amax (float32 rounding of the scale).
    const float back = std::fabs(out[0][64 * b + k].item<float>());
    EXPECT_EQ(back, 448.f * s);
    EXPECT_LE(std::fabs(back - amax), std::nextafter(amax, 1e30f) - amax);
  }
}

TEST(Rope, TouchesOnlyTheLastRopeDimsAndPreservesPairNorms) {
  at::Tensor x = at::randn({2, 16, 512});
  RopeParams p{64, 10000.0, 0, 16, 32, 1};
  at::Tensor y = apply_rope(x, p, 16, 1);
  EXPECT_TRUE(at::equal(y.narrow(-1, 0, 448), x.narrow(-1, 0, 448)));
  // Position 0 is the identity; later positions rotate.
  EXPECT_TRUE(at::allclose(y.select(1, 0), x.select(1, 0), 0, 0));
  EXPECT_GT((y.narrow(-1, 448, 64) - x.narrow(-1, 448, 64)).abs().max().item<float>(), 1e-2);
  // Rotation keeps each pair's norm.
  auto pair_norm = [](const at::Tensor& t) { return t.narrow(-1, 448, 64).reshape({2, 16, 32, 2}).norm(2, -1); };
  EXPECT_TRUE(at::allclose(pair_norm(y), pair_norm(x), 1e-5, 1e-6));
  // Pair i at position t is rotated by t * f_i: check one by hand.
  std::vector<float> f = rope_inv_freqs(p, 16);
  const int t = 5, i = 3;
  const float angle = static_cast<float>(t) * f[i];
  const float a = x[1][t][448 + 2 * i].item<float>(), b = x[1][t][448 + 2 * i + 1].item<float>();
  EXPECT_NEAR(y[1][t][448 + 2 * i].item<float>(), a * std::cos(angle) - b * std::sin(angle), 1e-5);
  EXPECT_NEAR(y[1][t][448 + 2 * i + 1].item<float>(), a * std::sin(angle) + b * std::cos(angle), 1e-5);
  // Stride: row k of a strided call equals row k*stride of a full call.
  at::Tensor strided = apply_rope(x.narrow(1, 0, 4), p, 16, 4);
  for (int k = 0; k < 4; ++k) {
    at::Tensor expect_row = apply_rope(x.narrow(1, k, 1).expand({2, 4 * k + 1, 512}).contiguous(), p, 16, 1)
                                .select(1, 4 * k);
    EXPECT_TRUE(at::allclose(strided.select(1, k), expect_row, 0, 0)) << k;
  }
}

TEST(Overlap, WindowLayoutOnHandMadeTensor) {
  // x[b, k, s, c] = 1000 k + 100 s + c, r = 2, d = 2 (2d = 4 channels).
  const int64_t B = 1, n = 3, r = 2, d = 2;
  at::Tensor x = at::empty({B, n, r, 2 * d});
  for (int64_t k = 0; k < n; ++k)
    for (int64_t s = 0; s < r; ++s)
      for (int64_t c = 0; c < 2 * d; ++c) x[0][k][s][c] = static_cast<float>(1000 * k + 100 * s + c);
  at::Tensor o = overlap_windows(x, -7.0);
  ASSERT_EQ(o.sizes(), (at::IntArrayRef{B, n, 2 * r, d}));
  for (int64_t k = 0; k < n; ++k) {
    for (int64_t s = 0; s < 2 * r; ++s) {
      for (int64_t c = 0; c < d; ++c) {
        float want;
        if (s >= r) want = static_cast<float>(1000 * k + 100 * (s - r) + (d + c));  // this window, second half
        else if (k == 0) want = -7.f;                                                // fill
        else want = static_cast<float>(1000 * (k - 1) + 100 * s + c);               // previous window, first half
        EXPECT_EQ(o[0][k][s][c].item<float>(), want) << k << " " << s << " " << c;
      }
    }
  }
}

TEST(CompressPool, EqualScoresAverageAndFillSlotsGetNoWeight) {
  // Equal scores -> plain mean over the slots. Window 0 with overlap has
  // only its r own slots (the -inf fill gets weight 0).
  const int64_t S = 8, r = 4, d = 3;
  at::Tensor kv = at::randn({1, S, 2 * d});
  at::Tensor score = at::zeros({1, S, 2 * d});
  at::Tensor ape = at::zeros({r, 2 * d});
  at::Tensor out = compress_pool(kv, score, ape, r, true);
  ASSERT_EQ(out.sizes(), (at::IntArrayRef{1, 2, d}));
  at::Tensor w0 = kv.narrow(1, 0, 4).narrow(2, d, d).mean(1);  // window 0: own second half only
  EXPECT_TRUE(at::allclose(out.select(1, 0), w0, 1e-6, 1e-6));
  at::Tensor w1 = at::cat({kv.narrow(1, 0, 4).narrow(2, 0, d), kv.narrow(1, 4, 4).narrow(2, d, d)}, 1).mean(1);
  EXPECT_TRUE(at::allclose(out.select(1, 1), w1, 1e-6, 1e-6));
  // A dominant ape entry selects that slot.
  at::Tensor kv1 = at::randn({1, S, d});
  at::Tensor ape1 = at::zeros({r, d});
  ape1.narrow(0, 2, 1).fill_(100.f);
  at::Tensor picked = compress_pool(kv1, at::zeros({1, S, d}), ape1, r, false);
  EXPECT_TRUE(at::allclose(picked.select(1, 0), kv1.select(1, 2), 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(picked.select(1, 1), kv1.select(1, 6), 1e-5, 1e-6));
  // Tail beyond floor(S/r)*r is dropped.
  at::Tensor tail = compress_pool(at::randn({1, 10, d}), at::zeros({1, 10, d}), ape1, r, false);
  EXPECT_EQ(tail.size(1), 2);
}
