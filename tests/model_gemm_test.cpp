// The projection GEMM paths (model/gemm.h): bf16-exactness checks, the
// gemm setting, the bf16 (oneDNN) path against the fp32 path on bf16-exact
// inputs, and the fallback to fp32 when an input is not bf16-exact.
// The bf16-vs-fp32 comparisons need a CPU with a fast bf16 matmul (AMX);
// elsewhere they are skipped with the reason (the fallback tests still run).
#include <gtest/gtest.h>

#include "testutil/testutil.h"

#include <ATen/ATen.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "common/error.h"
#include "model/config.h"
#include "model/gemm.h"
#include "model/v4_kv.h"

using namespace kvlab::model;

namespace {

// bf16 GEMM vs fp32 GEMM on bf16-exact operands: the products are exact in
// both, only the float32 summation order differs. Bound per output element:
// kSumOrderRelTol * sum_k |x_ik w_jk|. Measured max over [2048, 4096] x
// [3584, 4096] (AMX brgemm vs OpenBLAS SkylakeX sgemm): 3.6e-8 (a few float32
// ulps of the absolute sum); the bound leaves ~5x.
constexpr double kSumOrderRelTol = 2e-7;
// Streams (fp32 stream dtype) of the V4 writer on the two paths, same
// inputs: RMSNorm / softmax / RoPE amplify the GEMM's last-ulp differences a
// little. Measured max |diff| at the Flash config, S = 512: 3.5e-6 (CSA) for
// stream values up to ~5, the size of the fp32 path's own distance to the
// published reference (model_parity_test: up to 4.8e-6).
constexpr double kStreamAbsTol = 1e-5;

V4Config tiny() {
  V4Config c = V4Config::flash();
  c.hidden_size = 64;
  c.head_dim = 128;
  return c;
}

using kvlab::testutil::error_of;

using kvlab::testutil::expect_contains;

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// randn rounded to bf16, as float32.
at::Tensor randn_bf16(std::vector<int64_t> shape, double scale = 1.0) {
  return (at::randn(at::IntArrayRef(shape)) * scale).to(at::kBFloat16).to(at::kFloat);
}

bool fast() { return bf16_gemm_support().fast; }

}  // namespace

TEST(GemmMode, ParsesTheThreeValuesAndRejectsOthers) {
  EXPECT_EQ(parse_gemm_mode("auto"), GemmMode::kAuto);
  EXPECT_EQ(parse_gemm_mode("fp32"), GemmMode::kFp32);
  EXPECT_EQ(parse_gemm_mode("bf16"), GemmMode::kBf16);
  for (auto m : {GemmMode::kAuto, GemmMode::kFp32, GemmMode::kBf16}) EXPECT_EQ(parse_gemm_mode(gemm_mode_name(m)), m);
  for (const char* bad : {"", "BF16", "fp16", "amx", "auto "}) {
    const std::string msg = error_of([&] { parse_gemm_mode(bad, "[weights] gemm"); });
    expect_contains(msg, std::string("[weights] gemm '") + bad + "'");
    expect_contains(msg, "expected auto, fp32 or bf16");
  }
}

TEST(Bf16Exact, LowBitsSubnormalsAndDtypes) {
  at::Tensor x = randn_bf16({64, 32});
  EXPECT_TRUE(is_bf16_exact(x));
  EXPECT_TRUE(is_bf16_exact(x.to(at::kBFloat16)));
  EXPECT_TRUE(is_bf16_exact(x.to(at::kDouble)));
  at::Tensor y = x.clone();
  y[5][7] = from_bits(0x3F800001u);  // 1 + 2^-23: not a bf16 value
  EXPECT_FALSE(is_bf16_exact(y));
  EXPECT_FALSE(is_bf16_exact(y.to(at::kDouble)));
  at::Tensor d = x.to(at::kDouble);
  d[0][0] = 1.0 + std::ldexp(1.0, -40);  // a double that is not even a float
  EXPECT_FALSE(is_bf16_exact(d));
  // A bf16 subnormal is a bf16 value, but the hardware dot products flush it.
  at::Tensor s = x.clone();
  s[1][1] = from_bits(0x00010000u);
  EXPECT_FALSE(is_bf16_exact(s));
  EXPECT_FALSE(is_bf16_exact(s.to(at::kBFloat16)));
  // Zeros, infinities and the smallest normal are fine.
  at::Tensor z = at::zeros({4});
  z[1] = -0.0f;
  z[2] = std::numeric_limits<float>::infinity();
  z[3] = std::numeric_limits<float>::min();
  EXPECT_TRUE(is_bf16_exact(z));
  // Random init: the projection weights are bf16-exact (as a bf16 checkpoint).
  V4Weights w = random_weights(V4Config::flash(), 5);
  EXPECT_TRUE(is_bf16_exact(w.wkv));
  EXPECT_TRUE(is_bf16_exact(w.csa.wkv) && is_bf16_exact(w.csa.wgate));
  EXPECT_TRUE(is_bf16_exact(w.hca.wkv) && is_bf16_exact(w.hca.wgate));
  EXPECT_NEAR(w.csa.wkv.std().item<double>(), 1.0 / 64.0, 1e-4);
}

