// Scalar-quantisation byte formats (UE8M0 rule, v4_native, int,
// hadamard_lloyd); see scalar_quant.h.
//
// The fast row kernels are written once as always-inline loop bodies and
// instantiated three times: for the baseline x86-64 target, for AVX2 and
// for AVX-512 (target attributes, so one binary runs anywhere); the
// compiler vectorises each. simd_level() picks the instantiation, so tests
// can force every level. They perform the reference's float32 operations
// (division, clamp, round-to-nearest-even, multiplication) in the same
// order per element, so results are identical; -ffp-contract=off for the
// kernels keeps FMA contraction out.
#include "kernels/scalar_quant.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>
#include <vector>

#include "common/error.h"
#include "kernels/fp_formats.h"
#include "kernels/hadamard.h"
#include "kernels/simd.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static_assert(std::endian::native == std::endian::little, "the K-bit packers assume a little-endian host");

namespace kvlab::kernels {

namespace {

#define SQ_INLINE inline __attribute__((always_inline))
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && defined(__linux__)
#define SQ_HAVE_TARGETS 1
#define SQ_TARGET_AVX2 __attribute__((target("avx2")))
#define SQ_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,prefer-vector-width=512")))
#else
#define SQ_HAVE_TARGETS 0
#endif

// name_base / name_avx2 / name_avx512 from name_body, and name_fast(...)
// calling the one simd_level() selects.
#if SQ_HAVE_TARGETS
#define SQ_VARIANTS(ret, name, params, args)                                 \
  ret name##_base params { return name##_body args; }                       \
  SQ_TARGET_AVX2 ret name##_avx2 params { return name##_body args; }        \
  SQ_TARGET_AVX512 ret name##_avx512 params { return name##_body args; }    \
  ret name##_fast params {                                                  \
    switch (simd_level()) {                                                 \
      case SimdLevel::kAvx512: return name##_avx512 args;                   \
      case SimdLevel::kAvx2: return name##_avx2 args;                       \
      default: return name##_base args;                                     \
    }                                                                       \
  }
#else
#define SQ_VARIANTS(ret, name, params, args) \
  ret name##_fast params { return name##_body args; }
#endif

constexpr float kRoundMagic = 0x1.8p23f;  // (t + M) - M = RNE(t) for |t| < 2^22
constexpr float kV4Qmax = 448.0f;         // E4M3 largest finite value

[[noreturn]] void throw_bad_row(const char* what, const float* row, int64_t r, int64_t d) {
  for (int64_t j = 0; j < d; ++j)
    if (!std::isfinite(row[j]))
      throw Error(fmt::format("{} encode: input row {} column {} is {} (expected finite values)", what, r, j, row[j]));
  throw Error(fmt::format("{} encode: row {} overflows float32 after the Hadamard rotation (|x| too large)", what, r));
}

void check_rows(const char* what, int64_t rows) {
  KVLAB_CHECK(rows >= 0, "{}: rows = {} (expected >= 0)", what, rows);
}

// The rotated roundtrips work on an L1-resident scratch row and then store
// it. Outputs far beyond the caches (as fp8_block's threshold) are stored
// non-temporally, as memcpy does: no read-for-ownership of lines that are
// only overwritten. Values are unchanged either way.
constexpr int64_t kStreamMinValues = int64_t(16) << 20;

bool stream_output(const float* out, int64_t rows, int64_t d) {
#if SQ_HAVE_TARGETS
  return simd_level() >= SimdLevel::kAvx2 && rows * d >= kStreamMinValues && d % 16 == 0 &&
         (reinterpret_cast<uintptr_t>(out) & 63) == 0;
#else
  return false;
#endif
}

#if SQ_HAVE_TARGETS
SQ_TARGET_AVX2 void stream_row_avx2(float* dst, const float* src, int64_t d) {
  for (int64_t j = 0; j < d; j += 8) _mm256_stream_ps(dst + j, _mm256_loadu_ps(src + j));
}
SQ_TARGET_AVX512 void stream_row_avx512(float* dst, const float* src, int64_t d) {
  for (int64_t j = 0; j < d; j += 16) _mm512_stream_ps(dst + j, _mm512_loadu_ps(src + j));
}
#endif

// The input row into the scratch row. An explicit vector copy: glibc's
// memcpy of a 2 KiB row may take the `rep movsb` path, which was slower here
// between the compute of consecutive rows.
#if SQ_HAVE_TARGETS
SQ_TARGET_AVX2 void load_row_avx2(float* dst, const float* src, int64_t d) {
  for (int64_t j = 0; j < d; j += 8) _mm256_storeu_ps(dst + j, _mm256_loadu_ps(src + j));
}
SQ_TARGET_AVX512 void load_row_avx512(float* dst, const float* src, int64_t d) {
  for (int64_t j = 0; j < d; j += 16) _mm512_storeu_ps(dst + j, _mm512_loadu_ps(src + j));
}
#endif
void load_row(float* dst, const float* src, int64_t d) {
#if SQ_HAVE_TARGETS
  if (d % 16 == 0 && simd_level() >= SimdLevel::kAvx512) return load_row_avx512(dst, src, d);
  if (d % 8 == 0 && simd_level() >= SimdLevel::kAvx2) return load_row_avx2(dst, src, d);
#endif
  std::memcpy(dst, src, std::size_t(d) * sizeof(float));
}

// dst = src (d floats); non-temporal when `stream` (stream_output() true).
void store_row(float* dst, const float* src, int64_t d, bool stream) {
#if SQ_HAVE_TARGETS
  if (stream) return simd_level() >= SimdLevel::kAvx512 ? stream_row_avx512(dst, src, d) : stream_row_avx2(dst, src, d);
#endif
  std::memcpy(dst, src, std::size_t(d) * sizeof(float));
}

// The AVX-512 row kernels of the rotated formats (simd.h: the FWHT read
// straight from the input row, quantisers fused into its passes) run for
// D >= 16 at the AVX-512 level; they give the same bytes and floats.
bool rows512(int64_t d) { return d >= 16 && simd_level() >= SimdLevel::kAvx512; }

void stream_fence(bool stream) {
#if SQ_HAVE_TARGETS
  if (stream) _mm_sfence();  // order the non-temporal stores before any later store
#endif
}

// ---------------------------------------------------------------- shared bodies

// Largest |v| as bits (order-preserving for non-negative floats); any NaN or
// infinity shows as >= 0x7f800000.
SQ_INLINE uint32_t max_mag_bits(const float* __restrict v, int64_t n) {
  uint32_t m = 0;
  for (int64_t j = 0; j < n; ++j) {
    const uint32_t u = f32_bits(v[j]) & 0x7fffffffu;
    m = u > m ? u : m;
  }
  return m;
}

// K-bit fields, coordinate j at bits [jK, jK + K), LSB-first; 8 fields fill
// exactly K bytes. c holds the values (two's complement is kept by masking).
template <int K>
SQ_INLINE void pack_fields(const int32_t* __restrict c, int64_t n, uint8_t* __restrict dst) {
  if constexpr (K == 8) {
    for (int64_t j = 0; j < n; ++j) dst[j] = uint8_t(c[j]);
  } else if constexpr (K == 4 || K == 2 || K == 1) {
    constexpr int per = 8 / K;
    for (int64_t b = 0; b < n / per; ++b) {
      uint32_t v = 0;
      for (int i = 0; i < per; ++i) v |= (uint32_t(c[per * b + i]) & ((1u << K) - 1)) << (K * i);
      dst[b] = uint8_t(v);
    }
  } else {
    constexpr uint64_t mask = (uint64_t(1) << K) - 1;
    for (int64_t g = 0; g < n / 8; ++g) {
      uint64_t w = 0;
      for (int i = 0; i < 8; ++i) w |= (uint64_t(uint32_t(c[8 * g + i])) & mask) << (K * i);
      std::memcpy(dst + K * g, &w, K);
    }
  }
}

// Inverse of pack_fields, sign-extending when Signed. Returns non-zero when
// a signed field holds -2^(K-1) (never written by the int encoder). The flag
// is a uint32 OR (a bool reduction would keep the loops scalar).
template <int K, bool Signed>
SQ_INLINE uint32_t unpack_fields(const uint8_t* __restrict src, int64_t n, int32_t* __restrict c) {
  uint32_t bad = 0;
  if constexpr (K == 8 && Signed) {
    for (int64_t j = 0; j < n; ++j) {
      c[j] = int8_t(src[j]);
      bad |= src[j] == 0x80 ? 1u : 0u;
    }
  } else if constexpr (K == 8) {
    for (int64_t j = 0; j < n; ++j) c[j] = src[j];
  } else if constexpr (K == 4 || K == 2 || K == 1) {
    // Whole fields per byte: byte b holds fields 8/K b .. 8/K b + 8/K - 1.
    constexpr int per = 8 / K;
    for (int64_t b = 0; b < n / per; ++b)
      for (int i = 0; i < per; ++i) {
        const uint32_t u = (uint32_t(src[b]) >> (K * i)) & ((1u << K) - 1);
        if constexpr (Signed) {
          c[per * b + i] = int32_t(u << (32 - K)) >> (32 - K);
          bad |= u == (1u << (K - 1)) ? 1u : 0u;
        } else {
          c[per * b + i] = int32_t(u);
        }
      }
  } else {
    for (int64_t g = 0; g < n / 8; ++g) {
      uint64_t w = 0;
      std::memcpy(&w, src + K * g, K);
      for (int i = 0; i < 8; ++i) {
        const uint32_t u = uint32_t(w >> (K * i)) & ((1u << K) - 1);
        if constexpr (Signed) {
          c[8 * g + i] = int32_t(u << (32 - K)) >> (32 - K);
          bad |= u == (1u << (K - 1)) ? 1u : 0u;
        } else {
          c[8 * g + i] = int32_t(u);
        }
      }
    }
  }
  return bad;
}

#define SQ_SWITCH_BITS(K, CALL) \
  switch (K) {                  \
    case 1: CALL(1); break;     \
    case 2: CALL(2); break;     \
    case 3: CALL(3); break;     \
    case 4: CALL(4); break;     \
    case 5: CALL(5); break;     \
    case 6: CALL(6); break;     \
    case 7: CALL(7); break;     \
    default: CALL(8); break;    \
  }

// K-bit fields of n values (n % 8 == 0) at the current SIMD level.
void pack_rows_dispatch(int bits, const int32_t* c, int64_t n, uint8_t* dst);
// Returns non-zero when a signed field holds -2^(K-1).
uint32_t unpack_dispatch(int bits, bool sgn, const uint8_t* src, int64_t n, int32_t* c);

}  // namespace

