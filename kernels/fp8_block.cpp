// FP8 per-block simulation and byte format; see fp8_block.h.
#include "kernels/fp8_block.h"

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/error.h"
#include "kernels/dispatch.h"
#include "kernels/fp_formats.h"
#include "kernels/simd.h"

namespace kvlab::kernels {

namespace {

void check_shape(const char* what, int64_t rows, int64_t ncols, int64_t block) {
  KVLAB_CHECK(block >= 1, "{}: block = {} (expected >= 1)", what, block);
  KVLAB_CHECK(rows >= 0 && ncols >= 0, "{}: rows = {}, ncols = {} (expected >= 0)", what, rows, ncols);
  KVLAB_CHECK(ncols % block == 0, "{}: ncols = {} is not divisible by the FP8 block {}", what, ncols, block);
}

[[noreturn]] void throw_nonfinite(const char* what, const float* row, int64_t r, int64_t ncols) {
  for (int64_t j = 0; j < ncols; ++j)
    if (!std::isfinite(row[j]))
      throw Error(fmt::format("{}: input row {} column {} is {} (expected finite values)", what, r, j, row[j]));
  throw Error(fmt::format("{}: non-finite input in row {}", what, r));
}

// Branch-free E4M3 rounding of a float with |x| <= 448 (see fp8_block.h).
inline float e4m3_round_inline(float x) {
  const uint32_t u = f32_bits(x);
  const uint32_t sign = u & 0x80000000u;
  const uint32_t a = u & 0x7fffffffu;
  const uint32_t rn = (a + 0x7ffffu + ((a >> 20) & 1u)) & 0xfff00000u;
  // Below 2^-6 the grid is uniform with step 2^-9: adding 2^14 rounds to it
  // (float32 ulp at 2^14 is 2^-9) with the FPU's round-to-nearest-even.
  const float sub = (bits_f32(a) + 16384.0f) - 16384.0f;
  const uint32_t r = a < 0x3c800000u ? f32_bits(sub) : rn;
  return bits_f32(r | sign);
}

// Code of a value already on the E4M3 grid (|v| <= 448).
inline uint8_t e4m3_code_of_grid_value(float v) {
  const uint32_t u = f32_bits(v);
  const uint32_t sign = (u >> 24) & 0x80u;
  const uint32_t a = u & 0x7fffffffu;
  const uint32_t normal = (a >> 20) - ((127u - 7u) << 3);
  const uint32_t sub = uint32_t(bits_f32(a) * 512.0f);
  return uint8_t((a < 0x3c800000u ? sub : normal) | sign);
}

// One block: returns false on non-finite input. Writes v' into out (may alias v).
KVLAB_TARGET_CLONES bool simulate_block(const float* v, float* out, int64_t b, float fp8_max) {
  // max |v| as an integer reduction over the magnitude bits (order-preserving
  // for non-negative floats, vectorisable); any NaN/inf shows as >= 0x7f800000.
  uint32_t mbits = 0;
  for (int64_t j = 0; j < b; ++j) {
    const uint32_t m = f32_bits(v[j]) & 0x7fffffffu;
    mbits = m > mbits ? m : mbits;
  }
  if (mbits >= 0x7f800000u) return false;
  const float amax = bits_f32(mbits);
  const float a = amax > kFp8AmaxFloor ? amax : kFp8AmaxFloor;
  const float s = a / fp8_max;
  for (int64_t j = 0; j < b; ++j) {
    float t = v[j] / s;
    t = t > fp8_max ? fp8_max : t;
    t = t < -fp8_max ? -fp8_max : t;
    out[j] = e4m3_round_inline(t) * s;
  }
  return true;
}

// UE8M0 block (v4 write path): returns false on non-finite input or a scale
// beyond float32 (only with a tiny fp8_max). s is a power of two, so v / s is
// v * (1 / s) exactly.
KVLAB_TARGET_CLONES bool simulate_block_ue8m0(const float* v, float* out, int64_t b, float fp8_max) {
  uint32_t mbits = 0;  // see simulate_block
  for (int64_t j = 0; j < b; ++j) {
    const uint32_t m = f32_bits(v[j]) & 0x7fffffffu;
    mbits = m > mbits ? m : mbits;
  }
  if (mbits >= 0x7f800000u) return false;
  const float amax = bits_f32(mbits);
  const float s = ue8m0_scale(amax > kFp8AmaxFloor ? amax : kFp8AmaxFloor, fp8_max);
  const uint32_t sb = f32_bits(s);
  if (sb >= 0x7f000000u) return false;  // s >= 2^127: 1/s would be subnormal
  const float inv = bits_f32((254u << 23) - sb);  // 2^-k for s = 2^k
  for (int64_t j = 0; j < b; ++j) {
    float t = v[j] * inv;
    t = t > fp8_max ? fp8_max : t;
    t = t < -fp8_max ? -fp8_max : t;
    out[j] = e4m3_round_inline(t) * s;
  }
  return true;
}

KVLAB_TARGET_CLONES bool block_amax(const float* __restrict v, int64_t b, float* amax_out) {
  uint32_t mbits = 0;  // see simulate_block
  for (int64_t j = 0; j < b; ++j) {
    const uint32_t m = f32_bits(v[j]) & 0x7fffffffu;
    mbits = m > mbits ? m : mbits;
  }
  *amax_out = bits_f32(mbits);
  return mbits < 0x7f800000u;
}

KVLAB_TARGET_CLONES void encode_block(const float* __restrict v, uint8_t* __restrict q, int64_t b, float s) {
  for (int64_t j = 0; j < b; ++j) {
    float t = v[j] / s;
    t = t > kE4m3Max ? kE4m3Max : t;
    t = t < -kE4m3Max ? -kE4m3Max : t;
    q[j] = e4m3_code_of_grid_value(e4m3_round_inline(t));
  }
}

KVLAB_TARGET_CLONES void roundtrip_block(const float* __restrict v, float* __restrict out, int64_t b, float s) {
  for (int64_t j = 0; j < b; ++j) {
    float t = v[j] / s;
    t = t > kE4m3Max ? kE4m3Max : t;
    t = t < -kE4m3Max ? -kE4m3Max : t;
    out[j] = e4m3_round_inline(t) * s;
  }
}

struct E4m3Table {
  float v[256];
  E4m3Table() {
    for (int c = 0; c < 256; ++c) v[c] = e4m3_to_f32(uint8_t(c));
  }
};
const E4m3Table& e4m3_table() {
  static const E4m3Table t;
  return t;
}

// The block maximum a = max(amax, 1e-4) is stored as uf16 and the scale
// derived from it, s16 = uf16(a) / 448, on both sides. When a has at most 11
// significant bits (e.g. a power of two) this equals the SPEC float32 scale.
inline float stored_scale(float amax, uint16_t* code) {
  const float a = amax > kFp8AmaxFloor ? amax : kFp8AmaxFloor;
  KVLAB_CHECK(uf16_fits(a),
              "fp8_per64: block max |v| = {} exceeds the 16-bit (uf16) block-max field's largest value {}", amax,
              kUf16Max);
  *code = f32_to_uf16(a);
  return uf16_to_f32(*code) / kE4m3Max;
}

}  // namespace

float e4m3_round_value(float x) { return e4m3_round_inline(x); }

void fp8_simulate_rows(float* data, int64_t rows, int64_t row_stride, int64_t ncols, int64_t block, float fp8_max) {
  check_shape("fp8_simulate_rows", rows, ncols, block);
  KVLAB_CHECK(fp8_max > 0.0f && fp8_max <= kE4m3Max, "fp8_simulate_rows: fp8_max = {} (expected in (0, 448])",
              fp8_max);
  KVLAB_CHECK(rows <= 1 || row_stride >= ncols, "fp8_simulate_rows: row_stride = {} < ncols = {}", row_stride,
              ncols);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = data + r * row_stride;
    for (int64_t j = 0; j < ncols; j += block)
      if (!simulate_block(row + j, row + j, block, fp8_max)) throw_nonfinite("fp8_simulate_rows", row, r, ncols);
  }
}

