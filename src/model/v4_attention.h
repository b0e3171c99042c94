// The DeepSeek-V4 attention read path (SPEC-V4-ATTENTION.md sections 2-3)
// and attention-fidelity metrics for coded KV caches:
//
//   - query weights (random init or a checkpoint) and the query path
//     x_t -> q_t [H, D] (bf16 values);
//   - AttentionProbe: the reference attention of a sample of queries over the
//     window KV (one vector per token) and, for CSA / HCA layers, the
//     compressed KV, computed once; then, for any decoded version of ONE of
//     the two parts (the coded part), how far the logits, the attention
//     distribution (with the sink) and the attention output move.
//
// Attention (per query position t, head h), K = V (MQA, one 512-d vector is
// key and value):
//   S_t = window {s : max(0, t-W+1) <= s <= t} + compressed {j : j < floor((t+1)/m)}
//   l_e = tau <q_{t,h}, k_e>,  p_e = exp(l_e) / (exp(sink_h) + sum_{e' in S_t} exp(l_e')),
//   o_{t,h} = sum_e p_e k_e  (the sink's value vector is zero).
// Precision: q and every KV vector are rounded to bf16 (as V4 reads them);
// logits, softmax and outputs in float32 (V4 casts p to bf16 before P.V;
// not simulated here).
//
// CSA: V4 attends to the lightning indexer's top-k (512) of the visible
// compressed entries. Not implemented: the probe is exact while every query
// sees at most index_topk entries (floor((t+1)/4) <= 512, i.e. S <= 2048)
// and throws kvlab::Error otherwise.
//
// Not here: the output projection (wo_a / wo_b, inverse RoPE), the FP8
// quantisation of the GEMM inputs before wq_a / wq_b, the indexer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/rope.h"

namespace kvlab::model {

// Attention settings that V4Config (the write path's config, whose JSON is
// run provenance) does not hold. Defaults: V4-Flash.
struct V4AttentionConfig {
  int64_t n_heads = 64;
  int64_t q_lora_rank = 1024;
  int64_t window = 128;      // sliding window, including the query token
  int64_t index_topk = 512;  // CSA: compressed entries selected per query
  // V4 applies YaRN on CSA / HCA layers at every length (SPEC-V4-ATTENTION
  // section 1); false: only beyond original_seq_len (the published write
  // path's rule, V4Config / rope.h).
  bool yarn_always = true;

  // From a V4 / Hugging Face config.json: num_attention_heads (or n_heads),
  // q_lora_rank, sliding_window (or window_size), index_topk. Other keys are
  // ignored; missing keys keep the defaults. Wrong types / values throw
  // kvlab::Error naming `where` and the key.
  static V4AttentionConfig from_json(const nlohmann::json& j, const std::string& where = "config");
  static V4AttentionConfig from_json_file(const std::string& path);
  // Throws kvlab::Error for non-positive sizes.
  void validate() const;
};

// The RoPE of a layer kind on the read path: SWA theta = rope_theta_main
// without YaRN; CSA / HCA theta = rope_theta_compress with YaRN (always when
// acfg.yarn_always, else beyond original_seq_len).
RopeParams attention_rope_params(const V4Config& cfg, LayerKind kind);
// The `seqlen` to pass to rope_inv_freqs / rope_table for a passage of S
// tokens so that YaRN applies as above.
int64_t attention_rope_seqlen(const V4Config& cfg, const V4AttentionConfig& acfg, LayerKind kind, int64_t S);

// Rotates the last p.dim coordinates of x [N, ..., D] (interleaved pairs)
// of row i by position positions[i], frequencies for `seqlen` (rope.h's
// float32 recipe, the same values as apply_rope at those positions).
// Returns a new float32 tensor.
at::Tensor apply_rope_at(const at::Tensor& x, const std::vector<int64_t>& positions, const RopeParams& p,
                         int64_t seqlen);

struct V4QueryWeights {
  at::Tensor wq_a;       // [q_lora_rank, hidden]  (nn.Linear layout: y = x W^T)
  at::Tensor q_norm;     // [q_lora_rank]
  at::Tensor wq_b;       // [n_heads * head_dim, q_lora_rank]
  at::Tensor attn_sink;  // [n_heads], float32

