// Bit-exact conversions; see fp_formats.h for the contracts.
#include "kernels/fp_formats.h"

#include <cmath>
#include <limits>

#include "common/error.h"

namespace kvlab::kernels {

uint16_t f32_to_f16(float x) {
  uint32_t u = f32_bits(x);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  u &= 0x7fffffffu;
  if (u > 0x7f800000u) return uint16_t(sign | 0x7e00u);      // NaN
  if (u >= 0x477ff000u) return uint16_t(sign | 0x7c00u);     // >= 65520 -> inf
  if (u < 0x38800000u) {                                      // < 2^-14: subnormal
    // Exponent difference from 2^-14 normal; shift the full significand.
    if (u < 0x33000000u) return sign;                         // < 2^-25 -> 0 (2^-25 ties to 0)
    const uint32_t e = u >> 23;                               // 102..112
    const uint32_t mant = (u & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;                           // value = mant * 2^(e-150); unit 2^-24
    uint32_t q = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return uint16_t(sign | q);
  }
  // Normal: rebias and round the 13 dropped mantissa bits.
  const uint32_t odd = (u >> 13) & 1u;
  u += (uint32_t(15 - 127) << 23) + 0xfffu + odd;
  return uint16_t(sign | (u >> 13));
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu;
  const uint32_t m = h & 0x3ffu;
  if (e == 0x1f) return bits_f32(sign | 0x7f800000u | (m << 13));
  if (e == 0) {
    // m * 2^-24, exact in float32.
    const float v = float(m) * 0x1p-24f;
    return sign ? -v : v;
  }
  return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

uint16_t f32_to_bf16(float x) {
  const uint32_t u = f32_bits(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x0040u);  // quiet NaN
  const uint32_t odd = (u >> 16) & 1u;
  return uint16_t((u + 0x7fffu + odd) >> 16);
}

uint8_t f32_to_e4m3(float x, bool saturate) {
  const uint32_t u = f32_bits(x);
  const uint8_t sign = uint8_t((u >> 24) & 0x80u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return saturate ? uint8_t(0x7f) : uint8_t(sign | 0x7f);  // NaN
  if (saturate) {
    if (a > 0x43e00000u) return uint8_t(sign | 0x7e);  // |x| > 448 (incl. inf)
  } else {
    if (a > 0x43e80000u) return uint8_t(sign | 0x7f);  // |x| > 464 (incl. inf)
    if (a > 0x43e00000u) return uint8_t(sign | 0x7e);  // (448, 464] -> 448 (464 ties to even)
  }
  if (a < 0x3c800000u) {
    // Subnormal range (|x| < 2^-6): multiples of 2^-9; m = RNE(|x| * 2^9) in 0..8
    // (8 is the smallest normal 2^-6, whose code 0x08 continues the sequence).
    if (a < 0x3a000000u) return sign;  // |x| < 2^-11 (< a quarter step): 0
    const uint32_t e = a >> 23;        // 116..120
    const uint32_t mant = (a & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 150 - 9 - e;  // value*2^9 = mant * 2^(e-150+9)
    uint32_t q = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return uint8_t(sign | q);
  }
  // Normal: keep 3 of 23 mantissa bits with RNE; a carry bumps the exponent.
  const uint32_t odd = (a >> 20) & 1u;
  const uint32_t r = (a + 0x7ffffu + odd) >> 20;  // (exp_f32 << 3) | mant3
  return uint8_t(sign | uint8_t(r - ((127u - 7u) << 3)));
}

float e4m3_to_f32(uint8_t code) {
  const bool neg = (code & 0x80u) != 0;
  const uint32_t e = (code >> 3) & 0xfu;
  const uint32_t m = code & 0x7u;
  float v;
  if (e == 0xf && m == 0x7) {
    v = std::numeric_limits<float>::quiet_NaN();
  } else if (e == 0) {
    v = float(m) * 0x1p-9f;
  } else {
    v = bits_f32(((e + 120u) << 23) | (m << 20));
  }
  return neg ? -v : v;
}

float e8m0_to_f32(uint8_t e) {
  if (e == 0xff) return std::numeric_limits<float>::quiet_NaN();
  if (e == 0) return 0x1p-127f;  // float32 subnormal, exact
  return bits_f32(uint32_t(e) << 23);
}

bool uf16_fits(float v) { return v >= 0.0f && v <= kUf16Max; }

uint16_t f32_to_uf16(float v) {
  KVLAB_CHECK(v == v && v >= 0.0f, "uf16 scale field: value {} is negative or NaN (expected a finite value >= 0)",
              v);
  KVLAB_CHECK(v <= kUf16Max,
              "uf16 scale field: value {} exceeds the 16-bit field's largest value {} (input too large)", v,
              kUf16Max);
  const uint32_t a = f32_bits(v);
  // uf16 normal: exponent field E in 1..63 means 2^(E-31); float32 exponent
  // field e = E + 96. Subnormal: m * 2^-40.
  if (a < (uint32_t(97) << 23)) {      // < 2^-30
    if (a < (uint32_t(86) << 23)) return 0;  // < 2^-41 -> 0 (2^-41 ties to 0)
    const uint32_t e = a >> 23;
    const uint32_t mant = (a & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 150 - 40 - e;  // value*2^40 = mant * 2^(e-110)
    uint32_t q = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return uint16_t(q);
  }
  const uint32_t odd = (a >> 13) & 1u;
  const uint32_t r = (a + 0xfffu + odd) >> 13;  // (e << 10) | mant10, e float32 exponent
  return uint16_t(r - (uint32_t(96) << 10));
}

float uf16_to_f32(uint16_t u) {
  const uint32_t e = u >> 10;
  const uint32_t m = u & 0x3ffu;
  if (e == 0) return float(m) * 0x1p-40f;
  return bits_f32(((e + 96u) << 23) | (m << 13));
}

}  // namespace kvlab::kernels
