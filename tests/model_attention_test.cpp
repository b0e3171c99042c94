// The V4 attention read path (src/model/v4_attention.h): the query path
// against its loop oracle, AttentionProbe against its plain-loop oracle
// (with a planted mismatch that the parity check must catch), exact hand
// cases (one perturbed key, the sink), the visibility masks at their edges,
// checkpoint loading of the query weights, sampling, the shared probe-input
// builder (layer_attention_inputs: one RoPE for queries and keys), bad input.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <limits>
#include <random>

#include "common/error.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/ops.h"
#include "model/v4_attention.h"
#include "model/v4_kv.h"
#include "testutil/testutil.h"

using namespace kvlab::model;
using kvlab::testutil::error_of;
using kvlab::testutil::expect_contains;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// hidden 256, head_dim 128 (rope 64), 4 heads, q_lora 64, window 128.
V4Config small_cfg() {
  V4Config c = V4Config::flash();
  c.hidden_size = 256;
  c.head_dim = 128;
  c.qk_rope_head_dim = 64;
  c.compress_ratios = {0, 4, 128};
  return c;
}

V4AttentionConfig small_acfg() {
  V4AttentionConfig a;
  a.n_heads = 4;
  a.q_lora_rank = 64;
  a.window = 128;
  return a;
}

at::Tensor randn(std::vector<int64_t> shape, uint64_t seed, double stdv = 1.0) {
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::normal(0.0, stdv, at::IntArrayRef(shape), g, at::TensorOptions().dtype(at::kFloat));
}

// Random values on a coarse grid (multiples of 1/8 in [-1, 1]): every
// product and sum below is exact in float32.
at::Tensor grid(std::vector<int64_t> shape, uint64_t seed) {
  return at::round(randn(std::move(shape), seed, 0.4).clamp(-1, 1) * 8) / 8;
}

// The write path + query path on one random passage of the small config.
struct Passage {
  V4Config cfg = small_cfg();
  V4AttentionConfig acfg = small_acfg();
  at::Tensor hidden;  // [S, hidden]
  std::map<std::string, at::Tensor> streams;
  V4QueryWeights qw;
};

Passage make_passage(int64_t S = 256, uint64_t seed = 3) {
  Passage p;
  p.hidden = randn({1, S, p.cfg.hidden_size}, seed).to(at::kBFloat16).to(at::kFloat);
  V4KVWriter writer(p.cfg, random_weights(p.cfg, seed));
  p.streams = writer.forward(p.hidden);
  for (auto& [k, v] : p.streams) v = v.squeeze(0);
  p.hidden = p.hidden.squeeze(0);
  p.qw = random_query_weights(p.cfg, p.acfg, seed);
  return p;
}

// Inputs for layer kind `kind` of the passage, coding `coded`.
AttentionInputs make_inputs(const Passage& p, LayerKind kind, CodedPart coded, const std::vector<int64_t>& positions) {
  AttentionInputs in;
  in.positions = positions;
  in.queries = v4_queries(p.cfg, p.acfg, p.qw, kind, p.hidden, positions);
  in.window_kv = p.streams.at(kStreamSWA);
  if (kind == LayerKind::CSA) {
    in.compressed_kv = p.streams.at(kStreamCSA);
    in.ratio = 4;
    in.index_topk = 512;
  } else if (kind == LayerKind::HCA) {
    in.compressed_kv = p.streams.at(kStreamHCA);
    in.ratio = 128;
  }
  in.sink = p.qw.attn_sink;
  in.coded = coded;
  in.window = p.acfg.window;
  return in;
}

const at::Tensor& coded_ref(const AttentionInputs& in) {
  return in.coded == CodedPart::kWindow ? in.window_kv : in.compressed_kv;
}

bool close(double a, double b, double rel, double abs_tol = 1e-12) {
  return std::fabs(a - b) <= rel * std::max(std::fabs(a), std::fabs(b)) + abs_tol;
}

// Probe and oracle agree on every metric and on the outputs.
bool parity(const AttentionMetrics& a, const AttentionMetrics& b, const at::Tensor& oa, const at::Tensor& ob,
            std::string* why) {
  auto chk = [&](const char* n, double x, double y, double rel, double abs_tol) {
    if (close(x, y, rel, abs_tol)) return true;
    *why += fmt::format("{}: probe {} oracle {}; ", n, x, y);
    return false;
  };
  bool ok = chk("logit_rel_mse", a.logit_rel_mse, b.logit_rel_mse, 1e-4, 1e-12);
  ok &= chk("logit_rel_mse_coded", a.logit_rel_mse_coded, b.logit_rel_mse_coded, 1e-4, 1e-12);
  ok &= chk("kl_mean", a.kl_mean, b.kl_mean, 2e-3, 1e-9);
  ok &= chk("kl_p99", a.kl_p99, b.kl_p99, 2e-3, 1e-9);
  ok &= chk("kl_max", a.kl_max, b.kl_max, 2e-3, 1e-9);
  ok &= chk("attn_out_rel", a.attn_out_rel, b.attn_out_rel, 2e-3, 1e-9);
  if (a.visible != b.visible || a.visible_coded != b.visible_coded || a.queries != b.queries) {
    *why += fmt::format("counts: probe {}/{} oracle {}/{}; ", a.visible, a.visible_coded, b.visible, b.visible_coded);
    ok = false;
  }
  const double scale = ob.abs().max().item<double>();
  const double diff = (oa.to(at::kDouble) - ob).abs().max().item<double>();
  if (diff > 1e-5 * scale) {
    *why += fmt::format("outputs differ by {} (scale {}); ", diff, scale);
    ok = false;
  }
  return ok;
}

