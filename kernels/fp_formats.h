// Bit-exact scalar conversions between float32 and the small floating-point
// formats used by kvlab: IEEE binary16 (fp16), bfloat16, OCP FP8 E4M3FN,
// OCP E8M0 scales, and kvlab's unsigned 16-bit scale format "uf16".
//
// All rounding is round-to-nearest, ties-to-even, computed with integer bit
// manipulation (independent of the FPU rounding mode except where noted).
// These are scalar building blocks; vectorised block kernels live in
// fp8_block.h. Not a general softfloat library: no signalling-NaN payload
// preservation, no directed rounding.
//
// References: IEEE 754-2008 (binary16); OCP 8-bit Floating Point
// Specification (OFP8) rev 1.0, 2023 (E4M3FN, E8M0).
#pragma once

#include <cstdint>
#include <cstring>

namespace kvlab::kernels {

inline uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bits_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// IEEE binary16. RNE; |x| >= 65520 (the midpoint above 65504) -> +-inf;
// NaN -> quiet NaN with the input's sign.
uint16_t f32_to_f16(float x);
float f16_to_f32(uint16_t h);

// bfloat16 (the upper 16 bits of a float32), RNE; NaN stays NaN.
uint16_t f32_to_bf16(float x);
inline float bf16_to_f32(uint16_t b) { return bits_f32(uint32_t(b) << 16); }

// OCP FP8 E4M3FN: 1 sign, 4 exponent bits (bias 7), 3 mantissa bits, no
// infinities, 0x7F/0xFF = NaN, max finite 448, subnormals m * 2^-9.
// RNE (ties to the code with LSB 0); the sign is kept (tiny negatives -> -0).
// saturate = true : |x| > 448 and +-inf -> +-448 (0x7E / 0xFE); NaN -> 0x7F.
// saturate = false: (PyTorch .to(float8_e4m3fn)) |x| > 464, +-inf, NaN ->
//                   0x7F | sign; 448 < |x| <= 464 -> +-448.
uint8_t f32_to_e4m3(float x, bool saturate = true);
float e4m3_to_f32(uint8_t code);

// OCP E8M0 (scale-only): 2^(e - 127); 0xFF = NaN.
float e8m0_to_f32(uint8_t e);

// kvlab "uf16": unsigned 16-bit float, 6 exponent bits (bias 31), 10
// mantissa bits, subnormals, no sign/inf/NaN. It has fp16's 11-bit
// precision, so for every value that fp16 represents as a normal number
// (2^-14 <= v <= 65504) the RNE result is identical to fp16's; its range
// extends to 2^-40 (subnormal) .. (2 - 2^-10) * 2^32 ~ 8.59e9. kvlab stores
// vector norms and FP8 block scales in it (always >= 0). Values above
// kUf16Max do not fit: uf16_fits() is false and f32_to_uf16 throws
// kvlab::Error; negative or NaN inputs throw too.
inline constexpr float kUf16Max = 0x1.ffcp+32f;  // (2 - 2^-10) * 2^32 ~ 8.59e9
bool uf16_fits(float v);
uint16_t f32_to_uf16(float v);
float uf16_to_f32(uint16_t u);

}  // namespace kvlab::kernels
