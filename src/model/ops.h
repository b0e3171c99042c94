// Tensor operators of the V4 KV write path (SPEC section 2), written with
// ATen ops only so that they run unchanged on any device (CPU, CUDA).
//
// Shapes use B (batch), S (tokens), n (windows), r (ratio), d (head_dim).
// All functions take and return float32 tensors unless stated.
#pragma once

#include <ATen/ATen.h>

#include "model/rope.h"

namespace kvlab::model {

// RMSNorm over the last dim in float32: w * v / sqrt(mean(v^2) + eps).
at::Tensor rms_norm(const at::Tensor& v, const at::Tensor& weight, double eps);

// Rotates the LAST p.dim coordinates of x [..., n, D] in interleaved pairs
// (2i, 2i+1) by angle pos_k * f_i with pos_k = k * stride, frequencies for
// sequence length `seqlen` (YaRN per p). Other coordinates are copied
// unchanged. Returns a new tensor.
at::Tensor apply_rope(const at::Tensor& x, const RopeParams& p, int64_t seqlen, int64_t stride = 1);

// OCP E4M3FN value rounding (RNE, ties to even mantissa) of float32 t with
// |t| <= 448, via int32 bit manipulation: bit-exact on every device.
at::Tensor e4m3_round(const at::Tensor& t);

// FP8 block simulation of SPEC section 2 on the first `ncols` coordinates
// of the last dim of x (ncols % block == 0): per block a = max(max|v|, 1e-4),
// s = a / fp8_max, v' = E4M3(clamp(v / s, +-fp8_max)) * s. Returns a new
// tensor; coordinates >= ncols are copied unchanged. Bit-identical to
// kernels::fp8_simulate_rows on finite input.
//
// Fp8Scale::kUe8m0 (v4 write path, SPEC-V4-ATTENTION section 5): s =
// 2^ceil(log2(a * (1/fp8_max))) exactly from the float32 bits, instead of
// a / fp8_max. A CPU tensor runs kernels::fp8_simulate_rows_ue8m0 (which
// rejects non-finite values with kvlab::Error); other devices run
// fp8_simulate_ue8m0_aten, bit-identical on finite input.
enum class Fp8Scale { kAmax, kUe8m0 };
at::Tensor fp8_simulate(const at::Tensor& x, int64_t ncols, int64_t block, double fp8_max,
                        Fp8Scale scale = Fp8Scale::kAmax);
// The UE8M0 simulation in ATen ops (any device); exposed for the parity test.
at::Tensor fp8_simulate_ue8m0_aten(const at::Tensor& x, int64_t ncols, int64_t block, double fp8_max);

// The CSA overlap layout. x [B, n, r, 2d] -> [B, n, 2r, d]: slots r..2r-1 of
// window k hold the second d-half of window k, slots 0..r-1 hold the first
// d-half of window k-1; window 0's slots 0..r-1 are `fill`.
at::Tensor overlap_windows(const at::Tensor& x, double fill);

// Gated pooling of one compressor: kv, score [B, S, c*d] (c = 2 with
// overlap), ape [r, c*d]. Drops the tail beyond floor(S/r)*r, adds ape to the
// score, builds the overlap layout when `overlap`, and returns
// sum over slots of kv * softmax_slots(score): [B, S/r, d].
at::Tensor compress_pool(const at::Tensor& kv, const at::Tensor& score, const at::Tensor& ape, int64_t ratio,
                         bool overlap);

}  // namespace kvlab::model