bool all_zero(const AttentionMetrics& m) {
  return m.logit_rel_mse == 0 && m.logit_rel_mse_coded == 0 && m.kl_mean == 0 && m.kl_p99 == 0 && m.kl_max == 0 &&
         m.attn_out_rel == 0;
}

}  // namespace

// ------------------------------------------------------------------ queries

TEST(V4Queries, MatchLoopOracleAndPlantedMismatchIsCaught) {
  Passage p = make_passage();
  const std::vector<int64_t> pos = {0, 1, 5, 100, 127, 128, 255};
  for (LayerKind kind : {LayerKind::SWA, LayerKind::CSA, LayerKind::HCA}) {
    at::Tensor fast = v4_queries(p.cfg, p.acfg, p.qw, kind, p.hidden, pos);
    at::Tensor ref = v4_queries_ref(p.cfg, p.acfg, p.qw, kind, p.hidden, pos);
    ASSERT_EQ(fast.sizes(), (at::IntArrayRef{7, 4, 128}));
    // bf16 outputs: summation order may flip a rounding (one bf16 ulp of an
    // intermediate), nothing more.
    const double equal = fast.eq(ref).to(at::kDouble).mean().item<double>();
    const double worst = (fast - ref).abs().max().item<double>();
    EXPECT_GE(equal, 0.99) << layer_kind_name(kind);
    EXPECT_LE(worst, 0.03) << layer_kind_name(kind);
    EXPECT_TRUE(at::equal(fast, fast.to(at::kBFloat16).to(at::kFloat)));
    // Per-head RMS normalisation (RoPE is a rotation): RMS 1 up to bf16.
    at::Tensor rms = fast.square().mean(-1).sqrt();
    EXPECT_LE((rms - 1).abs().max().item<double>(), 0.01);
    // Planted mismatch: the oracle at positions shifted by one.
    std::vector<int64_t> shifted = pos;
    for (auto& t : shifted) t = std::min<int64_t>(t + 1, 255);
    shifted[0] = 3;  // moves position 0 too
    at::Tensor bad = v4_queries_ref(p.cfg, p.acfg, p.qw, kind, p.hidden, shifted);
    at::Tensor same_rows = at::tensor(std::vector<int64_t>{0, 1, 2, 3, 4, 5}, at::kLong);  // rows whose token differs or position differs
    EXPECT_GT((fast.index_select(0, same_rows) - bad.index_select(0, same_rows)).abs().max().item<double>(), 0.05)
        << layer_kind_name(kind);
  }
}

TEST(V4Queries, RopeOnlyTouchesTheRopeDimsAndFollowsTheLayerKind) {
  Passage p = make_passage();
  // The same hidden state at positions 10 and 200.
  at::Tensor h = p.hidden.clone();
  h[200].copy_(h[10]);
  at::Tensor q = v4_queries(p.cfg, p.acfg, p.qw, LayerKind::CSA, h, {10, 200});
  EXPECT_TRUE(at::equal(q[0].narrow(-1, 0, 64), q[1].narrow(-1, 0, 64)));
  EXPECT_FALSE(at::equal(q[0].narrow(-1, 64, 64), q[1].narrow(-1, 64, 64)));
  // Position 0 is the identity rotation.
  at::Tensor q0 = v4_queries(p.cfg, p.acfg, p.qw, LayerKind::SWA, p.hidden, {0});
  V4AttentionConfig a = p.acfg;
  // SWA: theta_main, never YaRN. CSA / HCA: theta_compress, YaRN always (or by length).
  EXPECT_EQ(attention_rope_seqlen(p.cfg, a, LayerKind::SWA, 256), 256);
  EXPECT_GT(attention_rope_seqlen(p.cfg, a, LayerKind::CSA, 256), p.cfg.original_seq_len);
  EXPECT_TRUE(yarn_active(attention_rope_params(p.cfg, LayerKind::HCA),
                          attention_rope_seqlen(p.cfg, a, LayerKind::HCA, 256)));
  EXPECT_FALSE(yarn_active(attention_rope_params(p.cfg, LayerKind::SWA),
                           attention_rope_seqlen(p.cfg, a, LayerKind::SWA, 1 << 20)));
  EXPECT_EQ(attention_rope_params(p.cfg, LayerKind::SWA).base, 10000.0);
  EXPECT_EQ(attention_rope_params(p.cfg, LayerKind::CSA).base, 160000.0);
  a.yarn_always = false;
  EXPECT_EQ(attention_rope_seqlen(p.cfg, a, LayerKind::CSA, 256), 256);
  at::Tensor q_no_yarn = v4_queries(p.cfg, a, p.qw, LayerKind::CSA, h, {10, 200});
  EXPECT_TRUE(at::equal(q_no_yarn.narrow(-1, 0, 64), q.narrow(-1, 0, 64)));
  EXPECT_FALSE(at::equal(q_no_yarn, q));
  // apply_rope_at agrees with apply_rope (rope_table) at the same positions.
  at::Tensor x = randn({6, 2, 128}, 9);
  at::Tensor all = apply_rope(x.transpose(0, 1), attention_rope_params(p.cfg, LayerKind::CSA), 1 << 20);
  at::Tensor at_pos = apply_rope_at(x, {0, 1, 2, 3, 4, 5}, attention_rope_params(p.cfg, LayerKind::CSA), 1 << 20);
  EXPECT_TRUE(at::equal(all.transpose(0, 1), at_pos));
}