// ---------------------------------------------------------------- UE8M0 rule

int ceil_log2_exact(float t) {
  const uint32_t u = f32_bits(t);
  KVLAB_CHECK(t > 0.0f && std::isfinite(t), "ceil_log2_exact: t = {} (expected finite and > 0)", t);
  const int e = int(u >> 23);
  const uint32_t m = u & 0x7fffffu;
  if (e > 0) return e - 127 + (m != 0 ? 1 : 0);
  return -149 + int(std::bit_width(m - 1));  // subnormal: t = m 2^-149, m >= 1
}

namespace {
// The rule without the range check: log2(s), >= -127.
inline int ue8m0_exponent_unchecked(float amax, float floor, float qmax) {
  const float a = amax > floor ? amax : floor;
  const float t = a * (1.0f / qmax);
  const int e = ceil_log2_exact(t);
  return e < -127 ? -127 : e;
}
}  // namespace

int ue8m0_scale_exponent(float amax, float floor, float qmax) {
  KVLAB_CHECK(std::isfinite(amax) && amax >= 0.0f, "ue8m0 scale: block max = {} (expected finite and >= 0)", amax);
  KVLAB_CHECK(floor > 0.0f && std::isfinite(floor), "ue8m0 scale: floor = {} (expected finite and > 0)", floor);
  KVLAB_CHECK(qmax >= 1.0f && std::isfinite(qmax), "ue8m0 scale: qmax = {} (expected finite and >= 1)", qmax);
  const int e = ue8m0_exponent_unchecked(amax, floor, qmax);
  KVLAB_CHECK(e <= 127, "ue8m0 scale: block max {} / {} needs the scale 2^{}, above the E8M0 range 2^127", amax,
              qmax, e);
  return e;
}

float ue8m0_scale_value(uint8_t b) {
  KVLAB_CHECK(b != 0xff, "ue8m0 scale byte 0xff is NaN");
  return b == 0 ? bits_f32(0x00400000u) : bits_f32(uint32_t(b) << 23);
}

// ---------------------------------------------------------------- v4_native