TEST(Bf16Gemm, MatchesFp32GemmOnBf16ExactInputs) {
  if (!fast()) GTEST_SKIP() << "no fast bf16 matmul here: " << bf16_gemm_support().why_not;
  const int64_t M = 2048, K = 4096, N = 3584;
  at::Tensor x = randn_bf16({M, K});
  at::Tensor w = randn_bf16({N, K}, 1.0 / 64.0);
  Bf16Gemm g(w);
  EXPECT_EQ(g.n(), N);
  EXPECT_EQ(g.k(), K);
  at::Tensor y = g.run(x.to(at::kBFloat16));
  ASSERT_EQ(y.scalar_type(), at::kFloat);
  ASSERT_EQ(y.sizes(), (at::IntArrayRef{M, N}));
  at::Tensor ref = at::mm(x, w.t());
  at::Tensor abs_sum = at::mm(x.abs(), w.abs().t());
  const double rel = ((y - ref).abs() / abs_sum).max().item<double>();
  std::printf("bf16 GEMM (%s) vs fp32: max |diff| / sum|x w| = %.3g\n", bf16_gemm_support().impl.c_str(), rel);
  EXPECT_LE(rel, kSumOrderRelTol);
  // Not bf16-rounded output: the float32 results carry more than 8 bits.
  EXPECT_FALSE(at::equal(y, y.to(at::kBFloat16).to(at::kFloat)));
  // Another M (a second primitive) and a non-bf16 input are handled.
  at::Tensor y2 = g.run(x.narrow(0, 0, 100).to(at::kBFloat16));
  EXPECT_TRUE(at::equal(y2, y.narrow(0, 0, 100)) || ((y2 - y.narrow(0, 0, 100)).abs() /
                                                         abs_sum.narrow(0, 0, 100)).max().item<double>() <= kSumOrderRelTol);
  expect_contains(error_of([&] { g.run(x); }), "bf16");
  at::Tensor wbad = w.clone();
  wbad[0][0] = from_bits(0x3F800001u);
  expect_contains(error_of([&] { Bf16Gemm bad(wbad); }), "not exactly representable in bf16");
}

TEST(V4WriterGemm, Bf16PathMatchesFp32PathOnStreams) {
  if (!fast()) GTEST_SKIP() << "no fast bf16 matmul here: " << bf16_gemm_support().why_not;
  V4Config c = V4Config::flash();
  c.simulate_fp8 = false;
  const V4Weights w = random_weights(c, 7);
  V4KVWriter wb(c, w, c10::Device(c10::kCPU), GemmMode::kBf16);
  V4KVWriter wf(c, w, c10::Device(c10::kCPU), GemmMode::kFp32);
  ASSERT_TRUE(wb.bf16_ready());
  EXPECT_FALSE(wf.bf16_ready());
  at::Tensor x = at::randn({1, 512, 4096}).to(at::kBFloat16);
  ForwardInfo ib, iff;
  auto ob = wb.forward(x, at::kFloat, &ib);
  auto of = wf.forward(x, at::kFloat, &iff);
  EXPECT_EQ(ib.gemm.rfind("bf16 (oneDNN ", 0), 0u) << ib.gemm;
  EXPECT_EQ(iff.gemm, "fp32 (at::mm)");
  for (const char* s : {kStreamSWA, kStreamCSA, kStreamHCA}) {
    const double diff = (ob.at(s) - of.at(s)).abs().max().item<double>();
    std::printf("%s: bf16 vs fp32 GEMM path max |diff| %.3g (max |v| %.3g)\n", s, diff,
                of.at(s).abs().max().item<double>());
    EXPECT_LE(diff, kStreamAbsTol) << s;
    EXPECT_GT(diff, 0.0) << s << ": identical outputs, so the two paths were not both exercised";
  }
  // auto picks bf16 here too, with the same result as forcing it.
  V4KVWriter wa(c, w);
  ForwardInfo ia;
  auto oa = wa.forward(x, at::kFloat, &ia);
  EXPECT_EQ(ia.gemm, ib.gemm);
  EXPECT_TRUE(at::equal(oa.at(kStreamCSA), ob.at(kStreamCSA)));
}