TEST(V4Queries, RandomWeightsAreSeededAndDistinctFromTheWritePath) {
  V4Config c = small_cfg();
  V4AttentionConfig a = small_acfg();
  V4QueryWeights w1 = random_query_weights(c, a, 7), w2 = random_query_weights(c, a, 7),
                 w3 = random_query_weights(c, a, 8);
  EXPECT_TRUE(at::equal(w1.wq_a, w2.wq_a) && at::equal(w1.wq_b, w2.wq_b) && at::equal(w1.attn_sink, w2.attn_sink));
  EXPECT_FALSE(at::equal(w1.wq_a, w3.wq_a));
  EXPECT_TRUE(at::equal(w1.wq_a, w1.wq_a.to(at::kBFloat16).to(at::kFloat)));
  EXPECT_TRUE(at::equal(w1.q_norm, at::ones({64})));
  V4Weights kv = random_weights(c, 7);
  EXPECT_FALSE(at::equal(w1.wq_a.narrow(0, 0, 64), kv.wkv.narrow(0, 0, 64)));
  EXPECT_NEAR(w1.wq_a.std().item<double>(), 1 / 16.0, 0.003);
  EXPECT_NEAR(w1.wq_b.std().item<double>(), 1 / 8.0, 0.005);
}

TEST(V4Queries, LoadFromCheckpoint) {
  V4Config c = small_cfg();
  V4AttentionConfig a = small_acfg();
  V4QueryWeights r = random_query_weights(c, a, 1);
  auto dir = kvlab::testutil::make_temp_dir("model_attn_ckpt");
  auto write = [&](bool with_sink) {
    kvlab::io::SafetensorsWriter w;
    std::vector<uint8_t> q(64 * 256, 0x38);  // E4M3 1.0
    w.add("layers.1.attn.wq_a.weight", kvlab::io::DType::F8_E4M3, {64, 256}, q.data(), q.size());
    std::vector<uint8_t> s = {126, 128};  // E8M0 scales 0.5 and 2 for the two 128-column tiles
    w.add("layers.1.attn.wq_a.scale", kvlab::io::DType::U8, {1, 2}, s.data(), s.size());
    auto f32 = [&](const std::string& n, const at::Tensor& t) {
      at::Tensor cc = t.contiguous();
      w.add_f32(n, std::vector<int64_t>(cc.sizes().begin(), cc.sizes().end()), cc.data_ptr<float>());
    };
    f32("model.layers.1.attn.q_norm.weight", r.q_norm * 0.5);
    f32("layers.1.attn.wq_b.weight", r.wq_b);
    if (with_sink) f32("layers.1.attn.attn_sink", r.attn_sink);
    w.write(dir + "/q.safetensors");
  };
  write(true);
  V4QueryWeights w = load_query_weights(dir + "/q.safetensors", c, a, 1);
  at::Tensor want_a = at::cat({at::full({64, 128}, 0.5f), at::full({64, 128}, 2.0f)}, 1);
  EXPECT_TRUE(at::equal(w.wq_a, want_a));
  EXPECT_TRUE(at::equal(w.q_norm, r.q_norm * 0.5));
  EXPECT_TRUE(at::equal(w.wq_b, r.wq_b));
  EXPECT_TRUE(at::equal(w.attn_sink, r.attn_sink));
  expect_contains(error_of([&] { load_query_weights(dir + "/q.safetensors", c, a, 2); }), "layers.2.attn.wq_a.weight");
  write(false);
  expect_contains(error_of([&] { load_query_weights(dir + "/q.safetensors", c, a, 1); }), "layers.1.attn.attn_sink");
  V4AttentionConfig a8 = a;
  a8.n_heads = 8;
  expect_contains(error_of([&] { load_query_weights(dir + "/q.safetensors", c, a8, 1); }), "expected [1024, 64]");
}

