// The V4 attention read path: query weights and queries, the attention
// probe and its plain-loop oracles. See v4_attention.h.
#include "model/v4_attention.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <random>

#include "common/error.h"
#include "model/checkpoint.h"
#include "model/ops.h"

namespace kvlab::model {

namespace {

using json = nlohmann::json;
constexpr double kInf = std::numeric_limits<double>::infinity();

std::string shape_of(const at::Tensor& t) { return t.defined() ? c10::str(t.sizes()) : std::string("(missing)"); }

// Flat index of the first NaN/Inf of t, or -1.
int64_t first_nonfinite(const at::Tensor& t) {
  at::Tensor f = t.to(at::kCPU).to(at::kFloat);
  // A finite float32 sum proves every element finite (no double copy); only
  // a non-finite sum (or an overflow of it) needs the element-wise pass.
  if (std::isfinite(f.sum().item<float>())) return -1;
  at::Tensor bad = at::logical_not(at::isfinite(f)).flatten();
  if (!bad.any().item<bool>()) return -1;
  return bad.nonzero().select(1, 0)[0].item<int64_t>();
}

float flat_value(const at::Tensor& t, int64_t idx) { return t.to(at::kCPU).to(at::kFloat).flatten()[idx].item<float>(); }

// A float tensor of the given shape with finite values; `what` names it.
void check_input(const at::Tensor& t, const std::string& what, const std::vector<int64_t>& want) {
  KVLAB_CHECK(t.defined(), "attention: {} is missing (expected shape {})", what, c10::str(at::IntArrayRef(want)));
  KVLAB_CHECK(t.sizes() == at::IntArrayRef(want), "attention: {} has shape {}, expected {}", what, shape_of(t),
              c10::str(at::IntArrayRef(want)));
  KVLAB_CHECK(t.is_floating_point(), "attention: {} has dtype {}, expected a floating-point type", what,
              c10::toString(t.scalar_type()));
  if (const int64_t i = first_nonfinite(t); i >= 0) {
    const int64_t row = t.dim() >= 2 ? i / (t.numel() / t.size(0)) : i;
    throw Error(fmt::format("attention: {} has a non-finite value {} at flat index {} (row {})", what,
                            flat_value(t, i), i, row));
  }
}

at::Tensor bf16_values(const at::Tensor& t) { return t.to(at::kCPU).to(at::kFloat).to(at::kBFloat16).to(at::kFloat).contiguous(); }

float bf16_round(float v) { return static_cast<float>(c10::BFloat16(v)); }

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

void check_weight(const at::Tensor& t, const char* name, std::vector<int64_t> want) {
  KVLAB_CHECK(t.defined(), "query weights: tensor {} is missing (expected shape {})", name,
              c10::str(at::IntArrayRef(want)));
  KVLAB_CHECK(t.sizes() == at::IntArrayRef(want), "query weights: tensor {} has shape {}, expected {}", name,
              shape_of(t), c10::str(at::IntArrayRef(want)));
  KVLAB_CHECK(t.is_floating_point(), "query weights: tensor {} has dtype {}, expected a floating-point type", name,
              c10::toString(t.scalar_type()));
  if (const int64_t i = first_nonfinite(t); i >= 0)
    throw Error(fmt::format("query weights: tensor {} has a non-finite value {} at flat index {}", name,
                            flat_value(t, i), i));
}

int64_t get_int(const json& j, const std::string& where, const char* key, int64_t dflt) {
  if (!j.contains(key) || j[key].is_null()) return dflt;
  const json& v = j[key];
  KVLAB_CHECK(v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() &&
                                        std::fabs(v.get<double>()) < 9.0e15),
              "{}: '{}' must be an integer, got {}", where, key, v.dump());
  return v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(v.get<double>());
}

}  // namespace

// ---------------------------------------------------------------- config

V4AttentionConfig V4AttentionConfig::from_json(const json& j, const std::string& where) {
  KVLAB_CHECK(j.is_object(), "{}: config must be a JSON object", where);
  V4AttentionConfig c;
  c.n_heads = get_int(j, where, "n_heads", c.n_heads);
  c.n_heads = get_int(j, where, "num_attention_heads", c.n_heads);
  c.q_lora_rank = get_int(j, where, "q_lora_rank", c.q_lora_rank);
  c.window = get_int(j, where, "window_size", c.window);
  c.window = get_int(j, where, "sliding_window", c.window);
  c.index_topk = get_int(j, where, "index_topk", c.index_topk);
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", where, e.what()));
  }
  return c;
}

V4AttentionConfig V4AttentionConfig::from_json_file(const std::string& path) {
  return from_json(read_json_file(path), path);
}

void V4AttentionConfig::validate() const {
  KVLAB_CHECK(n_heads > 0, "n_heads must be > 0, got {}", n_heads);
  KVLAB_CHECK(q_lora_rank > 0, "q_lora_rank must be > 0, got {}", q_lora_rank);
  KVLAB_CHECK(window > 0, "window (sliding_window) must be > 0, got {}", window);
  KVLAB_CHECK(index_topk >= 0, "index_topk must be >= 0, got {}", index_topk);
}

RopeParams attention_rope_params(const V4Config& cfg, LayerKind kind) {
  if (kind == LayerKind::SWA)
    return RopeParams{cfg.qk_rope_head_dim, cfg.rope_theta_main, 0, cfg.rope_factor, cfg.beta_fast, cfg.beta_slow};
  return RopeParams{cfg.qk_rope_head_dim, cfg.rope_theta_compress, cfg.original_seq_len, cfg.rope_factor,
                    cfg.beta_fast, cfg.beta_slow};
}

int64_t attention_rope_seqlen(const V4Config& cfg, const V4AttentionConfig& acfg, LayerKind kind, int64_t S) {
  if (kind != LayerKind::SWA && acfg.yarn_always && cfg.original_seq_len > 0)
    return std::max(S, cfg.original_seq_len + 1);
  return S;
}