TEST(V4WriterGemm, FallsBackToFp32WhenAnInputIsNotBf16Exact) {
  V4Config c = tiny();
  const V4Weights w = random_weights(c, 3);
  V4KVWriter wa(c, w);  // auto
  EXPECT_TRUE(wa.weights_bf16_exact());
  EXPECT_EQ(wa.bf16_ready(), fast()) << wa.bf16_unavailable_reason();
  ForwardInfo info;
  // Hidden states not exactly bf16 (fp32 randn): fp32 path.
  at::Tensor xf = at::randn({1, 256, 64});
  wa.forward(xf, at::kFloat, &info);
  EXPECT_EQ(info.gemm, "fp32 (at::mm)");
  // bf16 hidden states: bf16 path where the CPU has it.
  wa.forward(xf.to(at::kBFloat16), at::kFloat, &info);
  EXPECT_EQ(info.gemm.rfind(fast() ? "bf16" : "fp32", 0), 0u) << info.gemm;
  // float32 hidden states that are bf16 values count as bf16.
  wa.forward(xf.to(at::kBFloat16).to(at::kFloat), at::kFloat, &info);
  EXPECT_EQ(info.gemm.rfind(fast() ? "bf16" : "fp32", 0), 0u) << info.gemm;
  // A bf16 subnormal in the hidden states: fp32 path.
  at::Tensor xs = xf.to(at::kBFloat16).to(at::kFloat);
  xs[0][3][3] = from_bits(0x00010000u);
  wa.forward(xs, at::kFloat, &info);
  EXPECT_EQ(info.gemm, "fp32 (at::mm)");
  // Weights not bf16-exact: never the bf16 path, with the reason.
  V4Weights w32 = w;
  w32.csa.wgate = w.csa.wgate.clone();
  w32.csa.wgate[2][2] = w32.csa.wgate[2][2].item<float>() * (1.0f + 1e-6f) + 1e-9f;
  V4KVWriter wn(c, w32);
  EXPECT_FALSE(wn.weights_bf16_exact());
  EXPECT_FALSE(wn.bf16_ready());
  wn.forward(xf.to(at::kBFloat16), at::kFloat, &info);
  EXPECT_EQ(info.gemm, "fp32 (at::mm)");
  if (fast()) expect_contains(wn.bf16_unavailable_reason(), "not exactly representable in bf16");
  // gemm = fp32: never bf16.
  V4KVWriter wf(c, w, c10::Device(c10::kCPU), GemmMode::kFp32);
  wf.forward(xf.to(at::kBFloat16), at::kFloat, &info);
  EXPECT_EQ(info.gemm, "fp32 (at::mm)");
  // gemm = bf16 that cannot run: an error, not a silent fallback.
  expect_contains(error_of([&] { V4KVWriter(c, w32, c10::Device(c10::kCPU), GemmMode::kBf16); }),
                  "gemm = bf16 cannot run");
  if (fast()) {
    V4KVWriter wb(c, w, c10::Device(c10::kCPU), GemmMode::kBf16);
    const std::string msg = error_of([&] { wb.forward(xf, at::kFloat); });
    expect_contains(msg, "gemm = bf16 cannot run");
    expect_contains(msg, "not exactly representable in bf16");
    // Non-finite bf16 hidden states are reported on the bf16 path as on the fp32 one.
    at::Tensor nan = xf.to(at::kBFloat16);
    nan[0][9][4] = std::nanf("");
    expect_contains(error_of([&] { wb.forward(nan, at::kFloat); }), "token 9, channel 4");
  } else {
    expect_contains(error_of([&] { V4KVWriter(c, w, c10::Device(c10::kCPU), GemmMode::kBf16); }),
                    "gemm = bf16 cannot run");
  }
}

// Subsets of the streams (the executor generates the first stream alone and
// the others in the background) equal the full forward pass's streams.
TEST(V4WriterGemm, StreamSubsetsMatchTheFullForwardPass) {
  V4Config c = V4Config::flash();
  c.simulate_fp8 = false;
  const V4Weights w = random_weights(c, 11);
  at::Tensor x = at::randn({1, 256, 4096}).to(at::kBFloat16);
  for (GemmMode mode : {GemmMode::kAuto, GemmMode::kFp32}) {
    V4KVWriter wr(c, w, c10::Device(c10::kCPU), mode);
    const auto all = wr.forward(x, at::kFloat);
    const auto swa = wr.forward_streams(x, {kStreamSWA}, at::kFloat);
    const auto rest = wr.forward_streams(x, {kStreamHCA, kStreamCSA}, at::kFloat);
    const auto hca = wr.forward_streams(x, {kStreamHCA}, at::kFloat);
    ASSERT_EQ(swa.size(), 1u);
    ASSERT_EQ(rest.size(), 2u);
    for (const auto* part : {&swa, &rest, &hca})
      for (const auto& [name, t] : *part) {
        const double diff = (t - all.at(name)).abs().max().item<double>();
        std::printf("%s %s subset vs full: max |diff| %.3g\n", gemm_mode_name(mode), name.c_str(), diff);
        EXPECT_LE(diff, kStreamAbsTol) << name;
      }
  }
  V4KVWriter wr(c, w);
  const std::string msg = error_of([&] { wr.forward_streams(x, {"swa"}); });
  expect_contains(msg, "unknown stream 'swa'");
  expect_contains(error_of([&] { wr.forward_streams(x, {}); }), "no stream requested");
}