void fp8_simulate_rows_ref(float* data, int64_t rows, int64_t row_stride, int64_t ncols, int64_t block,
                           float fp8_max) {
  check_shape("fp8_simulate_rows_ref", rows, ncols, block);
  KVLAB_CHECK(fp8_max > 0.0f && fp8_max <= kE4m3Max, "fp8_simulate_rows_ref: fp8_max = {} (expected in (0, 448])",
              fp8_max);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = data + r * row_stride;
    for (int64_t j0 = 0; j0 < ncols; j0 += block) {
      float amax = 0.0f;
      for (int64_t j = j0; j < j0 + block; ++j) {
        if (!std::isfinite(row[j])) throw_nonfinite("fp8_simulate_rows_ref", row, r, ncols);
        amax = std::max(amax, std::fabs(row[j]));
      }
      const float a = std::max(amax, kFp8AmaxFloor);
      const float s = a / fp8_max;
      for (int64_t j = j0; j < j0 + block; ++j) {
        const float t = std::min(std::max(row[j] / s, -fp8_max), fp8_max);
        row[j] = e4m3_to_f32(f32_to_e4m3(t, /*saturate=*/true)) * s;
      }
    }
  }
}

void fp8_simulate_rows_ue8m0(float* data, int64_t rows, int64_t row_stride, int64_t ncols, int64_t block,
                             float fp8_max) {
  check_shape("fp8_simulate_rows_ue8m0", rows, ncols, block);
  KVLAB_CHECK(fp8_max > 0.0f && fp8_max <= kE4m3Max, "fp8_simulate_rows_ue8m0: fp8_max = {} (expected in (0, 448])",
              fp8_max);
  KVLAB_CHECK(rows <= 1 || row_stride >= ncols, "fp8_simulate_rows_ue8m0: row_stride = {} < ncols = {}", row_stride,
              ncols);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = data + r * row_stride;
    for (int64_t j = 0; j < ncols; j += block)
      if (!simulate_block_ue8m0(row + j, row + j, block, fp8_max)) {
        for (int64_t k = j; k < j + block; ++k)
          if (!std::isfinite(row[k])) throw_nonfinite("fp8_simulate_rows_ue8m0", row, r, ncols);
        throw Error(fmt::format("fp8_simulate_rows_ue8m0: row {} columns {}..{}: the UE8M0 scale for fp8_max = {} "
                                "is beyond float32",
                                r, j, j + block - 1, fp8_max));
      }
  }
}