TEST(V4Queries, BadInput) {
  Passage p = make_passage();
  expect_contains(error_of([&] { v4_queries(p.cfg, p.acfg, p.qw, LayerKind::SWA, p.hidden, {256}); }),
                  "positions[0] = 256");
  expect_contains(error_of([&] { v4_queries(p.cfg, p.acfg, p.qw, LayerKind::SWA, p.hidden.narrow(1, 0, 100), {0}); }),
                  "[S, 256]");
  at::Tensor h = p.hidden.clone();
  h[7][3] = std::nan("");
  expect_contains(error_of([&] { v4_queries(p.cfg, p.acfg, p.qw, LayerKind::SWA, h, {7}); }), "token 7, channel 3");
  EXPECT_NO_THROW(v4_queries(p.cfg, p.acfg, p.qw, LayerKind::SWA, h, {6}));  // only the sampled tokens are read
  V4QueryWeights w = p.qw;
  w.wq_b = w.wq_b.narrow(0, 0, 256);
  expect_contains(error_of([&] { v4_queries(p.cfg, p.acfg, w, LayerKind::SWA, p.hidden, {0}); }),
                  "wq_b has shape [256, 64], expected [512, 64]");
  w = p.qw;
  w.attn_sink = w.attn_sink.clone();
  w.attn_sink[2] = kInf;
  expect_contains(error_of([&] { v4_queries(p.cfg, p.acfg, w, LayerKind::SWA, p.hidden, {0}); }), "attn_sink");
  nlohmann::json j = {{"num_attention_heads", 0}};
  expect_contains(error_of([&] { V4AttentionConfig::from_json(j, "cfg.json"); }), "n_heads must be > 0");
  j = {{"q_lora_rank", "big"}};
  expect_contains(error_of([&] { V4AttentionConfig::from_json(j, "cfg.json"); }), "'q_lora_rank' must be an integer");
  j = {{"num_attention_heads", 64}, {"q_lora_rank", 1024}, {"sliding_window", 128}, {"hidden_size", 4096}};
  V4AttentionConfig f = V4AttentionConfig::from_json(j);
  EXPECT_EQ(f.n_heads, 64);
  EXPECT_EQ(f.window, 128);
}

// ------------------------------------------------------------------ sampling

// u = R(t)^-1 k on the last rope dims of each row t (double loops).
at::Tensor unrotate_loops(const at::Tensor& k, const RopeParams& p, int64_t seqlen) {
  at::Tensor out = k.to(at::kDouble).clone();
  const std::vector<float> f = rope_inv_freqs(p, seqlen);
  const int64_t D = k.size(1);
  for (int64_t t = 0; t < k.size(0); ++t)
    for (int64_t i = 0; i < p.dim / 2; ++i) {
      const double ang = static_cast<float>(t) * f[static_cast<std::size_t>(i)];
      const double a = out[t][D - p.dim + 2 * i].item<double>(), b = out[t][D - p.dim + 2 * i + 1].item<double>();
      out[t][D - p.dim + 2 * i] = a * std::cos(ang) + b * std::sin(ang);
      out[t][D - p.dim + 2 * i + 1] = -a * std::sin(ang) + b * std::cos(ang);
    }
  return out;
}

TEST(LayerAttentionInputs, QueriesAndKeysShareTheLayerKindsRope) {
  Passage p = make_passage();
  const at::Tensor& swa = p.streams.at(kStreamSWA);
  for (WritePath mode : {WritePath::kPublished, WritePath::kV4}) {
    p.cfg.write_path = mode;
    V4AttentionConfig a = p.acfg;
    a.yarn_always = mode == WritePath::kV4;  // what the builder must use, whatever acfg says
    V4AttentionConfig other = p.acfg;
    other.yarn_always = mode != WritePath::kV4;
    // SWA: the window is the stream itself, queries with the SWA RoPE.
    AttentionInputs in = layer_attention_inputs(p.cfg, other, p.qw, LayerKind::SWA, CodedPart::kWindow, p.hidden,
                                                swa, at::Tensor(), 20, 7);
    EXPECT_EQ(in.positions, sample_query_positions(256, 20, 7, 0));
    EXPECT_TRUE(at::equal(in.queries, v4_queries(p.cfg, a, p.qw, LayerKind::SWA, p.hidden, in.positions)));
    EXPECT_TRUE(at::equal(in.window_kv, swa.to(at::kFloat)));
    EXPECT_FALSE(in.compressed_kv.defined());
    EXPECT_EQ(in.coded, CodedPart::kWindow);
    EXPECT_EQ(in.index_topk, 0);
    EXPECT_TRUE(at::equal(in.sink, p.qw.attn_sink));
    // CSA: compressed KV coded, queries with the CSA RoPE (YaRN by mode), and
    // the window KV moved from the main RoPE to the CSA one.
    in = layer_attention_inputs(p.cfg, other, p.qw, LayerKind::CSA, CodedPart::kCompressed, p.hidden, swa,
                                p.streams.at(kStreamCSA), 20, 7);
    EXPECT_EQ(in.positions, sample_query_positions(256, 20, 7, 3));
    EXPECT_TRUE(at::equal(in.queries, v4_queries(p.cfg, a, p.qw, LayerKind::CSA, p.hidden, in.positions)));
    EXPECT_FALSE(at::equal(in.queries, v4_queries(p.cfg, other, p.qw, LayerKind::CSA, p.hidden, in.positions)));
    EXPECT_TRUE(at::equal(in.compressed_kv, p.streams.at(kStreamCSA).to(at::kFloat)));
    EXPECT_EQ(in.ratio, 4);
    EXPECT_EQ(in.index_topk, p.acfg.index_topk);
    EXPECT_TRUE(at::equal(in.window_kv.narrow(1, 0, 64), swa.to(at::kFloat).narrow(1, 0, 64)));  // nope dims
    const at::Tensor u_ref = unrotate_loops(swa.to(at::kFloat), attention_rope_params(p.cfg, LayerKind::SWA), 256);
    const at::Tensor u = unrotate_loops(in.window_kv, attention_rope_params(p.cfg, LayerKind::CSA),
                                        attention_rope_seqlen(p.cfg, a, LayerKind::CSA, 256));
    // Two bf16 roundings of the rope pairs (the stream's, the builder's).
    const double scale = swa.to(at::kFloat).narrow(1, 64, 64).abs().max().item<double>();
    EXPECT_LT((u - u_ref).abs().max().item<double>(), scale / 128);
    EXPECT_TRUE(at::equal(in.window_kv, in.window_kv.to(at::kBFloat16).to(at::kFloat)));  // bf16 values
    // Planted: the stream's own (main) RoPE is far from the CSA one.
    EXPECT_GT((in.window_kv - swa.to(at::kFloat)).abs().max().item<double>(), 0.3);
    // HCA: dense, every query sees an entry.
    in = layer_attention_inputs(p.cfg, p.acfg, p.qw, LayerKind::HCA, CodedPart::kCompressed, p.hidden, swa,
                                p.streams.at(kStreamHCA), 0, 0);
    EXPECT_EQ(in.positions.front(), 127);
    EXPECT_EQ(in.positions.size(), 129u);
    EXPECT_EQ(in.index_topk, 0);
    EXPECT_EQ(in.ratio, 128);
  }
  // Bad input.
  expect_contains(error_of([&] {
                    layer_attention_inputs(p.cfg, p.acfg, p.qw, LayerKind::SWA, CodedPart::kCompressed, p.hidden, swa,
                                           at::Tensor(), 4, 0);
                  }),
                  "sliding-window layer has no compressed KV");
  std::string e = error_of([&] {
    layer_attention_inputs(p.cfg, p.acfg, p.qw, LayerKind::SWA, CodedPart::kWindow, p.hidden, swa.narrow(0, 0, 128),
                           at::Tensor(), 4, 0);
  });
  expect_contains(e, "window_kv must be [256, 128]");
  expect_contains(e, "[128, 128]");
  e = error_of([&] {
    layer_attention_inputs(p.cfg, p.acfg, p.qw, LayerKind::HCA, CodedPart::kCompressed, p.hidden, swa,
                           p.streams.at(kStreamCSA), 4, 0);
  });
  expect_contains(e, "hca layer's compressed_kv must be [2, 128]");
  expect_contains(e, "[64, 128]");
}