namespace {

// E4M3 code (RNE, sign kept) of |t| <= 448.
SQ_INLINE uint32_t e4m3_code(float t) {
  const uint32_t u = f32_bits(t);
  const uint32_t sign = (u >> 24) & 0x80u;
  const uint32_t a = u & 0x7fffffffu;
  const uint32_t rn = (a + 0x7ffffu + ((a >> 20) & 1u)) & 0xfff00000u;
  const uint32_t normal = (rn >> 20) - ((127u - 7u) << 3);
  // Below 2^-6 the grid is m 2^-9: adding 2^14 (float32 ulp 2^-9 there)
  // rounds to it with the FPU's round-to-nearest-even.
  const uint32_t sub = uint32_t(int32_t(((bits_f32(a) + 16384.0f) - 16384.0f) * 512.0f));  // signed: AVX2 has no unsigned conversion
  return (a < 0x3c800000u ? sub : normal) | sign;
}

// The E4M3 grid value of |t| <= 448 (e4m3_to_f32(e4m3_code(t))).
SQ_INLINE float e4m3_value_of(float t) {
  const uint32_t u = f32_bits(t);
  const uint32_t sign = u & 0x80000000u;
  const uint32_t a = u & 0x7fffffffu;
  const uint32_t rn = (a + 0x7ffffu + ((a >> 20) & 1u)) & 0xfff00000u;
  const uint32_t sub = f32_bits((bits_f32(a) + 16384.0f) - 16384.0f);
  return bits_f32((a < 0x3c800000u ? sub : rn) | sign);
}

// Value of an E4M3 code (not NaN).
SQ_INLINE float e4m3_decode(uint32_t c) {
  const uint32_t sign = (c & 0x80u) << 24;
  const uint32_t e = (c >> 3) & 15u, m = c & 7u;
  const uint32_t normal = sign | ((e + 120u) << 23) | (m << 20);
  const uint32_t sub = sign | f32_bits(float(int32_t(m)) * 0x1p-9f);
  return bits_f32(e == 0 ? sub : normal);
}

// bf16 bits of a finite float (RNE); an exponent of all ones = overflow.
SQ_INLINE uint32_t bf16_rne(float x) {
  const uint32_t u = f32_bits(x);
  return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

inline float pow2f(int e) { return bits_f32(uint32_t(e + 127) << 23); }  // normal range only

int64_t v4_scale_pad_bytes(int64_t nb) { return (nb + 7) / 8 * 8; }

// Returns false on a non-finite value or a RoPE value overflowing bf16.
SQ_INLINE bool v4_encode_row_body(const float* __restrict x, int64_t d, uint8_t* __restrict c) {
  const int64_t nope = d - kV4RopeDims, nb = nope / kV4ScaleBlock;
  uint8_t* sc = c + v4_native_scale_offset(d);
  for (int64_t k = 0; k < nb; ++k) {
    const float* v = x + k * kV4ScaleBlock;
    const uint32_t mb = max_mag_bits(v, kV4ScaleBlock);
    if (mb >= 0x7f800000u) return false;
    const int e = ue8m0_exponent_unchecked(bits_f32(mb), kV4AmaxFloor, kV4Qmax);
    sc[k] = uint8_t(e + 127);
    const float inv = pow2f(-e);  // x / 2^e == x * 2^-e exactly
    uint8_t* q = c + k * kV4ScaleBlock;
    for (int64_t j = 0; j < kV4ScaleBlock; ++j) {
      float t = v[j] * inv;
      t = t > 448.0f ? 448.0f : t;
      t = t < -448.0f ? -448.0f : t;
      q[j] = uint8_t(e4m3_code(t));
    }
  }
  for (int64_t k = nb; k < v4_scale_pad_bytes(nb); ++k) sc[k] = 0;
  const float* rope = x + nope;
  if (max_mag_bits(rope, kV4RopeDims) >= 0x7f800000u) return false;
  uint32_t over = 0;
  uint8_t* h = c + nope;
  for (int64_t j = 0; j < kV4RopeDims; ++j) {
    const uint32_t b = bf16_rne(rope[j]);
    over |= (b & 0x7f80u) == 0x7f80u ? 1u : 0u;
    h[2 * j] = uint8_t(b);
    h[2 * j + 1] = uint8_t(b >> 8);
  }
  return over == 0;
}

SQ_INLINE bool v4_roundtrip_row_body(const float* __restrict x, int64_t d, float* __restrict out) {
  const int64_t nope = d - kV4RopeDims, nb = nope / kV4ScaleBlock;
  for (int64_t k = 0; k < nb; ++k) {
    const float* v = x + k * kV4ScaleBlock;
    const uint32_t mb = max_mag_bits(v, kV4ScaleBlock);
    if (mb >= 0x7f800000u) return false;
    const int e = ue8m0_exponent_unchecked(bits_f32(mb), kV4AmaxFloor, kV4Qmax);
    const float inv = pow2f(-e), s = pow2f(e);  // e in [-22, 120] with the 1e-4 floor
    float* o = out + k * kV4ScaleBlock;
    for (int64_t j = 0; j < kV4ScaleBlock; ++j) {
      float t = v[j] * inv;
      t = t > 448.0f ? 448.0f : t;
      t = t < -448.0f ? -448.0f : t;
      o[j] = e4m3_value_of(t) * s;
    }
  }
  const float* rope = x + nope;
  if (max_mag_bits(rope, kV4RopeDims) >= 0x7f800000u) return false;
  uint32_t over = 0;
  for (int64_t j = 0; j < kV4RopeDims; ++j) {
    const uint32_t b = bf16_rne(rope[j]);
    over |= (b & 0x7f80u) == 0x7f80u ? 1u : 0u;
    out[nope + j] = bits_f32(b << 16);
  }
  return over == 0;
}

// Returns false when the record holds a byte no encoder writes.
SQ_INLINE bool v4_decode_row_body(const uint8_t* __restrict c, int64_t d, float* __restrict out) {
  const int64_t nope = d - kV4RopeDims, nb = nope / kV4ScaleBlock;
  const uint8_t* sc = c + v4_native_scale_offset(d);
  uint32_t bad = 0;
  for (int64_t k = 0; k < nb; ++k) bad |= sc[k] == 0xff ? 1u : 0u;
  for (int64_t k = nb; k < v4_scale_pad_bytes(nb); ++k) bad |= sc[k];
  for (int64_t j = 0; j < nope; ++j) bad |= (c[j] & 0x7fu) == 0x7fu ? 1u : 0u;
  const uint8_t* h = c + nope;
  for (int64_t j = 0; j < kV4RopeDims; ++j) bad |= (h[2 * j + 1] & 0x7fu) == 0x7fu && (h[2 * j] & 0x80u) ? 1u : 0u;
  if (bad != 0) return false;
  for (int64_t k = 0; k < nb; ++k) {
    const float s = sc[k] == 0 ? bits_f32(0x00400000u) : bits_f32(uint32_t(sc[k]) << 23);
    const uint8_t* q = c + k * kV4ScaleBlock;
    float* o = out + k * kV4ScaleBlock;
    for (int64_t j = 0; j < kV4ScaleBlock; ++j) o[j] = e4m3_decode(q[j]) * s;
  }
  for (int64_t j = 0; j < kV4RopeDims; ++j) out[nope + j] = bits_f32(uint32_t(h[2 * j] | h[2 * j + 1] << 8) << 16);
  return true;
}

SQ_VARIANTS(bool, v4_encode_row, (const float* x, int64_t d, uint8_t* c), (x, d, c))
SQ_VARIANTS(bool, v4_roundtrip_row, (const float* x, int64_t d, float* out), (x, d, out))
SQ_VARIANTS(bool, v4_decode_row, (const uint8_t* c, int64_t d, float* out), (c, d, out))

// Throws naming the first byte of record r that no encoder writes.
void v4_check_record(const uint8_t* c, int64_t r, int64_t d) {
  const int64_t nope = d - kV4RopeDims, nb = nope / kV4ScaleBlock, so = v4_native_scale_offset(d);
  for (int64_t j = 0; j < nope; ++j)
    KVLAB_CHECK((c[j] & 0x7f) != 0x7f, "v4_native decode: vector {} byte {} is an E4M3 NaN code 0x{:02x} (corrupt code)",
                r, j, c[j]);
  for (int64_t j = 0; j < kV4RopeDims; ++j) {
    const uint16_t h = uint16_t(c[nope + 2 * j] | c[nope + 2 * j + 1] << 8);
    KVLAB_CHECK((h & 0x7f80) != 0x7f80,
                "v4_native decode: vector {} bytes {}-{} hold the bf16 infinity/NaN pattern 0x{:04x} (corrupt code)", r,
                nope + 2 * j, nope + 2 * j + 1, h);
  }
  for (int64_t k = 0; k < nb; ++k)
    KVLAB_CHECK(c[so + k] != 0xff, "v4_native decode: vector {} byte {} is the UE8M0 NaN scale 0xff (corrupt code)", r,
                so + k);
  for (int64_t k = nb; k < v4_scale_pad_bytes(nb); ++k)
    KVLAB_CHECK(c[so + k] == 0, "v4_native decode: vector {} pad byte {} is 0x{:02x} (expected 0; corrupt code)", r,
                so + k, c[so + k]);
}

[[noreturn]] void v4_throw_bad_input(const float* row, int64_t r, int64_t d) {
  for (int64_t j = 0; j < d; ++j)
    if (!std::isfinite(row[j]))
      throw Error(fmt::format("v4_native encode: input row {} column {} is {} (expected finite values)", r, j, row[j]));
  for (int64_t j = d - kV4RopeDims; j < d; ++j)
    KVLAB_CHECK(std::isfinite(bf16_to_f32(f32_to_bf16(row[j]))),
                "v4_native encode: input row {} column {} = {} rounds to bf16 infinity (beyond the RoPE bf16 field)", r,
                j, row[j]);
  throw Error(fmt::format("v4_native encode: row {} cannot be encoded", r));
}

}  // namespace

int64_t v4_native_code_size(int64_t d) {
  KVLAB_CHECK(d >= 2 * kV4RopeDims && d % kV4ScaleBlock == 0,
              "v4_native: dimension D = {} is not supported (expected a multiple of 64, >= 128: 64 RoPE dims after "
              "at least one 64-dim FP8 block)",
              d);
  const int64_t nb = (d - kV4RopeDims) / kV4ScaleBlock;
  return (d - kV4RopeDims) + 2 * kV4RopeDims + v4_scale_pad_bytes(nb);
}

void v4_native_encode(const float* x, int64_t rows, int64_t d, uint8_t* codes) {
  const int64_t cs = v4_native_code_size(d);
  check_rows("v4_native encode", rows);
  for (int64_t r = 0; r < rows; ++r)
    if (!v4_encode_row_fast(x + r * d, d, codes + r * cs)) v4_throw_bad_input(x + r * d, r, d);
}

void v4_native_roundtrip(const float* x, int64_t rows, int64_t d, float* out) {
  v4_native_code_size(d);
  check_rows("v4_native roundtrip", rows);
  for (int64_t r = 0; r < rows; ++r)
    if (!v4_roundtrip_row_fast(x + r * d, d, out + r * d)) v4_throw_bad_input(x + r * d, r, d);
}

void v4_native_decode(const uint8_t* codes, int64_t rows, int64_t d, float* out) {
  const int64_t cs = v4_native_code_size(d);
  check_rows("v4_native decode", rows);
  for (int64_t r = 0; r < rows; ++r)
    if (!v4_decode_row_fast(codes + r * cs, d, out + r * d)) v4_check_record(codes + r * cs, r, d);
}

void v4_native_encode_ref(const float* x, int64_t rows, int64_t d, uint8_t* codes) {
  const int64_t cs = v4_native_code_size(d);
  check_rows("v4_native encode", rows);
  const int64_t nope = d - kV4RopeDims, nb = nope / kV4ScaleBlock, so = v4_native_scale_offset(d);
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * d;
    uint8_t* c = codes + r * cs;
    for (int64_t j = 0; j < d; ++j)
      if (!std::isfinite(row[j])) v4_throw_bad_input(row, r, d);
    for (int64_t k = 0; k < nb; ++k) {
      float amax = 0.0f;
      for (int64_t j = k * kV4ScaleBlock; j < (k + 1) * kV4ScaleBlock; ++j) amax = std::max(amax, std::fabs(row[j]));
      const uint8_t b = ue8m0_scale_byte(amax, kV4AmaxFloor, 448.0f);
      const float s = ue8m0_scale_value(b);
      c[so + k] = b;
      for (int64_t j = k * kV4ScaleBlock; j < (k + 1) * kV4ScaleBlock; ++j)
        c[j] = f32_to_e4m3(std::clamp(row[j] / s, -448.0f, 448.0f), /*saturate=*/true);
    }
    for (int64_t k = nb; k < cs - so; ++k) c[so + k] = 0;
    for (int64_t j = 0; j < kV4RopeDims; ++j) {
      const uint16_t h = f32_to_bf16(row[nope + j]);
      if (!std::isfinite(bf16_to_f32(h))) v4_throw_bad_input(row, r, d);
      c[nope + 2 * j] = uint8_t(h & 0xff);
      c[nope + 2 * j + 1] = uint8_t(h >> 8);
    }
  }
}

void v4_native_decode_ref(const uint8_t* codes, int64_t rows, int64_t d, float* out) {
  const int64_t cs = v4_native_code_size(d);
  check_rows("v4_native decode", rows);
  const int64_t nope = d - kV4RopeDims, so = v4_native_scale_offset(d);
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* c = codes + r * cs;
    v4_check_record(c, r, d);
    for (int64_t j = 0; j < nope; ++j) out[r * d + j] = e4m3_to_f32(c[j]) * ue8m0_scale_value(c[so + j / kV4ScaleBlock]);
    for (int64_t j = 0; j < kV4RopeDims; ++j)
      out[r * d + nope + j] = bf16_to_f32(uint16_t(c[nope + 2 * j] | c[nope + 2 * j + 1] << 8));
  }
}

// ---------------------------------------------------------------- int

