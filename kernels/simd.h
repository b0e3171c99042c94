// Run-time SIMD selection for kvlab's hand-vectorised kernels.
//
// kvlab ships one binary for every x86-64 CPU: the AVX2 kernels in
// simd_avx2.cpp and the AVX-512 ones in simd_avx512.cpp are compiled for
// their ISA only inside those files and are called only when the CPU reports
// it (checked once, at first use). Every SIMD kernel performs the same
// floating-point operations in the same order as its scalar counterpart, so
// results are bit-identical whichever level runs (tests force each level and
// compare). The callers (lattice.cpp, lattice_pack.cpp, fp8_block.cpp,
// hadamard.cpp, scalar_quant.cpp) pick the namespace by simd_level(); code
// outside kernels/ calls only those dispatchers.
//
// KVLAB_SIMD=scalar|avx2 in the environment caps the level (to compare or to
// bisect a suspected SIMD fault); set_simd_level() does the same from code
// (tests). Asking for a level the CPU lacks selects the best one it has
// below it.
#pragma once

#include <cstdint>

#include "kernels/lattice.h"

namespace kvlab::kernels {

// Ordered: each level includes the ones below it (kAvx512 runs the AVX-512
// kernels where there is one and the AVX2 ones elsewhere; it needs AVX-512
// F, DQ, BW and VL).
enum class SimdLevel { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

SimdLevel simd_level();
void set_simd_level(SimdLevel level);
const char* simd_level_name(SimdLevel level);
bool cpu_has_avx2();
bool cpu_has_avx512();
// The best level this CPU supports.
SimdLevel cpu_best_simd_level();

// The AVX2 kernels (defined only on x86-64; call them only when
// simd_level() == kAvx2). D is a power of two >= 8 everywhere.
namespace avx2 {

// Per row of x[rows, d]: the squared norm over 8 interleaved double partial
// sums (element j into partial j % 8) and the largest magnitude bit pattern
// |x_j| (as uint32; the caller checks finiteness). Rows are interleaved
// (independent addition chains), each row's arithmetic is unchanged.
void sumsq8_rows(const float* x, int64_t rows, int64_t d, double* sumsq, uint32_t* max_mag_bits);

// y = H (x / nrm) normalised (fwht_normalized of x[j] / nrm); returns
// max_j |y_j|.
float div_fwht_absmax(const float* x, float nrm, int64_t d, float* y);

// The in-box closest points of z = y / s (y[j] / s, float32) for the blocks
// of y that fill whole groups of 8 blocks; writes doubled coordinates to
// pts2 and returns the number of floats done (a multiple of 8 blocks).
int64_t quantize_blocks(LatticeKind k, int q, const float* y, int64_t d, float s, int32_t* pts2);

// Fused quantize_blocks + dequant_fwht_scale without the integer points
// (bit-identical to them): out = the decoded row, for D >= 64 (E8) or
// D >= 32 (D4).
void quantize_roundtrip(LatticeKind k, int q, const float* y, int64_t d, float s, float nv, float* out);

// out = nv * H(pts2 * 0.5 * s) normalised, in the reference's order.
void dequant_fwht_scale(const int32_t* pts2, int64_t d, float s, float nv, float* out);

// In-place normalised FWHT (fwht_normalized).
void fwht_normalized(float* x, int64_t d);


// fp8_block_roundtrip of one row (block % 8 == 0). Returns false, with out
// partly written, when a block maximum is non-finite or above the uf16
// field (the caller then runs the checked scalar path for the error).
bool fp8_roundtrip_row(const float* x, int64_t ncols, int64_t block, float* out);

}  // namespace avx2

// The AVX-512 kernels (call only when simd_level() == kAvx512). Lattice
// tiles of 16 blocks: D a power of two >= 128 (E8) or >= 64 (D4). Where a
// function shares its name with an avx2:: one, it has the same signature
// and contract.
namespace avx512 {
void sumsq8_rows(const float* x, int64_t rows, int64_t d, double* sumsq, uint32_t* max_mag_bits);
// avx2::div_fwht_absmax on 16 lanes (D >= 16).
float div_fwht_absmax(const float* x, float nrm, int64_t d, float* y);
// avx2::quantize_blocks on whole tiles (returns the floats done) and
// avx2::quantize_roundtrip (D >= 128 for E8, >= 64 for D4).
int64_t quantize_blocks(LatticeKind k, int q, const float* y, int64_t d, float s, int32_t* pts2);
void quantize_roundtrip(LatticeKind k, int q, const float* y, int64_t d, float s, float nv, float* out);
// Block points (doubled coordinates, as LatticeIndexer::point_fast in
// lattice_pack.h) of the nblocks block indices packed LSB-first, bpb bits
// each (D4: bpb <= 31; E8: bpb <= 53, so every index < 2^53, Q <= 48), in
// bits[0, nbytes), for Q <= 127: count_int integer-coset indices (all of
// them for D4), then the E8 half coset's, count in all. Returns how many
// leading blocks it wrote (a multiple of 16): it stops before a group that
// would read past nbytes or holds an index >= count, and leaves those
// blocks to the caller's checked scalar path.
int64_t unpack_points(LatticeKind k, const uint8_t* bits, int64_t nbytes, int64_t nblocks, int bpb, int q,
                      uint64_t count_int, uint64_t count, int32_t* pts2);
// The block indices of in-box points (LatticeIndexer::index_fast; Q <=
// 127), 16 blocks a step, into idx in block order; returns the blocks done
// (a multiple of 16; the caller indexes the rest).
int64_t block_indices(LatticeKind k, const int32_t* pts2, int64_t nblocks, int q, uint64_t count_int, uint64_t* idx);
// avx2::dequant_fwht_scale on 16 lanes (D >= 16).
void dequant_fwht_scale(const int32_t* pts2, int64_t d, float s, float nv, float* out);
// fp8_block_roundtrip / fp8_block_encode of rows x ncols contiguous values
// (block % 16 == 0), 8 blocks at a time across rows. They return the
// number of leading rows done: rows, or fewer when a block maximum is
// non-finite or above the uf16 field (the caller then runs the checked
// scalar path from that row on, for the error). stream: out 64-byte aligned
// and written with non-temporal stores.
int64_t fp8_roundtrip_rows(const float* x, int64_t rows, int64_t ncols, int64_t block, float* out, bool stream);
int64_t fp8_encode_rows(const float* x, int64_t rows, int64_t ncols, int64_t block, uint8_t* codes);
void fp8_decode_row(const uint8_t* codes, int64_t ncols, int64_t block, float* out);

// The normalised FWHT (hadamard.h) on 16 lanes, D a power of two >= 16:
// the stages h = 1 .. 8 inside each register, then the rest between
// registers (tiles of up to 128 values in registers, then one pass per two
// stages), the butterflies and the final multiplication by
// fl32(1/sqrt(D)) in the reference's order, so bit-identical to
// fwht_normalized_ref. In place.
void fwht_normalized(float* x, int64_t d);
// y = H x / sqrt(d), x unchanged (y != x; no copy of x first).
void fwht_normalized_from(const float* x, int64_t d, float* y);
// out = H y / sqrt(d) with y as the scratch row (y overwritten; out may be
// y). stream: out 64-byte aligned, written with non-temporal stores.
void fwht_normalized_to(float* y, int64_t d, float* out, bool stream);

// The rotated int codec's dequantise-then-rotate (scalar_quant.h): per
// block k of b values (b % 16 == 0), v = the value q_j (decode: the integer
// codes; roundtrip: RNE(clamp(y_j / s_k, +-qmax)), y_j / s_k computed as
// y_j * inv_k when pow2, as int_quant_block) times s_k, then out = H v /
// sqrt(d). y (roundtrip) is the scratch row; stream as fwht_normalized_to.
void int_requant_fwht(float* y, int64_t d, int64_t b, const float* s, const float* inv, bool pow2, float qmax,
                      float* out, bool stream);
void int_dequant_fwht(const int32_t* codes, int64_t d, int64_t b, const float* s, float* out);

// hadamard_lloyd on 16 lanes. thr: the 2^K - 1 float32 thresholds padded
// to 16 with +inf; lev: the 2^K float32 levels padded to 16. The index of
// z = y / sig is #{k : z > thr_k}, found by a K-step binary search (the
// thresholds ascend, so it equals the count).
// idx = the indices of y = H x / sqrt(d) (the rotation of the input row).
void lloyd_rotate_index(const float* x, int64_t d, int bits, const float* thr, float sig, float* y, int32_t* idx);
// out = H (lev[i(H x / sqrt(d))] * sig) / sqrt(d): the fused roundtrip;
// y: a scratch row.
void lloyd_roundtrip_row(const float* x, int64_t d, int bits, const float* thr, const float* lev, float sig, float* y,
                         float* out, bool stream);
// lloyd_roundtrip_row in two steps with x's sum of squares fused into the
// first (D >= 256): fwht_tiles_sumsq runs the first passes of H x (tiles of
// 128 values, unnormalised) into the scratch row y and returns sum x_j^2 as
// sumsq8_rows does (the same partial sums in the same order: the same
// double; NaN or Inf when a value is); lloyd_roundtrip_finish(y, ..) then
// gives lloyd_roundtrip_row(x, ..)'s out.
double fwht_tiles_sumsq(const float* x, int64_t d, float* y);
void lloyd_roundtrip_finish(float* y, int64_t d, int bits, const float* thr, const float* lev, float sig, float* out,
                            bool stream);
// out = H (lev[idx_j] * sig) / sqrt(d).
void lloyd_dequant_fwht(const int32_t* idx, int64_t d, const float* lev, float sig, float* out);
}  // namespace avx512

}  // namespace kvlab::kernels
