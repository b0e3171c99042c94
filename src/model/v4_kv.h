// The DeepSeek-V4 KV write path (SPEC section 2): from hidden states to the
// three KV streams the study compresses, with random or trained weights.
//
//   sliding_window_kv     [B, S, d]      main KV projection (SWA layer)
//   csa_pool_kv_ratio4    [B, S/4, d]    compressor, ratio 4, overlapping windows
//   hca_pool_kv_ratio128  [B, S/128, d]  compressor, ratio 128
//
// One GEMM serves all three streams: the five projections (main wkv [d],
// CSA wkv/wgate [2d each], HCA wkv/wgate [d each]) are concatenated into one
// [7d, hidden] matrix, so the hidden states are read once per passage.
// Everything after the GEMM is ATen ops on the weights' device: the code
// never assumes CPU. FP8 simulation is exact E4M3 (ops.h, checked bit-exact
// against kernels/fp8_block.h).
//
// The GEMM runs on the bf16 path (oneDNN, float32 accumulation and output;
// see gemm.h) when the GemmMode allows it, the CPU has a fast bf16 matmul and
// both the fused weight (checked once) and the hidden states (checked per
// call; a bf16 tensor is bf16-exact) are exactly bf16; else at::mm in
// float32. forward() reports which ran.
//
// Write-path mode (cfg.write_path, config.h): published = SPEC section 2;
// v4 = the compressed streams' RoPE (theta 160000) with YaRN at every seqlen
// and UE8M0 power-of-two FP8 scales on every stream (SPEC-V4-ATTENTION
// sections 1, 3, 5). The sliding-window stream's RoPE (theta 10000, no YaRN)
// is the same in both modes.
//
// Precision: the GEMM, RMSNorm, softmax, RoPE and FP8 simulation run in
// float32. With stream dtype bf16 each stream is rounded to bf16 after
// RMSNorm (as the published GPU run stored it), RoPE / FP8 are applied in
// float32 to those values and the result is stored as bf16.
//
// Not here: attention, the rest of the V4 layer, KV caching.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "model/config.h"
#include "model/gemm.h"

namespace kvlab::model {

// Stream names kStreamSWA / kStreamCSA / kStreamHCA: config.h.

struct CompressorWeights {
  at::Tensor wkv;    // [c*d, hidden] (c = 2 for CSA, 1 for HCA)
  at::Tensor wgate;  // [c*d, hidden]
  at::Tensor ape;    // [ratio, c*d]
  at::Tensor norm;   // [d]
};

struct V4Weights {
  at::Tensor wkv;      // [d, hidden]   main KV projection (nn.Linear layout: y = x W^T)
  at::Tensor kv_norm;  // [d]
  CompressorWeights csa, hca;

  // Throws kvlab::Error naming the tensor, its shape and the expected shape,
  // or the first non-finite value.
  void validate(const V4Config& cfg) const;
  // float32 copies on `device`.
  V4Weights to(c10::Device device) const;
};

// SPEC random init, drawn on CPU in this order from one generator seeded
// with `seed`: wkv, csa.ape, csa.wkv, csa.wgate, hca.ape, hca.wkv, hca.wgate;
// ape ~ N(0, 0.02^2), wkv/wgate ~ N(0, 1/hidden), norms = 1. The projection
// weights (wkv, wgate) are then rounded to bf16 (nearest-even), as a bf16
// checkpoint stores them (trained V4 weights are FP8 x E8M0, also exact in
// bf16), so the projection may run on the bf16 GEMM path. Then moved to
// `device` (so the weights do not depend on the device).
V4Weights random_weights(const V4Config& cfg, uint64_t seed, c10::Device device = c10::Device(c10::kCPU));

// Loads trained weights. `path` is
//  - a checkpoint directory (model.safetensors.index.json + shards, or any
//    *.safetensors files; a Hugging Face cache folder with snapshots/ works);
//  - or one .safetensors file with the checkpoint names
//    (layers.<L>.attn.{wkv.weight, kv_norm.weight, compressor.{wkv.weight,
//    wgate.weight, ape, norm.weight}}, optionally prefixed "model.") or the
//    reference names (weight/main_kv.*, weight/compressor_csa.*,
//    weight/compressor_hca.*; the layer ids are then unused).
// The main KV projection comes from swa_layer, the CSA compressor from
// csa_layer, the HCA compressor from hca_layer. FP8-E4M3 weights are
// dequantised with their `.scale` (E8M0 as F8_E8M0 or U8, or F32/BF16) per
// 128x128 tile of [out, in]. Throws kvlab::Error naming file and tensor for
// missing tensors, wrong shapes, bad scales, non-finite values.
V4Weights load_weights(const std::string& path, const V4Config& cfg, int swa_layer, int csa_layer, int hca_layer,
                       c10::Device device = c10::Device(c10::kCPU));

// Dequantises an FP8-E4M3 weight [out, in] with per-tile scales
// [ceil(out/tile), ceil(in/tile)] (float32 values): w = e4m3(q) * scale.
// Exposed for tests. q is uint8 codes.
at::Tensor dequantize_fp8_tiles(const at::Tensor& codes_u8, const at::Tensor& scales_f32, int64_t tile = 128);

// Hidden states checked (shape, finite values, bf16-exactness) and laid out
// [B*S, hidden] for one writer's GEMM path (V4KVWriter::prepare), so several
// forward_streams() calls on the same passage check and convert them once.
// Holds the values (or a view of the caller's tensor): do not modify that
// tensor in between.
struct PreparedHidden {
  at::Tensor x;          // [B*S, hidden], bf16 (bf16 path) or float32
  int64_t B = 0, S = 0;
  bool bf16 = false;     // runs on the bf16 GEMM
};

// What one forward() call did.
struct ForwardInfo {
  // "bf16 (oneDNN 2.6.3 brg:avx512_core_amx_bf16)" or "fp32 (at::mm)".
  std::string gemm;
};

class V4KVWriter {
 public:
  // Validates cfg and weights (kvlab::Error) and builds the fused projection.
  // gemm: see the header comment; GemmMode::kBf16 throws here when the CPU
  // has no fast bf16 matmul, the device is not the CPU or the weights are
  // not exactly bf16.
  V4KVWriter(V4Config cfg, V4Weights w, c10::Device device = c10::Device(c10::kCPU),
             GemmMode gemm = GemmMode::kAuto);