TEST(AttentionSampling, SeededSortedDistinct) {
  auto a = sample_query_positions(2048, 256, 5), b = sample_query_positions(2048, 256, 5),
       c = sample_query_positions(2048, 256, 6);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  ASSERT_EQ(a.size(), 256u);
  for (std::size_t i = 1; i < a.size(); ++i) EXPECT_LT(a[i - 1], a[i]);
  EXPECT_GE(a.front(), 0);
  EXPECT_LT(a.back(), 2048);
  auto d = sample_query_positions(2048, 100, 1, 127);
  EXPECT_GE(d.front(), 127);
  EXPECT_EQ(sample_query_positions(300, 0, 1, 3).size(), 297u);
  EXPECT_EQ(sample_query_positions(300, 5000, 1).size(), 300u);
  EXPECT_EQ(first_position_seeing(CodedPart::kCompressed, 128), 127);
  EXPECT_EQ(first_position_seeing(CodedPart::kWindow, 128), 0);
  EXPECT_EQ(parse_coded_part("compressed"), CodedPart::kCompressed);
  expect_contains(error_of([] { parse_coded_part("both"); }), "'both'");
}

// ------------------------------------------------------------------ probe vs oracle

TEST(AttentionProbe, ParityWithPlainLoopsAndPlantedMismatchIsCaught) {
  Passage p = make_passage();
  struct Case {
    LayerKind kind;
    CodedPart coded;
    int64_t nq;  // 0: all eligible positions
    AttentionProbeOptions opt;
  };
  const std::vector<Case> cases = {
      {LayerKind::SWA, CodedPart::kWindow, 0, {}},
      {LayerKind::SWA, CodedPart::kWindow, 60, {7, 3}},
      {LayerKind::CSA, CodedPart::kCompressed, 0, {}},
      {LayerKind::CSA, CodedPart::kCompressed, 60, {1, 1}},
      {LayerKind::CSA, CodedPart::kWindow, 60, {300, 64}},
      {LayerKind::HCA, CodedPart::kCompressed, 0, {}},
      {LayerKind::HCA, CodedPart::kWindow, 40, {}},
  };
  for (const Case& cs : cases) {
    SCOPED_TRACE(fmt::format("{} coded {} nq {} block {}", layer_kind_name(cs.kind), coded_part_name(cs.coded), cs.nq,
                             cs.opt.block_positions));
    const int64_t ratio = cs.kind == LayerKind::CSA ? 4 : cs.kind == LayerKind::HCA ? 128 : 0;
    auto pos = sample_query_positions(256, cs.nq, 11, first_position_seeing(cs.coded, ratio));
    AttentionInputs in = make_inputs(p, cs.kind, cs.coded, pos);
    AttentionProbe probe(in, cs.opt);
    const at::Tensor ref = coded_ref(in);
    // Identity: exactly zero.
    EXPECT_TRUE(all_zero(probe.score(ref)));
    EXPECT_TRUE(at::equal(probe.outputs(ref), probe.reference_outputs()));
    for (double noise : {0.01, 0.2, 3.0}) {
      at::Tensor dec = ref.to(at::kFloat) + randn({ref.size(0), ref.size(1)}, 21, noise);
      AttentionMetrics m = probe.score(dec);
      at::Tensor o_ref, o_cod;
      AttentionMetrics r = attention_metrics_ref(in, dec, &o_ref, &o_cod);
      std::string why;
      EXPECT_TRUE(parity(m, r, probe.outputs(dec), o_cod, &why)) << "noise " << noise << ": " << why;
      EXPECT_TRUE(at::allclose(probe.reference_outputs().to(at::kDouble), o_ref, 1e-5, 1e-6));
      EXPECT_GT(m.kl_mean, 0);
      EXPECT_GE(m.kl_p99, m.kl_mean * 0.5);
      EXPECT_GE(m.kl_max, m.kl_p99);
      EXPECT_EQ(m.queries, static_cast<int64_t>(pos.size()));
      EXPECT_EQ(m.heads, 4);
      // Planted mismatch: the oracle with a window one token shorter.
      if (noise == 0.2) {
        AttentionInputs bad = in;
        bad.window = 127;
        at::Tensor ob;
        AttentionMetrics rb = attention_metrics_ref(bad, dec, nullptr, &ob);
        std::string why_bad;
        EXPECT_FALSE(parity(m, rb, probe.outputs(dec), ob, &why_bad));
      }
    }
  }
}

