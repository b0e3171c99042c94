// Portable runtime dispatch for kvlab's hot loops.
//
// KVLAB_TARGET_CLONES marks a function that GCC/Clang compile twice (AVX2
// and baseline x86-64) and select at load time via an ifunc resolver, so one
// binary runs on any x86-64 CPU and uses AVX2 where present. Functions so
// marked are written as plain loops the compiler auto-vectorises; their
// results never depend on the clone chosen (no reassociation, no FMA
// contraction across the clones: the project builds without -ffast-math and
// the kernels' files with -ffp-contract=off). Elsewhere it expands to nothing.
// Never -march=native.
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && defined(__linux__)
#define KVLAB_TARGET_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define KVLAB_TARGET_CLONES
#endif
