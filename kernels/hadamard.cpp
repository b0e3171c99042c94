// Fast Walsh-Hadamard transform; see hadamard.h.
#include "kernels/hadamard.h"

#include <cmath>

#include "common/error.h"
#include "kernels/dispatch.h"
#include "kernels/simd.h"

namespace kvlab::kernels {

bool is_power_of_two(int64_t d) { return d > 0 && (d & (d - 1)) == 0; }

void check_hadamard_dim(int64_t d, const char* what) {
  KVLAB_CHECK(is_power_of_two(d) && d <= (int64_t(1) << 30),
              "{} = {} is not supported: the Hadamard transform needs a power of two in [1, 2^30]", what, d);
}

float hadamard_norm_factor(int64_t d) { return float(1.0 / std::sqrt(double(d))); }

void fwht_raw_ref(float* x, int64_t d) {
  check_hadamard_dim(d);
  for (int64_t h = 1; h < d; h *= 2)
    for (int64_t i = 0; i < d; i += 2 * h)
      for (int64_t j = i; j < i + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
}

void fwht_normalized_ref(float* x, int64_t d) {
  fwht_raw_ref(x, d);
  const float c = hadamard_norm_factor(d);
  for (int64_t i = 0; i < d; ++i) x[i] *= c;
}

namespace {

// The first three stages (h = 1, 2, 4) on one 8-chunk, same operations and
// order as the reference loop.
inline void wht8(float* p) {
  float a0 = p[0] + p[1], a1 = p[0] - p[1], a2 = p[2] + p[3], a3 = p[2] - p[3];
  float a4 = p[4] + p[5], a5 = p[4] - p[5], a6 = p[6] + p[7], a7 = p[6] - p[7];
  float b0 = a0 + a2, b2 = a0 - a2, b1 = a1 + a3, b3 = a1 - a3;
  float b4 = a4 + a6, b6 = a4 - a6, b5 = a5 + a7, b7 = a5 - a7;
  p[0] = b0 + b4; p[4] = b0 - b4; p[1] = b1 + b5; p[5] = b1 - b5;
  p[2] = b2 + b6; p[6] = b2 - b6; p[3] = b3 + b7; p[7] = b3 - b7;
}

KVLAB_TARGET_CLONES void fwht_raw_fast(float* __restrict x, int64_t d) {
  if (d < 8) {
    for (int64_t h = 1; h < d; h *= 2)
      for (int64_t i = 0; i < d; i += 2 * h)
        for (int64_t j = i; j < i + h; ++j) {
          const float a = x[j], b = x[j + h];
          x[j] = a + b;
          x[j + h] = a - b;
        }
    return;
  }
  for (int64_t i = 0; i < d; i += 8) wht8(x + i);
  for (int64_t h = 8; h < d; h *= 2)
    for (int64_t i = 0; i < d; i += 2 * h) {
      float* __restrict lo = x + i;
      float* __restrict hi = x + i + h;
      for (int64_t j = 0; j < h; ++j) {
        const float a = lo[j], b = hi[j];
        lo[j] = a + b;
        hi[j] = a - b;
      }
    }
}

KVLAB_TARGET_CLONES void scale_inplace(float* __restrict x, int64_t d, float c) {
  for (int64_t i = 0; i < d; ++i) x[i] *= c;
}

}  // namespace

void fwht_raw(float* x, int64_t d) {
  check_hadamard_dim(d);
  fwht_raw_fast(x, d);
}

void fwht_normalized(float* x, int64_t d) {
  check_hadamard_dim(d);
  if (d >= 16 && simd_level() >= SimdLevel::kAvx512) return avx512::fwht_normalized(x, d);
  if (d >= 8 && simd_level() >= SimdLevel::kAvx2) return avx2::fwht_normalized(x, d);
  fwht_raw_fast(x, d);
  scale_inplace(x, d, hadamard_norm_factor(d));
}

void fwht_normalized_rows(float* x, int64_t rows, int64_t row_stride, int64_t d) {
  check_hadamard_dim(d);
  KVLAB_CHECK(rows >= 0 && row_stride >= d, "fwht rows: rows = {}, row_stride = {} (expected rows >= 0, stride >= D = {})",
              rows, row_stride, d);
  const float c = hadamard_norm_factor(d);
  if (d >= 16 && simd_level() >= SimdLevel::kAvx512) {
    for (int64_t r = 0; r < rows; ++r) avx512::fwht_normalized(x + r * row_stride, d);
    return;
  }
  if (d >= 8 && simd_level() >= SimdLevel::kAvx2) {
    for (int64_t r = 0; r < rows; ++r) avx2::fwht_normalized(x + r * row_stride, d);
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    fwht_raw_fast(x + r * row_stride, d);
    scale_inplace(x + r * row_stride, d, c);
  }
}

void fwht_normalized_rows_ref(float* x, int64_t rows, int64_t row_stride, int64_t d) {
  check_hadamard_dim(d);
  KVLAB_CHECK(rows >= 0 && row_stride >= d, "fwht rows: rows = {}, row_stride = {} (expected rows >= 0, stride >= D = {})",
              rows, row_stride, d);
  for (int64_t r = 0; r < rows; ++r) fwht_normalized_ref(x + r * row_stride, d);
}

}  // namespace kvlab::kernels
