// FP8 (OCP E4M3FN) per-block fake quantisation, SPEC section 2:
// for each block of `block` values v: a = max(max|v|, 1e-4),
// s = a / fp8_max, q = E4M3(clamp(v / s, -fp8_max, fp8_max)), v' = q * s,
// all in float32, E4M3 rounding bit-exact (RNE, saturating).
//
// fp8_simulate_rows is what the V4 write path applies to the nope dims
// (published mode; fp8_simulate_rows_ue8m0 in v4 mode) and
// what the fp8_per64 codec's float path is built on. The codec's byte
// format (scales stored in 16 bits) is in fp8_block_encode/decode below.
// `*_ref` versions are scalar oracles using fp_formats.h; the fast versions
// give bit-identical results.
//
// Non-finite inputs (NaN, +-inf) are rejected with kvlab::Error naming the
// row and column: a NaN would otherwise silently poison a whole block.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/fp_formats.h"

namespace kvlab::kernels {

inline constexpr float kFp8AmaxFloor = 1e-4f;  // SPEC: a = max(max|v|, 1e-4)
inline constexpr float kE4m3Max = 448.0f;

// In place on rows x ncols (row r starts at data + r * row_stride);
// ncols % block == 0 and block >= 1, fp8_max in (0, 448]; else kvlab::Error.
void fp8_simulate_rows(float* data, int64_t rows, int64_t row_stride, int64_t ncols, int64_t block = 64,
                       float fp8_max = 448.f);
void fp8_simulate_rows_ref(float* data, int64_t rows, int64_t row_stride, int64_t ncols, int64_t block = 64,
                           float fp8_max = 448.f);

// UE8M0 variant (SPEC-V4-ATTENTION section 5, the V4 write path's own FP8
// round trip): per block a = max(max|v|, 1e-4), s = 2^ceil(log2(a * (1/fp8_max)))
// with the product in float32 and the ceiling taken exactly from its bits
// (unbiased exponent, +1 if the mantissa is non-zero), then
// v' = E4M3(clamp(v / s, -fp8_max, fp8_max)) * s. s is a power of two, so
// v / s and q * s are exact. Same shape rules and errors as fp8_simulate_rows.
void fp8_simulate_rows_ue8m0(float* data, int64_t rows, int64_t row_stride, int64_t ncols, int64_t block = 64,
                             float fp8_max = 448.f);
void fp8_simulate_rows_ue8m0_ref(float* data, int64_t rows, int64_t row_stride, int64_t ncols, int64_t block = 64,
                                 float fp8_max = 448.f);
// The UE8M0 scale of one block from its a = max(amax, 1e-4) (finite, > 0):
// 2^ceil(log2(a * (1/fp8_max))) from the float32 bits.
inline float ue8m0_scale(float a, float fp8_max = 448.f) {
  const float y = a * (1.0f / fp8_max);
  uint32_t u;
  std::memcpy(&u, &y, 4);
  const uint32_t e = ((u >> 23) & 0xffu) + ((u & 0x7fffffu) != 0 ? 1u : 0u);
  const uint32_t sb = e << 23;
  float s;
  std::memcpy(&s, &sb, 4);
  return s;
}

// E4M3 value rounding of |x| <= 448 (saturating rules), as a float. Equal to
// e4m3_to_f32(f32_to_e4m3(x)) for every finite |x| <= 448.
float e4m3_round_value(float x);

// Byte format of one row of `ncols` values with block `block` (used by the
// fp8_per64 codec): ncols/block 16-bit scale fields (2 bytes each, little
// endian) holding the block maximum a16 = uf16(max(max|v|, 1e-4)) (see
// fp_formats.h), then ncols E4M3 codes q = E4M3(clamp(v / s16, -448, 448))
// with s16 = a16 / 448 in float32. Decode: v' = q * s16. Storing the maximum
// rather than the scale keeps the result identical to the float32-scale
// simulation whenever the block maximum has <= 11 significant bits.
// Rows are contiguous (stride ncols). Throws kvlab::Error on non-finite input
// or a block maximum above the uf16 range (~8.59e9).
int64_t fp8_block_code_size(int64_t ncols, int64_t block);

// The stored scale of one block from its largest magnitude bit pattern
// (|v| bits as uint32, as the SIMD kernels reduce them): a = max(amax, 1e-4)
// rounded to uf16 (a normal uf16 value for every a in [1e-4, kUf16Max]:
// 11 significant bits, RNE), its uf16 code and s = a16 / 448. False when
// the maximum is non-finite or beyond the uf16 field (the checked scalar
// path then reports it). Inline: the kernels call it once per block.
inline bool fp8_scale_from_max_bits(uint32_t mbits, uint16_t* code, float* s) {
  uint32_t limit;
  std::memcpy(&limit, &kUf16Max, 4);
  if (mbits > limit) return false;
  float amax;
  std::memcpy(&amax, &mbits, 4);
  const float a = amax > kFp8AmaxFloor ? amax : kFp8AmaxFloor;
  uint32_t au;
  std::memcpy(&au, &a, 4);
  au = (au + 0xfffu + ((au >> 13) & 1u)) & 0xffffe000u;
  *code = uint16_t(((au >> 23) - 96u) << 10 | ((au >> 13) & 0x3ffu));  // exponent field E + 96
  float a16;
  std::memcpy(&a16, &au, 4);
  *s = a16 / kE4m3Max;
  return true;
}
void fp8_block_encode(const float* x, int64_t rows, int64_t ncols, int64_t block, uint8_t* codes);
void fp8_block_decode(const uint8_t* codes, int64_t rows, int64_t ncols, int64_t block, float* out);
// Fused encode+decode without the bytes, bit-identical to decode(encode(x)).
void fp8_block_roundtrip(const float* x, int64_t rows, int64_t ncols, int64_t block, float* out);
// Scalar oracles for the three functions above.
void fp8_block_encode_ref(const float* x, int64_t rows, int64_t ncols, int64_t block, uint8_t* codes);
void fp8_block_decode_ref(const uint8_t* codes, int64_t rows, int64_t ncols, int64_t block, float* out);

}  // namespace kvlab::kernels