  // Throws kvlab::Error naming the tensor, its shape and the expected shape,
  // or the first non-finite value.
  void validate(const V4Config& cfg, const V4AttentionConfig& acfg) const;
};

// Seeded random query weights, drawn on the CPU from one generator seeded
// with splitmix64(seed ^ 0x7165727977656967) (so that random:seed=N query
// weights are not the same draws as the write path's random_weights(N)),
// in this order: wq_a ~ N(0, 1/hidden), wq_b ~ N(0, 1/q_lora_rank),
// attn_sink ~ N(0, 1); q_norm = 1. wq_a and wq_b are rounded to bf16
// (nearest-even), as random_weights does.
V4QueryWeights random_query_weights(const V4Config& cfg, const V4AttentionConfig& acfg, uint64_t seed);

// Layer `layer`'s query weights from a checkpoint (see checkpoint.h):
// layers.L.attn.wq_a.weight (+ .scale), layers.L.attn.q_norm.weight,
// layers.L.attn.wq_b.weight (+ .scale), layers.L.attn.attn_sink.
V4QueryWeights load_query_weights(const std::string& path, const V4Config& cfg, const V4AttentionConfig& acfg,
                                  int layer);

// Queries of the tokens at `positions` (any order, each in [0, S)) of one
// passage: hidden [S, hidden] (the attention-normed hidden states; rounded to
// bf16 first). Returns [N, H, D] float32 holding bf16 values:
//   c = RMSNorm_q(W_qa x) -> bf16;  q = W_qb c -> [H, D];
//   q_h <- q_h / sqrt(mean(q_h^2) + eps) -> bf16;  RoPE (kind's, position t)
//   on the last rope dims -> bf16.
at::Tensor v4_queries(const V4Config& cfg, const V4AttentionConfig& acfg, const V4QueryWeights& w, LayerKind kind,
                      const at::Tensor& hidden, const std::vector<int64_t>& positions);
// Plain-loop oracle of v4_queries (float32 scalar loops, same roundings).
at::Tensor v4_queries_ref(const V4Config& cfg, const V4AttentionConfig& acfg, const V4QueryWeights& w,
                          LayerKind kind, const at::Tensor& hidden, const std::vector<int64_t>& positions);

// n distinct positions drawn uniformly from [first, S), ascending; all of
// them when n <= 0 or n >= S - first. std::mt19937_64(seed), partial
// Fisher-Yates with rejection sampling (the same positions on every
// platform).
std::vector<int64_t> sample_query_positions(int64_t S, int64_t n, uint64_t seed, int64_t first = 0);

enum class CodedPart { kWindow, kCompressed };
const char* coded_part_name(CodedPart c);  // "window", "compressed"
// "window" | "compressed"; else kvlab::Error naming the value.
CodedPart parse_coded_part(const std::string& s);
// The first position whose query sees an entry of the coded part: 0 for the
// window, ratio - 1 for the compressed KV.
int64_t first_position_seeing(CodedPart coded, int64_t ratio);

struct AttentionInputs {
  at::Tensor queries;              // [N, H, D] (rounded to bf16 on use)
  std::vector<int64_t> positions;  // N positions, strictly ascending, in [0, S)
  at::Tensor window_kv;            // [S, D] main KV, one vector per token
  at::Tensor compressed_kv;        // [S_c, D] or undefined (SWA layers)
  int64_t ratio = 0;               // m: entry j pools tokens [j m, j m + m - 1]
  at::Tensor sink;                 // [H] sink logits; -inf = no sink
  CodedPart coded = CodedPart::kWindow;
  int64_t window = 128;
  // > 0 (CSA): the top-k is not implemented, so a query that sees more
  // compressed entries than this throws. 0: dense (HCA).
  int64_t index_topk = 0;
  double tau = 0;  // 0: head_dim^-1/2
};

// The probe inputs of one layer of kind `kind` for one passage: the one
// place that turns a passage's hidden states and write-path streams into
// AttentionInputs (`kvlab attention` and the experiment executor use it).
//   hidden [S, hidden]: the attention-normed hidden states;
//   window_kv [S, D]: the write path's sliding-window stream (main KV, with
//     the write path's main RoPE: theta_main, no YaRN);
//   compressed_kv [S / m, D]: the layer's CSA / HCA stream (ignored, may be
//     undefined, on SWA layers);
//   coded: the part a codec will change; n_queries positions (0 = all) are
//     sampled with query_seed from first_position_seeing(coded, m).
// RoPE: the queries get the layer kind's RoPE with YaRN where the write
// path's compressed keys have it (cfg.write_path v4: at every length;
// published: beyond original_seq_len; acfg.yarn_always is overridden). On
// CSA / HCA layers the window KV's rope dims are rotated back from the main
// RoPE and by the layer kind's (V4's main KV on those layers uses
// theta_compress with YaRN, SPEC-V4-ATTENTION section 3), then rounded to
// bf16, so that the queries and every key share one RoPE. CSA: index_topk
// from acfg (exact while no query sees more entries). Throws kvlab::Error
// on wrong shapes (naming them).
AttentionInputs layer_attention_inputs(const V4Config& cfg, V4AttentionConfig acfg, const V4QueryWeights& w,
                                       LayerKind kind, CodedPart coded, const at::Tensor& hidden,
                                       const at::Tensor& window_kv, const at::Tensor& compressed_kv,
                                       int64_t n_queries, uint64_t query_seed);

struct AttentionMetrics {
  // Mean squared logit error over every visible (query, head, entry) of S_t
  // (entries of the uncoded part contribute zero error), divided by the
  // (population) variance of the reference logits over the same set.
  double logit_rel_mse = 0;
  // The same over the coded part's visible entries only.
  double logit_rel_mse_coded = 0;
  // KL(p_ref || p_codec) of the (|S_t| + 1)-way distributions (sink
  // included), one per (query, head): mean, 99th percentile (nearest rank:
  // the ceil(0.99 n)-th smallest), maximum. Rounding below zero is clamped.
  double kl_mean = 0, kl_p99 = 0, kl_max = 0;
  // Mean over (query, head) of ||o_codec - o_ref||^2 / ||o_ref||^2
  // (a pair with o_ref = 0 counts as 0).
  double attn_out_rel = 0;
  int64_t queries = 0, heads = 0;
  int64_t visible = 0;        // sum over queries of |S_t|
  int64_t visible_coded = 0;  // of them in the coded part
};

struct AttentionProbeOptions {
  // Consecutive queries whose positions span fewer than this many tokens
  // share one GEMM block (the window keys of a block span window + this - 1
  // tokens, so larger blocks waste more work on masked entries).
  int64_t block_positions = 32;
  int64_t max_block_queries = 64;
};

// The reference attention of a query sample, computed once; score() then
// costs one [rows, entries] GEMM for the logit changes, one for P.V and
// elementwise work over the coded part's block entries.
class AttentionProbe {
 public:
  // Validates (kvlab::Error naming the value): shapes, dtypes, finite
  // values (sink: finite or -inf), ascending positions within [0, S),
  // compressed_kv holding every entry a query sees, the top-k limit.
  explicit AttentionProbe(const AttentionInputs& in, AttentionProbeOptions opt = {});