// ------------------------------------------------------------------ hand cases

TEST(AttentionProbe, OnePerturbedKeyGivesTheAnalyticLogitError) {
  const int64_t S = 8, H = 2, D = 16;
  AttentionInputs in;
  for (int64_t t = 0; t < S; ++t) in.positions.push_back(t);
  in.queries = grid({S, H, D}, 1);
  in.window_kv = grid({S, D}, 2);
  in.sink = at::tensor(std::vector<float>{0.5f, -1.0f});
  const int64_t star = 3;
  at::Tensor e = grid({D}, 3);
  at::Tensor dec = in.window_kv.clone();
  dec[star] += e;
  ASSERT_TRUE(at::equal(dec, dec.to(at::kBFloat16).to(at::kFloat)));
  AttentionProbe probe(in);
  AttentionMetrics m = probe.score(dec);
  // By hand: error tau <q_{t,h}, e> for t >= star; variance over all (t, h, s <= t).
  const double tau = 0.25;
  double sq = 0, sum = 0, sum2 = 0;
  int64_t n = 0;
  for (int64_t t = 0; t < S; ++t)
    for (int64_t h = 0; h < H; ++h) {
      if (t >= star) {
        const double err = tau * (in.queries[t][h] * e).sum().item<double>();
        sq += err * err;
      }
      for (int64_t s = 0; s <= t; ++s) {
        const double l = tau * (in.queries[t][h] * in.window_kv[s]).sum().item<double>();
        sum += l;
        sum2 += l * l;
        ++n;
      }
    }
  const double var = sum2 / n - (sum / n) * (sum / n);
  EXPECT_EQ(m.visible, 36);
  EXPECT_EQ(m.visible_coded, 36);
  EXPECT_NEAR(m.logit_rel_mse, sq / n / var, 1e-12 * sq / n / var);
  EXPECT_EQ(m.logit_rel_mse_coded, m.logit_rel_mse);
  EXPECT_GT(m.kl_mean, 0);
  // Perturbing a key no query sees... every key is seen by the last query;
  // perturbing only the last key changes only the last query.
  at::Tensor dec2 = in.window_kv.clone();
  dec2[S - 1] += e;
  at::Tensor o = probe.outputs(dec2);
  EXPECT_TRUE(at::equal(o.narrow(0, 0, S - 1), probe.reference_outputs().narrow(0, 0, S - 1)));
  EXPECT_FALSE(at::equal(o[S - 1], probe.reference_outputs()[S - 1]));
}

