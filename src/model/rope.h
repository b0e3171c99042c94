// RoPE frequency tables with YaRN (SPEC section 2), no LibTorch.
//
// Float32 recipe of DeepSeek's precompute_freqs_cis (the one the reference
// streams were produced with; a 1-ulp frequency difference times a position
// of ~1000 changes outputs by ~1e-4): p_i = fl32(base^fl32(2i/dim)),
// f_i = fl32(1/p_i), the YaRN blend f/factor*(1-smooth) + f*smooth in
// float32, angle = fl32(t * f_i), cos/sin of that float32 angle.
//
// YaRN (Peng et al. 2023, "YaRN: Efficient Context Window Extension of Large
// Language Models") applies when original_seq_len > 0 and seqlen >
// original_seq_len (the published harness), or at every seqlen when
// yarn_always (V4 itself, SPEC-V4-ATTENTION section 1: the compressors'
// RoPE in v4 write-path mode); there is no attention (mscale) factor here.
#pragma once

#include <cstdint>
#include <vector>

namespace kvlab::model {

struct RopeParams {
  int64_t dim = 64;            // rope dims (pairs: dim / 2 frequencies)
  double base = 10000.0;       // theta
  int64_t original_seq_len = 0;  // 0: never YaRN
  double factor = 16.0;
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  bool yarn_always = false;    // YaRN at every seqlen (when original_seq_len > 0)
};

// YaRN correction range [low, high] (high already nudged by 0.001 when
// equal to low): low = max(floor(corr(beta_fast)), 0), high =
// min(ceil(corr(beta_slow)), dim - 1), corr(r) = dim ln(L0 / (2 pi r)) / (2 ln base).
struct YarnRange {
  double low, high;
};
YarnRange yarn_correction_range(const RopeParams& p);

// True when YaRN applies for a sequence of `seqlen` tokens.
bool yarn_active(const RopeParams& p, int64_t seqlen);

// dim/2 inverse frequencies (float32 recipe above) for sequence length seqlen.
std::vector<float> rope_inv_freqs(const RopeParams& p, int64_t seqlen);

// cos and sin tables [count, dim/2] (row-major) for positions
// start, start + stride, ...; frequencies computed for `seqlen`.
struct RopeTable {
  int64_t rows = 0, half = 0;
  std::vector<float> cos, sin;
};
RopeTable rope_table(const RopeParams& p, int64_t seqlen, int64_t count, int64_t stride = 1);

}  // namespace kvlab::model
