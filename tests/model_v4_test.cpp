// Properties of the V4 KV writer, config parsing and weight loading:
// stream shapes, seqlen errors, seeded determinism, bf16 storage, FP8
// checkpoint dequantisation against an independent scalar computation,
// and bad input.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include "common/error.h"
#include "io/safetensors.h"
#include "kernels/fp_formats.h"
#include "model/config.h"
#include "model/v4_kv.h"
#include "testutil/testutil.h"

using namespace kvlab::model;

namespace {

V4Config tiny() {
  V4Config c = V4Config::flash();
  c.hidden_size = 64;
  c.head_dim = 128;
  return c;
}

using kvlab::testutil::error_of;

using kvlab::testutil::expect_contains;

void add_tensor(kvlab::io::SafetensorsWriter& w, const std::string& name, const at::Tensor& t) {
  at::Tensor c = t.to(at::kFloat).contiguous();
  w.add_f32(name, std::vector<int64_t>(c.sizes().begin(), c.sizes().end()), c.data_ptr<float>());
}

}  // namespace

TEST(V4Config, FlashDefaultsAndLayerMix) {
  V4Config c = V4Config::flash();
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.head_dim, 512);
  EXPECT_EQ(c.qk_rope_head_dim, 64);
  EXPECT_EQ(c.nope_dim(), 448);
  EXPECT_EQ(c.rope_theta_main, 1e4);
  EXPECT_EQ(c.rope_theta_compress, 160000);
  EXPECT_EQ(c.rope_factor, 16);
  EXPECT_EQ(c.original_seq_len, 65536);
  EXPECT_EQ(c.beta_fast, 32);
  EXPECT_EQ(c.beta_slow, 1);
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.fp8_block_size_nope, 64);
  EXPECT_EQ(c.fp8_max, 448);
  EXPECT_TRUE(c.simulate_fp8);
  EXPECT_EQ(c.num_layers(), 43);
  EXPECT_EQ(c.count(LayerKind::SWA), 3);
  EXPECT_EQ(c.count(LayerKind::CSA), 20);
  EXPECT_EQ(c.count(LayerKind::HCA), 20);
  EXPECT_EQ(c.layer_kind(0), LayerKind::SWA);
  EXPECT_EQ(c.layer_kind(2), LayerKind::CSA);
  EXPECT_EQ(c.layer_kind(3), LayerKind::HCA);
  EXPECT_EQ(c.layer_kind(42), LayerKind::SWA);
  EXPECT_THROW(c.layer_kind(43), kvlab::Error);
  EXPECT_EQ(V4Config(), c);
  EXPECT_EQ(V4Config::from_json(c.to_json()), c);
}

TEST(V4Config, ParsesReferenceAndModelConfigs) {
  auto j = nlohmann::json::parse(R"({"hidden_size": 256, "head_dim": 128, "qk_rope_head_dim": 64,
    "compress_ratio": 4, "window_size": 128, "rope_theta_main": 10000.0, "rope_theta_compress": 160000.0,
    "rope_factor": 16.0, "original_seq_len": 256, "beta_fast": 32, "beta_slow": 1, "rms_norm_eps": 1e-06,
    "fp8_block_size_nope": 64, "fp8_max": 448.0, "simulate_fp8": false})");
  V4Config r = V4Config::from_json(j);
  EXPECT_EQ(r.hidden_size, 256);
  EXPECT_EQ(r.original_seq_len, 256);
  EXPECT_FALSE(r.simulate_fp8);
  // A V4-style config.json: other keys ignored, layer mix from compress_ratios.
  auto m = nlohmann::json::parse(R"({"architectures": ["DeepseekV4ForCausalLM"], "vocab_size": 129280,
    "hidden_size": 4096, "head_dim": 512, "qk_rope_head_dim": 64, "rope_theta": 10000,
    "compress_rope_theta": 160000, "num_hidden_layers": 4, "compress_ratios": [0, 4, 128, 4, 0],
    "rope_scaling": {"type": "yarn", "factor": 8, "original_max_position_embeddings": 4096,
                     "beta_fast": 16, "beta_slow": 2}})");
  V4Config v = V4Config::from_json(m);
  EXPECT_EQ(v.num_layers(), 4);  // the trailing MTP entry is cut at num_hidden_layers
  EXPECT_EQ(v.layers_of(LayerKind::CSA), (std::vector<int>{1, 3}));
  EXPECT_EQ(v.layers_of(LayerKind::HCA), (std::vector<int>{2}));
  EXPECT_EQ(v.rope_factor, 8);
  EXPECT_EQ(v.original_seq_len, 4096);
  EXPECT_EQ(v.beta_fast, 16);
  EXPECT_EQ(v.beta_slow, 2);
  // From a file.
  auto dir = kvlab::testutil::make_temp_dir("model_cfg");
  std::ofstream(dir + "/config.json") << m.dump();
  EXPECT_EQ(V4Config::from_json_file(dir + "/config.json"), v);
}