TEST(AttentionProbe, SinkIsInTheDenominatorAndTheKl) {
  // One head, D = 4 (tau = 1/2), keys 2 e_0 (s = 0) and 2 e_1 (s = 1), the
  // query at t = 1 is (1, 1/2, 0, 0): logits 1 and 1/2; o = 2 (p_0, p_1, 0, 0).
  AttentionInputs in;
  in.positions = {1};
  in.queries = at::tensor(std::vector<float>{1, 0.5f, 0, 0}).view({1, 1, 4});
  in.window_kv = at::tensor(std::vector<float>{2, 0, 0, 0, 0, 2, 0, 0}).view({2, 4});
  at::Tensor dec = at::tensor(std::vector<float>{3, 0, 0, 0, 0, 2, 0, 0}).view({2, 4});  // logit 1 -> 1.5
  const double a = 0.25, e1 = std::exp(1.0), eh = std::exp(0.5), ea = std::exp(a), e15 = std::exp(1.5);
  for (bool sink : {true, false}) {
    SCOPED_TRACE(sink ? "sink" : "no sink");
    in.sink = at::tensor(std::vector<float>{sink ? static_cast<float>(a) : -std::numeric_limits<float>::infinity()});
    AttentionProbe probe(in);
    const double zr = (sink ? ea : 0) + e1 + eh, zc = (sink ? ea : 0) + e15 + eh;
    const at::Tensor o = probe.reference_outputs();
    EXPECT_NEAR(o[0][0][0].item<double>(), 2 * e1 / zr, 1e-6);
    EXPECT_NEAR(o[0][0][1].item<double>(), 2 * eh / zr, 1e-6);
    double kl = e1 / zr * std::log((e1 / zr) / (e15 / zc)) + eh / zr * std::log((eh / zr) / (eh / zc));
    if (sink) kl += ea / zr * std::log((ea / zr) / (ea / zc));
    AttentionMetrics m = probe.score(dec);
    EXPECT_NEAR(m.kl_mean, kl, 1e-6 * kl);
    EXPECT_EQ(m.kl_max, m.kl_mean);
    // Logits {1, 1/2} -> variance 1/16; one error of 1/2 over 2 entries.
    EXPECT_NEAR(m.logit_rel_mse, 0.25 / 2 / 0.0625, 1e-9);
    const double c0 = 3 * e15 / zc, c1 = 2 * eh / zc, r0 = 2 * e1 / zr, r1 = 2 * eh / zr;
    EXPECT_NEAR(m.attn_out_rel, ((c0 - r0) * (c0 - r0) + (c1 - r1) * (c1 - r1)) / (r0 * r0 + r1 * r1), 1e-6);
    at::Tensor o_ref;
    attention_metrics_ref(in, dec, &o_ref);
    EXPECT_NEAR(o_ref[0][0][0].item<double>(), 2 * e1 / zr, 1e-12);
  }
  // Removing the sink scales every probability by Z_sink / Z_nosink.
  in.sink = at::tensor(std::vector<float>{static_cast<float>(a)});
  at::Tensor with = AttentionProbe(in).reference_outputs();
  in.sink = at::tensor(std::vector<float>{-std::numeric_limits<float>::infinity()});
  at::Tensor without = AttentionProbe(in).reference_outputs();
  EXPECT_NEAR((with[0][0][0] / without[0][0][0]).item<double>(), (e1 + eh) / (ea + e1 + eh), 1e-6);
}

// ------------------------------------------------------------------ masks

TEST(AttentionProbe, MasksAtTheirEdges) {
  const int64_t S = 512, H = 2, D = 16;
  at::Tensor kw = randn({S, D}, 4), kc4 = randn({S / 4, D}, 5), kc128 = randn({S / 128, D}, 6);
  const float huge = 1e30f;
  auto inputs = [&](std::vector<int64_t> pos, CodedPart coded, int64_t m) {
    AttentionInputs in;
    in.positions = pos;
    in.queries = randn({static_cast<int64_t>(pos.size()), H, D}, 7) * 3;
    in.window_kv = kw;
    if (m > 0) {
      in.compressed_kv = m == 4 ? kc4 : kc128;
      in.ratio = m;
    }
    in.sink = at::zeros({H});
    in.coded = coded;
    return in;
  };
  auto planted = [&](const at::Tensor& k, int64_t row) {
    at::Tensor d = k.clone();
    d[row].fill_(huge);
    return d;
  };
  // Window: the query at t sees t - 127 .. t. Several queries per block, so
  // the planted rows lie inside the block's key range.
  for (int64_t t : {200, 300}) {
    AttentionProbe probe(inputs({t - 140, t - 5, t}, CodedPart::kWindow, 0));
    for (int64_t row : {t + 1, t - 128}) {  // invisible to the query at t
      at::Tensor o = probe.outputs(planted(kw, row));
      EXPECT_TRUE(at::equal(o[2], probe.reference_outputs()[2])) << "t " << t << " row " << row;
    }
    for (int64_t row : {t, t - 127}) {  // visible
      at::Tensor o = probe.outputs(planted(kw, row));
      EXPECT_FALSE(at::equal(o[2], probe.reference_outputs()[2])) << "t " << t << " row " << row;
    }
    AttentionProbe alone(inputs({t}, CodedPart::kWindow, 0));
    EXPECT_TRUE(all_zero(alone.score(planted(kw, t + 1))));
    EXPECT_GT(alone.score(planted(kw, t)).kl_mean, 0);
  }
  // Compressed entry j is visible iff j < floor((t + 1) / m), i.e. its last
  // source token (j + 1) m - 1 <= t.
  for (int64_t m : {4, 128}) {
    const at::Tensor& kc = m == 4 ? kc4 : kc128;
    for (int64_t t : {2 * m - 1, 2 * m - 2, 3 * m}) {
      const int64_t first_hidden = (t + 1) / m;  // entries >= this are not visible
      AttentionProbe probe(inputs({t - 3, t}, CodedPart::kCompressed, m));
      if (first_hidden < kc.size(0)) {
        at::Tensor o = probe.outputs(planted(kc, first_hidden));
        EXPECT_TRUE(at::equal(o, probe.reference_outputs())) << "m " << m << " t " << t;
        // The probe's own block covers entry first_hidden only when a later query needs it;
        // the score must be exactly zero either way.
        EXPECT_TRUE(all_zero(probe.score(planted(kc, first_hidden)))) << "m " << m << " t " << t;
      }
      at::Tensor o = probe.outputs(planted(kc, first_hidden - 1));
      EXPECT_FALSE(at::equal(o[1], probe.reference_outputs()[1])) << "m " << m << " t " << t;
    }
    // Planted in the uncoded part: the reference of an earlier query in the
    // block (which does not see it) is unchanged. Window coded, compressed
    // entry j = 2 is seen by t = 3m - 1 but not by t = 3m - 2.
    AttentionInputs a = inputs({3 * m - 2, 3 * m - 1}, CodedPart::kWindow, m);
    AttentionProbe base(a);
    a.compressed_kv = planted(kc, 2).clamp(-1e4, 1e4);  // a large but finite reference value
    AttentionProbe moved(a);
    EXPECT_TRUE(at::equal(moved.reference_outputs()[0], base.reference_outputs()[0])) << "m " << m;
    EXPECT_FALSE(at::equal(moved.reference_outputs()[1], base.reference_outputs()[1])) << "m " << m;
  }
  // Uncoded window with a planted future token (compressed coded).
  AttentionInputs a = inputs({250, 255}, CodedPart::kCompressed, 4);
  AttentionProbe base(a);
  a.window_kv = planted(kw, 251).clamp(-1e4, 1e4);
  AttentionProbe moved(a);
  EXPECT_TRUE(at::equal(moved.reference_outputs()[0], base.reference_outputs()[0]));
  EXPECT_FALSE(at::equal(moved.reference_outputs()[1], base.reference_outputs()[1]));
}