namespace {

const char* int_name(const IntFormat& f) { return f.hadamard ? "hadamard_int" : "int"; }

float int_qmax(const IntFormat& f) { return float((1 << (f.bits - 1)) - 1); }

int64_t int_field_bytes(const IntFormat& f) { return f.scale == IntScale::kUf16 ? 2 : 1; }

// The scale s of one block and its stored field; throws (naming row r and
// block k) when the field cannot hold it.
float int_block_scale(const IntFormat& f, float amax, float qmax, int64_t r, int64_t k, uint16_t* field) {
  if (f.scale == IntScale::kUf16) {
    const float a = amax > kIntAmaxFloor ? amax : kIntAmaxFloor;
    KVLAB_CHECK(uf16_fits(a),
                "{} encode: row {} block {} has max |v| = {}, above the 16-bit (uf16) scale field's largest value {}",
                int_name(f), r, k, amax, kUf16Max);
    *field = f32_to_uf16(a);
    return uf16_to_f32(*field) / qmax;
  }
  const int e = ue8m0_exponent_unchecked(amax, kIntAmaxFloor, qmax);
  KVLAB_CHECK(e <= 127, "{} encode: row {} block {} has max |v| = {}, needing the scale 2^{} beyond E8M0's 2^127",
              int_name(f), r, k, amax, e);
  *field = uint16_t(e + 127);
  return ue8m0_scale_value(uint8_t(*field));
}

// Fields of one row: K d / 8 code bytes, then the scale fields.
SQ_INLINE void write_field(const IntFormat& f, uint8_t* sc, int64_t k, uint16_t v) {
  if (f.scale == IntScale::kUf16) {
    sc[2 * k] = uint8_t(v & 0xff);
    sc[2 * k + 1] = uint8_t(v >> 8);
  } else {
    sc[k] = uint8_t(v);
  }
}

SQ_INLINE uint16_t read_field(const IntFormat& f, const uint8_t* sc, int64_t k) {
  return f.scale == IntScale::kUf16 ? uint16_t(sc[2 * k] | sc[2 * k + 1] << 8) : sc[k];
}

// t = v / s. For a power-of-two s (UE8M0) v * (1 / s) is the same float
// (both round the exact v 2^-e once; 2^-e is representable for every
// E8M0 scale) without a division.
template <bool Pow2>
SQ_INLINE float div_scale(float v, float s, float inv) {
  if constexpr (Pow2) return v * inv;
  return v / s;
}

template <bool Pow2>
SQ_INLINE void int_quant_block(const float* __restrict v, int64_t b, float s, float inv, float qmax,
                               int32_t* __restrict c) {
  for (int64_t j = 0; j < b; ++j) {
    float t = div_scale<Pow2>(v[j], s, inv);
    t = t > qmax ? qmax : t;
    t = t < -qmax ? -qmax : t;
    c[j] = int32_t((t + kRoundMagic) - kRoundMagic);
  }
}

// y (d values, already rotated when the format says so) -> the integer codes
// in tmp and the scale fields in c. Returns false on a non-finite block
// maximum.
SQ_INLINE bool int_encode_row_body(const IntFormat& f, const float* __restrict y, int64_t r, int64_t d,
                                   uint8_t* __restrict c, int32_t* __restrict tmp) {
  const float qmax = int_qmax(f);
  const int64_t b = f.block, nb = d / b;
  uint8_t* sc = c + f.bits * d / 8;
  for (int64_t k = 0; k < nb; ++k) {
    const uint32_t mb = max_mag_bits(y + k * b, b);
    if (mb >= 0x7f800000u) return false;
    uint16_t field;
    const float s = int_block_scale(f, bits_f32(mb), qmax, r, k, &field);
    write_field(f, sc, k, field);
    if (f.scale == IntScale::kUe8m0)
      int_quant_block<true>(y + k * b, b, s, 1.0f / s, qmax, tmp + k * b);
    else
      int_quant_block<false>(y + k * b, b, s, 0.0f, qmax, tmp + k * b);
  }
  return true;  // the caller packs tmp into c (pack_rows_dispatch)
}

// One block of the fused roundtrip: out = RNE(clamp(v / s)) * s.
template <bool Pow2>
SQ_INLINE void int_rt_block(const float* __restrict v, float* __restrict o, int64_t b, float s, float inv,
                            float qmax) {
  for (int64_t j = 0; j < b; ++j) {
    float t = div_scale<Pow2>(v[j], s, inv);
    t = t > qmax ? qmax : t;
    t = t < -qmax ? -qmax : t;
    o[j] = ((t + kRoundMagic) - kRoundMagic) * s;
  }
}
// The same in place (one pointer, so the loop vectorises without an
// aliasing check).
template <bool Pow2>
SQ_INLINE void int_rt_block_inplace(float* __restrict v, int64_t b, float s, float inv, float qmax) {
  for (int64_t j = 0; j < b; ++j) {
    float t = div_scale<Pow2>(v[j], s, inv);
    t = t > qmax ? qmax : t;
    t = t < -qmax ? -qmax : t;
    v[j] = ((t + kRoundMagic) - kRoundMagic) * s;
  }
}

// y -> dequantised y into out (out == y allowed: in place).
SQ_INLINE bool int_roundtrip_row_body(const IntFormat& f, const float* y, int64_t r, int64_t d, float* out) {
  const float qmax = int_qmax(f);
  const int64_t b = f.block, nb = d / b;
  for (int64_t k = 0; k < nb; ++k) {
    const uint32_t mb = max_mag_bits(y + k * b, b);
    if (mb >= 0x7f800000u) return false;
    uint16_t field;
    const float s = int_block_scale(f, bits_f32(mb), qmax, r, k, &field);
    const bool p2 = f.scale == IntScale::kUe8m0;
    if (y == out && p2)
      int_rt_block_inplace<true>(out + k * b, b, s, 1.0f / s, qmax);
    else if (y == out)
      int_rt_block_inplace<false>(out + k * b, b, s, 0.0f, qmax);
    else if (p2)
      int_rt_block<true>(y + k * b, out + k * b, b, s, 1.0f / s, qmax);
    else
      int_rt_block<false>(y + k * b, out + k * b, b, s, 0.0f, qmax);
  }
  return true;
}

// tmp: the row's codes (unpack_dispatch) -> out. Returns false on a scale
// byte no encoder writes (the caller locates it).
SQ_INLINE bool int_decode_row_body(const IntFormat& f, const uint8_t* __restrict c, int64_t d, float* __restrict out,
                                   const int32_t* __restrict tmp) {
  const float qmax = int_qmax(f);
  const int64_t b = f.block, nb = d / b;
  const uint8_t* sc = c + f.bits * d / 8;
  uint32_t bad = 0;
  if (f.scale == IntScale::kUe8m0)
    for (int64_t k = 0; k < nb; ++k) bad |= sc[k] == 0xff ? 1u : 0u;
  if (bad != 0) return false;
  for (int64_t k = 0; k < nb; ++k) {
    const uint16_t field = read_field(f, sc, k);
    const float s = f.scale == IntScale::kUf16 ? uf16_to_f32(field) / qmax
                    : field == 0                ? bits_f32(0x00400000u)
                                                : bits_f32(uint32_t(field) << 23);
    const int32_t* q = tmp + k * b;
    float* o = out + k * b;
    for (int64_t j = 0; j < b; ++j) o[j] = float(q[j]) * s;
  }
  return true;
}

// int_block_scale inlined for the maxima the fields hold (the same
// arithmetic: uf16 RNE of a >= 2^-23, a normal uf16 value, and its float;
// the exact ceil(log2 t) of the normal t = a / qmax >= 2^-30), falling
// back to the checked function (which throws) otherwise. Finite amax.
SQ_INLINE float int_block_scale_fast(const IntFormat& f, float amax, float qmax, int64_t r, int64_t k) {
  const float a = amax > kIntAmaxFloor ? amax : kIntAmaxFloor;
  uint16_t field;
  if (f.scale == IntScale::kUf16) {
    if (!(a <= kUf16Max)) return int_block_scale(f, amax, qmax, r, k, &field);
    const uint32_t u = f32_bits(a);
    const uint32_t e10 = (u + 0xfffu + ((u >> 13) & 1u)) >> 13;  // f32_to_uf16's normal path, + (96 << 10)
    return bits_f32(e10 << 13) / qmax;                              // uf16_to_f32 of it
  }
  const uint32_t u = f32_bits(a * (1.0f / qmax));
  const int e = int(u >> 23) - 127 + ((u & 0x7fffffu) != 0 ? 1 : 0);
  if (e > 127) return int_block_scale(f, amax, qmax, r, k, &field);
  return bits_f32(uint32_t(e + 127) << 23);
}

// The scales s_k (and 1 / s_k) of a rotated row y, as int_roundtrip_row_body
// computes them. False on a non-finite block maximum.
SQ_INLINE bool int_scales_row_body(const IntFormat& f, const float* __restrict y, int64_t r, int64_t d,
                                   float* __restrict s, float* __restrict inv) {
  const float qmax = int_qmax(f);
  const int64_t b = f.block, nb = d / b;
  for (int64_t k = 0; k < nb; ++k) {
    const uint32_t mb = max_mag_bits(y + k * b, b);
    if (mb >= 0x7f800000u) return false;
    s[k] = int_block_scale_fast(f, bits_f32(mb), qmax, r, k);
    inv[k] = 1.0f / s[k];
  }
  return true;
}

// The decode scales of record c, as int_decode_row_body; false on a scale
// byte no encoder writes.
bool int_decode_scales(const IntFormat& f, const uint8_t* c, int64_t d, float* s) {
  const float qmax = int_qmax(f);
  const int64_t nb = d / f.block;
  const uint8_t* sc = c + f.bits * d / 8;
  for (int64_t k = 0; k < nb; ++k) {
    const uint16_t field = read_field(f, sc, k);
    if (f.scale == IntScale::kUe8m0 && field == 0xff) return false;
    s[k] = f.scale == IntScale::kUf16 ? uf16_to_f32(field) / qmax
           : field == 0                ? bits_f32(0x00400000u)
                                       : bits_f32(uint32_t(field) << 23);
  }
  return true;
}

SQ_VARIANTS(bool, int_scales_row,
            (const IntFormat& f, const float* y, int64_t r, int64_t d, float* s, float* inv), (f, y, r, d, s, inv))
SQ_VARIANTS(bool, int_encode_row,
            (const IntFormat& f, const float* y, int64_t r, int64_t d, uint8_t* c, int32_t* tmp),
            (f, y, r, d, c, tmp))
SQ_VARIANTS(bool, int_roundtrip_row, (const IntFormat& f, const float* y, int64_t r, int64_t d, float* out),
            (f, y, r, d, out))
SQ_VARIANTS(bool, int_decode_row,
            (const IntFormat& f, const uint8_t* c, int64_t d, float* out, const int32_t* tmp), (f, c, d, out, tmp))

// Throws naming the first byte of record r that no encoder writes.
void int_check_record(const IntFormat& f, const uint8_t* c, int64_t r, int64_t d) {
  const int K = f.bits;
  const uint32_t bad = 1u << (K - 1);
  for (int64_t j = 0; j < d; ++j) {
    const int64_t bit = j * K;
    uint32_t w = c[bit / 8] >> (bit % 8);
    if (bit % 8 + K > 8) w |= uint32_t(c[bit / 8 + 1]) << (8 - bit % 8);
    KVLAB_CHECK((w & ((1u << K) - 1)) != bad,
                "{} decode: vector {} byte {} holds the code -{} for coordinate {} (never written: codes are within "
                "+-{}; corrupt code)",
                int_name(f), r, bit / 8, bad, j, bad - 1);
  }
  if (f.scale == IntScale::kUe8m0)
    for (int64_t k = 0; k < d / f.block; ++k)
      KVLAB_CHECK(c[K * d / 8 + k] != 0xff, "{} decode: vector {} byte {} is the UE8M0 NaN scale 0xff (corrupt code)",
                  int_name(f), r, K * d / 8 + k);
}

}  // namespace

