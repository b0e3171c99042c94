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

namespace {

SimdLevel detect() {
  const char* env = std::getenv("KVLAB_SIMD");
  if (env != nullptr && std::strcmp(env, "scalar") == 0) return SimdLevel::kScalar;
  return cpu_has_avx2() ? SimdLevel::kAvx2 : SimdLevel::kScalar;
}

std::atomic<int>& level_slot() {
  static std::atomic<int> level{int(detect())};
  return level;
}

}  // namespace

SimdLevel simd_level() { return SimdLevel(level_slot().load(std::memory_order_relaxed)); }

void set_simd_level(SimdLevel level) {
  if (level == SimdLevel::kAvx2 && !cpu_has_avx2()) level = SimdLevel::kScalar;
  level_slot().store(int(level), std::memory_order_relaxed);
}

const char* simd_level_name(SimdLevel level) { return level == SimdLevel::kAvx2 ? "avx2" : "scalar"; }

}  // namespace kvlab::kernels
