// Parity checker; see parity.h.
#include "kernels/parity.h"

#include <cmath>

#include <fmt/format.h>

namespace kvlab::kernels {

std::string ParityResult::summary() const {
  return fmt::format("{} of {} elements differ (first at {}, max |diff| {:.3g})", mismatches, compared,
                     first_mismatch, max_abs_diff);
}

namespace {
template <class T>
ParityResult exact(const T* a, const T* b, int64_t n) {
  ParityResult r;
  r.compared = n;
  for (int64_t i = 0; i < n; ++i)
    if (a[i] != b[i]) {
      if (r.first_mismatch < 0) r.first_mismatch = i;
      ++r.mismatches;
      const double d = std::fabs(double(a[i]) - double(b[i]));
      if (d > r.max_abs_diff) r.max_abs_diff = d;
    }
  return r;
}
}  // namespace

ParityResult check_parity(const float* fast, const float* ref, int64_t n, double abs_tol) {
  ParityResult r;
  r.compared = n;
  for (int64_t i = 0; i < n; ++i) {
    const float a = fast[i], b = ref[i];
    bool same;
    double d = 0.0;
    if (std::isnan(a) || std::isnan(b)) {
      same = std::isnan(a) && std::isnan(b);
      d = same ? 0.0 : INFINITY;
    } else if (abs_tol == 0.0) {
      same = a == b && std::signbit(a) == std::signbit(b);
      d = std::fabs(double(a) - double(b));
    } else {
      d = std::fabs(double(a) - double(b));
      same = d <= abs_tol;
    }
    if (!same) {
      if (r.first_mismatch < 0) r.first_mismatch = i;
      ++r.mismatches;
    }
    if (d > r.max_abs_diff) r.max_abs_diff = d;
  }
  return r;
}

ParityResult check_parity(const int32_t* fast, const int32_t* ref, int64_t n) { return exact(fast, ref, n); }
ParityResult check_parity(const uint16_t* fast, const uint16_t* ref, int64_t n) { return exact(fast, ref, n); }
ParityResult check_parity(const uint8_t* fast, const uint8_t* ref, int64_t n) { return exact(fast, ref, n); }

}  // namespace kvlab::kernels
