// Orthonormal fast Walsh-Hadamard transform (Sylvester ordering).
//
// y = H x with H the D x D Sylvester Hadamard matrix (H_1 = [1],
// H_2n = [[H, H], [H, -H]]) divided by sqrt(D): orthonormal, symmetric, its
// own inverse. O(D log D) butterflies, in place, float32; D must be a power
// of two (1 <= D <= 2^30; otherwise kvlab::Error). The normalisation is one
// multiplication by fl32(1/sqrt(D)) after the butterflies.
//
// `*_ref` is the textbook scalar loop, kept as the oracle; the fast version
// performs the same butterflies in the same order (so results are
// bit-identical) with SIMD-friendly loops and runtime dispatch (simd.h:
// the AVX2 kernel for D >= 8, the AVX-512 one for D >= 16).
// Not a general-size or complex FFT.
#pragma once

#include <cstdint>

namespace kvlab::kernels {

bool is_power_of_two(int64_t d);
// Throws kvlab::Error naming `what` unless d is a power of two in [1, 2^30].
void check_hadamard_dim(int64_t d, const char* what = "dimension D");
// fl32(1 / sqrt(d)).
float hadamard_norm_factor(int64_t d);

void fwht_normalized(float* x, int64_t d);
void fwht_normalized_ref(float* x, int64_t d);
// Unnormalised butterflies only (x <- sqrt(D) H x).
void fwht_raw(float* x, int64_t d);
void fwht_raw_ref(float* x, int64_t d);
// rows vectors of length d, row i starting at x + i * row_stride.
void fwht_normalized_rows(float* x, int64_t rows, int64_t row_stride, int64_t d);
void fwht_normalized_rows_ref(float* x, int64_t rows, int64_t row_stride, int64_t d);

}  // namespace kvlab::kernels