void int_check_format(const IntFormat& f, int64_t d) {
  KVLAB_CHECK(f.bits >= 2 && f.bits <= 8, "{} codec: bits = {} is not supported (expected 2..8)", int_name(f), f.bits);
  KVLAB_CHECK(f.block >= 8 && f.block % 8 == 0, "{} codec: block = {} is not supported (expected a multiple of 8)",
              int_name(f), f.block);
  KVLAB_CHECK(d >= f.block && d % f.block == 0,
              "{} codec: dimension D = {} is not supported (expected a positive multiple of the block {})",
              int_name(f), d, f.block);
  if (f.hadamard) check_hadamard_dim(d, "hadamard_int codec: dimension D");
}

int64_t int_code_size(const IntFormat& f, int64_t d) {
  int_check_format(f, d);
  return f.bits * d / 8 + int_field_bytes(f) * (d / f.block);
}

void int_encode(const IntFormat& f, const float* x, int64_t rows, int64_t d, uint8_t* codes) {
  const int64_t cs = int_code_size(f, d);
  check_rows("int encode", rows);
  std::vector<float> y(f.hadamard ? std::size_t(d) : 0);
  std::vector<int32_t> tmp(static_cast<std::size_t>(d));
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * d;
    const float* src = row;
    if (f.hadamard && rows512(d)) {
      avx512::fwht_normalized_from(row, d, y.data());
      src = y.data();
    } else if (f.hadamard) {
      load_row(y.data(), row, d);
      fwht_normalized(y.data(), d);
      src = y.data();
    }
    if (!int_encode_row_fast(f, src, r, d, codes + r * cs, tmp.data())) throw_bad_row(int_name(f), row, r, d);
    pack_rows_dispatch(f.bits, tmp.data(), d, codes + r * cs);
  }
}

namespace {

// int_roundtrip of a rotated format by the AVX-512 row kernels (block % 16
// == 0): rotate from the input row, the block scales, then requantise and
// rotate back into out in one kernel.
void int_roundtrip_rotated512(const IntFormat& f, const float* x, int64_t rows, int64_t d, float* out, bool stream) {
  std::vector<float> y(static_cast<std::size_t>(d)), s(std::size_t(d / f.block)), inv(s.size());
  const bool pow2 = f.scale == IntScale::kUe8m0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * d;
    avx512::fwht_normalized_from(row, d, y.data());
    bool ok;
    try {
      ok = int_scales_row_fast(f, y.data(), r, d, s.data(), inv.data());
    } catch (...) {
      stream_fence(stream);
      throw;
    }
    if (!ok) {
      stream_fence(stream);
      throw_bad_row(int_name(f), row, r, d);
    }
    avx512::int_requant_fwht(y.data(), d, f.block, s.data(), inv.data(), pow2, int_qmax(f), out + r * d, stream);
  }
  stream_fence(stream);
}

}  // namespace

void int_roundtrip(const IntFormat& f, const float* x, int64_t rows, int64_t d, float* out) {
  int_check_format(f, d);
  check_rows("int roundtrip", rows);
  if (!f.hadamard) {
    for (int64_t r = 0; r < rows; ++r)
      if (!int_roundtrip_row_fast(f, x + r * d, r, d, out + r * d)) throw_bad_row(int_name(f), x + r * d, r, d);
    return;
  }
  const bool stream = stream_output(out, rows, d);
  if (rows512(d) && f.block % 16 == 0) return int_roundtrip_rotated512(f, x, rows, d, out, stream);
  std::vector<float> y(static_cast<std::size_t>(d));
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * d;
    load_row(y.data(), row, d);
    fwht_normalized(y.data(), d);
    if (!int_roundtrip_row_fast(f, y.data(), r, d, y.data())) {
      stream_fence(stream);
      throw_bad_row(int_name(f), row, r, d);
    }
    fwht_normalized(y.data(), d);
    store_row(out + r * d, y.data(), d, stream);
  }
  stream_fence(stream);
}

void int_decode(const IntFormat& f, const uint8_t* codes, int64_t rows, int64_t d, float* out) {
  const int64_t cs = int_code_size(f, d);
  check_rows("int decode", rows);
  std::vector<int32_t> tmp(static_cast<std::size_t>(d));
  const bool fused = f.hadamard && rows512(d) && f.block % 16 == 0;
  std::vector<float> s(fused ? std::size_t(d / f.block) : 0);
  for (int64_t r = 0; r < rows; ++r) {
    const uint32_t bad = unpack_dispatch(f.bits, true, codes + r * cs, d, tmp.data());
    if (fused) {  // dequantise inside the rotation's first pass
      if (bad != 0 || !int_decode_scales(f, codes + r * cs, d, s.data())) int_check_record(f, codes + r * cs, r, d);
      avx512::int_dequant_fwht(tmp.data(), d, f.block, s.data(), out + r * d);
      continue;
    }
    if (bad != 0 || !int_decode_row_fast(f, codes + r * cs, d, out + r * d, tmp.data()))
      int_check_record(f, codes + r * cs, r, d);
    if (f.hadamard) fwht_normalized(out + r * d, d);
  }
}

void int_encode_ref(const IntFormat& f, const float* x, int64_t rows, int64_t d, uint8_t* codes) {
  const int64_t cs = int_code_size(f, d);
  check_rows("int encode", rows);
  const int K = f.bits;
  const float qmax = int_qmax(f);
  std::vector<float> y(static_cast<std::size_t>(d));
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * d;
    for (int64_t j = 0; j < d; ++j)
      if (!std::isfinite(row[j])) throw_bad_row(int_name(f), row, r, d);
    std::copy(row, row + d, y.begin());
    if (f.hadamard) fwht_normalized_ref(y.data(), d);
    uint8_t* c = codes + r * cs;
    std::fill(c, c + cs, uint8_t(0));
    for (int64_t k = 0; k < d / f.block; ++k) {
      float amax = 0.0f;
      for (int64_t j = k * f.block; j < (k + 1) * f.block; ++j) {
        if (!std::isfinite(y[j])) throw_bad_row(int_name(f), row, r, d);
        amax = std::max(amax, std::fabs(y[j]));
      }
      uint16_t field;
      const float s = int_block_scale(f, amax, qmax, r, k, &field);
      if (f.scale == IntScale::kUf16) {
        c[K * d / 8 + 2 * k] = uint8_t(field & 0xff);
        c[K * d / 8 + 2 * k + 1] = uint8_t(field >> 8);
      } else {
        c[K * d / 8 + k] = uint8_t(field);
      }
      for (int64_t j = k * f.block; j < (k + 1) * f.block; ++j) {
        const int q = int(std::nearbyint(std::clamp(y[j] / s, -qmax, qmax)));
        const uint32_t u = uint32_t(q) & ((1u << K) - 1);
        for (int i = 0; i < K; ++i)
          if (u >> i & 1u) c[(j * K + i) / 8] |= uint8_t(1u << ((j * K + i) % 8));
      }
    }
  }
}

void int_decode_ref(const IntFormat& f, const uint8_t* codes, int64_t rows, int64_t d, float* out) {
  const int64_t cs = int_code_size(f, d);
  check_rows("int decode", rows);
  std::vector<int16_t> sym(static_cast<std::size_t>(d));
  std::vector<uint16_t> fields(static_cast<std::size_t>(d / f.block));
  const float qmax = int_qmax(f);
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* c = codes + r * cs;
    int_check_record(f, c, r, d);
    int_symbols(f, c, 1, d, sym.data(), fields.data());
    float* o = out + r * d;
    for (int64_t j = 0; j < d; ++j) {
      const uint16_t field = fields[j / f.block];
      const float s = f.scale == IntScale::kUf16 ? uf16_to_f32(field) / qmax : ue8m0_scale_value(uint8_t(field));
      o[j] = float(sym[j]) * s;
    }
    if (f.hadamard) fwht_normalized_ref(o, d);
  }
}

void int_symbols(const IntFormat& f, const uint8_t* codes, int64_t rows, int64_t d, int16_t* symbols,
                 uint16_t* scales) {
  const int64_t cs = int_code_size(f, d);
  check_rows("int symbols", rows);
  const int K = f.bits;
  const int64_t nb = d / f.block;
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* c = codes + r * cs;
    if (symbols != nullptr)
      for (int64_t j = 0; j < d; ++j) {
        uint32_t u = 0;
        for (int i = 0; i < K; ++i) u |= uint32_t(c[(j * K + i) / 8] >> ((j * K + i) % 8) & 1u) << i;
        symbols[r * d + j] = int16_t(int32_t(u << (32 - K)) >> (32 - K));
      }
    if (scales != nullptr)
      for (int64_t k = 0; k < nb; ++k)
        scales[r * nb + k] = f.scale == IntScale::kUf16
                                 ? uint16_t(c[K * d / 8 + 2 * k] | c[K * d / 8 + 2 * k + 1] << 8)
                                 : c[K * d / 8 + k];
  }
}

