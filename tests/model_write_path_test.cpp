// The two write-path modes (config.h WritePath): v4's YaRN frequencies at
// S = 2048 against a hand computation, published unchanged there; the UE8M0
// FP8 op (block scales powers of two, values code * s, ATen == kernel);
// streams per mode (sliding-window RoPE identical, only FP8 differs;
// compressed streams' RoPE differs); compress_ratios parsing and the layer
// mix per mode; write-path names.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <fstream>
#include <vector>

#include "common/error.h"
#include "kernels/fp8_block.h"
#include "kernels/fp_formats.h"
#include "model/config.h"
#include "model/ops.h"
#include "model/rope.h"
#include "model/v4_kv.h"
#include "testutil/testutil.h"

using namespace kvlab::model;
using kvlab::testutil::error_of;
using kvlab::testutil::expect_contains;

namespace {

RopeParams compressor_rope(bool yarn_always) {
  RopeParams p;
  p.dim = 64;
  p.base = 160000.0;
  p.original_seq_len = 65536;
  p.factor = 16.0;
  p.beta_fast = 32.0;
  p.beta_slow = 1.0;
  p.yarn_always = yarn_always;
  return p;
}

V4Config tiny(WritePath m, bool fp8) {
  V4Config c = V4Config::flash();
  c.hidden_size = 64;
  c.head_dim = 128;  // 64 nope + 64 rope: one FP8 block
  c.write_path = m;
  c.simulate_fp8 = fp8;
  return c;
}

std::map<std::string, at::Tensor> streams(WritePath m, bool fp8, const at::Tensor& hidden) {
  V4Config c = tiny(m, fp8);
  V4KVWriter w(c, random_weights(c, 11));
  return w.forward(hidden, at::kFloat);
}

bool bit_equal(const at::Tensor& a, const at::Tensor& b) {
  return a.sizes() == b.sizes() && at::equal(a.contiguous().view(at::kInt), b.contiguous().view(at::kInt));
}

}  // namespace

TEST(WritePathRope, V4YarnAt2048MatchesHandComputation) {
  const RopeParams p = compressor_rope(true);
  const YarnRange r = yarn_correction_range(p);
  EXPECT_EQ(r.low, 15.0);
  EXPECT_EQ(r.high, 25.0);
  EXPECT_TRUE(yarn_active(p, 2048));
  const std::vector<float> f = rope_inv_freqs(p, 2048);
  ASSERT_EQ(f.size(), 32u);
  for (int i = 0; i < 32; ++i) {
    // s_i = 1 for i <= 15, linear to 0 over 16..25, 0 for i >= 25.
    const double s = i <= 15 ? 1.0 : i >= 25 ? 0.0 : (25.0 - i) / 10.0;
    const double base = std::pow(160000.0, -2.0 * i / 64.0);
    const double want = base * s + (base / 16.0) * (1.0 - s);
    EXPECT_NEAR(f[static_cast<std::size_t>(i)], want, want * 2e-6) << "i = " << i;
  }
  EXPECT_FLOAT_EQ(f[20], static_cast<float>(std::pow(160000.0, -40.0 / 64.0) * (0.5 + 0.5 / 16.0)));
}

TEST(WritePathRope, PublishedHasNoYarnAt2048) {
  const RopeParams pub = compressor_rope(false);
  EXPECT_FALSE(yarn_active(pub, 2048));
  EXPECT_FALSE(yarn_active(pub, 65536));
  EXPECT_TRUE(yarn_active(pub, 65537));
  const std::vector<float> f = rope_inv_freqs(pub, 2048);
  for (int i = 0; i < 32; ++i) {
    const float e = static_cast<float>(2 * i) / 64.0f;
    const float pw = static_cast<float>(std::pow(160000.0, static_cast<double>(e)));
    EXPECT_EQ(f[static_cast<std::size_t>(i)], 1.0f / pw) << i;  // the unscaled float32 recipe, bit for bit
  }
  // v4 keeps the high-frequency pairs (i <= 15) and scales i >= 25 by 1/16.
  const std::vector<float> v = rope_inv_freqs(compressor_rope(true), 2048);
  for (int i = 0; i <= 15; ++i) EXPECT_EQ(v[static_cast<std::size_t>(i)], f[static_cast<std::size_t>(i)]) << i;
  for (int i = 25; i < 32; ++i)
    EXPECT_NEAR(v[static_cast<std::size_t>(i)], f[static_cast<std::size_t>(i)] / 16.0f, f[i] * 1e-6) << i;
  // Without original_seq_len there is never YaRN, even with yarn_always.
  RopeParams none = compressor_rope(true);
  none.original_seq_len = 0;
  EXPECT_FALSE(yarn_active(none, 2048));
}