  // decoded: the coded part after a codec, [S, D] (window) or [S_c, D]
  // (compressed), float32 or bf16; rounded to bf16 before use. Throws
  // kvlab::Error on a wrong shape or a non-finite value (naming its row).
  AttentionMetrics score(const at::Tensor& decoded) const;
  // Attention outputs o_{t,h} [N, H, D] float32 with `decoded` as the coded part.
  at::Tensor outputs(const at::Tensor& decoded) const;
  // Reference outputs [N, H, D] (== outputs(coded_reference())).
  const at::Tensor& reference_outputs() const { return o_ref_; }
  // The coded part as the probe reads it (bf16 values, float32) [n, D].
  const at::Tensor& coded_reference() const { return k_coded_; }
  const std::vector<int64_t>& positions() const { return pos_; }
  int64_t num_queries() const { return static_cast<int64_t>(pos_.size()); }
  int64_t num_heads() const { return H_; }
  CodedPart coded() const { return coded_; }
  int64_t blocks() const { return static_cast<int64_t>(blocks_.size()); }

 private:
  struct Block {
    int64_t q0 = 0, nq = 0;    // queries [q0, q0 + nq)
    int64_t k0 = 0, nk = 0;    // coded entries [k0, k0 + nk)
    // Per query of the block: its visible coded entries are [lo, hi) of the
    // block's nk (a window range or a compressed prefix).
    std::vector<int64_t> lo, hi;
    at::Tensor pr;             // [nq, H, nk] reference probabilities (0: not visible)
  };
  // One pass over the blocks with a decoded coded part. Scoring keeps only
  // per-(query, head) values (no [N, H, D] temporaries: fresh pages are
  // costly); outputs() fills `out`.
  struct Pass {
    at::Tensor out;           // [N, H, D] when outputs are wanted
    std::vector<double> kl;   // [N * H] when scoring
    std::vector<double> rel;  // [N * H] ||o - o_ref||^2 / ||o_ref||^2 when scoring
    double sq_err = 0;
  };
  at::Tensor check_decoded(const at::Tensor& decoded) const;
  Pass run(const at::Tensor& kd, bool score) const;

  std::vector<int64_t> pos_;
  int64_t H_ = 0, D_ = 0, S_ = 0;
  CodedPart coded_ = CodedPart::kWindow;
  double tau_ = 0;
  at::Tensor q_;        // [N, H, D] float32 (bf16 values)
  at::Tensor k_coded_;  // [n, D] float32 (bf16 values)
  at::Tensor logpu_;    // [N, H] log of the reference mass of sink + uncoded part
  at::Tensor o_u_;      // [N, H, D] output of the uncoded part, normalised by its mass (with the sink)
  at::Tensor o_ref_;    // [N, H, D]
  at::Tensor o_ref_sq_; // [N, H] ||o_ref||^2
  std::vector<Block> blocks_;
  int64_t visible_ = 0, visible_coded_ = 0;
  double var_all_ = 0, var_coded_ = 0;
};

// Plain-loop oracle of AttentionProbe (double precision, one (query, head,
// entry) at a time; inputs rounded to bf16 the same way). When given,
// *out_ref / *out_codec receive the outputs [N, H, D] (float64).
AttentionMetrics attention_metrics_ref(const AttentionInputs& in, const at::Tensor& decoded,
                                       at::Tensor* out_ref = nullptr, at::Tensor* out_codec = nullptr);

}  // namespace kvlab::model
