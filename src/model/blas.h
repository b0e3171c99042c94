// Which BLAS LibTorch's fp32 GEMMs run on, and a fix for OpenBLAS's CPU
// detection.
//
// Debian's LibTorch calls the system libblas.so.3. With OpenBLAS built for
// DYNAMIC_ARCH, the kernel set is chosen once, when the library loads, from
// the CPU model; a CPU model newer than the OpenBLAS release (common on
// virtual machines) falls back to the generic "Prescott" SSE3 kernels,
// several times slower than the AVX2 ("Haswell") or AVX-512 ("SkylakeX")
// ones the CPU supports. The choice can only be overridden through the
// OPENBLAS_CORETYPE environment variable before the library loads, so the
// fix re-executes the process once with that variable set.
//
// No LibTorch in this header.
#pragma once

#include <string>
#include <vector>

namespace kvlab::model {

// OpenBLAS's kernel set ("SkylakeX", "Haswell", "Prescott", ...), or "" when
// the BLAS in this process is not OpenBLAS.
std::string openblas_core();

// The OPENBLAS_CORETYPE worth requesting, or "" when nothing is to gain:
// OpenBLAS picked a generic core (Prescott, Katmai, Core2, Nehalem, Sandybridge
// with AVX2 present...) although the CPU supports AVX-512F ("SkylakeX") or
// AVX2+FMA ("Haswell"), and OPENBLAS_CORETYPE is not set already.
std::string suggested_openblas_core();

// The OPENBLAS_CORETYPE this CPU's best supported OpenBLAS kernels need:
// "SkylakeX" (AVX-512 F/DQ/BW/VL), "Haswell" (AVX2 + FMA), or nullptr.
// Needs no library state (usable before any constructor has run).
const char* cpu_openblas_core();

// For the executable's DT_PREINIT_ARRAY (src/cli/main.cpp), which runs before
// any shared library's constructor (OpenBLAS reads OPENBLAS_CORETYPE in its
// constructor; a setenv() at this point is lost when libc initialises, so it
// re-executes instead): when argv is a BLAS command (`run`, `kv`,
// `bench kv`), neither OPENBLAS_CORETYPE nor KVLAB_NO_BLAS_REEXEC is set and
// cpu_openblas_core() is not null, execve()s /proc/self/exe with the same
// argv and OPENBLAS_CORETYPE=cpu_openblas_core() added. Done before the
// libraries' constructors (LibTorch's operator registration, ...), the
// re-exec costs the dynamic loader's mapping and relocation only, not a whole
// start-up as the late re-exec below did. Returns when it does nothing or the
// exec fails (the late re-exec remains as a fallback). Calls no malloc.
void preinit_openblas_reexec(int argc, char** argv, char** envp);

// When suggested_openblas_core() is not empty and KVLAB_NO_BLAS_REEXEC is
// unset, replaces the process by /proc/self/exe with `argv` and
// OPENBLAS_CORETYPE set (execv; does not return on success). Returns
// normally otherwise, or when the exec fails. `argv` excludes argv[0].
void reexec_with_openblas_core(const std::vector<std::string>& argv);

}  // namespace kvlab::model