TEST(AttentionProbe, LargeChangesStayFiniteAndMatchTheOracle) {
  const int64_t S = 64, H = 2, D = 16;
  AttentionInputs in;
  for (int64_t t = 0; t < S; t += 3) in.positions.push_back(t);
  in.queries = randn({static_cast<int64_t>(in.positions.size()), H, D}, 1) * 2;
  in.window_kv = randn({S, D}, 2) * 2;
  in.compressed_kv = randn({S / 4, D}, 3) * 2;
  in.ratio = 4;
  in.sink = at::tensor(std::vector<float>{1.0f, -2.0f});
  in.coded = CodedPart::kCompressed;
  AttentionProbe probe(in);
  at::Tensor dec = in.compressed_kv * -20;  // logits move by tens
  AttentionMetrics m = probe.score(dec);
  at::Tensor oc;
  AttentionMetrics r = attention_metrics_ref(in, dec, nullptr, &oc);
  std::string why;
  EXPECT_TRUE(parity(m, r, probe.outputs(dec), oc, &why)) << why;
  EXPECT_TRUE(std::isfinite(m.kl_max) && m.kl_max > 1);
}

// ------------------------------------------------------------------ bad input

TEST(AttentionProbe, BadInput) {
  Passage p = make_passage();
  AttentionInputs good = make_inputs(p, LayerKind::CSA, CodedPart::kCompressed, {10, 20, 255});
  auto err = [&](auto&& mutate) {
    AttentionInputs in = good;
    mutate(in);
    return error_of([&] { AttentionProbe probe(in); });
  };
  expect_contains(err([](AttentionInputs& in) { in.queries = in.queries[0]; }), "queries must be [N, heads, head_dim]");
  expect_contains(err([](AttentionInputs& in) { in.positions = {10, 20}; }), "2 positions given for 3 queries");
  expect_contains(err([](AttentionInputs& in) { in.positions = {20, 10, 255}; }), "strictly ascending");
  expect_contains(err([](AttentionInputs& in) { in.positions = {10, 20, 256}; }), "positions[2] = 256");
  expect_contains(err([](AttentionInputs& in) { in.window_kv = in.window_kv.narrow(1, 0, 64); }),
                  "window_kv must be [S, 128]");
  expect_contains(err([](AttentionInputs& in) { in.compressed_kv = at::Tensor(); }), "compressed_kv is missing");
  expect_contains(err([](AttentionInputs& in) { in.compressed_kv = in.compressed_kv.narrow(0, 0, 10); }),
                  "compressed_kv has 10 entries");
  expect_contains(err([](AttentionInputs& in) { in.ratio = 0; }), "ratio 0");
  expect_contains(err([](AttentionInputs& in) { in.sink = at::zeros({3}); }), "sink must be [4]");
  expect_contains(err([](AttentionInputs& in) {
                    in.sink = in.sink.clone();
                    in.sink[1] = std::nan("");
                  }),
                  "sink[1] = nan");
  expect_contains(err([](AttentionInputs& in) {
                    in.window_kv = in.window_kv.to(at::kFloat).clone();
                    in.window_kv[17][5] = kInf;
                  }),
                  "window_kv has a non-finite value inf at flat index 2181 (row 17)");
  expect_contains(err([](AttentionInputs& in) {
                    in.queries = in.queries.clone();
                    in.queries[1][2][3] = std::nan("");
                  }),
                  "queries has a non-finite value");
  expect_contains(err([](AttentionInputs& in) { in.window = 0; }), "window must be >= 1");
  expect_contains(err([](AttentionInputs& in) { in.tau = -1; }), "tau = -1");
  // CSA beyond the indexer's top-k.
  expect_contains(err([](AttentionInputs& in) { in.index_topk = 60; }),
                  "sees 64 compressed entries, more than index_topk = 60");
  // Decoded KV.
  AttentionProbe probe(good);
  expect_contains(error_of([&] { probe.score(p.streams.at(kStreamSWA)); }),
                  "decoded compressed KV has shape [256, 128], expected [64, 128]");
  at::Tensor dec = p.streams.at(kStreamCSA).to(at::kFloat).clone();
  dec[9][100] = std::nan("");
  expect_contains(error_of([&] { probe.score(dec); }), "non-finite value nan at row 9, dim 100");
  expect_contains(error_of([&] { probe.score(dec.to(at::kInt)); }), "dtype Int");
}
