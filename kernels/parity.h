// Parity checker between a fast kernel and its scalar `*_ref` oracle.
//
// Compares two output buffers element by element and reports how many
// differ, the first differing index and the largest absolute difference.
// Used by the kernels' parity tests; a planted-mismatch test proves it
// fails when it must. Exact comparison by default (tolerance 0); floats are
// compared by value with NaN == NaN and +0 != -0 (sign matters for E4M3).
#pragma once

#include <cstdint>
#include <string>

namespace kvlab::kernels {

struct ParityResult {
  int64_t compared = 0;
  int64_t mismatches = 0;
  int64_t first_mismatch = -1;
  double max_abs_diff = 0.0;
  bool ok() const { return mismatches == 0; }
  std::string summary() const;
};

ParityResult check_parity(const float* fast, const float* ref, int64_t n, double abs_tol = 0.0);
ParityResult check_parity(const int32_t* fast, const int32_t* ref, int64_t n);
ParityResult check_parity(const uint16_t* fast, const uint16_t* ref, int64_t n);
ParityResult check_parity(const uint8_t* fast, const uint8_t* ref, int64_t n);

}  // namespace kvlab::kernels
