// Run-time SIMD level selection; see simd.h.
#include "kernels/simd.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace kvlab::kernels {

bool cpu_has_avx2() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return has;
#else
  return false;
#endif
}

bool cpu_has_avx512() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool has = [] {
    __builtin_cpu_init();
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  }();
  return has;
#else
  return false;
#endif
}

SimdLevel cpu_best_simd_level() {
  if (cpu_has_avx512()) return SimdLevel::kAvx512;
  return cpu_has_avx2() ? SimdLevel::kAvx2 : SimdLevel::kScalar;
}

namespace {

SimdLevel capped(SimdLevel want) {
  const SimdLevel best = cpu_best_simd_level();
  return int(want) < int(best) ? want : best;
}

SimdLevel detect() {
  const char* env = std::getenv("KVLAB_SIMD");
  if (env != nullptr && std::strcmp(env, "scalar") == 0) return SimdLevel::kScalar;
  if (env != nullptr && std::strcmp(env, "avx2") == 0) return capped(SimdLevel::kAvx2);
  return cpu_best_simd_level();
}

std::atomic<int>& level_slot() {
  static std::atomic<int> level{int(detect())};
  return level;
}

}  // namespace

SimdLevel simd_level() { return SimdLevel(level_slot().load(std::memory_order_relaxed)); }

void set_simd_level(SimdLevel level) { level_slot().store(int(capped(level)), std::memory_order_relaxed); }

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAvx512: return "avx512";
    case SimdLevel::kAvx2: return "avx2";
    default: return "scalar";
  }
}

}  // namespace kvlab::kernels
