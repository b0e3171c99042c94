// Seeded random numbers that are the same on every platform: a SplitMix64
// counter stream (Steele, Lea & Flood, "Fast splittable pseudorandom number
// generators", OOPSLA 2014) with Box-Muller normals, not <random>
// distributions (whose output is implementation-defined). Used where
// recorded or reported numbers depend on random draws (the synthetic host,
// the audit null simulation).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>

namespace kvlab {

// SplitMix64's output mix (a bijection on 64-bit words).
inline std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

struct SplitMix64 {
  std::uint64_t s;
  explicit SplitMix64(std::uint64_t seed) : s(mix64(seed)) {}
  std::uint64_t next() {
    s += 0x9E3779B97F4A7C15ull;
    return mix64(s);
  }
  // Uniform in (0, 1].
  double uniform() { return (static_cast<double>(next() >> 11) + 1.0) * 0x1p-53; }
  // Standard normal (Box-Muller, one cosine draw per two uniforms).
  double normal() {
    const double u1 = uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }
  // n standard normals as float, both Box-Muller outputs (cosine, then sine)
  // of each pair of uniforms used: half the cost of n normal() calls, and a
  // different sequence.
  void normals(float* out, std::size_t n) {
    for (std::size_t i = 0; i < n; i += 2) {
      const double u1 = uniform(), u2 = uniform();
      const double r = std::sqrt(-2.0 * std::log(u1)), a = 2.0 * std::numbers::pi * u2;
      out[i] = static_cast<float>(r * std::cos(a));
      if (i + 1 < n) out[i + 1] = static_cast<float>(r * std::sin(a));
    }
  }
};

}  // namespace kvlab