TEST(V4Config, BadInput) {
  using nlohmann::json;
  expect_contains(error_of([] { V4Config::from_json(json::parse(R"({"hiden_size": 4})")); }), "hiden_size");
  expect_contains(error_of([] { V4Config::from_json(json::parse(R"({"hidden_size": "big"})")); }), "hidden_size");
  expect_contains(error_of([] { V4Config::from_json(json::parse(R"({"head_dim": 100})")); }), "multiple");
  expect_contains(error_of([] { V4Config::from_json(json::parse(R"({"qk_rope_head_dim": 63})")); }),
                  "qk_rope_head_dim");
  expect_contains(error_of([] { V4Config::from_json(json::parse(R"({"fp8_max": 500})")); }), "fp8_max");
  expect_contains(error_of([] { V4Config::from_json(json::parse(R"({"compress_ratios": [0, 5]})")); }),
                  "compress_ratios[1] = 5");
  expect_contains(error_of([] { V4Config::from_json(json::parse("[1]")); }), "object");
  expect_contains(error_of([] { V4Config::from_json_file("/nonexistent/config.json"); }), "/nonexistent");
  auto dir = kvlab::testutil::make_temp_dir("model_cfg");
  std::ofstream(dir + "/bad.json") << "{";
  expect_contains(error_of([&] { V4Config::from_json_file(dir + "/bad.json"); }), "not valid JSON");
}

TEST(V4Writer, StreamShapesAtFlashConfig) {
  V4Config c = V4Config::flash();
  V4KVWriter w(c, random_weights(c, 1));
  for (int64_t S : {256, 2048}) {
    auto out = w.forward(at::randn({1, S, 4096}).to(at::kBFloat16));
    ASSERT_EQ(out.size(), 3u);
    EXPECT_EQ(out.at(kStreamSWA).sizes(), (at::IntArrayRef{1, S, 512}));
    EXPECT_EQ(out.at(kStreamCSA).sizes(), (at::IntArrayRef{1, S / 4, 512}));
    EXPECT_EQ(out.at(kStreamHCA).sizes(), (at::IntArrayRef{1, S / 128, 512}));
    for (auto& [k, v] : out) {
      EXPECT_EQ(v.scalar_type(), at::kBFloat16) << k;
      EXPECT_TRUE(at::isfinite(v.to(at::kFloat)).all().item<bool>()) << k;
    }
  }
}

TEST(V4Writer, SeqlenMustBeAMultipleOf128) {
  V4Config c = tiny();
  V4KVWriter w(c, random_weights(c, 1));
  for (int64_t S : {0, 64, 200, 129}) {
    std::string msg = error_of([&] { w.forward(at::randn({1, S, 64})); });
    expect_contains(msg, "seqlen " + std::to_string(S));
    expect_contains(msg, "multiple of 128");
  }
  expect_contains(error_of([&] { w.forward(at::randn({1, 128, 65})); }), "hidden size 65");
  expect_contains(error_of([&] { w.forward(at::randn({128, 64})); }), "[B, S, hidden]");
  at::Tensor nan = at::randn({1, 128, 64});
  nan[0][5][7] = std::nanf("");
  std::string nan_msg = error_of([&] { w.forward(nan); });
  expect_contains(nan_msg, "NaN");
  expect_contains(nan_msg, "token 5, channel 7");
  at::Tensor inf = at::randn({2, 128, 64});
  inf[1][3][2] = -std::numeric_limits<float>::infinity();
  expect_contains(error_of([&] { w.forward(inf); }), "batch 1, token 3, channel 2");
  // Huge but finite values (their sum overflows) are accepted.
  at::Tensor huge = at::full({1, 128, 64}, 3e38f);
  EXPECT_NO_THROW(w.forward(huge, at::kFloat));
  expect_contains(error_of([&] { w.forward(at::randn({1, 128, 64}), at::kHalf); }), "stream dtype");
}