// ---------------------------------------------------------------- hadamard_lloyd

namespace {

double gauss_pdf(double x) { return std::isinf(x) ? 0.0 : std::exp(-0.5 * x * x) / std::sqrt(2.0 * std::numbers::pi); }
// P(a < X < b) for X ~ N(0,1), accurate in both tails.
double gauss_mass(double a, double b) {
  if (a >= 0) return 0.5 * (std::erfc(a / std::numbers::sqrt2) - std::erfc(b / std::numbers::sqrt2));
  if (b <= 0) return 0.5 * (std::erfc(-b / std::numbers::sqrt2) - std::erfc(-a / std::numbers::sqrt2));
  return 1.0 - 0.5 * std::erfc(-a / std::numbers::sqrt2) - 0.5 * std::erfc(b / std::numbers::sqrt2);
}

LloydMaxGaussian compute_lloyd_max(int bits) {
  LloydMaxGaussian q;
  q.bits = bits;
  q.levels = 1 << bits;
  const int n = q.levels;
  const double inf = std::numeric_limits<double>::infinity();
  for (int i = 0; i < n; ++i) q.level[i] = -2.0 + 4.0 * (i + 0.5) / n;  // any ascending start converges
  auto edge = [&](int k) { return k == 0 ? -inf : k == n ? inf : 0.5 * (q.level[k - 1] + q.level[k]); };
  for (q.iterations = 1; q.iterations <= 1000000; ++q.iterations) {
    double change = 0.0;
    std::array<double, 16> next{};
    for (int i = 0; i < n; ++i) {
      const double a = edge(i), b = edge(i + 1);
      next[i] = (gauss_pdf(a) - gauss_pdf(b)) / gauss_mass(a, b);  // centroid of the cell
      change = std::max(change, std::fabs(next[i] - q.level[i]));
    }
    q.level = next;
    if (change < 1e-12) break;
  }
  KVLAB_ASSERT(q.iterations <= 1000000, "Lloyd-Max iteration did not converge");
  q.mse = 0.0;
  for (int i = 0; i < n; ++i) {
    const double a = edge(i), b = edge(i + 1), l = q.level[i];
    const double m0 = gauss_mass(a, b), m1 = gauss_pdf(a) - gauss_pdf(b);
    const double m2 = m0 + (std::isinf(a) ? 0.0 : a * gauss_pdf(a)) - (std::isinf(b) ? 0.0 : b * gauss_pdf(b));
    q.mse += m2 - 2.0 * l * m1 + l * l * m0;  // E[(X - l)^2; a < X < b]
  }
  for (int i = 0; i < n; ++i) q.level_f[i] = float(q.level[i]);
  for (int k = 0; k + 1 < n; ++k) {
    q.threshold[k] = 0.5 * (q.level[k] + q.level[k + 1]);
    q.threshold_f[k] = float(q.threshold[k]);
  }
  return q;
}

constexpr double kLloydZeroSumsq = 0x1p-46;  // ||x||^2 below (2^-23)^2: stored as zero

// Squared norm over 8 interleaved double partial sums (element j into
// partial j % 8, d % 8 == 0), as the lattice codec computes it.
// Also *mbits = the largest magnitude bits (non-finite: >= 0x7f800000).
SQ_INLINE double sumsq8_body(const float* __restrict x, int64_t d, uint32_t* mbits) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  uint32_t m = 0;
  for (int64_t j = 0; j < d; j += 8)
    for (int l = 0; l < 8; ++l) {
      const double v = x[j + l];
      acc[l] += v * v;
    }
  for (int64_t j = 0; j < d; ++j) {  // a separate loop: each vectorises alone
    const uint32_t u = f32_bits(x[j]) & 0x7fffffffu;
    m = u > m ? u : m;
  }
  *mbits = m;
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

double sumsq8_ref(const float* x, int64_t d) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t j = 0; j < d; ++j) acc[j % 8] += double(x[j]) * double(x[j]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// sigma16 code of a row (0 for a zero row); throws when sigma exceeds uf16.
uint16_t lloyd_sigma_code(double ss, int64_t r, int64_t d) {
  if (ss < kLloydZeroSumsq) return 0;
  const float sigma = float(std::sqrt(ss / double(d)));
  KVLAB_CHECK(uf16_fits(sigma),
              "hadamard_lloyd encode: row {} has RMS ||x||/sqrt(D) = {}, above the 16-bit (uf16) scale field's "
              "largest value {}",
              r, sigma, kUf16Max);
  const uint16_t code = f32_to_uf16(sigma);
  KVLAB_CHECK(code != 0, "hadamard_lloyd encode: row {} RMS {} rounds to uf16 zero", r, sigma);
  return code;
}

// The loops below take the thresholds and levels as local copies (so the
// stores to y cannot alias them) with the count NT = 2^K - 1 a constant:
// the inner loop unrolls into compare/select steps over vectors of z.
#define SQ_SWITCH_NT(K, CALL) \
  switch (K) {                \
    case 1: CALL(1); break;   \
    case 2: CALL(3); break;   \
    case 3: CALL(7); break;   \
    default: CALL(15); break; \
  }

// Indices of z = y / sig (the count of thresholds below z).
template <int NT>
SQ_INLINE void lloyd_index_nt(const LloydMaxGaussian& q, const float* __restrict y, int64_t d, float sig,
                              int32_t* __restrict idx) {
  float thr[NT];
  for (int k = 0; k < NT; ++k) thr[k] = q.threshold_f[k];
  for (int64_t j = 0; j < d; ++j) {
    const float z = y[j] / sig;
    int32_t i = 0;
    for (int k = 0; k < NT; ++k) i += z > thr[k] ? 1 : 0;
    idx[j] = i;
  }
}

// y (rotated) -> L_i * sig in place, the same choice as lloyd_index_nt.
template <int NT>
SQ_INLINE void lloyd_roundtrip_nt(const LloydMaxGaussian& q, float* __restrict y, int64_t d, float sig) {
  float thr[NT], lev[NT + 1];
  for (int k = 0; k < NT; ++k) thr[k] = q.threshold_f[k];
  for (int k = 0; k <= NT; ++k) lev[k] = q.level_f[k];
  for (int64_t j = 0; j < d; ++j) {
    const float z = y[j] / sig;
    float l = lev[0];
    for (int k = 0; k < NT; ++k) l = z > thr[k] ? lev[k + 1] : l;
    y[j] = l * sig;
  }
}

// out = L_idx * sig by compare/select (no gather).
template <int NT>
SQ_INLINE void lloyd_levels_nt(const LloydMaxGaussian& q, const int32_t* __restrict idx, int64_t d, float sig,
                               float* __restrict out) {
  float lev[NT + 1];
  for (int k = 0; k <= NT; ++k) lev[k] = q.level_f[k];
  for (int64_t j = 0; j < d; ++j) {
    const float i = float(idx[j]);  // compared as floats: the selects vectorise like lloyd_roundtrip_nt
    float l = lev[0];
    for (int k = 0; k < NT; ++k) l = i > float(k) ? lev[k + 1] : l;
    out[j] = l * sig;
  }
}

SQ_INLINE void lloyd_index_body(const LloydMaxGaussian& q, const float* y, int64_t d, float sig, int32_t* idx) {
#define SQ_CALL(NT) lloyd_index_nt<NT>(q, y, d, sig, idx)
  SQ_SWITCH_NT(q.bits, SQ_CALL)
#undef SQ_CALL
}

SQ_INLINE void lloyd_roundtrip_body(const LloydMaxGaussian& q, float* y, int64_t d, float sig) {
#define SQ_CALL(NT) lloyd_roundtrip_nt<NT>(q, y, d, sig)
  SQ_SWITCH_NT(q.bits, SQ_CALL)
#undef SQ_CALL
}

// idx: the row's indices (unpack_dispatch) -> out.
SQ_INLINE bool lloyd_decode_body(const LloydMaxGaussian& q, const uint8_t* __restrict c, int64_t d,
                                 float* __restrict out, const int32_t* __restrict idx) {
  const uint16_t code = uint16_t(c[0] | c[1] << 8);
  const uint8_t* b = c + 2;
  const int K = q.bits;
  if (code == 0) {
    uint32_t any = 0;
    for (int64_t j = 0; j < K * d / 8; ++j) any |= b[j];
    if (any != 0) return false;
  }
  const float sig = uf16_to_f32(code);
#define SQ_CALL(NT) lloyd_levels_nt<NT>(q, idx, d, sig, out)
  SQ_SWITCH_NT(K, SQ_CALL)
#undef SQ_CALL
  return true;
}

SQ_VARIANTS(double, sumsq8, (const float* x, int64_t d, uint32_t* mbits), (x, d, mbits))
SQ_VARIANTS(void, lloyd_index, (const LloydMaxGaussian& q, const float* y, int64_t d, float sig, int32_t* idx),
            (q, y, d, sig, idx))
SQ_VARIANTS(void, lloyd_roundtrip, (const LloydMaxGaussian& q, float* y, int64_t d, float sig), (q, y, d, sig))
SQ_VARIANTS(bool, lloyd_decode,
            (const LloydMaxGaussian& q, const uint8_t* c, int64_t d, float* out, const int32_t* idx),
            (q, c, d, out, idx))

// Finite check + sigma16 of one input row (fast path).
uint16_t lloyd_row_sigma_fast(const float* row, int64_t r, int64_t d) {
  uint32_t mbits;
  const double ss = sumsq8_fast(row, d, &mbits);
  if (mbits >= 0x7f800000u) throw_bad_row("hadamard_lloyd", row, r, d);
  return lloyd_sigma_code(ss, r, d);
}

// The thresholds (padded with +inf) and levels (padded with 0) as 16-lane
// tables for the AVX-512 kernels.
struct LloydTables16 {
  alignas(64) float thr[16];
  alignas(64) float lev[16];
  explicit LloydTables16(const LloydMaxGaussian& q) {
    for (int k = 0; k < 16; ++k) {
      thr[k] = k < q.levels - 1 ? q.threshold_f[k] : std::numeric_limits<float>::infinity();
      lev[k] = k < q.levels ? q.level_f[k] : 0.0f;
    }
  }
};

// sigma16 codes of the rows of x in order, the squared norms of 4 rows at
// a time at the AVX-512 level (avx512::sumsq8_rows: the same partial sums
// in the same order as sumsq8, 4 rows' addition chains interleaved, so the
// same values). code(r) is called for r = 0, 1, .. in order; checks and
// errors as lloyd_row_sigma_fast, row by row.
class LloydSigmas {
 public:
  LloydSigmas(const float* x, int64_t rows, int64_t d) : x_(x), rows_(rows), d_(d), batch_(rows512(d)) {}
  uint16_t code(int64_t r) {
    const float* row = x_ + r * d_;
    if (!batch_) return lloyd_row_sigma_fast(row, r, d_);
    if (r % 4 == 0) avx512::sumsq8_rows(row, std::min<int64_t>(4, rows_ - r), d_, ss_, mb_);
    if (mb_[r % 4] >= 0x7f800000u) throw_bad_row("hadamard_lloyd", row, r, d_);
    return lloyd_sigma_code(ss_[r % 4], r, d_);
  }

 private:
  const float* x_;
  int64_t rows_, d_;
  bool batch_;
  double ss_[4] = {0, 0, 0, 0};
  uint32_t mb_[4] = {0, 0, 0, 0};
};

// hadamard_lloyd_roundtrip at the AVX-512 level for D >= 256: each row's
// sum of squares comes out of its first FWHT passes (fwht_tiles_sumsq: the
// value sumsq8 gives), so x is read once. The sum is finite exactly when
// the row is (squares of finite floats sum far below double's range), so
// the finite check and the errors are LloydSigmas::code's, row by row.
// Software-pipelined: row r + 1's first passes run before row r's finish,
// so the latency of a row's sum (one chain of D / 8 adds) and of its
// sigma16 overlaps the finish of the row before.
void lloyd_roundtrip_fused512(const LloydTables16& t16, int bits, const float* x, int64_t rows, int64_t d, float* out,
                              bool stream) {
  if (rows == 0) return;
  std::vector<float> buf(static_cast<std::size_t>(2 * d));  // rows r and r + 1
  double ss_next = avx512::fwht_tiles_sumsq(x, d, buf.data());
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * d;
    float* y = buf.data() + (r & 1) * d;
    const double ss = ss_next;
    if (r + 1 < rows) ss_next = avx512::fwht_tiles_sumsq(row + d, d, buf.data() + ((r + 1) & 1) * d);
    uint16_t code;
    try {
      if (!std::isfinite(ss)) throw_bad_row("hadamard_lloyd", row, r, d);
      code = lloyd_sigma_code(ss, r, d);
    } catch (...) {
      stream_fence(stream);
      throw;
    }
    if (code == 0) {  // a zero vector
      std::fill(y, y + d, 0.0f);
      store_row(out + r * d, y, d, stream);
      continue;
    }
    avx512::lloyd_roundtrip_finish(y, d, bits, t16.thr, t16.lev, uf16_to_f32(code), out + r * d, stream);
  }
  stream_fence(stream);
}

