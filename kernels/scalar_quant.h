// Scalar-quantisation baselines with real byte formats: the UE8M0
// power-of-two scale rule, DeepSeek-V4's deployed 584-byte KV record
// ("v4_native"), symmetric per-block integer codes ("int", optionally after
// a Walsh-Hadamard rotation) and a rotated Lloyd-Max Gaussian quantiser
// ("hadamard_lloyd").
//
// Each format has a scalar `*_ref` oracle (plain loops over fp_formats.h
// conversions) and a fast version that gives bit-identical bytes and floats
// at every SIMD level (kernels/simd.h: the fast loops are compiled for the
// baseline, AVX2 and AVX-512 targets and chosen by simd_level()). At the
// AVX-512 level the rotated formats (hadamard_int with block % 16 == 0,
// hadamard_lloyd; D >= 16) run hand-written row kernels (simd.h): the FWHT
// read straight from the input row, the quantiser fused into its passes,
// the output written once (non-temporal for large tensors); same values.
// The fused `*_roundtrip` equals decode(encode(x)) bit for bit.
//
// Rows are contiguous float32 vectors of `d` values; codes are `code_size`
// bytes per row, back to back. Encoders throw kvlab::Error on non-finite
// input (naming row and column) or on magnitudes the scale field cannot
// hold; decoders throw on byte strings no encoder writes (naming vector and
// byte). Not here: the codec classes and specs (src/codec/), metrics.
#pragma once

#include <array>
#include <cstdint>