TEST(V4Writer, SeedDeterminism) {
  V4Config c = tiny();
  V4Weights a = random_weights(c, 42), b = random_weights(c, 42), d = random_weights(c, 43);
  EXPECT_TRUE(at::equal(a.wkv, b.wkv));
  EXPECT_TRUE(at::equal(a.csa.ape, b.csa.ape));
  EXPECT_TRUE(at::equal(a.hca.wgate, b.hca.wgate));
  EXPECT_FALSE(at::equal(a.wkv, d.wkv));
  EXPECT_FALSE(at::equal(a.hca.ape, d.hca.ape));
  // SPEC init statistics: wkv ~ N(0, 1/hidden), ape ~ N(0, 0.02^2), norms 1.
  V4Weights big = random_weights(V4Config::flash(), 9);
  EXPECT_NEAR(big.csa.wkv.std().item<double>(), 1.0 / 64.0, 1e-4);
  EXPECT_NEAR(big.hca.ape.std().item<double>(), 0.02, 5e-4);
  EXPECT_TRUE(at::equal(big.kv_norm, at::ones({512})));
  at::Tensor x = at::randn({1, 256, 64});
  auto o1 = V4KVWriter(c, a).forward(x);
  auto o2 = V4KVWriter(c, b).forward(x);
  auto o3 = V4KVWriter(c, d).forward(x);
  for (const char* s : {kStreamSWA, kStreamCSA, kStreamHCA}) {
    EXPECT_TRUE(at::equal(o1.at(s), o2.at(s))) << s;
    EXPECT_FALSE(at::equal(o1.at(s), o3.at(s))) << s;
  }
}

TEST(V4Writer, Bf16StreamIsFp32StreamRoundedBeforeRopeAndFp8) {
  V4Config c = tiny();
  c.simulate_fp8 = false;
  V4KVWriter w(c, random_weights(c, 3));
  at::Tensor x = at::randn({2, 256, 64});
  auto f = w.forward(x, at::kFloat);
  auto b = w.forward(x, at::kBFloat16);
  for (const char* s : {kStreamSWA, kStreamCSA, kStreamHCA}) {
    EXPECT_EQ(b.at(s).scalar_type(), at::kBFloat16);
    // Without FP8 the nope dims are exactly the bf16 rounding of the fp32 stream.
    EXPECT_TRUE(at::equal(b.at(s).narrow(-1, 0, 64), f.at(s).narrow(-1, 0, 64).to(at::kBFloat16))) << s;
    // Rope dims: rotated from bf16-rounded values, then rounded: close, not necessarily equal.
    EXPECT_TRUE(at::allclose(b.at(s).to(at::kFloat), f.at(s), 2e-2, 2e-2)) << s;
  }
  // Batch rows are independent: row 1 of a batch of 2 equals a batch of 1.
  auto one = w.forward(x.narrow(0, 1, 1), at::kFloat);
  for (const char* s : {kStreamSWA, kStreamCSA, kStreamHCA})
    EXPECT_TRUE(at::allclose(one.at(s), f.at(s).narrow(0, 1, 1), 1e-5, 1e-5)) << s;
}

TEST(V4Writer, RejectsBadWeights) {
  V4Config c = tiny();
  V4Weights w = random_weights(c, 1);
  V4Weights bad = w;
  bad.csa.ape = at::zeros({4, 128});
  std::string msg = error_of([&] { V4KVWriter(c, bad); });
  expect_contains(msg, "csa compressor ape");
  expect_contains(msg, "[4, 256]");
  bad = w;
  bad.hca.wkv = w.hca.wkv.clone();
  bad.hca.wkv[3][4] = std::nanf("");
  expect_contains(error_of([&] { V4KVWriter(c, bad); }), "hca compressor wkv has a non-finite");
  bad = w;
  bad.kv_norm = at::Tensor();
  expect_contains(error_of([&] { V4KVWriter(c, bad); }), "main kv_norm is missing");
}