TEST(WritePathFp8, Ue8m0ScalesArePowersOfTwoAndValuesCodeTimesScale) {
  at::manual_seed(3);
  // Rows of mixed magnitudes, one block exactly at 448 * 2^-3 (an exact power-of-two ratio).
  at::Tensor x = at::randn({6, 4, 512}) * at::exp2(at::randint(-10, 8, {6, 4, 1}).to(at::kFloat));
  x.index_put_({0, 0, 5}, 56.0f);
  x.index_put_({0, 0, at::indexing::Slice(0, 64)}, x.index({0, 0, at::indexing::Slice(0, 64)}).clamp(-56.f, 56.f));
  at::Tensor y = fp8_simulate(x, 448, 64, 448.0, Fp8Scale::kUe8m0);
  ASSERT_EQ(y.sizes(), x.sizes());
  EXPECT_TRUE(at::equal(y.narrow(-1, 448, 64), x.narrow(-1, 448, 64)));  // rope dims untouched
  at::Tensor xs = x.reshape({-1, 512}), ys = y.reshape({-1, 512});
  for (int64_t r = 0; r < xs.size(0); ++r)
    for (int64_t b = 0; b < 7; ++b) {
      const float amax = xs[r].narrow(0, b * 64, 64).abs().max().item<float>();
      const float a = std::max(amax, 1e-4f);
      int k = -140;
      while (std::ldexp(1.0, k) < double(a * (1.0f / 448.f))) ++k;
      const float s = std::ldexp(1.0f, k);  // the smallest power of two >= a / 448
      if (r == 0 && b == 0) {
        EXPECT_EQ(s, 0.125f);
      }
      for (int64_t j = 0; j < 64; ++j) {
        const float v = ys[r][b * 64 + j].item<float>();
        const float q = v / s;
        ASSERT_LE(std::fabs(q), 448.f);
        ASSERT_EQ(kvlab::kernels::e4m3_to_f32(kvlab::kernels::f32_to_e4m3(q, true)), q) << r << " " << b << " " << j;
      }
    }
  // The ATen version (other devices) is bit-identical to the CPU kernel; the
  // published rule differs.
  EXPECT_TRUE(bit_equal(fp8_simulate_ue8m0_aten(x, 448, 64, 448.0), y));
  at::Tensor big = at::randn({300, 512}) * 40;
  EXPECT_TRUE(bit_equal(fp8_simulate_ue8m0_aten(big, 512, 32, 240.0), fp8_simulate(big, 512, 32, 240.0, Fp8Scale::kUe8m0)));
  EXPECT_FALSE(at::equal(fp8_simulate(x, 448, 64, 448.0), y));
  EXPECT_TRUE(bit_equal(fp8_simulate(x, 448, 64, 448.0), fp8_simulate(x, 448, 64, 448.0, Fp8Scale::kAmax)));
  at::Tensor bad = x.clone();
  bad.index_put_({1, 2, 7}, std::nanf(""));
  EXPECT_THROW(fp8_simulate(bad, 448, 64, 448.0, Fp8Scale::kUe8m0), kvlab::Error);
}

