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

const char* cpu_openblas_core() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return nullptr;
}

namespace {
bool starts_with(const char* s, const char* prefix) { return std::strncmp(s, prefix, std::strlen(prefix)) == 0; }
}  // namespace

void preinit_openblas_reexec(int argc, char** argv, char** envp) {
  if (argc < 2 || !argv || !envp) return;
  const char* a1 = argv[1];
  const char* a2 = argc > 2 ? argv[2] : "";
  const bool blas_cmd = std::strcmp(a1, "run") == 0 || std::strcmp(a1, "kv") == 0 ||
                        (std::strcmp(a1, "bench") == 0 && std::strcmp(a2, "kv") == 0);
  if (!blas_cmd) return;
  std::size_t n = 0;
  for (char** e = envp; *e; ++e, ++n)
    if (starts_with(*e, "OPENBLAS_CORETYPE=") || starts_with(*e, "KVLAB_NO_BLAS_REEXEC=")) return;
  const char* core = cpu_openblas_core();
  if (!core) return;
  static char var[64];
  static char* env[4096];
  if (n + 2 > sizeof(env) / sizeof(env[0]) || std::strlen(core) + 20 > sizeof(var)) return;
  std::strcpy(var, "OPENBLAS_CORETYPE=");
  std::strcat(var, core);
  for (std::size_t i = 0; i < n; ++i) env[i] = envp[i];
  env[n] = var;
  env[n + 1] = nullptr;
  ::execve("/proc/self/exe", argv, env);
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

void reexec_with_openblas_core(const std::vector<std::string>& argv) {
  if (std::getenv("KVLAB_NO_BLAS_REEXEC")) return;
  const std::string core = suggested_openblas_core();
  if (core.empty()) return;
  std::fprintf(stderr, "kvlab: OpenBLAS chose the '%s' kernels on a CPU with %s; re-running with OPENBLAS_CORETYPE=%s "
               "(set KVLAB_NO_BLAS_REEXEC=1 to disable)\n",
               openblas_core().c_str(), core == "SkylakeX" ? "AVX-512" : "AVX2", core.c_str());
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
