// OpenBLAS core detection and the re-exec fix. See blas.h.
#include "model/blas.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cerrno>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace kvlab::model {

std::string openblas_core() {
  using Fn = char* (*)();
  auto fn = reinterpret_cast<Fn>(::dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (!fn) return "";
  const char* s = fn();
  return s ? std::string(s) : std::string();
}

bool limit_openblas_threads(int n) {
  if (std::getenv("OPENBLAS_NUM_THREADS") || std::getenv("OMP_NUM_THREADS")) return false;
  using Fn = void (*)(int);
  auto fn = reinterpret_cast<Fn>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (!fn) return false;
  fn(n);
  return true;
}

std::string suggested_openblas_core() {
  if (std::getenv("OPENBLAS_CORETYPE")) return "";
  const std::string core = openblas_core();
  if (core.empty()) return "";
  std::string lc;
  for (char c : core) lc.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool has_avx512_core = lc.find("skylakex") != std::string::npos || lc.find("cooperlake") != std::string::npos ||
                               lc.find("sapphire") != std::string::npos;
  const bool has_avx2_core = has_avx512_core || lc.find("haswell") != std::string::npos ||
                             lc.find("zen") != std::string::npos;
  if (avx512 && !has_avx512_core) return "SkylakeX";
  if (avx2 && !has_avx2_core) return "Haswell";
  return "";
}

namespace {

// Switches OpenBLAS (DYNAMIC_ARCH build) to `core` in this process; false when
// the library lacks the entry points or did not take the core.
bool switch_openblas_core(const std::string& core) {
  using Fn = void (*)();
  auto quit = reinterpret_cast<Fn>(::dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit"));
  auto init = reinterpret_cast<Fn>(::dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init"));
  if (!quit || !init) return false;
  const std::string before = openblas_core();
  ::setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
  quit();  // gotoblas = NULL
  init();  // reads OPENBLAS_CORETYPE, sets the table and runs its init()
  std::string now = openblas_core(), want = core;
  for (auto* s : {&now, &want})
    for (char& c : *s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (now == want) return true;
  // Not taken: back to what OpenBLAS had chosen itself.
  ::unsetenv("OPENBLAS_CORETYPE");
  quit();
  init();
  (void)before;
  return false;
}

}  // namespace

void fix_openblas_core(const std::vector<std::string>& argv) {
  if (std::getenv("KVLAB_NO_BLAS_REEXEC")) return;
  const std::string core = suggested_openblas_core();
  if (core.empty()) return;
  const std::string was = openblas_core();
  const char* isa = core == "SkylakeX" ? "AVX-512" : "AVX2";
  if (switch_openblas_core(core)) {
    std::fprintf(stderr, "kvlab: OpenBLAS chose the '%s' kernels on a CPU with %s; switched to '%s' "
                 "(OPENBLAS_CORETYPE=%s; set KVLAB_NO_BLAS_REEXEC=1 to disable)\n",
                 was.c_str(), isa, openblas_core().c_str(), core.c_str());
    return;
  }
  std::fprintf(stderr, "kvlab: OpenBLAS chose the '%s' kernels on a CPU with %s; re-running with OPENBLAS_CORETYPE=%s "
               "(set KVLAB_NO_BLAS_REEXEC=1 to disable)\n",
               was.c_str(), isa, core.c_str());
  ::setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
  std::vector<char*> args;
  static const char* self = "/proc/self/exe";
  args.push_back(const_cast<char*>(self));
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  ::execv(self, args.data());
  std::fprintf(stderr, "kvlab: re-exec failed (%s); continuing with the '%s' kernels\n", std::strerror(errno),
               openblas_core().c_str());
  ::unsetenv("OPENBLAS_CORETYPE");
}

}  // namespace kvlab::model