  // hidden [B, S, hidden] float32 or bfloat16 (any device; moved to the
  // writer's device). S must be a multiple of 128 and >= 128. stream_dtype
  // kBFloat16 (default) or kFloat. Returns the three streams on the
  // writer's device, in stream_dtype. With GemmMode::kBf16, hidden states
  // that are not exactly bf16 throw. `info` (optional) says which GEMM ran.
  std::map<std::string, at::Tensor> forward(const at::Tensor& hidden, at::ScalarType stream_dtype = at::kBFloat16,
                                            ForwardInfo* info = nullptr) const;

  // Only the listed streams (names as above; any order): the GEMM covers
  // only the projection columns they need (a contiguous range), so e.g. the
  // sliding-window stream alone costs 1/7 of the projection. Each stream
  // equals forward()'s up to the GEMM library's summation order for a
  // narrower product (measured: bit-identical with oneDNN AMX and OpenBLAS
  // SkylakeX; model_gemm_test checks 1e-5).
  std::map<std::string, at::Tensor> forward_streams(const at::Tensor& hidden, const std::vector<std::string>& streams,
                                                    at::ScalarType stream_dtype = at::kBFloat16,
                                                    ForwardInfo* info = nullptr) const;
  // The same on hidden states prepared once (the checks of forward() happen
  // in prepare(), which throws the same errors).
  PreparedHidden prepare(const at::Tensor& hidden) const;
  std::map<std::string, at::Tensor> forward_streams(const PreparedHidden& hidden,
                                                    const std::vector<std::string>& streams,
                                                    at::ScalarType stream_dtype = at::kBFloat16,
                                                    ForwardInfo* info = nullptr) const;

  GemmMode gemm_mode() const { return gemm_mode_; }
  // Whether the bf16 path is ready (mode, CPU, device and weights allow it);
  // then hidden states decide per call. weights_bf16_exact(): the fused weight is.
  bool bf16_ready() const { return static_cast<bool>(bf16_); }
  bool weights_bf16_exact() const { return weights_bf16_exact_; }
  // Why the bf16 path is not ready ("" when it is).
  const std::string& bf16_unavailable_reason() const { return bf16_why_not_; }

  // Multiply-add FLOPs of the fused projection for B*S tokens (2 * tokens * hidden * 7d).
  double projection_flops(int64_t tokens) const;

  const V4Config& config() const { return cfg_; }
  const V4Weights& weights() const { return w_; }
  c10::Device device() const { return device_; }

 private:
  V4Config cfg_;
  V4Weights w_;
  c10::Device device_;
  at::Tensor fused_;  // [7d, hidden] float32: main wkv | csa wkv | csa wgate | hca wkv | hca wgate
  GemmMode gemm_mode_ = GemmMode::kAuto;
  bool weights_bf16_exact_ = false;
  std::shared_ptr<Bf16Gemm> bf16_;  // set when the bf16 path is ready
  std::string bf16_why_not_;
};

// Which BLAS LibTorch runs on (from /proc/self/maps, else the Debian
// alternatives link), e.g. "openblas-pthread (/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3)".
std::string blas_info();
// LibTorch version string (TORCH_VERSION), e.g. "1.13.1".
std::string torch_version();
// Intra-op threads LibTorch uses.
int torch_threads();

}  // namespace kvlab::model
