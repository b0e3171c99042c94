// Which BLAS LibTorch's fp32 GEMMs run on, and a fix for OpenBLAS's CPU
// detection.
//
// Debian's LibTorch calls the system libblas.so.3. With OpenBLAS built for
// DYNAMIC_ARCH, the kernel set is chosen once, when the library loads, from
// the CPU model; a CPU model newer than the OpenBLAS release (common on
// virtual machines) falls back to the generic "Prescott" SSE3 kernels,
// several times slower than the AVX2 ("Haswell") or AVX-512 ("SkylakeX")
// ones the CPU supports. The choice can only be overridden through the
// OPENBLAS_CORETYPE environment variable, read when the library loads. The
// fix switches the kernel table in the running process through OpenBLAS's
// exported gotoblas_dynamic_quit/gotoblas_dynamic_init (which re-read that
// variable; nothing else in OpenBLAS's state depends on the core), before
// any BLAS call; where those symbols are missing it re-executes the process
// once with the variable set (a whole second start-up: ~0.2-0.5 s with
// Debian's LibTorch and its ~290 shared libraries).
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

// When suggested_openblas_core() is not empty and KVLAB_NO_BLAS_REEXEC is
// unset: sets OPENBLAS_CORETYPE and switches OpenBLAS's kernels in this
// process (call it before any BLAS work), or, when that is not possible,
// replaces the process by /proc/self/exe with `argv` and OPENBLAS_CORETYPE
// set (execv; does not return on success). Says what it did on stderr.
// Returns normally otherwise, or when the exec fails. `argv` excludes argv[0].
void fix_openblas_core(const std::vector<std::string>& argv);

// Sets OpenBLAS's own thread count (openblas_set_num_threads) unless the
// user chose one (OPENBLAS_NUM_THREADS or OMP_NUM_THREADS set). For callers
// that run BLAS from several threads at once (kvlab run: the foreground
// worker and the background write path), where OpenBLAS's pool only adds
// contention: on the 2-vCPU machines, 1 thread cut the covariance
// eigenvalues from ~0.22 to ~0.04 s per stream and a v4_native_n8 passage
// by ~15 % CPU. GEMM results do not depend on it (OpenBLAS splits M and N,
// not the summation). Returns whether it was set.
bool limit_openblas_threads(int n);

}  // namespace kvlab::model