void fp8_simulate_rows_ue8m0_ref(float* data, int64_t rows, int64_t row_stride, int64_t ncols, int64_t block,
                                 float fp8_max) {
  check_shape("fp8_simulate_rows_ue8m0_ref", rows, ncols, block);
  KVLAB_CHECK(fp8_max > 0.0f && fp8_max <= kE4m3Max,
              "fp8_simulate_rows_ue8m0_ref: fp8_max = {} (expected in (0, 448])", fp8_max);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = data + r * row_stride;
    for (int64_t j0 = 0; j0 < ncols; j0 += block) {
      float amax = 0.0f;
      for (int64_t j = j0; j < j0 + block; ++j) {
        if (!std::isfinite(row[j])) throw_nonfinite("fp8_simulate_rows_ue8m0", row, r, ncols);
        amax = std::max(amax, std::fabs(row[j]));
      }
      const float a = std::max(amax, kFp8AmaxFloor);
      // ceil(log2(y)) by frexp: y = m 2^e with m in [0.5, 1); y is a power
      // of two exactly when m == 0.5.
      const float y = a * (1.0f / fp8_max);
      int e = 0;
      const float m = std::frexp(y, &e);
      const int k = m == 0.5f ? e - 1 : e;
      KVLAB_CHECK(std::isfinite(y) && k < 127,
                  "fp8_simulate_rows_ue8m0: row {} block max {} with fp8_max = {} needs a scale beyond float32", r,
                  amax, fp8_max);
      const float s = std::ldexp(1.0f, k);
      for (int64_t j = j0; j < j0 + block; ++j) {
        const float t = std::min(std::max(row[j] / s, -fp8_max), fp8_max);
        row[j] = e4m3_to_f32(f32_to_e4m3(t, /*saturate=*/true)) * s;
      }
    }
  }
}

int64_t fp8_block_code_size(int64_t ncols, int64_t block) {
  check_shape("fp8_block_code_size", 1, ncols, block);
  return ncols + 2 * (ncols / block);
}

void fp8_block_encode(const float* x, int64_t rows, int64_t ncols, int64_t block, uint8_t* codes) {
  const int64_t cs = fp8_block_code_size(ncols, block);
  const int64_t nb = ncols / block;
  const bool wide = block % 16 == 0 && simd_level() >= SimdLevel::kAvx512;
  for (int64_t r = wide ? avx512::fp8_encode_rows(x, rows, ncols, block, codes) : 0; r < rows; ++r) {
    const float* row = x + r * ncols;
    uint8_t* c = codes + r * cs;
    for (int64_t k = 0; k < nb; ++k) {
      float amax;
      if (!block_amax(row + k * block, block, &amax)) throw_nonfinite("fp8_per64 encode", row, r, ncols);
      uint16_t sc;
      const float s = stored_scale(amax, &sc);
      c[2 * k] = uint8_t(sc & 0xff);
      c[2 * k + 1] = uint8_t(sc >> 8);
      encode_block(row + k * block, c + 2 * nb + k * block, block, s);
    }
  }
}