// A small FP8 checkpoint (two shards + index), dequantised values checked
// against an independent scalar dequantisation (E4M3 table x 2^(e-127)).
TEST(LoadWeights, Fp8ShardedCheckpoint) {
  V4Config c = V4Config::flash();
  c.hidden_size = 200;  // not a multiple of 128: partial tiles
  c.head_dim = 128;
  c.compress_ratios = {0, 4, 128, 4};
  const int64_t d = 128, h = 200;
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> code(0, 255), expo(120, 130);
  struct Fp8 {
    std::vector<uint8_t> q, s;
    int64_t out, in;
  };
  auto make_fp8 = [&](int64_t out, int64_t in) {
    Fp8 f{std::vector<uint8_t>(static_cast<std::size_t>(out * in)),
          std::vector<uint8_t>(static_cast<std::size_t>(((out + 127) / 128) * ((in + 127) / 128))), out, in};
    for (auto& b : f.q) {
      int v;
      do v = code(rng);
      while ((v & 0x7F) == 0x7F);  // no NaN codes
      b = static_cast<uint8_t>(v);
    }
    for (auto& b : f.s) b = static_cast<uint8_t>(expo(rng));
    return f;
  };
  auto expect_dequant = [](const Fp8& f) {  // scalar oracle
    at::Tensor t = at::empty({f.out, f.in});
    const int64_t ti = (f.in + 127) / 128;
    auto acc = t.accessor<float, 2>();
    for (int64_t i = 0; i < f.out; ++i)
      for (int64_t j = 0; j < f.in; ++j)
        acc[i][j] = kvlab::kernels::e4m3_to_f32(f.q[static_cast<std::size_t>(i * f.in + j)]) *
                    std::ldexp(1.0f, static_cast<int>(f.s[static_cast<std::size_t>((i / 128) * ti + j / 128)]) - 127);
    return t;
  };
  using kvlab::io::DType;
  auto dir = kvlab::testutil::make_temp_dir("model_ckpt");
  std::map<std::string, at::Tensor> expect;
  kvlab::io::SafetensorsWriter s1, s2;
  nlohmann::json index = {{"metadata", nlohmann::json::object()}, {"weight_map", nlohmann::json::object()}};
  auto put = [&](kvlab::io::SafetensorsWriter& w, const std::string& shard, const std::string& name, DType dt,
                 std::vector<int64_t> shape, const void* p, std::size_t n) {
    w.add(name, dt, std::move(shape), p, n);
    index["weight_map"][name] = shard;
  };
  auto put_fp8 = [&](kvlab::io::SafetensorsWriter& w, const std::string& shard, const std::string& base, int64_t out,
                     int64_t in, bool e8m0_dtype) {
    Fp8 f = make_fp8(out, in);
    put(w, shard, base + ".weight", DType::F8_E4M3, {out, in}, f.q.data(), f.q.size());
    put(w, shard, base + ".scale", e8m0_dtype ? DType::E8M0 : DType::U8, {(out + 127) / 128, (in + 127) / 128},
        f.s.data(), f.s.size());
    expect[base + ".weight"] = expect_dequant(f);
  };
  auto put_bf16 = [&](kvlab::io::SafetensorsWriter& w, const std::string& shard, const std::string& name,
                      at::Tensor t) {
    at::Tensor b = t.to(at::kBFloat16).contiguous();
    put(w, shard, name, DType::BF16, std::vector<int64_t>(b.sizes().begin(), b.sizes().end()), b.data_ptr(),
        static_cast<std::size_t>(b.numel() * 2));
    expect[name] = b.to(at::kFloat);
  };
  // Layer 0 (SWA main path) in shard 1, layers 1 (CSA) and 2 (HCA) in shard 2.
  put_fp8(s1, "model-00001-of-00002.safetensors", "layers.0.attn.wkv", d, h, true);
  put_bf16(s1, "model-00001-of-00002.safetensors", "layers.0.attn.kv_norm.weight", at::rand({d}) + 0.5);
  const std::string sh2 = "model-00002-of-00002.safetensors";
  put_fp8(s2, sh2, "layers.1.attn.compressor.wkv", 2 * d, h, false);
  put_fp8(s2, sh2, "layers.1.attn.compressor.wgate", 2 * d, h, false);
  put_bf16(s2, sh2, "layers.1.attn.compressor.ape", at::randn({4, 2 * d}) * 0.02);
  put_bf16(s2, sh2, "layers.1.attn.compressor.norm.weight", at::rand({d}) + 0.5);
  put_fp8(s2, sh2, "layers.2.attn.compressor.wkv", d, h, true);
  put_fp8(s2, sh2, "layers.2.attn.compressor.wgate", d, h, true);
  put_bf16(s2, sh2, "layers.2.attn.compressor.ape", at::randn({128, d}) * 0.02);
  put_bf16(s2, sh2, "layers.2.attn.compressor.norm.weight", at::rand({d}) + 0.5);
  s1.write(dir + "/model-00001-of-00002.safetensors");
  s2.write(dir + "/" + sh2);
  std::ofstream(dir + "/model.safetensors.index.json") << index.dump();

  V4Weights w = load_weights(dir, c, 0, 1, 2);
  EXPECT_TRUE(at::equal(w.wkv, expect["layers.0.attn.wkv.weight"]));
  EXPECT_TRUE(at::equal(w.kv_norm, expect["layers.0.attn.kv_norm.weight"]));
  EXPECT_TRUE(at::equal(w.csa.wkv, expect["layers.1.attn.compressor.wkv.weight"]));
  EXPECT_TRUE(at::equal(w.csa.wgate, expect["layers.1.attn.compressor.wgate.weight"]));
  EXPECT_TRUE(at::equal(w.csa.ape, expect["layers.1.attn.compressor.ape"]));
  EXPECT_TRUE(at::equal(w.hca.wkv, expect["layers.2.attn.compressor.wkv.weight"]));
  EXPECT_TRUE(at::equal(w.hca.ape, expect["layers.2.attn.compressor.ape"]));
  EXPECT_TRUE(at::equal(w.hca.norm, expect["layers.2.attn.compressor.norm.weight"]));
  // Usable end to end.
  auto out = V4KVWriter(c, w).forward(at::randn({1, 256, h}));
  EXPECT_EQ(out.at(kStreamCSA).sizes(), (at::IntArrayRef{1, 64, 128}));

  // Wrong layer kinds / missing layer.
  expect_contains(error_of([&] { load_weights(dir, c, 0, 2, 1); }), "layer 2 is a hca layer");
  expect_contains(error_of([&] { load_weights(dir, c, 0, 3, 2); }), "layers.3.attn.compressor.wkv.weight");
  expect_contains(error_of([&] { load_weights(dir, c, 9, 1, 2); }), "layer 9 out of range");
  // Wrong config dims: the expected shape is named.
  V4Config c2 = c;
  c2.hidden_size = 256;
  std::string msg = error_of([&] { load_weights(dir, c2, 0, 1, 2); });
  expect_contains(msg, "layers.0.attn.wkv.weight");
  expect_contains(msg, "[128, 256]");
  // A corrupt shard is an error, not a crash.
  {
    std::fstream f(dir + "/" + sh2, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    uint64_t huge = 1ull << 40;
    f.write(reinterpret_cast<const char*>(&huge), 8);
  }
  expect_contains(error_of([&] { load_weights(dir, c, 0, 1, 2); }), "past the end");
}

TEST(LoadWeights, Fp8ScaleProblems) {
  V4Config c = tiny();
  c.compress_ratios = {0, 4, 128};
  auto dir = kvlab::testutil::make_temp_dir("model_ckpt");
  V4Weights r = random_weights(c, 2);
  auto write = [&](bool bad_scale_shape, bool nan_scale, bool no_scale) {
    kvlab::io::SafetensorsWriter w;
    std::vector<uint8_t> q(128 * 64, 0x38);  // 1.0
    w.add("layers.0.attn.wkv.weight", kvlab::io::DType::F8_E4M3, {128, 64}, q.data(), q.size());
    std::vector<uint8_t> s(2, nan_scale ? 0xFF : 127);
    if (!no_scale)
      w.add("layers.0.attn.wkv.scale", kvlab::io::DType::U8, {bad_scale_shape ? 2 : 1, 1}, s.data(),
            bad_scale_shape ? 2 : 1);
    add_tensor(w, "layers.0.attn.kv_norm.weight", r.kv_norm);
    for (auto [L, cw] : {std::pair{1, &r.csa}, std::pair{2, &r.hca}}) {
      const std::string p = "layers." + std::to_string(L) + ".attn.compressor.";
      add_tensor(w, p + "wkv.weight", cw->wkv);
      add_tensor(w, p + "wgate.weight", cw->wgate);
      add_tensor(w, p + "ape", cw->ape);
      add_tensor(w, p + "norm.weight", cw->norm);
    }
    w.write(dir + "/one.safetensors");
  };
  write(false, false, false);
  V4Weights ok = load_weights(dir + "/one.safetensors", c, 0, 1, 2);
  EXPECT_TRUE(at::equal(ok.wkv, at::ones({128, 64})));
  EXPECT_TRUE(at::equal(ok.csa.wgate, r.csa.wgate));
  write(true, false, false);
  expect_contains(error_of([&] { load_weights(dir + "/one.safetensors", c, 0, 1, 2); }), "expected [1, 1]");
  write(false, true, false);
  expect_contains(error_of([&] { load_weights(dir + "/one.safetensors", c, 0, 1, 2); }), "non-finite");
  write(false, false, true);
  expect_contains(error_of([&] { load_weights(dir + "/one.safetensors", c, 0, 1, 2); }), "no scale tensor");
}

TEST(LoadWeights, ReferenceNamesInOneFile) {
  auto f = kvlab::io::SafetensorsFile::open(kvlab::testutil::reference_path("dsv4_small.safetensors"));
  V4Config c = V4Config::from_json(nlohmann::json::parse(f.metadata().at("config/S512")));
  V4Weights w = load_weights(kvlab::testutil::reference_path("dsv4_small.safetensors"), c, 0, 2, 3);
  EXPECT_EQ(w.csa.ape.sizes(), (at::IntArrayRef{4, 256}));
  std::vector<float> ape = f.to_f32("weight/compressor_csa.ape");
  EXPECT_EQ(w.csa.ape.flatten()[17].item<float>(), ape[17]);
  // The flash config does not fit these weights: the message names the shape.
  std::string msg = error_of([&] {
    load_weights(kvlab::testutil::reference_path("dsv4_small.safetensors"), V4Config::flash(), 0, 2, 3);
  });
  expect_contains(msg, "weight/main_kv.wkv.weight");
  expect_contains(msg, "expected [512, 4096]");
}

// A Hugging Face cache folder: snapshots/<hash>/ with symlinks to blobs,
// refs/main naming the snapshot.
TEST(LoadWeights, HuggingFaceCacheLayout) {
  namespace fs = std::filesystem;
  auto dir = kvlab::testutil::make_temp_dir("model_hf");
  const std::string ref = kvlab::testutil::reference_path("dsv4_small.safetensors");
  fs::create_directories(dir + "/blobs");
  fs::create_directories(dir + "/snapshots/abc123");
  fs::create_directories(dir + "/snapshots/old999");
  fs::create_directories(dir + "/refs");
  fs::copy_file(ref, dir + "/blobs/deadbeef");
  fs::create_symlink("../../blobs/deadbeef", dir + "/snapshots/abc123/model.safetensors");
  std::ofstream(dir + "/refs/main") << "abc123";
  auto f = kvlab::io::SafetensorsFile::open(ref);
  V4Config c = V4Config::from_json(nlohmann::json::parse(f.metadata().at("config/S512")));
  V4Weights w = load_weights(dir, c, 0, 2, 3);
  V4Weights direct = load_weights(ref, c, 0, 2, 3);
  EXPECT_TRUE(at::equal(w.hca.wgate, direct.hca.wgate));
  // Without refs/main and with two snapshots the choice is ambiguous.
  fs::remove(dir + "/refs/main");
  expect_contains(error_of([&] { load_weights(dir, c, 0, 2, 3); }), "2 snapshots");
  // An empty checkpoint folder.
  auto empty = kvlab::testutil::make_temp_dir("model_hf");
  expect_contains(error_of([&] { load_weights(empty, c, 0, 2, 3); }), "no model.safetensors.index.json");
  expect_contains(error_of([&] { load_weights(empty + "/missing", c, 0, 2, 3); }), "does not exist");
}

TEST(Provenance, BlasAndTorchVersion) {
  // Force a GEMM so that the BLAS is mapped.
  (void)at::mm(at::randn({64, 64}), at::randn({64, 64}));
  std::string b = blas_info();
  EXPECT_FALSE(b.empty());
  EXPECT_NE(b, "unknown");
  EXPECT_EQ(torch_version().rfind("1.", 0), 0u) << torch_version();
  EXPECT_GE(torch_threads(), 1);
  std::printf("blas: %s, torch %s, %d threads\n", b.c_str(), torch_version().c_str(), torch_threads());
}