void lloyd_check_record(const uint8_t* c, int64_t r, int bits, int64_t d) {
  if (c[0] != 0 || c[1] != 0) return;
  for (int64_t j = 0; j < bits * d / 8; ++j)
    KVLAB_CHECK(c[2 + j] == 0,
                "hadamard_lloyd decode: vector {} byte {} is 0x{:02x} but the scale sigma16 is zero (a zero vector "
                "stores zero indices; corrupt code)",
                r, 2 + j, c[2 + j]);
}

}  // namespace

const LloydMaxGaussian& lloyd_max_gaussian(int bits) {
  KVLAB_CHECK(bits >= 1 && bits <= 4, "hadamard_lloyd: bits = {} is not supported (expected 1..4)", bits);
  static const std::array<LloydMaxGaussian, 4> tables = [] {
    std::array<LloydMaxGaussian, 4> t;
    for (int k = 1; k <= 4; ++k) t[k - 1] = compute_lloyd_max(k);
    return t;
  }();
  return tables[bits - 1];
}

void hadamard_lloyd_check(int bits, int64_t d) {
  KVLAB_CHECK(bits >= 1 && bits <= 4, "hadamard_lloyd codec: bits = {} is not supported (expected 1..4)", bits);
  KVLAB_CHECK(d >= 8, "hadamard_lloyd codec: dimension D = {} is not supported (expected a power of two >= 8)", d);
  check_hadamard_dim(d, "hadamard_lloyd codec: dimension D");
}

int64_t hadamard_lloyd_code_size(int bits, int64_t d) {
  hadamard_lloyd_check(bits, d);
  return 2 + bits * d / 8;
}

void hadamard_lloyd_encode(int bits, const float* x, int64_t rows, int64_t d, uint8_t* codes) {
  const int64_t cs = hadamard_lloyd_code_size(bits, d);
  check_rows("hadamard_lloyd encode", rows);
  const LloydMaxGaussian& q = lloyd_max_gaussian(bits);
  const LloydTables16 t16(q);
  LloydSigmas sigmas(x, rows, d);
  std::vector<float> y(static_cast<std::size_t>(d));
  std::vector<int32_t> idx(static_cast<std::size_t>(d));
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * d;
    uint8_t* c = codes + r * cs;
    const uint16_t code = sigmas.code(r);
    c[0] = uint8_t(code & 0xff);
    c[1] = uint8_t(code >> 8);
    if (code == 0) {
      std::memset(c + 2, 0, std::size_t(cs - 2));
      continue;
    }
    if (rows512(d)) {
      avx512::lloyd_rotate_index(row, d, bits, t16.thr, uf16_to_f32(code), y.data(), idx.data());
    } else {
      load_row(y.data(), row, d);
      fwht_normalized(y.data(), d);
      lloyd_index_fast(q, y.data(), d, uf16_to_f32(code), idx.data());
    }
    pack_rows_dispatch(bits, idx.data(), d, c + 2);
  }
}

void hadamard_lloyd_roundtrip(int bits, const float* x, int64_t rows, int64_t d, float* out) {
  hadamard_lloyd_check(bits, d);
  check_rows("hadamard_lloyd roundtrip", rows);
  const LloydMaxGaussian& q = lloyd_max_gaussian(bits);
  const LloydTables16 t16(q);
  const bool stream = stream_output(out, rows, d);
  if (rows512(d) && d >= 256) return lloyd_roundtrip_fused512(t16, bits, x, rows, d, out, stream);
  LloydSigmas sigmas(x, rows, d);
  std::vector<float> y(static_cast<std::size_t>(d));
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * d;
    uint16_t code;
    try {
      code = sigmas.code(r);
    } catch (...) {
      stream_fence(stream);
      throw;
    }
    if (code != 0 && rows512(d)) {
      avx512::lloyd_roundtrip_row(row, d, bits, t16.thr, t16.lev, uf16_to_f32(code), y.data(), out + r * d, stream);
      continue;
    }
    if (code == 0) {  // a zero vector
      std::fill(y.begin(), y.end(), 0.0f);
    } else {
      load_row(y.data(), row, d);
      fwht_normalized(y.data(), d);
      lloyd_roundtrip_fast(q, y.data(), d, uf16_to_f32(code));
      fwht_normalized(y.data(), d);
    }
    store_row(out + r * d, y.data(), d, stream);
  }
  stream_fence(stream);
}

void hadamard_lloyd_decode(int bits, const uint8_t* codes, int64_t rows, int64_t d, float* out) {
  const int64_t cs = hadamard_lloyd_code_size(bits, d);
  check_rows("hadamard_lloyd decode", rows);
  const LloydMaxGaussian& q = lloyd_max_gaussian(bits);
  const LloydTables16 t16(q);
  std::vector<int32_t> idx(static_cast<std::size_t>(d));
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* c = codes + r * cs;
    float* o = out + r * d;
    if (c[0] == 0 && c[1] == 0) {
      lloyd_check_record(c, r, bits, d);
      std::memset(o, 0, std::size_t(d) * sizeof(float));
      continue;
    }
    unpack_dispatch(bits, false, c + 2, d, idx.data());
    if (rows512(d)) {  // sigma16 != 0 here: dequantise inside the rotation's first pass
      avx512::lloyd_dequant_fwht(idx.data(), d, t16.lev, uf16_to_f32(uint16_t(c[0] | c[1] << 8)), o);
      continue;
    }
    if (!lloyd_decode_fast(q, c, d, o, idx.data())) lloyd_check_record(c, r, bits, d);
    fwht_normalized(o, d);
  }
}