TEST(WritePathStreams, SlidingWindowRopeSameCompressedRopeDiffers) {
  at::manual_seed(5);
  const int64_t S = 512;
  const at::Tensor hidden = at::randn({1, S, 64});
  // Without FP8: the sliding-window stream is identical; the compressed
  // streams differ only in their rope dims (YaRN), and agree at position 0.
  auto pub = streams(WritePath::kPublished, false, hidden);
  auto v4 = streams(WritePath::kV4, false, hidden);
  EXPECT_TRUE(bit_equal(pub.at(kStreamSWA), v4.at(kStreamSWA)));
  for (const char* st : {kStreamCSA, kStreamHCA}) {
    const at::Tensor a = pub.at(st), b = v4.at(st);
    EXPECT_TRUE(bit_equal(a.narrow(-1, 0, 64), b.narrow(-1, 0, 64))) << st;
    EXPECT_TRUE(bit_equal(a.narrow(1, 0, 1), b.narrow(1, 0, 1))) << st;  // entry 0: position 0
    // Entries j >= 1 sit at position j * m: the low-frequency pairs (i >= 16) rotate differently.
    const at::Tensor ra = a.narrow(1, 1, a.size(1) - 1).narrow(-1, 64, 64);
    const at::Tensor rb = b.narrow(1, 1, b.size(1) - 1).narrow(-1, 64, 64);
    EXPECT_FALSE(at::equal(ra, rb)) << st;
    // The high-frequency pairs (i <= 15: dims 64..95) are unchanged by the ramp.
    EXPECT_TRUE(bit_equal(ra.narrow(-1, 0, 32), rb.narrow(-1, 0, 32))) << st;
    // Rotations preserve pair norms.
    EXPECT_TRUE(at::allclose(ra.square().sum(-1), rb.square().sum(-1), 1e-5, 1e-6)) << st;
  }
  // With FP8: the sliding-window rope dims stay identical, its nope dims are
  // the UE8M0 simulation of the same values (not the amax one).
  auto pub8 = streams(WritePath::kPublished, true, hidden);
  auto v48 = streams(WritePath::kV4, true, hidden);
  const at::Tensor sp = pub8.at(kStreamSWA), sv = v48.at(kStreamSWA);
  EXPECT_TRUE(bit_equal(sp.narrow(-1, 64, 64), sv.narrow(-1, 64, 64)));
  EXPECT_FALSE(at::equal(sp.narrow(-1, 0, 64), sv.narrow(-1, 0, 64)));
  EXPECT_TRUE(bit_equal(sv, fp8_simulate(v4.at(kStreamSWA), 64, 64, 448.0, Fp8Scale::kUe8m0)));
  EXPECT_TRUE(bit_equal(sp, fp8_simulate(pub.at(kStreamSWA), 64, 64, 448.0)));
  for (const char* st : {kStreamCSA, kStreamHCA})
    EXPECT_TRUE(bit_equal(v48.at(st), fp8_simulate(v4.at(st), 64, 64, 448.0, Fp8Scale::kUe8m0))) << st;
}

TEST(WritePathConfig, LayerMixPerMode) {
  V4Config c = V4Config::flash();
  EXPECT_EQ(c.write_path, WritePath::kPublished);
  const std::map<std::string, int> published{{kStreamSWA, 3}, {kStreamCSA, 20}, {kStreamHCA, 20}};
  const std::map<std::string, int> v4{{kStreamSWA, 2}, {kStreamCSA, 21}, {kStreamHCA, 20}};
  EXPECT_EQ(c.layer_mix(), published);
  EXPECT_EQ(c.layer_mix(WritePath::kPublished), published);
  EXPECT_EQ(c.layer_mix(WritePath::kV4), v4);
  const auto full = v4_flash_config_compress_ratios();
  ASSERT_EQ(full.size(), 44u);
  EXPECT_EQ(full[0], 0);
  EXPECT_EQ(full[1], 0);
  for (int i = 2; i <= 42; ++i) EXPECT_EQ(full[static_cast<std::size_t>(i)], i % 2 == 0 ? 4 : 128) << i;
  EXPECT_EQ(full[43], 0);
  c.write_path = WritePath::kV4;
  EXPECT_EQ(c.layer_mix(), v4);
  EXPECT_EQ(c.num_layers(), 43);
  EXPECT_EQ(c.layer_kind(1), LayerKind::SWA);
  EXPECT_EQ(c.layer_kind(42), LayerKind::CSA);  // published: SWA
  EXPECT_EQ(c.layer_kind(41), LayerKind::HCA);
  EXPECT_THROW(c.layer_kind(43), kvlab::Error);
  EXPECT_EQ(c.count(LayerKind::CSA), 21);
  // to_json round trip in both modes; published's keys are today's plus
  // v4_compress_ratios (the two default lists differ).
  EXPECT_EQ(V4Config::from_json(c.to_json()), c);
  EXPECT_EQ(c.to_json().at("write_path"), "v4");
  const V4Config p = V4Config::flash();
  EXPECT_EQ(V4Config::from_json(p.to_json()), p);
  EXPECT_FALSE(p.to_json().contains("write_path"));
  EXPECT_EQ(layer_kind_stream(LayerKind::CSA), std::string(kStreamCSA));
}

