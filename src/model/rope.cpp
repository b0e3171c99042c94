// RoPE / YaRN tables. See rope.h for the float32 recipe.
#include "model/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "common/error.h"

namespace kvlab::model {

YarnRange yarn_correction_range(const RopeParams& p) {
  const double L0 = static_cast<double>(p.original_seq_len);
  const double d = static_cast<double>(p.dim);
  auto corr = [&](double rot) { return d * std::log(L0 / (rot * 2.0 * std::numbers::pi)) / (2.0 * std::log(p.base)); };
  double low = std::max(std::floor(corr(p.beta_fast)), 0.0);
  double high = std::min(std::ceil(corr(p.beta_slow)), d - 1.0);
  if (low == high) high += 0.001;
  return {low, high};
}

bool yarn_active(const RopeParams& p, int64_t seqlen) {
  return p.original_seq_len > 0 && (p.yarn_always || seqlen > p.original_seq_len);
}

std::vector<float> rope_inv_freqs(const RopeParams& p, int64_t seqlen) {
  KVLAB_CHECK(p.dim > 0 && p.dim % 2 == 0, "rope dim must be even and > 0, got {}", p.dim);
  KVLAB_CHECK(p.base > 1.0, "rope base must be > 1, got {}", p.base);
  const int64_t half = p.dim / 2;
  const float base = static_cast<float>(p.base);
  const float dimf = static_cast<float>(p.dim);
  std::vector<float> f(static_cast<std::size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    const float e = static_cast<float>(2 * i) / dimf;  // fl32(2i / dim)
    // fl32 of the (correctly rounded to double) power: torch's float pow is
    // correctly rounded for these arguments.
    const float pw = static_cast<float>(std::pow(static_cast<double>(base), static_cast<double>(e)));
    f[static_cast<std::size_t>(i)] = 1.0f / pw;
  }
  if (yarn_active(p, seqlen)) {
    const YarnRange r = yarn_correction_range(p);
    const float lo = static_cast<float>(r.low);
    const float span = static_cast<float>(r.high - r.low);
    const float factor = static_cast<float>(p.factor);
    for (int64_t i = 0; i < half; ++i) {
      float ramp = (static_cast<float>(i) - lo) / span;
      ramp = std::clamp(ramp, 0.0f, 1.0f);
      const float smooth = 1.0f - ramp;
      float& fi = f[static_cast<std::size_t>(i)];
      const float a = fi / factor * (1.0f - smooth);
      const float b = fi * smooth;
      fi = a + b;
    }
  }
  return f;
}

RopeTable rope_table(const RopeParams& p, int64_t seqlen, int64_t count, int64_t stride) {
  KVLAB_CHECK(count >= 0 && stride >= 1, "rope_table: count {} and stride {} must be >= 0 and >= 1", count, stride);
  const std::vector<float> f = rope_inv_freqs(p, seqlen);
  RopeTable t;
  t.rows = count;
  t.half = static_cast<int64_t>(f.size());
  t.cos.resize(static_cast<std::size_t>(count * t.half));
  t.sin.resize(t.cos.size());
  for (int64_t k = 0; k < count; ++k) {
    const float pos = static_cast<float>(k * stride);
    for (int64_t i = 0; i < t.half; ++i) {
      const float angle = pos * f[static_cast<std::size_t>(i)];  // fl32(t * f_i)
      const std::size_t o = static_cast<std::size_t>(k * t.half + i);
      t.cos[o] = static_cast<float>(std::cos(static_cast<double>(angle)));
      t.sin[o] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }
  return t;
}

}  // namespace kvlab::model