at::Tensor apply_rope_at(const at::Tensor& x, const std::vector<int64_t>& positions, const RopeParams& p,
                         int64_t seqlen) {
  KVLAB_CHECK(x.dim() >= 2 && x.size(0) == static_cast<int64_t>(positions.size()),
              "apply_rope_at: expected x [N, ..., D] with N = {} positions, got {}", positions.size(), shape_of(x));
  const int64_t D = x.size(-1), N = x.size(0);
  KVLAB_CHECK(p.dim > 0 && p.dim % 2 == 0 && p.dim <= D, "apply_rope_at: rope dim {} must be even and <= D = {}",
              p.dim, D);
  const std::vector<float> f = rope_inv_freqs(p, seqlen);
  const int64_t half = static_cast<int64_t>(f.size());
  at::Tensor c = at::empty({N, half}, at::TensorOptions().dtype(at::kFloat));
  at::Tensor s = at::empty({N, half}, at::TensorOptions().dtype(at::kFloat));
  float* cp = c.data_ptr<float>();
  float* sp = s.data_ptr<float>();
  for (int64_t k = 0; k < N; ++k) {
    KVLAB_CHECK(positions[static_cast<std::size_t>(k)] >= 0, "apply_rope_at: position {} < 0",
                positions[static_cast<std::size_t>(k)]);
    const float pos = static_cast<float>(positions[static_cast<std::size_t>(k)]);
    for (int64_t i = 0; i < half; ++i) {
      const float angle = pos * f[static_cast<std::size_t>(i)];  // fl32(t * f_i), as rope_table
      cp[k * half + i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      sp[k * half + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }
  std::vector<int64_t> bshape(static_cast<std::size_t>(x.dim()), 1);
  bshape[0] = N;
  bshape.back() = half;
  c = c.view(bshape).to(x.device());
  s = s.view(bshape).to(x.device());
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor nope = xf.narrow(-1, 0, D - p.dim);
  std::vector<int64_t> pair_shape(xf.sizes().begin(), xf.sizes().end());
  pair_shape.back() = half;
  pair_shape.push_back(2);
  at::Tensor pr = xf.narrow(-1, D - p.dim, p.dim).contiguous().view(pair_shape);
  at::Tensor a = pr.select(-1, 0), b = pr.select(-1, 1);
  at::Tensor rotated = at::stack({a * c - b * s, a * s + b * c}, -1).flatten(-2);
  return at::cat({nope, rotated}, -1);
}

// ---------------------------------------------------------------- query weights

void V4QueryWeights::validate(const V4Config& cfg, const V4AttentionConfig& acfg) const {
  check_weight(wq_a, "wq_a", {acfg.q_lora_rank, cfg.hidden_size});
  check_weight(q_norm, "q_norm", {acfg.q_lora_rank});
  check_weight(wq_b, "wq_b", {acfg.n_heads * cfg.head_dim, acfg.q_lora_rank});
  check_weight(attn_sink, "attn_sink", {acfg.n_heads});
}

V4QueryWeights random_query_weights(const V4Config& cfg, const V4AttentionConfig& acfg, uint64_t seed) {
  cfg.validate();
  acfg.validate();
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(splitmix64(seed ^ 0x7165727977656967ull));
  auto opts = at::TensorOptions().dtype(at::kFloat);
  auto normal = [&](std::vector<int64_t> shape, double stdv) {
    return at::normal(0.0, stdv, at::IntArrayRef(shape), gen, opts);
  };
  V4QueryWeights w;
  const int64_t r = acfg.q_lora_rank;
  w.wq_a = normal({r, cfg.hidden_size}, 1.0 / std::sqrt(static_cast<double>(cfg.hidden_size)))
               .to(at::kBFloat16)
               .to(at::kFloat);
  w.wq_b = normal({acfg.n_heads * cfg.head_dim, r}, 1.0 / std::sqrt(static_cast<double>(r)))
               .to(at::kBFloat16)
               .to(at::kFloat);
  w.attn_sink = normal({acfg.n_heads}, 1.0);
  w.q_norm = at::ones({r}, opts);
  return w;
}

V4QueryWeights load_query_weights(const std::string& path, const V4Config& cfg, const V4AttentionConfig& acfg,
                                  int layer) {
  cfg.validate();
  acfg.validate();
  if (cfg.num_layers() > 0) (void)cfg.layer_kind(layer);  // range check
  KVLAB_CHECK(layer >= 0, "query weights: layer id must be >= 0, got {}", layer);
  const std::string p = "layers." + std::to_string(layer) + ".attn.";
  const std::string L = "layer " + std::to_string(layer) + " ";
  auto t = load_checkpoint_tensors(
      path, {{{p + "wq_a.weight"}, {acfg.q_lora_rank, cfg.hidden_size}, L + "wq_a"},
             {{p + "q_norm.weight"}, {acfg.q_lora_rank}, L + "q_norm"},
             {{p + "wq_b.weight"}, {acfg.n_heads * cfg.head_dim, acfg.q_lora_rank}, L + "wq_b"},
             {{p + "attn_sink"}, {acfg.n_heads}, L + "attn_sink"}});
  V4QueryWeights w{t[0], t[1], t[2], t[3]};
  w.validate(cfg, acfg);
  return w;
}

// ---------------------------------------------------------------- queries

namespace {

void check_query_args(const V4Config& cfg, const V4AttentionConfig& acfg, const V4QueryWeights& w,
                      const at::Tensor& hidden, const std::vector<int64_t>& positions) {
  cfg.validate();
  acfg.validate();
  w.validate(cfg, acfg);
  KVLAB_CHECK(hidden.defined() && hidden.dim() == 2 && hidden.size(1) == cfg.hidden_size,
              "queries: hidden states must be [S, {}], got {}", cfg.hidden_size, shape_of(hidden));
  const int64_t S = hidden.size(0);
  for (std::size_t i = 0; i < positions.size(); ++i)
    KVLAB_CHECK(positions[i] >= 0 && positions[i] < S, "queries: positions[{}] = {} is outside [0, {})", i,
                positions[i], S);
  KVLAB_CHECK(hidden.is_floating_point(), "queries: hidden states have dtype {}, expected a floating-point type",
              c10::toString(hidden.scalar_type()));
}

}  // namespace

at::Tensor v4_queries(const V4Config& cfg, const V4AttentionConfig& acfg, const V4QueryWeights& w, LayerKind kind,
                      const at::Tensor& hidden, const std::vector<int64_t>& positions) {
  check_query_args(cfg, acfg, w, hidden, positions);
  const int64_t N = static_cast<int64_t>(positions.size()), H = acfg.n_heads, D = cfg.head_dim;
  at::Tensor idx = at::tensor(positions, at::TensorOptions().dtype(at::kLong));
  at::Tensor x = bf16_values(hidden.to(at::kCPU).index_select(0, idx));
  if (const int64_t i = first_nonfinite(x); i >= 0)
    throw Error(fmt::format("queries: hidden states have a non-finite value {} at token {}, channel {}",
                            flat_value(x, i), positions[static_cast<std::size_t>(i / cfg.hidden_size)],
                            i % cfg.hidden_size));
  const double eps = cfg.rms_norm_eps;
  at::Tensor a = at::mm(x, w.wq_a.to(at::kFloat).t());
  at::Tensor c = rms_norm(a, w.q_norm, eps).to(at::kBFloat16).to(at::kFloat);
  at::Tensor q = at::mm(c, w.wq_b.to(at::kFloat).t()).view({N, H, D});
  q = (q * at::rsqrt(q.square().mean(-1, /*keepdim=*/true) + eps)).to(at::kBFloat16).to(at::kFloat);
  q = apply_rope_at(q, positions, attention_rope_params(cfg, kind),
                    attention_rope_seqlen(cfg, acfg, kind, hidden.size(0)));
  return q.to(at::kBFloat16).to(at::kFloat).contiguous();
}

at::Tensor v4_queries_ref(const V4Config& cfg, const V4AttentionConfig& acfg, const V4QueryWeights& w,
                          LayerKind kind, const at::Tensor& hidden, const std::vector<int64_t>& positions) {
  check_query_args(cfg, acfg, w, hidden, positions);
  const int64_t N = static_cast<int64_t>(positions.size()), H = acfg.n_heads, D = cfg.head_dim;
  const int64_t hid = cfg.hidden_size, r = acfg.q_lora_rank, rd = cfg.qk_rope_head_dim;
  const float eps = static_cast<float>(cfg.rms_norm_eps);
  at::Tensor X = hidden.to(at::kCPU).to(at::kFloat).contiguous();
  at::Tensor Wa = w.wq_a.to(at::kFloat).contiguous(), Wb = w.wq_b.to(at::kFloat).contiguous();
  at::Tensor gq = w.q_norm.to(at::kFloat).contiguous();
  const float* xs = X.data_ptr<float>();
  const float* wa = Wa.data_ptr<float>();
  const float* wb = Wb.data_ptr<float>();
  const float* g = gq.data_ptr<float>();
  const std::vector<float> f =
      rope_inv_freqs(attention_rope_params(cfg, kind), attention_rope_seqlen(cfg, acfg, kind, hidden.size(0)));
  at::Tensor out = at::empty({N, H, D}, at::TensorOptions().dtype(at::kFloat));
  float* o = out.data_ptr<float>();
  std::vector<float> xin(static_cast<std::size_t>(hid)), cv(static_cast<std::size_t>(r)), qh(static_cast<std::size_t>(D));
  for (int64_t n = 0; n < N; ++n) {
    const int64_t t = positions[static_cast<std::size_t>(n)];
    for (int64_t k = 0; k < hid; ++k) xin[static_cast<std::size_t>(k)] = bf16_round(xs[t * hid + k]);
    double ss = 0;
    for (int64_t i = 0; i < r; ++i) {
      double acc = 0;
      for (int64_t k = 0; k < hid; ++k) acc += static_cast<double>(wa[i * hid + k]) * xin[static_cast<std::size_t>(k)];
      cv[static_cast<std::size_t>(i)] = static_cast<float>(acc);
      ss += acc * acc;
    }
    const double inv = 1.0 / std::sqrt(ss / static_cast<double>(r) + eps);
    for (int64_t i = 0; i < r; ++i)
      cv[static_cast<std::size_t>(i)] = bf16_round(static_cast<float>(cv[static_cast<std::size_t>(i)] * inv * g[i]));
    for (int64_t h = 0; h < H; ++h) {
      double hs = 0;
      for (int64_t d = 0; d < D; ++d) {
        const int64_t row = h * D + d;
        double acc = 0;
        for (int64_t i = 0; i < r; ++i) acc += static_cast<double>(wb[row * r + i]) * cv[static_cast<std::size_t>(i)];
        qh[static_cast<std::size_t>(d)] = static_cast<float>(acc);
        hs += acc * acc;
      }
      const double hinv = 1.0 / std::sqrt(hs / static_cast<double>(D) + eps);
      for (int64_t d = 0; d < D; ++d)
        qh[static_cast<std::size_t>(d)] = bf16_round(static_cast<float>(qh[static_cast<std::size_t>(d)] * hinv));
      float* dst = o + (n * H + h) * D;
      for (int64_t d = 0; d < D - rd; ++d) dst[d] = qh[static_cast<std::size_t>(d)];
      for (int64_t i = 0; i < rd / 2; ++i) {
        const float angle = static_cast<float>(t) * f[static_cast<std::size_t>(i)];
        const double cs = std::cos(static_cast<double>(angle)), sn = std::sin(static_cast<double>(angle));
        const double a = qh[static_cast<std::size_t>(D - rd + 2 * i)], b = qh[static_cast<std::size_t>(D - rd + 2 * i + 1)];
        dst[D - rd + 2 * i] = bf16_round(static_cast<float>(a * cs - b * sn));
        dst[D - rd + 2 * i + 1] = bf16_round(static_cast<float>(a * sn + b * cs));
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- sampling

std::vector<int64_t> sample_query_positions(int64_t S, int64_t n, uint64_t seed, int64_t first) {
  KVLAB_CHECK(S >= 1 && first >= 0 && first < S, "sample_query_positions: need 0 <= first ({}) < S ({})", first, S);
  const int64_t M = S - first;
  std::vector<int64_t> all(static_cast<std::size_t>(M));
  for (int64_t i = 0; i < M; ++i) all[static_cast<std::size_t>(i)] = first + i;
  if (n <= 0 || n >= M) return all;
  std::mt19937_64 rng(seed);
  for (int64_t i = 0; i < n; ++i) {
    // Uniform in [0, M - i) by rejection (no modulo bias).
    const uint64_t range = static_cast<uint64_t>(M - i);
    const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % range;
    uint64_t v;
    do v = rng();
    while (v >= limit);
    std::swap(all[static_cast<std::size_t>(i)], all[static_cast<std::size_t>(i + static_cast<int64_t>(v % range))]);
  }
  all.resize(static_cast<std::size_t>(n));
  std::sort(all.begin(), all.end());
  return all;
}

const char* coded_part_name(CodedPart c) { return c == CodedPart::kWindow ? "window" : "compressed"; }

CodedPart parse_coded_part(const std::string& s) {
  if (s == "window") return CodedPart::kWindow;
  if (s == "compressed") return CodedPart::kCompressed;
  throw Error(fmt::format("coded part '{}': expected window or compressed", s));
}

int64_t first_position_seeing(CodedPart coded, int64_t ratio) {
  return coded == CodedPart::kWindow ? 0 : std::max<int64_t>(ratio, 1) - 1;
}

// ---------------------------------------------------------------- layer inputs

namespace {

// x [S, D] with its last p dims rotated at positions 0..S-1 by `from` moved
// to `to`: R_to(t) R_from(t)^-1. R(t)^-1 (a, b) = conj: R(t) (a, -b) with the
// second coordinate negated again.
at::Tensor rerotate(const at::Tensor& x, const RopeParams& from, int64_t from_seqlen, const RopeParams& to,
                    int64_t to_seqlen) {
  const int64_t S = x.size(0), D = x.size(1);
  std::vector<int64_t> pos(static_cast<std::size_t>(S));
  for (int64_t i = 0; i < S; ++i) pos[static_cast<std::size_t>(i)] = i;
  at::Tensor sign = at::ones({D}, at::TensorOptions().dtype(at::kFloat));
  sign.narrow(0, D - from.dim, from.dim).slice(0, 1, from.dim, 2).fill_(-1.0f);
  at::Tensor back = apply_rope_at(x.to(at::kCPU).to(at::kFloat) * sign, pos, from, from_seqlen) * sign;
  return apply_rope_at(back, pos, to, to_seqlen);
}

}  // namespace

AttentionInputs layer_attention_inputs(const V4Config& cfg, V4AttentionConfig acfg, const V4QueryWeights& w,
                                       LayerKind kind, CodedPart coded, const at::Tensor& hidden,
                                       const at::Tensor& window_kv, const at::Tensor& compressed_kv,
                                       int64_t n_queries, uint64_t query_seed) {
  KVLAB_CHECK(kind != LayerKind::SWA || coded == CodedPart::kWindow,
              "attention: a sliding-window layer has no compressed KV to code");
  KVLAB_CHECK(hidden.defined() && hidden.dim() == 2, "attention: hidden states must be [S, hidden], got {}",
              shape_of(hidden));
  const int64_t S = hidden.size(0);
  KVLAB_CHECK(window_kv.defined() && window_kv.dim() == 2 && window_kv.size(0) == S &&
                  window_kv.size(1) == cfg.head_dim,
              "attention: window_kv must be [{}, {}] (one vector per token of the hidden states), got {}", S,
              cfg.head_dim, shape_of(window_kv));
  // The queries' RoPE matches the write path's compressed keys.
  acfg.yarn_always = cfg.write_path == WritePath::kV4;
  const int64_t ratio = kind == LayerKind::CSA ? cfg.csa_ratio : kind == LayerKind::HCA ? cfg.hca_ratio : 0;
  AttentionInputs in;
  in.positions = sample_query_positions(S, n_queries, query_seed, first_position_seeing(coded, ratio));
  in.queries = v4_queries(cfg, acfg, w, kind, hidden, in.positions);
  in.window_kv = window_kv.to(at::kCPU).to(at::kFloat);
  if (kind != LayerKind::SWA) {
    KVLAB_CHECK(compressed_kv.defined() && compressed_kv.dim() == 2 && compressed_kv.size(0) == S / ratio &&
                    compressed_kv.size(1) == cfg.head_dim,
                "attention: the {} layer's compressed_kv must be [{}, {}] (S / {}), got {}", layer_kind_name(kind),
                S / ratio, cfg.head_dim, ratio, shape_of(compressed_kv));
    in.window_kv = rerotate(in.window_kv, attention_rope_params(cfg, LayerKind::SWA),
                            attention_rope_seqlen(cfg, acfg, LayerKind::SWA, S), attention_rope_params(cfg, kind),
                            attention_rope_seqlen(cfg, acfg, kind, S))
                       .to(at::kBFloat16)
                       .to(at::kFloat);
    in.compressed_kv = compressed_kv.to(at::kCPU).to(at::kFloat);
    in.ratio = ratio;
  }
  in.index_topk = kind == LayerKind::CSA ? acfg.index_topk : 0;
  in.sink = w.attn_sink;
  in.coded = coded;
  in.window = acfg.window;
  return in;
}

// ---------------------------------------------------------------- probe

namespace {

// Validated inputs shared by the probe and its oracle.
struct Checked {
  int64_t N = 0, H = 0, D = 0, S = 0, Sc = 0, m = 0, W = 0;
  double tau = 0;
};

Checked check_inputs(const AttentionInputs& in) {
  Checked c;
  KVLAB_CHECK(in.queries.defined() && in.queries.dim() == 3,
              "attention: queries must be [N, heads, head_dim], got {}", shape_of(in.queries));
  c.N = in.queries.size(0);
  c.H = in.queries.size(1);
  c.D = in.queries.size(2);
  KVLAB_CHECK(c.N >= 1 && c.H >= 1 && c.D >= 1, "attention: queries {} must not be empty", shape_of(in.queries));
  KVLAB_CHECK(static_cast<int64_t>(in.positions.size()) == c.N,
              "attention: {} positions given for {} queries (expected one per query)", in.positions.size(), c.N);
  KVLAB_CHECK(in.window_kv.defined() && in.window_kv.dim() == 2 && in.window_kv.size(1) == c.D,
              "attention: window_kv must be [S, {}] (head_dim of the queries), got {}", c.D, shape_of(in.window_kv));
  c.S = in.window_kv.size(0);
  check_input(in.queries, "queries", {c.N, c.H, c.D});
  check_input(in.window_kv, "window_kv", {c.S, c.D});
  for (std::size_t i = 0; i < in.positions.size(); ++i) {
    KVLAB_CHECK(in.positions[i] >= 0 && in.positions[i] < c.S, "attention: positions[{}] = {} is outside [0, S = {})",
                i, in.positions[i], c.S);
    KVLAB_CHECK(i == 0 || in.positions[i] > in.positions[i - 1],
                "attention: positions must be strictly ascending: positions[{}] = {} after {}", i, in.positions[i],
                in.positions[i - 1]);
  }
  KVLAB_CHECK(in.window >= 1, "attention: window must be >= 1, got {}", in.window);
  c.W = in.window;
  KVLAB_CHECK(in.index_topk >= 0, "attention: index_topk must be >= 0, got {}", in.index_topk);
  if (in.compressed_kv.defined()) {
    KVLAB_CHECK(in.ratio >= 1, "attention: compressed_kv given with ratio {} (expected m >= 1)", in.ratio);
    KVLAB_CHECK(in.compressed_kv.dim() == 2 && in.compressed_kv.size(1) == c.D,
                "attention: compressed_kv must be [S_c, {}], got {}", c.D, shape_of(in.compressed_kv));
    c.Sc = in.compressed_kv.size(0);
    c.m = in.ratio;
    check_input(in.compressed_kv, "compressed_kv", {c.Sc, c.D});
    const int64_t need = (in.positions.back() + 1) / c.m;
    KVLAB_CHECK(c.Sc >= need,
                "attention: compressed_kv has {} entries but the query at position {} sees {} (floor((t+1)/{}))", c.Sc,
                in.positions.back(), need, c.m);
    KVLAB_CHECK(in.index_topk == 0 || need <= in.index_topk,
                "attention: the query at position {} sees {} compressed entries, more than index_topk = {}; the "
                "lightning indexer's top-k selection is not implemented (CSA is exact only while floor((t+1)/{}) <= "
                "{}, i.e. up to {} tokens)",
                in.positions.back(), need, in.index_topk, c.m, in.index_topk, (in.index_topk + 1) * c.m - 1);
  } else {
    KVLAB_CHECK(in.coded == CodedPart::kWindow, "attention: the compressed part is coded but compressed_kv is missing");
  }
  KVLAB_CHECK(in.sink.defined() && in.sink.dim() == 1 && in.sink.size(0) == c.H,
              "attention: sink must be [{}] (one logit per head), got {}", c.H, shape_of(in.sink));
  {
    at::Tensor s = in.sink.to(at::kCPU).to(at::kDouble);
    for (int64_t h = 0; h < c.H; ++h) {
      const double v = s[h].item<double>();
      KVLAB_CHECK(std::isfinite(v) || v == -kInf, "attention: sink[{}] = {} (expected finite or -inf)", h, v);
    }
  }
  KVLAB_CHECK(in.tau == 0 || (std::isfinite(in.tau) && in.tau > 0), "attention: tau = {} (expected > 0, or 0 for "
              "head_dim^-1/2)", in.tau);
  c.tau = in.tau == 0 ? 1.0 / std::sqrt(static_cast<double>(c.D)) : in.tau;
  return c;
}

// h(y) = log1p(y) - y, accurate for small |y| (series) and elsewhere (direct).
double log1p_minus(double y) {
  if (std::fabs(y) <= 0.1)
    return y * y *
           (-0.5 + y * (1.0 / 3 + y * (-0.25 + y * (0.2 + y * (-1.0 / 6 + y * (1.0 / 7 + y * (-0.125)))))));
  return std::log1p(y) - y;
}

}  // namespace

AttentionProbe::AttentionProbe(const AttentionInputs& in, AttentionProbeOptions opt) {
  const Checked c = check_inputs(in);
  KVLAB_CHECK(opt.block_positions >= 1 && opt.max_block_queries >= 1,
              "attention: block_positions ({}) and max_block_queries ({}) must be >= 1", opt.block_positions,
              opt.max_block_queries);
  pos_ = in.positions;
  H_ = c.H;
  D_ = c.D;
  S_ = c.S;
  coded_ = in.coded;
  tau_ = c.tau;
  const int64_t N = c.N, H = c.H, D = c.D, W = c.W, m = c.m;
  // bf16 rounding in slices: no full-size temporaries (fresh pages are
  // costly on some hosts and the query sample can be 2048 x 64 x 512).
  q_ = at::empty({N, H, D}, at::TensorOptions().dtype(at::kFloat));
  {
    const at::Tensor qin = in.queries.to(at::kCPU);
    for (int64_t i0 = 0; i0 < N; i0 += 64) {
      const int64_t n = std::min<int64_t>(64, N - i0);
      q_.narrow(0, i0, n).copy_(qin.narrow(0, i0, n).to(at::kBFloat16));
    }
  }
  at::Tensor kw = bf16_values(in.window_kv);
  at::Tensor kc = in.compressed_kv.defined() ? bf16_values(in.compressed_kv) : at::Tensor();
  k_coded_ = coded_ == CodedPart::kWindow ? kw : kc;
  const at::Tensor sink = in.sink.to(at::kCPU).to(at::kFloat).view({1, H, 1});
  const float ninf = -std::numeric_limits<float>::infinity();

  logpu_ = at::empty({N, H}, at::TensorOptions().dtype(at::kFloat));
  o_u_ = at::empty({N, H, D}, at::TensorOptions().dtype(at::kFloat));
  double sum_all = 0, sq_all = 0, sum_cod = 0, sq_cod = 0;

  for (int64_t i = 0; i < N;) {
    int64_t j = i + 1;
    while (j < N && j - i < opt.max_block_queries && pos_[static_cast<std::size_t>(j)] - pos_[static_cast<std::size_t>(i)] < opt.block_positions) ++j;
    const int64_t nq = j - i;
    const int64_t t0 = pos_[static_cast<std::size_t>(i)], t1 = pos_[static_cast<std::size_t>(j - 1)];
    at::Tensor t = at::tensor(std::vector<int64_t>(pos_.begin() + i, pos_.begin() + j), at::kLong).view({nq, 1, 1});
    at::Tensor Qb = q_.narrow(0, i, nq).reshape({nq * H, D});

    // Window entries [w0, w0 + nw): visible iff t - W + 1 <= s <= t.
    const int64_t w0 = std::max<int64_t>(0, t0 - W + 1), nw = t1 + 1 - w0;
    at::Tensor s = at::arange(w0, w0 + nw, at::kLong).view({1, 1, nw});
    at::Tensor mw = at::logical_and(s >= t - (W - 1), s <= t);
    at::Tensor Lw = at::mm(Qb, kw.narrow(0, w0, nw).t()).mul_(tau_).view({nq, H, nw}).masked_fill_(mw.logical_not(), ninf);
    // Compressed entries [0, nc): visible iff j < floor((t + 1) / m).
    const int64_t nc = kc.defined() ? (t1 + 1) / m : 0;
    at::Tensor mc, Lc;
    if (nc > 0) {
      std::vector<int64_t> seen(pos_.begin() + i, pos_.begin() + j);
      for (auto& v : seen) v = (v + 1) / m;
      at::Tensor e = at::arange(0, nc, at::kLong).view({1, 1, nc});
      mc = e < at::tensor(seen, at::kLong).view({nq, 1, 1});
      Lc = at::mm(Qb, kc.narrow(0, 0, nc).t()).mul_(tau_).view({nq, H, nc}).masked_fill_(mc.logical_not(), ninf);
    }
    // Statistics of the visible reference logits.
    auto acc = [](const at::Tensor& L, const at::Tensor& mask, double& sum, double& sq) {
      at::Tensor v = at::where(mask, L, at::zeros({}, L.options()));
      sum += v.sum(at::kDouble).item<double>();
      sq += v.square().sum(at::kDouble).item<double>();
    };
    const int64_t vis_w = mw.sum().item<int64_t>(), vis_c = nc > 0 ? mc.sum().item<int64_t>() : 0;
    visible_ += vis_w + vis_c;
    double sw = 0, qw = 0, sc = 0, qc = 0;
    acc(Lw, mw, sw, qw);
    if (nc > 0) acc(Lc, mc, sc, qc);
    sum_all += sw + sc;
    sq_all += qw + qc;

    Block b;
    b.q0 = i;
    b.nq = nq;
    at::Tensor Lcod, Lunc, Kunc;
    if (coded_ == CodedPart::kWindow) {
      b.k0 = w0;
      b.nk = nw;
      for (int64_t q = i; q < j; ++q) {
        const int64_t tq = pos_[static_cast<std::size_t>(q)];
        b.lo.push_back(std::max<int64_t>(0, tq - W + 1 - w0));
        b.hi.push_back(tq + 1 - w0);
      }
      Lcod = Lw;
      visible_coded_ += vis_w;
      sum_cod += sw;
      sq_cod += qw;
      if (nc > 0) {
        Lunc = Lc;
        Kunc = kc.narrow(0, 0, nc);
      }
    } else {
      b.k0 = 0;
      b.nk = nc;
      for (int64_t q = i; q < j; ++q) {
        b.lo.push_back(0);
        b.hi.push_back(nc > 0 ? (pos_[static_cast<std::size_t>(q)] + 1) / m : 0);
      }
      Lcod = nc > 0 ? Lc : at::empty({nq, H, 0}, at::TensorOptions().dtype(at::kFloat));
      visible_coded_ += vis_c;
      sum_cod += sc;
      sq_cod += qc;
      Lunc = Lw;
      Kunc = kw.narrow(0, w0, nw);
    }
    at::Tensor sinkb = sink.expand({nq, H, 1});
    at::Tensor lse_u = Lunc.defined() ? at::logsumexp(at::cat({sinkb, Lunc}, -1), -1) : sinkb.squeeze(-1).clone();
    at::Tensor Z = b.nk > 0 ? at::logaddexp(lse_u, at::logsumexp(Lcod, -1)) : lse_u;
    b.pr = at::exp(Lcod - Z.unsqueeze(-1)).contiguous();
    logpu_.narrow(0, i, nq).copy_(lse_u - Z);
    if (Lunc.defined()) {
      at::Tensor lse_safe = at::where(at::isfinite(lse_u), lse_u, at::zeros({}, lse_u.options()));
      at::Tensor wu = at::exp(Lunc - lse_safe.unsqueeze(-1)).view({nq * H, Lunc.size(-1)});
      o_u_.narrow(0, i, nq).copy_(at::mm(wu, Kunc).view({nq, H, D}));
    } else {
      o_u_.narrow(0, i, nq).zero_();
    }
    blocks_.push_back(std::move(b));
    i = j;
  }
  const double na = static_cast<double>(visible_ * H), nc = static_cast<double>(visible_coded_ * H);
  var_all_ = na > 0 ? std::max(0.0, sq_all / na - (sum_all / na) * (sum_all / na)) : 0;
  var_coded_ = nc > 0 ? std::max(0.0, sq_cod / nc - (sum_cod / nc) * (sum_cod / nc)) : 0;
  // The reference outputs through the same arithmetic as score() (with a
  // zero logit change every step is exact, so an identical decoded part
  // reproduces them bit for bit).
  o_ref_ = run(k_coded_, /*score=*/false).out;
  o_ref_sq_ = at::empty({N, H}, at::TensorOptions().dtype(at::kFloat));
  for (int64_t i0 = 0; i0 < N; i0 += 64) {
    const int64_t n = std::min<int64_t>(64, N - i0);
    o_ref_sq_.narrow(0, i0, n).copy_(o_ref_.narrow(0, i0, n).square().sum(-1));
  }
}

at::Tensor AttentionProbe::check_decoded(const at::Tensor& decoded) const {
  KVLAB_CHECK(decoded.defined() && decoded.sizes() == k_coded_.sizes(),
              "attention: decoded {} KV has shape {}, expected {} (the coded part)", coded_part_name(coded_),
              shape_of(decoded), shape_of(k_coded_));
  KVLAB_CHECK(decoded.is_floating_point(), "attention: decoded KV has dtype {}, expected float32 or bf16",
              c10::toString(decoded.scalar_type()));
  at::Tensor kd = bf16_values(decoded);
  if (const int64_t i = first_nonfinite(kd); i >= 0)
    throw Error(fmt::format("attention: decoded {} KV has a non-finite value {} at row {}, dim {}",
                            coded_part_name(coded_), flat_value(decoded, i), i / D_, i % D_));
  return kd;
}

namespace {

// The per-(query, head) part of a scoring pass over one block, for rows
// [r0, r1) of the block's [nq * H, nk] logit changes x (em = expm1(x)).
// Only each row's visible coded entries [lo, hi) are read; pc (the codec's
// probabilities of the coded entries) is written on the whole row (0 where
// not visible). dz: Z_codec - Z_ref; kl: KL(p_ref || p_codec); sq: the sum
// of x^2 over the visible entries.
// Session 7 replaced ~25 tensor operations per block (over the masked
// [nq, H, nk] and [nq, H, D] blocks) with this loop and the output loop in
// run(): same formulas, the per-row sums now in double (before: float
// tensor reductions), so the stored attention metrics moved by rounding
// only (at most 2.0e-7 relative on stage075_n8's first two passages; README
// Performance). Deterministic for a given CPU and thread count: each row is
// summed in order by one thread.
struct RowPass {
  const float* x;
  const float* em;
  const float* pr;
  const float* logpu;  // [nq * H] (the block's)
  const int64_t* lo;
  const int64_t* hi;
  int64_t H, nk;
  float* pc;
  double* dz;
  double* kl;
  double* sq;

  void operator()(int64_t r0, int64_t r1) const {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t i = r / H, a = lo[i], b = hi[i];
      const float* xr = x + r * nk;
      const float* er = em + r * nk;
      const float* pr_r = pr + r * nk;
      float* out = pc + r * nk;
      double mu = 0, rho = 0, s2 = 0;
      for (int64_t e = a; e < b; ++e) {
        const float v = xr[e], p = pr_r[e];
        // g = expm1(x) - x: the series for |x| < 1/32, em - x elsewhere.
        const float g = std::fabs(v) < 1.0f / 32 ? v * v * ((v * (1.0f / 24) + 1.0f / 6) * v + 0.5f) : er[e] - v;
        mu += static_cast<double>(p) * v;
        rho += static_cast<double>(p) * g;
        s2 += static_cast<double>(v) * v;
      }
      const double y = mu + rho;
      sq[r] = s2;
      for (int64_t e = 0; e < a; ++e) out[e] = 0;
      for (int64_t e = b; e < nk; ++e) out[e] = 0;
      if (std::isfinite(y) && std::fabs(y) <= 0.5) {
        // Z_codec - Z_ref = log1p(y), KL = rho + (log1p(y) - y), p_codec = p_ref e^x e^-dz.
        dz[r] = std::log1p(y);
        kl[r] = rho + log1p_minus(y);
        const float scale = static_cast<float>(std::exp(-dz[r]));
        for (int64_t e = a; e < b; ++e) out[e] = (pr_r[e] + pr_r[e] * er[e]) * scale;
        continue;
      }
      // Large changes: the log-sum-exp form.
      double mx = -kInf;
      for (int64_t e = a; e < b; ++e) mx = std::max(mx, std::log(static_cast<double>(pr_r[e])) + xr[e]);
      double lse = -kInf;
      if (mx != -kInf && std::isfinite(mx)) {
        double z = 0;
        for (int64_t e = a; e < b; ++e) z += std::exp(std::log(static_cast<double>(pr_r[e])) + xr[e] - mx);
        lse = mx + std::log(z);
      } else if (mx == kInf) {
        lse = kInf;
      }
      const double lu = logpu[r];
      const double top = std::max(lu, lse);
      const double d = std::isinf(top) ? top : top + std::log(std::exp(lu - top) + std::exp(lse - top));
      dz[r] = d;
      kl[r] = d - mu;
      for (int64_t e = a; e < b; ++e)
        out[e] = static_cast<float>(std::exp(std::log(static_cast<double>(pr_r[e])) + xr[e] - d));
    }
  }
};

}  // namespace

AttentionProbe::Pass AttentionProbe::run(const at::Tensor& kd, bool score) const {
  const int64_t N = num_queries(), H = H_, D = D_;
  Pass p;
  if (score) {
    p.kl.assign(static_cast<std::size_t>(N * H), 0.0);
    p.rel.assign(static_cast<std::size_t>(N * H), 0.0);
  } else {
    p.out = at::empty({N, H, D}, at::TensorOptions().dtype(at::kFloat));
  }
  // tau folded into the (small) difference: x = <q, tau (k_dec - k_ref)>.
  const at::Tensor E = (kd - k_coded_).mul_(tau_);
  const float* o_u = o_u_.data_ptr<float>();
  const float* o_ref = score ? o_ref_.data_ptr<float>() : nullptr;
  const float* den = score ? o_ref_sq_.data_ptr<float>() : nullptr;
  const float* logpu = logpu_.data_ptr<float>();
  float* out = score ? nullptr : p.out.data_ptr<float>();
  std::vector<double> dz, kl, sq;
  for (const Block& b : blocks_) {
    const int64_t rows = b.nq * H, r0 = b.q0 * H;
    if (b.nk == 0) {  // no coded entry is visible: nothing changes
      if (!score) p.out.narrow(0, b.q0, b.nq).copy_(at::exp(logpu_.narrow(0, b.q0, b.nq)).unsqueeze(-1) *
                                                    o_u_.narrow(0, b.q0, b.nq));
      continue;
    }
    const at::Tensor Qb = q_.narrow(0, b.q0, b.nq).reshape({rows, D});
    // Logit changes x of every block entry (only the visible ones are read).
    const at::Tensor x = at::mm(Qb, E.narrow(0, b.k0, b.nk).t()).contiguous();
    const at::Tensor em = at::expm1(x);
    at::Tensor pc = at::empty({rows, b.nk}, x.options());
    dz.assign(static_cast<std::size_t>(rows), 0.0);
    kl.assign(static_cast<std::size_t>(rows), 0.0);
    sq.assign(static_cast<std::size_t>(rows), 0.0);
    const RowPass rp{x.data_ptr<float>(), em.data_ptr<float>(), b.pr.data_ptr<float>(), logpu + r0,
                     b.lo.data(),         b.hi.data(),          H,                        b.nk,
                     pc.data_ptr<float>(), dz.data(),            kl.data(),                sq.data()};
    at::parallel_for(0, rows, 16, rp);
    const at::Tensor pv = at::mm(pc, kd.narrow(0, b.k0, b.nk)).contiguous();
    const float* pvp = pv.data_ptr<float>();
    at::parallel_for(0, rows, 16, [&](int64_t a0, int64_t a1) {
      for (int64_t r = a0; r < a1; ++r) {
        // o_codec = e^(log p_u - dz) o_u + sum_coded p_codec k_dec
        const float a = static_cast<float>(std::exp(static_cast<double>(logpu[r0 + r]) - dz[static_cast<std::size_t>(r)]));
        const float* ou = o_u + (r0 + r) * D;
        const float* pvr = pvp + r * D;
        if (!score) {
          float* o = out + (r0 + r) * D;
          for (int64_t d = 0; d < D; ++d) o[d] = a * ou[d] + pvr[d];
          continue;
        }
        const float* orf = o_ref + (r0 + r) * D;
        double num = 0;
        for (int64_t d = 0; d < D; ++d) {
          const float diff = (a * ou[d] + pvr[d]) - orf[d];
          num += static_cast<double>(diff) * diff;
        }
        const float dn = den[r0 + r];
        p.rel[static_cast<std::size_t>(r0 + r)] = dn > 0 ? num / dn : 0.0;
      }
    });
    if (!score) continue;
    for (int64_t r = 0; r < rows; ++r) {
      p.kl[static_cast<std::size_t>(r0 + r)] = std::max(0.0, kl[static_cast<std::size_t>(r)]);
      p.sq_err += sq[static_cast<std::size_t>(r)];
    }
  }
  return p;
}

at::Tensor AttentionProbe::outputs(const at::Tensor& decoded) const {
  return run(check_decoded(decoded), /*score=*/false).out;
}

namespace {

AttentionMetrics finish_metrics(int64_t N, int64_t H, int64_t visible, int64_t visible_coded, double sq_err,
                                double var_all, double var_coded, std::vector<double> kl,
                                const std::vector<double>& out_rel) {
  AttentionMetrics m;
  m.queries = N;
  m.heads = H;
  m.visible = visible;
  m.visible_coded = visible_coded;
  auto rel = [&](double count, double var) {
    if (count <= 0 || sq_err == 0) return 0.0;
    return var > 0 ? sq_err / count / var : kInf;
  };
  m.logit_rel_mse = rel(static_cast<double>(visible * H), var_all);
  m.logit_rel_mse_coded = rel(static_cast<double>(visible_coded * H), var_coded);
  double s = 0;
  for (double v : kl) s += v;
  m.kl_mean = kl.empty() ? 0 : s / static_cast<double>(kl.size());
  std::sort(kl.begin(), kl.end());
  if (!kl.empty()) {
    const std::size_t rank = static_cast<std::size_t>(std::ceil(0.99 * static_cast<double>(kl.size())));
    m.kl_p99 = kl[std::max<std::size_t>(rank, 1) - 1];
    m.kl_max = kl.back();
  }
  double r = 0;
  for (double v : out_rel) r += v;
  m.attn_out_rel = out_rel.empty() ? 0 : r / static_cast<double>(out_rel.size());
  return m;
}

}  // namespace

AttentionMetrics AttentionProbe::score(const at::Tensor& decoded) const {
  Pass p = run(check_decoded(decoded), /*score=*/true);
  return finish_metrics(num_queries(), H_, visible_, visible_coded_, p.sq_err, var_all_, var_coded_, std::move(p.kl),
                        p.rel);
}

// ---------------------------------------------------------------- oracle

AttentionMetrics attention_metrics_ref(const AttentionInputs& in, const at::Tensor& decoded, at::Tensor* out_ref,
                                       at::Tensor* out_codec) {
  const Checked c = check_inputs(in);
  const int64_t N = c.N, H = c.H, D = c.D, W = c.W, m = c.m;
  auto dbl = [](const at::Tensor& t) { return bf16_values(t).to(at::kDouble).contiguous(); };
  const at::Tensor Q = dbl(in.queries), Kw = dbl(in.window_kv);
  const at::Tensor Kc = in.compressed_kv.defined() ? dbl(in.compressed_kv) : at::Tensor();
  const at::Tensor& coded_ref = in.coded == CodedPart::kWindow ? Kw : Kc;
  KVLAB_CHECK(decoded.defined() && decoded.sizes() == coded_ref.sizes(),
              "attention (oracle): decoded KV has shape {}, expected {}", shape_of(decoded), shape_of(coded_ref));
  const at::Tensor Kd = dbl(decoded);
  KVLAB_CHECK(first_nonfinite(Kd) < 0, "attention (oracle): decoded KV has a non-finite value");
  const at::Tensor sink = in.sink.to(at::kCPU).to(at::kDouble).contiguous();
  const double* q = Q.data_ptr<double>();
  const double* kw = Kw.data_ptr<double>();
  const double* kc = Kc.defined() ? Kc.data_ptr<double>() : nullptr;
  const double* kd = Kd.data_ptr<double>();
  const double* sk = sink.data_ptr<double>();
  at::Tensor oref = at::zeros({N, H, D}, at::TensorOptions().dtype(at::kDouble));
  at::Tensor ocod = at::zeros({N, H, D}, at::TensorOptions().dtype(at::kDouble));
  double* orp = oref.data_ptr<double>();
  double* ocp = ocod.data_ptr<double>();
  int64_t visible = 0, visible_coded = 0;
  double sq_err = 0, sa = 0, qa = 0, sc = 0, qc = 0;
  std::vector<double> kl, rel;
  for (int64_t n = 0; n < N; ++n) {
    const int64_t t = in.positions[static_cast<std::size_t>(n)];
    // (reference key, codec key, coded?) per visible entry
    std::vector<std::tuple<const double*, const double*, bool>> ent;
    for (int64_t s = std::max<int64_t>(0, t - W + 1); s <= t; ++s) {
      const bool cod = in.coded == CodedPart::kWindow;
      ent.emplace_back(kw + s * D, cod ? kd + s * D : kw + s * D, cod);
    }
    if (kc)
      for (int64_t j = 0; j < (t + 1) / m; ++j) {
        const bool cod = in.coded == CodedPart::kCompressed;
        ent.emplace_back(kc + j * D, cod ? kd + j * D : kc + j * D, cod);
      }
    visible += static_cast<int64_t>(ent.size());
    for (const auto& e : ent) visible_coded += std::get<2>(e) ? 1 : 0;
    for (int64_t h = 0; h < H; ++h) {
      const double* qh = q + (n * H + h) * D;
      std::vector<double> lr, lc;
      for (const auto& [kr, kx, cod] : ent) {
        double a = 0, b = 0;
        for (int64_t d = 0; d < D; ++d) {
          a += qh[d] * kr[d];
          b += qh[d] * kx[d];
        }
        a *= c.tau;
        b *= c.tau;
        lr.push_back(a);
        lc.push_back(b);
        sq_err += (b - a) * (b - a);
        sa += a;
        qa += a * a;
        if (cod) {
          sc += a;
          qc += a * a;
        }
      }
      auto lse = [&](const std::vector<double>& l) {
        double mx = sk[h];
        for (double v : l) mx = std::max(mx, v);
        double z = sk[h] == -kInf ? 0 : std::exp(sk[h] - mx);
        for (double v : l) z += std::exp(v - mx);
        return mx + std::log(z);
      };
      const double zr = lse(lr), zc = lse(lc);
      double k = 0;
      if (sk[h] != -kInf) k += std::exp(sk[h] - zr) * ((sk[h] - zr) - (sk[h] - zc));
      double* o1 = orp + (n * H + h) * D;
      double* o2 = ocp + (n * H + h) * D;
      for (std::size_t e = 0; e < ent.size(); ++e) {
        const double pr = std::exp(lr[e] - zr), pc = std::exp(lc[e] - zc);
        k += pr * ((lr[e] - zr) - (lc[e] - zc));
        const double* kr = std::get<0>(ent[e]);
        const double* kx = std::get<1>(ent[e]);
        for (int64_t d = 0; d < D; ++d) {
          o1[d] += pr * kr[d];
          o2[d] += pc * kx[d];
        }
      }
      kl.push_back(std::max(0.0, k));
      double num = 0, den = 0;
      for (int64_t d = 0; d < D; ++d) {
        num += (o2[d] - o1[d]) * (o2[d] - o1[d]);
        den += o1[d] * o1[d];
      }
      rel.push_back(den > 0 ? num / den : 0.0);
    }
  }
  const double na = static_cast<double>(visible * H), nc = static_cast<double>(visible_coded * H);
  const double var_all = na > 0 ? std::max(0.0, qa / na - (sa / na) * (sa / na)) : 0;
  const double var_cod = nc > 0 ? std::max(0.0, qc / nc - (sc / nc) * (sc / nc)) : 0;
  if (out_ref) *out_ref = oref;
  if (out_codec) *out_codec = ocod;
  return finish_metrics(N, H, visible, visible_coded, sq_err, var_all, var_cod, std::move(kl), rel);
}

}  // namespace kvlab::model