TEST(WritePathConfig, V4FlashConfigJsonCompressRatios) {
  nlohmann::json m = {{"architectures", {"DeepseekV4ForCausalLM"}},
                      {"num_hidden_layers", 43},
                      {"num_nextn_predict_layers", 1},
                      {"compress_ratios", v4_flash_config_compress_ratios()}};
  const V4Config c = V4Config::from_json(m);
  const std::map<std::string, int> v4{{kStreamSWA, 2}, {kStreamCSA, 21}, {kStreamHCA, 20}};
  EXPECT_EQ(c.layer_mix(WritePath::kV4), v4);
  EXPECT_EQ(c.layer_mix(WritePath::kPublished), v4);  // one model, one list
  EXPECT_EQ(c.num_layers(), 43);
  // The free parser: the MTP slot dropped; every entry kept without a layer count.
  EXPECT_EQ(parse_compress_ratios(m["compress_ratios"], 43, 1, 4, 128), v4_flash_layer_ratios());
  EXPECT_EQ(parse_compress_ratios(m["compress_ratios"], -1, -1, 4, 128).size(), 44u);
  // A config.json file and a write_path key.
  auto dir = kvlab::testutil::make_temp_dir("write_path_cfg");
  m["write_path"] = "v4";
  std::ofstream(dir + "/config.json") << m.dump();
  const V4Config f = V4Config::from_json_file(dir + "/config.json");
  EXPECT_EQ(f.write_path, WritePath::kV4);
  EXPECT_EQ(f.layer_mix(), v4);
}

TEST(WritePathConfig, CompressRatiosErrors) {
  auto cfg = [](std::vector<int64_t> cr, int layers, int mtp) {
    nlohmann::json m = {{"num_hidden_layers", layers}, {"compress_ratios", cr}};
    if (mtp >= 0) m["num_nextn_predict_layers"] = mtp;
    return m;
  };
  auto bad = v4_flash_config_compress_ratios();
  bad[5] = 3;
  expect_contains(error_of([&] { V4Config::from_json(cfg(bad, 43, 1)); }), "compress_ratios[5] = 3");
  expect_contains(error_of([&] { V4Config::from_json(cfg(bad, 43, 1)); }), "expected 0 (SWA), 4 (CSA) or 128 (HCA)");
  auto short_list = v4_flash_config_compress_ratios();
  short_list.pop_back();
  expect_contains(error_of([&] { V4Config::from_json(cfg(short_list, 43, 1)); }),
                  "compress_ratios has 43 entries; expected num_hidden_layers + num_nextn_predict_layers = 43 + 1 = 44");
  short_list.pop_back();
  expect_contains(error_of([&] { V4Config::from_json(cfg(short_list, 43, -1)); }),
                  "num_hidden_layers = 43 but compress_ratios has 42 entries");
  expect_contains(error_of([] { V4Config::from_json(nlohmann::json::parse(R"({"compress_ratios": [0, "x"]})")); }),
                  "compress_ratios[1]");
  expect_contains(error_of([] { V4Config::from_json(nlohmann::json::parse(R"({"compress_ratios": 4})")); }),
                  "array");
  expect_contains(error_of([] { parse_compress_ratios(nlohmann::json::parse("[0, 4, 7]"), -1, -1, 4, 128, "cfg.json"); }),
                  "cfg.json: compress_ratios[2] = 7");
  expect_contains(error_of([] { V4Config::from_json(nlohmann::json::parse(R"({"write_path": "v5"})")); }),
                  "write path 'v5'; expected published or v4");
  expect_contains(error_of([] { V4Config::from_json(nlohmann::json::parse(R"({"v4_compress_ratios": [0, 9]})")); }),
                  "v4_compress_ratios: compress_ratios[1] = 9");
}

TEST(WritePathConfig, Names) {
  EXPECT_STREQ(write_path_name(WritePath::kPublished), "published");
  EXPECT_STREQ(write_path_name(WritePath::kV4), "v4");
  EXPECT_EQ(parse_write_path("published"), WritePath::kPublished);
  EXPECT_EQ(parse_write_path("v4"), WritePath::kV4);
  expect_contains(error_of([] { parse_write_path("V4", "--write-path"); }),
                  "--write-path: write path 'V4'; expected published or v4");
}