void hadamard_lloyd_encode_ref(int bits, const float* x, int64_t rows, int64_t d, uint8_t* codes) {
  const int64_t cs = hadamard_lloyd_code_size(bits, d);
  check_rows("hadamard_lloyd encode", rows);
  const LloydMaxGaussian& q = lloyd_max_gaussian(bits);
  std::vector<float> y(static_cast<std::size_t>(d));
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * d;
    uint8_t* c = codes + r * cs;
    for (int64_t j = 0; j < d; ++j)
      if (!std::isfinite(row[j])) throw_bad_row("hadamard_lloyd", row, r, d);
    const uint16_t code = lloyd_sigma_code(sumsq8_ref(row, d), r, d);
    std::fill(c, c + cs, uint8_t(0));
    c[0] = uint8_t(code & 0xff);
    c[1] = uint8_t(code >> 8);
    if (code == 0) continue;
    const float sig = uf16_to_f32(code);
    std::copy(row, row + d, y.begin());
    fwht_normalized_ref(y.data(), d);
    for (int64_t j = 0; j < d; ++j) {
      const float z = y[j] / sig;
      // The first threshold at or above z (thresholds ascending).
      const float* t = std::lower_bound(q.threshold_f.data(), q.threshold_f.data() + q.levels - 1, z);
      const uint32_t i = uint32_t(t - q.threshold_f.data());
      for (int b = 0; b < bits; ++b)
        if (i >> b & 1u) c[2 + (j * bits + b) / 8] |= uint8_t(1u << ((j * bits + b) % 8));
    }
  }
}

void hadamard_lloyd_decode_ref(int bits, const uint8_t* codes, int64_t rows, int64_t d, float* out) {
  const int64_t cs = hadamard_lloyd_code_size(bits, d);
  check_rows("hadamard_lloyd decode", rows);
  const LloydMaxGaussian& q = lloyd_max_gaussian(bits);
  std::vector<int16_t> idx(static_cast<std::size_t>(d));
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* c = codes + r * cs;
    lloyd_check_record(c, r, bits, d);
    uint16_t code;
    hadamard_lloyd_symbols(bits, c, 1, d, idx.data(), &code);
    float* o = out + r * d;
    if (code == 0) {  // a zero vector (+0 everywhere, not level * 0 rotated)
      std::fill(o, o + d, 0.0f);
      continue;
    }
    const float sig = uf16_to_f32(code);
    for (int64_t j = 0; j < d; ++j) o[j] = q.level_f[idx[j]] * sig;
    fwht_normalized_ref(o, d);
  }
}

void hadamard_lloyd_symbols(int bits, const uint8_t* codes, int64_t rows, int64_t d, int16_t* symbols,
                            uint16_t* sigma16) {
  const int64_t cs = hadamard_lloyd_code_size(bits, d);
  check_rows("hadamard_lloyd symbols", rows);
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* c = codes + r * cs;
    if (sigma16 != nullptr) sigma16[r] = uint16_t(c[0] | c[1] << 8);
    if (symbols != nullptr)
      for (int64_t j = 0; j < d; ++j) {
        uint32_t u = 0;
        for (int b = 0; b < bits; ++b) u |= uint32_t(c[2 + (j * bits + b) / 8] >> ((j * bits + b) % 8) & 1u) << b;
        symbols[r * d + j] = int16_t(u);
      }
  }
}

namespace {
SQ_INLINE void pack_rows_body(int bits, const int32_t* c, int64_t n, uint8_t* dst) {
#define SQ_PACK(KK) pack_fields<KK>(c, n, dst)
  SQ_SWITCH_BITS(bits, SQ_PACK)
#undef SQ_PACK
}
SQ_INLINE uint32_t unpack_rows_body(int bits, bool sgn, const uint8_t* src, int64_t n, int32_t* c) {
  uint32_t bad = 0;
#define SQ_UNPACK(KK) bad = sgn ? unpack_fields<KK, true>(src, n, c) : unpack_fields<KK, false>(src, n, c)
  SQ_SWITCH_BITS(bits, SQ_UNPACK)
#undef SQ_UNPACK
  return bad;
}
SQ_VARIANTS(void, pack_rows, (int bits, const int32_t* c, int64_t n, uint8_t* dst), (bits, c, n, dst))
SQ_VARIANTS(uint32_t, unpack_rows, (int bits, bool sgn, const uint8_t* src, int64_t n, int32_t* c),
            (bits, sgn, src, n, c))

// Fields that straddle bytes (K = 3, 5, 6, 7) do not vectorise as plain
// loops; these AVX2 kernels (also used at the AVX-512 level) handle 8 fields
// (K bytes) per step and leave the groups whose 8-byte load or store would
// pass the end of the fields to the portable loops.
bool odd_bits(int bits) { return bits == 3 || bits == 5 || bits == 6 || bits == 7; }

#if SQ_HAVE_TARGETS
// Number of leading groups of 8 fields whose 8-byte access stays within the
// K n / 8 bytes of fields.
inline int64_t safe_groups(int bits, int64_t n) {
  const int64_t nbytes = bits * n / 8;
  return nbytes >= 8 ? std::min<int64_t>(n / 8, (nbytes - 8) / bits + 1) : 0;
}

SQ_TARGET_AVX2 uint32_t unpack_odd_avx2(int K, bool sgn, const uint8_t* src, int64_t n, int32_t* c) {
  // Lane i takes bytes (iK)/8 and (iK)/8 + 1 of the group (both 128-bit
  // halves hold the same 8 bytes) and shifts right by (iK) % 8.
  alignas(32) int8_t ctrl[32];
  alignas(32) int32_t shift[8];
  for (int i = 0; i < 8; ++i) {
    const int b = (i * K) >> 3;
    ctrl[4 * i] = int8_t(b);
    ctrl[4 * i + 1] = int8_t(b + 1);
    ctrl[4 * i + 2] = ctrl[4 * i + 3] = int8_t(-128);  // zero
    shift[i] = (i * K) & 7;
  }
  const __m256i ctl = _mm256_load_si256(reinterpret_cast<const __m256i*>(ctrl));
  const __m256i sh = _mm256_load_si256(reinterpret_cast<const __m256i*>(shift));
  const __m256i mask = _mm256_set1_epi32((1 << K) - 1), minv = _mm256_set1_epi32(1 << (K - 1));
  const __m128i ext = _mm_cvtsi32_si128(32 - K);
  __m256i bad = _mm256_setzero_si256();
  const int64_t ng = safe_groups(K, n);
  for (int64_t g = 0; g < ng; ++g) {
    const __m128i raw = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + K * g));
    __m256i w = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(raw), ctl);
    w = _mm256_and_si256(_mm256_srlv_epi32(w, sh), mask);
    if (sgn) {
      bad = _mm256_or_si256(bad, _mm256_cmpeq_epi32(w, minv));
      w = _mm256_sra_epi32(_mm256_sll_epi32(w, ext), ext);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + 8 * g), w);
  }
  uint32_t flag = _mm256_testz_si256(bad, bad) ? 0u : 1u;
  if (ng * 8 < n) flag |= unpack_rows_base(K, sgn, src + K * ng, n - 8 * ng, c + 8 * ng);
  return flag;
}

SQ_TARGET_AVX2 void pack_odd_avx2(int K, const int32_t* c, int64_t n, uint8_t* dst) {
  const __m256i mask = _mm256_set1_epi32((1 << K) - 1);
  const __m256i sh_lo = _mm256_setr_epi64x(0, K, 2 * K, 3 * K), sh_hi = _mm256_setr_epi64x(4 * K, 5 * K, 6 * K, 7 * K);
  const int64_t ng = safe_groups(K, n);
  for (int64_t g = 0; g < ng; ++g) {
    const __m256i u = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 8 * g)), mask);
    const __m256i lo = _mm256_sllv_epi64(_mm256_cvtepu32_epi64(_mm256_castsi256_si128(u)), sh_lo);
    const __m256i hi = _mm256_sllv_epi64(_mm256_cvtepu32_epi64(_mm256_extracti128_si256(u, 1)), sh_hi);
    const __m256i x = _mm256_or_si256(lo, hi);
    const __m128i y = _mm_or_si128(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
    const uint64_t w = uint64_t(_mm_cvtsi128_si64(y)) | uint64_t(_mm_extract_epi64(y, 1));
    // 8 bytes: the K of this group, then zeros the next group overwrites.
    std::memcpy(dst + K * g, &w, 8);
  }
  if (ng * 8 < n) pack_rows_base(K, c + 8 * ng, n - 8 * ng, dst + K * ng);
}
#endif

void pack_rows_dispatch(int bits, const int32_t* c, int64_t n, uint8_t* dst) {
#if SQ_HAVE_TARGETS
  if (odd_bits(bits) && simd_level() >= SimdLevel::kAvx2) return pack_odd_avx2(bits, c, n, dst);
#endif
  pack_rows_fast(bits, c, n, dst);
}

uint32_t unpack_dispatch(int bits, bool sgn, const uint8_t* src, int64_t n, int32_t* c) {
#if SQ_HAVE_TARGETS
  if (odd_bits(bits) && simd_level() >= SimdLevel::kAvx2) return unpack_odd_avx2(bits, sgn, src, n, c);
#endif
  return unpack_rows_fast(bits, sgn, src, n, c);
}
}  // namespace

}  // namespace kvlab::kernels