void fp8_block_encode_ref(const float* x, int64_t rows, int64_t ncols, int64_t block, uint8_t* codes) {
  const int64_t cs = fp8_block_code_size(ncols, block);
  const int64_t nb = ncols / block;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * ncols;
    uint8_t* c = codes + r * cs;
    for (int64_t k = 0; k < nb; ++k) {
      float amax = 0.0f;
      for (int64_t j = k * block; j < (k + 1) * block; ++j) {
        if (!std::isfinite(row[j])) throw_nonfinite("fp8_per64 encode", row, r, ncols);
        amax = std::max(amax, std::fabs(row[j]));
      }
      uint16_t sc;
      const float s = stored_scale(amax, &sc);
      c[2 * k] = uint8_t(sc & 0xff);
      c[2 * k + 1] = uint8_t(sc >> 8);
      for (int64_t j = k * block; j < (k + 1) * block; ++j)
        c[2 * nb + j] = f32_to_e4m3(std::min(std::max(row[j] / s, -kE4m3Max), kE4m3Max), true);
    }
  }
}

void fp8_block_decode(const uint8_t* codes, int64_t rows, int64_t ncols, int64_t block, float* out) {
  const int64_t cs = fp8_block_code_size(ncols, block);
  const int64_t nb = ncols / block;
  const float* tab = e4m3_table().v;
  const bool wide = block % 16 == 0 && simd_level() >= SimdLevel::kAvx512;
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* c = codes + r * cs;
    float* o = out + r * ncols;
    if (wide) {
      avx512::fp8_decode_row(c, ncols, block, o);
      continue;
    }
    for (int64_t k = 0; k < nb; ++k) {
      const float s = uf16_to_f32(uint16_t(c[2 * k] | (c[2 * k + 1] << 8))) / kE4m3Max;
      const uint8_t* q = c + 2 * nb + k * block;
      float* ob = o + k * block;
      for (int64_t j = 0; j < block; ++j) ob[j] = tab[q[j]] * s;
    }
  }
}

void fp8_block_decode_ref(const uint8_t* codes, int64_t rows, int64_t ncols, int64_t block, float* out) {
  const int64_t cs = fp8_block_code_size(ncols, block);
  const int64_t nb = ncols / block;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < ncols; ++j) {
      const uint8_t* c = codes + r * cs;
      const int64_t k = j / block;
      const float s = uf16_to_f32(uint16_t(c[2 * k] | (c[2 * k + 1] << 8))) / kE4m3Max;
      out[r * ncols + j] = e4m3_to_f32(c[2 * nb + j]) * s;
    }
}

// Roundtrips whose output has at least this many floats (64 MiB, far beyond
// the L2 and a fair share of L3) use streaming stores on the AVX-512 path.
constexpr int64_t kFp8StreamMinValues = int64_t(16) << 20;

inline void stream_fence() {
#if defined(__x86_64__)
  __builtin_ia32_sfence();
#endif
}

void fp8_block_roundtrip(const float* x, int64_t rows, int64_t ncols, int64_t block, float* out) {
  check_shape("fp8_block_roundtrip", rows, ncols, block);
  const int64_t nb = ncols / block;
  const bool simd = block % 8 == 0 && simd_level() >= SimdLevel::kAvx2;
  const bool wide = block % 16 == 0 && simd_level() >= SimdLevel::kAvx512;
  // Outputs far beyond the caches go around them (non-temporal stores), as
  // memcpy does: no read-for-ownership of lines that are only overwritten.
  const bool stream = wide && rows * ncols >= kFp8StreamMinValues && (reinterpret_cast<uintptr_t>(out) & 63) == 0 &&
                      (ncols * 4) % 64 == 0;
  for (int64_t r = wide ? avx512::fp8_roundtrip_rows(x, rows, ncols, block, out, stream) : 0; r < rows; ++r) {
    const float* row = x + r * ncols;
    if (!wide && simd && avx2::fp8_roundtrip_row(row, ncols, block, out + r * ncols)) continue;
    for (int64_t k = 0; k < nb; ++k) {
      float amax;
      if (!block_amax(row + k * block, block, &amax)) throw_nonfinite("fp8_per64 roundtrip", row, r, ncols);
      uint16_t sc;
      const float s = stored_scale(amax, &sc);
      roundtrip_block(row + k * block, out + r * ncols + k * block, block, s);
    }
  }
  if (stream) stream_fence();  // order the non-temporal stores before any later store
}

}  // namespace kvlab::kernels
