// D4 / E8 nested-lattice quantisation kernels (SPEC section 3).
//
// Closest-point search after Conway & Sloane, "Fast quantizing and decoding
// algorithms for lattice quantizers and codes", IEEE Trans. IT 28(2), 1982:
// D_n = {f in Z^n : sum f even}: round every coordinate (half to even); if
// the sum is odd, move the coordinate with the largest rounding residual
// one step toward its input. E8 = D8 u (D8 + 1/2): the closer of the two
// coset decodings (the integer coset on equal distance).
//
// kvlab quantises to the closest lattice point INSIDE the box [-Q, Q]^b
// (every coordinate, half-integers included), not to the published
// "closest point, then clamp every coordinate to [-Q, Q]", which can leave
// the lattice (README of shared/reference, quirks 1-2) and so cannot be
// stored in the published bit budget. Where the published point is an
// in-box lattice point both agree exactly (same tie rules: round half to
// even, first index on equal residuals, the integer coset on equal
// distance). The in-box search is exact: the closest even-sum integer point
// of a box differs from the per-coordinate clamped rounding in at most one
// coordinate by +-1 (separable convex costs), and the half-integer coset is
// the same problem on the box [-Q, Q-1] shifted by 1/2.
//
// Points are returned as DOUBLED integer coordinates (2x): D4 points and the
// E8 integer coset are even, the E8 half-integer coset odd.
//
// The pipeline (per vector x of dimension D, float32): n = max(||x||, 2^-23)
// stored in uf16 (fp16 rounding wherever fp16 is finite and normal, see
// fp_formats.h); u = x / n; y = H u (orthonormal FWHT); m = max(max|y|,
// 2^-23) stored in fp16; s = fp16(m) / Q; z = y / s; per block the in-box
// closest point; decode y' = point * s, x' = (H y') * n16.
// ||x|| is accumulated in double over 8 interleaved partial sums (fixed
// order, identical in the reference and fast paths).
#pragma once

#include <cstdint>

namespace kvlab::kernels {

enum class LatticeKind { kD4, kE8 };

inline constexpr int lattice_block_dim(LatticeKind k) { return k == LatticeKind::kD4 ? 4 : 8; }
inline constexpr const char* lattice_name(LatticeKind k) { return k == LatticeKind::kD4 ? "d4" : "e8"; }
// Largest supported Q: keeps (2Q+1)^8 below 2^128 (the E8 block index) and
// every coordinate exactly representable.
inline constexpr int kLatticeMaxQ = 32767;
inline constexpr float kLatticeEps = 0x1p-23f;  // float32 machine epsilon, SPEC step 1/3

// Throws kvlab::Error unless D is a power of two with D >= block and
// 1 <= q <= kLatticeMaxQ.
void check_lattice_params(LatticeKind k, int64_t d, int q);

// Published closest point without the box (for tests and diagnostics):
// z -> doubled coordinates of the closest D_n (n = 4 or 8) / E8 point.
void dn_closest_published(const float* z, int n, int32_t* out2);
void e8_closest_published(const float* z, int32_t* out2);

// Closest point of L n [-Q, Q]^b (b = 4 for D4, 8 for E8), doubled coords.
void d4_closest_in_box(const float* z, int q, int32_t* out2);
void e8_closest_in_box(const float* z, int q, int32_t* out2);

// Encode rows x[n, d] (contiguous): per row the uf16 norm code, the fp16
// qmax code and the d doubled lattice coordinates (pts2[n, d]). Throws
// kvlab::Error on non-finite input or a norm above the uf16 range.
void lattice_encode_rows(LatticeKind k, int q, const float* x, int64_t n, int64_t d, uint16_t* norm16,
                         uint16_t* qmax16, int32_t* pts2);
void lattice_encode_rows_ref(LatticeKind k, int q, const float* x, int64_t n, int64_t d, uint16_t* norm16,
                             uint16_t* qmax16, int32_t* pts2);
// decode(encode(x)) without the points (bit-identical to the two calls;
// fused on the AVX2 path). Errors as lattice_encode_rows.
void lattice_roundtrip_rows(LatticeKind k, int q, const float* x, int64_t n, int64_t d, float* out);
// Decode rows back to float32 out[n, d].
void lattice_decode_rows(int q, const uint16_t* norm16, const uint16_t* qmax16, const int32_t* pts2, int64_t n,
                         int64_t d, float* out);
void lattice_decode_rows_ref(int q, const uint16_t* norm16, const uint16_t* qmax16, const int32_t* pts2, int64_t n,
                             int64_t d, float* out);

}  // namespace kvlab::kernels