namespace kvlab::kernels {

// ---------------------------------------------------------------- UE8M0 rule
// The exact ceil(log2 t) of a finite t > 0 (normal or subnormal), from the
// float32 bits: normal t: unbiased exponent, +1 if the mantissa is non-zero;
// subnormal t = m 2^-149: -149 + ceil(log2 m).
int ceil_log2_exact(float t);
// V4's scale rule (SPEC-V4-ATTENTION section 5) for a block maximum amax >= 0
// (finite): a = max(amax, floor), t = a * fl(1/qmax) in float32,
// s = 2^ceil(log2 t), raised to 2^-127 (the smallest E8M0 value) if below.
// Returns log2(s); the stored byte is that + 127. Throws kvlab::Error when
// log2(s) > 127 (no E8M0 byte holds it). floor > 0, qmax >= 1.
int ue8m0_scale_exponent(float amax, float floor, float qmax);
inline uint8_t ue8m0_scale_byte(float amax, float floor, float qmax) {
  return uint8_t(ue8m0_scale_exponent(amax, floor, qmax) + 127);
}
// 2^(b - 127) for b in [0, 254] (b = 0 gives the float32 subnormal 2^-127).
float ue8m0_scale_value(uint8_t b);

// ---------------------------------------------------------------- v4_native
// Per vector of d values (d % 64 == 0, d >= 128), d - 64 "nope" dims then
// 64 RoPE dims:
//   bytes [0, d-64)            E4M3FN codes of clamp(x / s_k, +-448), RNE,
//                              saturating, s_k = 2^e_k of 64-dim block k by the
//                              UE8M0 rule with floor 1e-4, qmax 448
//   bytes [d-64, d+64)         the 64 RoPE dims as bf16 (RNE), little endian
//   bytes [d+64, d+64+nb)      nb = (d-64)/64 scale bytes e_k + 127
//   then zero bytes up to a multiple of 8 for the scale group.
// d = 512: 448 + 128 + 7 + 1 = 584 bytes. Decode: code * s_k (exact), bf16
// widened. Encode rejects non-finite input and RoPE values whose bf16
// rounding overflows to infinity; decode rejects scale byte 0xFF, a non-zero
// pad byte, E4M3 NaN codes (0x7F/0xFF) and bf16 infinity/NaN patterns.
// Symbols: the E4M3 code bytes are bytes [0, d-64) of each record, the
// scale bytes follow the bf16 part (v4_native_scale_offset); read them from
// the encoded bytes.
inline constexpr int64_t kV4RopeDims = 64;
inline constexpr int64_t kV4ScaleBlock = 64;
inline constexpr float kV4AmaxFloor = 1e-4f;
// Throws kvlab::Error unless d % 64 == 0 and d >= 128.
int64_t v4_native_code_size(int64_t d);
// Offset of the first scale byte within a record: (d - 64) + 128.
inline int64_t v4_native_scale_offset(int64_t d) { return d + kV4RopeDims; }
void v4_native_encode(const float* x, int64_t rows, int64_t d, uint8_t* codes);
void v4_native_decode(const uint8_t* codes, int64_t rows, int64_t d, float* out);
void v4_native_roundtrip(const float* x, int64_t rows, int64_t d, float* out);
void v4_native_encode_ref(const float* x, int64_t rows, int64_t d, uint8_t* codes);
void v4_native_decode_ref(const uint8_t* codes, int64_t rows, int64_t d, float* out);

// ---------------------------------------------------------------- int
// Symmetric per-block integer codes. K = bits in [2, 8], qmax = 2^(K-1) - 1,
// block B a multiple of 8 dividing d. Per block, with a = max(amax, 2^-23):
//  - kUf16 : a16 = uf16(a) (RNE, fp_formats.h), s = a16 / qmax (float32);
//            field = the uf16 code of a16 (2 bytes, little endian)
//  - kUe8m0: s = 2^e by the UE8M0 rule (floor 2^-23, qmax); field = e + 127
// code = RNE(clamp(x / s, +-qmax)) (float32 division). With `hadamard` the
// row is first rotated, y = H x / sqrt(d) (hadamard.h, d a power of two), and
// decode rotates back. Layout per vector: the d codes as K-bit two's
// complement, coordinate j at bits [jK, jK + K) counted LSB-first from byte
// 0 (little endian), then d/B scale fields. code_size = K d / 8 + fields.
// Decode: code * s (then H / sqrt(d)). It rejects the code -2^(K-1) (never
// written) and the scale byte 0xFF (kUe8m0).
enum class IntScale { kUf16 = 0, kUe8m0 = 1 };
inline constexpr float kIntAmaxFloor = 0x1p-23f;
struct IntFormat {
  int bits = 8;
  int64_t block = 64;
  IntScale scale = IntScale::kUf16;
  bool hadamard = false;
};
// Throws kvlab::Error naming the bad value (bits, block, d).
void int_check_format(const IntFormat& f, int64_t d);
int64_t int_code_size(const IntFormat& f, int64_t d);
void int_encode(const IntFormat& f, const float* x, int64_t rows, int64_t d, uint8_t* codes);
void int_decode(const IntFormat& f, const uint8_t* codes, int64_t rows, int64_t d, float* out);
void int_roundtrip(const IntFormat& f, const float* x, int64_t rows, int64_t d, float* out);
void int_encode_ref(const IntFormat& f, const float* x, int64_t rows, int64_t d, uint8_t* codes);
void int_decode_ref(const IntFormat& f, const uint8_t* codes, int64_t rows, int64_t d, float* out);
// The stored symbols of encoded rows: codes[r * d + j] = the signed integer
// code of coordinate j (in [-qmax, qmax]); scales[r * (d/B) + k] = the raw
// scale field of block k (uf16 code, or the E8M0 byte). Either output may be
// null. Reads the bytes (no validation beyond the sizes).
void int_symbols(const IntFormat& f, const uint8_t* codes, int64_t rows, int64_t d, int16_t* symbols,
                 uint16_t* scales);

// ---------------------------------------------------------------- hadamard_lloyd
// Rotation y = H x / sqrt(d) (d a power of two >= 8), sigma = ||x|| / sqrt(d)
// (float32 of sqrt(ss / d), ss the squared norm over 8 interleaved double
// partial sums as the lattice codec's), stored as sigma16 = uf16(sigma);
// each y_j / sigma16 (float32) quantised to index i = #{k : z > t_k} of the
// Lloyd-Max quantiser of N(0,1) with 2^K levels (K in [1, 4]; float32
// thresholds t_k and levels L_i). Vectors with ss < 2^-46 (norm below the
// lattice codec's eps 2^-23) store sigma16 = 0 and index 0 everywhere and
// decode to zeros. Layout: 2 bytes sigma16 (uf16 code, little endian), then
// the d indices as K-bit unsigned fields, LSB-first, little endian.
// code_size = 2 + ceil(K d / 8). Decode: H (L_i * sigma16) / sqrt(d). It
// rejects sigma16 = 0 with a non-zero index byte.
struct LloydMaxGaussian {
  int bits = 0;
  int levels = 0;                       // 2^bits
  std::array<double, 16> level{};       // ascending centroids
  std::array<double, 15> threshold{};   // (level[i] + level[i+1]) / 2
  std::array<float, 16> level_f{};      // float32 of level
  std::array<float, 15> threshold_f{};  // float32 of threshold
  double mse = 0;                       // E[(X - Q(X))^2], X ~ N(0,1)
  int iterations = 0;                   // Lloyd iterations to convergence
};
// Computed once per K (thread-safe) by Lloyd iterations on the exact N(0,1)
// density until no level moves by 1e-12. Throws kvlab::Error unless 1 <= K <= 4.
const LloydMaxGaussian& lloyd_max_gaussian(int bits);
void hadamard_lloyd_check(int bits, int64_t d);
int64_t hadamard_lloyd_code_size(int bits, int64_t d);
void hadamard_lloyd_encode(int bits, const float* x, int64_t rows, int64_t d, uint8_t* codes);
void hadamard_lloyd_decode(int bits, const uint8_t* codes, int64_t rows, int64_t d, float* out);
void hadamard_lloyd_roundtrip(int bits, const float* x, int64_t rows, int64_t d, float* out);
void hadamard_lloyd_encode_ref(int bits, const float* x, int64_t rows, int64_t d, uint8_t* codes);
void hadamard_lloyd_decode_ref(int bits, const uint8_t* codes, int64_t rows, int64_t d, float* out);
// symbols[r * d + j] = the level index of coordinate j (0 .. 2^K - 1);
// sigma16[r] = the uf16 code. Either may be null.
void hadamard_lloyd_symbols(int bits, const uint8_t* codes, int64_t rows, int64_t d, int16_t* symbols,
                            uint16_t* sigma16);

}  // namespace kvlab::kernels
