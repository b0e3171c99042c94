// AVX2 kernels for the lattice codec pipeline and the FWHT; see simd.h.
//
// Only this translation unit is compiled for AVX2 (the pragma below, after
// every #include so that no inline library code is built for AVX2), and its
// functions run only when simd_level() says the CPU has AVX2. Each kernel
// performs the reference's floating-point operations in the reference's
// order, one value per SIMD lane (no FMA, no reassociation), so results are
// bit-identical to the scalar path.
//
// Lattice blocks are processed "structure of arrays": a tile of 8 blocks is
// transposed so that register i holds coordinate i of 8 blocks, and the
// Conway-Sloane search (round, parity, largest residual) becomes vertical
// arithmetic with no horizontal reductions.
#include "kernels/simd.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include <cfloat>
#include <cstdint>
#include <cstring>

#include "kernels/fp8_block.h"
#include "kernels/fp_formats.h"
#include "kernels/hadamard.h"

#pragma GCC push_options
#pragma GCC target("avx2")

namespace kvlab::kernels::avx2 {
namespace {

inline __m256 ld(const float* p) { return _mm256_loadu_ps(p); }
inline void st(float* p, __m256 v) { _mm256_storeu_ps(p, v); }

// Stages h = 1, 2, 4 of the butterflies (x[j] = a + b, x[j + h] = a - b) on
// one register of 8 consecutive values: t + (v with the upper lanes
// negated), which is a + b in the lower and a - b in the upper lane of each
// pair, exactly (negation is exact; a + b == b + a).
inline __m256 h8(__m256 v) {
  const __m256 n1 = _mm256_castsi256_ps(_mm256_setr_epi32(0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN));
  const __m256 n2 = _mm256_castsi256_ps(_mm256_setr_epi32(0, 0, INT32_MIN, INT32_MIN, 0, 0, INT32_MIN, INT32_MIN));
  const __m256 n4 = _mm256_castsi256_ps(_mm256_setr_epi32(0, 0, 0, 0, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN));
  v = _mm256_add_ps(_mm256_permute_ps(v, 0xB1), _mm256_xor_ps(v, n1));  // pairs swapped
  v = _mm256_add_ps(_mm256_permute_ps(v, 0x4E), _mm256_xor_ps(v, n2));  // pairs of pairs swapped
  v = _mm256_add_ps(_mm256_permute2f128_ps(v, v, 0x01), _mm256_xor_ps(v, n4));  // halves swapped
  return v;
}

// The butterfly stages between R registers (register r at offset r * h):
// stage h pairs r and r + 1, stage 2h pairs r and r + 2, ... in order.
template <int R>
inline void butterflies(__m256 (&v)[R]) {
#pragma GCC unroll 4
  for (int s = 1; s < R; s *= 2)
#pragma GCC unroll 16
    for (int t = 0; t < R; ++t)
      if ((t & s) == 0) {
        const __m256 a = v[t], b = v[t ^ s];
        v[t] = _mm256_add_ps(a, b);
        v[t ^ s] = _mm256_sub_ps(a, b);
      }
}

// Stages h, 2h, .., (R/2) h over x[0, d) in one pass (R registers in flight).
template <int R, class Fin>
inline void stage_pass(float* x, int64_t d, int64_t h, bool last, Fin fin) {
  for (int64_t i = 0; i < d; i += R * h)
    for (int64_t j = i; j < i + h; j += 8) {
      __m256 v[R];
      #pragma GCC unroll 16
      for (int r = 0; r < R; ++r) v[r] = ld(x + j + r * h);
      butterflies<R>(v);
      if (last)
        #pragma GCC unroll 16
        for (int r = 0; r < R; ++r) v[r] = fin(v[r]);
      #pragma GCC unroll 16
      for (int r = 0; r < R; ++r) st(x + j + r * h, v[r]);
    }
}

// Stages h = h0 .. d/2 (d > h0), up to three per pass.
template <class Fin>
inline void fwht_tail(float* x, int64_t d, Fin fin, int64_t h0 = 64) {
  for (int64_t h = h0; h < d;) {
    if (8 * h <= d) {
      stage_pass<8>(x, d, h, 8 * h == d, fin);
      h *= 8;
    } else if (4 * h <= d) {
      stage_pass<4>(x, d, h, true, fin);
      h *= 4;
    } else {
      stage_pass<2>(x, d, h, true, fin);
      h *= 2;
    }
  }
}

// Stages h = 1 .. T/2 on a tile of T = 8R values starting at x + i, in
// registers: h8 per register, then the stages between registers.
template <int R, class In>
inline void tile_head(In in, int64_t i, __m256 (&v)[R]) {
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) v[r] = h8(in(i + 8 * r));
  butterflies<R>(v);
}

template <int R, class In, class Fin>
inline void fwht_r(float* x, int64_t d, In in, Fin fin) {
  const bool last = d == 8 * R;
  for (int64_t i = 0; i < d; i += 8 * R) {
    __m256 v[R];
    tile_head<R>(in, i, v);
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) st(x + i + 8 * r, last ? fin(v[r]) : v[r]);
  }
  if (!last) fwht_tail(x, d, fin);
}

// Full normalised FWHT into x: `in(i)` yields the 8 input values at offset
// i (after any elementwise pre-map), `fin` post-maps the final values.
template <class In, class Fin>
inline void fwht(float* x, int64_t d, In in, Fin fin) {
  switch (d) {
    case 8: return fwht_r<1>(x, d, in, fin);
    case 16: return fwht_r<2>(x, d, in, fin);
    case 32: return fwht_r<4>(x, d, in, fin);
    default: return fwht_r<8>(x, d, in, fin);
  }
}

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 0x55));
  return _mm_cvtss_f32(m);
}

// 8 x 8 transpose (its own inverse).
inline void transpose8(__m256 (&r)[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// 4 x 4 transposes within each 128-bit half (its own inverse): registers
// holding blocks (0,1), (2,3), (4,5), (6,7) of 4 values become coordinate
// registers over the blocks in lane order 0, 2, 4, 6, 1, 3, 5, 7.
inline void transpose4x2(__m256 (&r)[4]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  r[0] = _mm256_shuffle_ps(t0, t2, 0x44);
  r[1] = _mm256_shuffle_ps(t0, t2, 0xEE);
  r[2] = _mm256_shuffle_ps(t1, t3, 0x44);
  r[3] = _mm256_shuffle_ps(t1, t3, 0xEE);
}

// Closest even-sum integer point of [lo, hi]^B per lane (lattice.cpp's
// dn_box, lane-wise, same comparisons and tie rules). r receives the
// coordinates as floats.
// ok (moving coordinate i toward its input stays in the box) is computed
// from z alone: with r = clamp(round(z)), r + 1 > hi with d >= 0 exactly
// when z >= hi, and r - 1 < lo with d < 0 exactly when z < lo (the sign of a
// float difference is exact).
// Boxed = false is the same search for tiles where no coordinate can reach
// the box (the caller checks |z| < the bound, see inside()): no clamp, every
// move "ok", so the key is -|d| (compared as |d| with max), dir = sign(d).
template <int B, bool Boxed>
inline void dn_box(const __m256 (&c)[B], __m256 flo, __m256 fhi, __m256 (&r)[B]) {
  const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
  __m256 sum = _mm256_setzero_ps(), bestkey = _mm256_set1_ps(Boxed ? FLT_MAX : -FLT_MAX);
  // The winner's index i and direction dir as one float dir * (i + 1).
  __m256 bestcode = one;
#pragma GCC unroll 16
  for (int i = 0; i < B; ++i) {
    __m256 ri = _mm256_round_ps(c[i], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (Boxed) ri = _mm256_min_ps(_mm256_max_ps(ri, flo), fhi);
    r[i] = ri;
    sum = _mm256_add_ps(sum, ri);  // exact: integers far below 2^24
    // d = z - r is never -0 (x - x = +0), so its sign bit sd is "d < 0":
    // pref = d >= 0 ? 1 : -1 is 1 with sign sd.
    const __m256 d = _mm256_sub_ps(c[i], ri);
    const __m256 sd = _mm256_and_ps(d, sign);
    if (Boxed) {
      const __m256 okneg = _mm256_and_ps(
          _mm256_and_ps(_mm256_cmp_ps(c[i], fhi, _CMP_LT_OQ), _mm256_cmp_ps(c[i], flo, _CMP_GE_OQ)), sign);
      const __m256 u = _mm256_xor_ps(sd, okneg);
      const __m256 key = _mm256_xor_ps(d, u);  // ok ? -|d| : |d|
      const __m256 better = _mm256_cmp_ps(key, bestkey, _CMP_LT_OQ);  // strict: first index on ties
      bestkey = _mm256_min_ps(key, bestkey);
      // dir = ok ? pref : -pref has sign bit sd ^ !ok = u ^ 1.
      const __m256 code = _mm256_xor_ps(u, _mm256_set1_ps(-float(i + 1)));
      bestcode = _mm256_blendv_ps(bestcode, code, better);
    } else {
      const __m256 absd = _mm256_xor_ps(d, sd);
      const __m256 better = _mm256_cmp_ps(absd, bestkey, _CMP_GT_OQ);  // -|d| < -best, first index on ties
      bestkey = _mm256_max_ps(absd, bestkey);
      const __m256 code = _mm256_or_ps(sd, _mm256_set1_ps(float(i + 1)));
      bestcode = _mm256_blendv_ps(bestcode, code, better);
    }
  }
  const __m256i ione = _mm256_set1_epi32(1);
  const __m256i odd = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_cvtps_epi32(sum), ione), ione);
  // Odd lanes add dir at index |code| - 1; even lanes add nothing.
  const __m256 dir = _mm256_and_ps(_mm256_or_ps(_mm256_and_ps(bestcode, sign), one), _mm256_castsi256_ps(odd));
  const __m256 idx = _mm256_andnot_ps(sign, bestcode);
#pragma GCC unroll 16
  for (int i = 0; i < B; ++i)
    r[i] = _mm256_add_ps(r[i], _mm256_and_ps(dir, _mm256_cmp_ps(idx, _mm256_set1_ps(float(i + 1)), _CMP_EQ_OQ)));
}

// True when every |z| < bound: then no coordinate's rounding or move can
// reach the box of either coset (E8: bound Q - 1, which also keeps the half
// coset's z - 1/2 inside [-Q, Q - 1); D4: bound Q).
template <int B>
inline bool inside(const __m256 (&z)[B], float bound) {
  const __m256 mag = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 m = _mm256_and_ps(z[0], mag);
#pragma GCC unroll 8
  for (int i = 1; i < B; ++i) m = _mm256_max_ps(m, _mm256_and_ps(z[i], mag));
  return _mm256_movemask_ps(_mm256_cmp_ps(m, _mm256_set1_ps(bound), _CMP_GE_OQ)) == 0;
}

// E8 in the box on a transposed tile: z in, doubled coordinates out.
template <bool Boxed>
inline void e8_tile_search(__m256 (&z)[8], int q) {
  const __m256 half = _mm256_set1_ps(0.5f);
  __m256 a[8], g[8], w[8];
  dn_box<8, Boxed>(z, _mm256_set1_ps(float(-q)), _mm256_set1_ps(float(q)), a);
#pragma GCC unroll 16
  for (int i = 0; i < 8; ++i) w[i] = _mm256_sub_ps(z[i], half);
  dn_box<8, Boxed>(w, _mm256_set1_ps(float(-q)), _mm256_set1_ps(float(q - 1)), g);
  __m256 da = _mm256_setzero_ps(), db = _mm256_setzero_ps();
#pragma GCC unroll 16
  for (int i = 0; i < 8; ++i) {
    const __m256 ea = _mm256_sub_ps(z[i], a[i]);
    g[i] = _mm256_add_ps(g[i], half);
    const __m256 eb = _mm256_sub_ps(z[i], g[i]);
    da = _mm256_add_ps(da, _mm256_mul_ps(ea, ea));
    db = _mm256_add_ps(db, _mm256_mul_ps(eb, eb));
  }
  const __m256 use_a = _mm256_cmp_ps(da, db, _CMP_LE_OQ);
#pragma GCC unroll 16
  for (int i = 0; i < 8; ++i) {
    const __m256 p = _mm256_blendv_ps(g[i], a[i], use_a);
    z[i] = _mm256_add_ps(p, p);
  }
}

inline void e8_tile(__m256 (&z)[8], int q) {
  if (inside(z, float(q - 1)))
    e8_tile_search<false>(z, q);
  else
    e8_tile_search<true>(z, q);
}

// D4 search on a transposed tile; r gets doubled coordinates.
inline void d4_tile(const __m256 (&z)[4], int q, __m256 (&r)[4]) {
  const __m256 flo = _mm256_set1_ps(float(-q)), fhi = _mm256_set1_ps(float(q));
  if (inside(z, float(q)))
    dn_box<4, false>(z, flo, fhi, r);
  else
    dn_box<4, true>(z, flo, fhi, r);
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) r[i] = _mm256_add_ps(r[i], r[i]);
}

// z = y / s for one tile (8 E8 blocks), transposed, searched: doubled
// coordinates out, transposed (as simd_avx512.cpp's load_search).
inline void e8_load_search(const float* y, __m256 vs, int q, __m256 (&z)[8]) {
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) z[i] = _mm256_div_ps(ld(y + 8 * i), vs);
  transpose8(z);
  e8_tile(z, q);
}

// The same for one tile of 8 D4 blocks.
inline void d4_load_search(const float* y, __m256 vs, int q, __m256 (&r)[4]) {
  __m256 z[4];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) z[i] = _mm256_div_ps(ld(y + 8 * i), vs);
  transpose4x2(z);
  d4_tile(z, q, r);
}

// Decode half of the fused roundtrip on a transposed E8 tile of doubled
// points: dequantise ((p * 0.5) * s), stages h = 1, 2, 4 (coordinate
// registers), back to block registers, stages h = 8, 16, 32.
template <class Fin>
inline void e8_tile_decode(__m256 (&p)[8], __m256 vs, bool last, Fin fin, float* out) {
  // + 0 turns a point's -0 (rounding of a small negative) into the +0 that
  // the integer path's float(int) gives, so the outputs' zero signs agree.
  const __m256 vh = _mm256_set1_ps(0.5f), zero = _mm256_setzero_ps();
#pragma GCC unroll 16
  for (int i = 0; i < 8; ++i) p[i] = _mm256_mul_ps(_mm256_mul_ps(_mm256_add_ps(p[i], zero), vh), vs);
  butterflies<8>(p);
  transpose8(p);
  butterflies<8>(p);
#pragma GCC unroll 16
  for (int i = 0; i < 8; ++i) st(out + 8 * i, last ? fin(p[i]) : p[i]);
}

// The same for a D4 tile (coordinate registers over blocks 0,2,4,6,1,3,5,7):
// stages 1, 2 between coordinate registers, back to registers of two
// blocks, stage 4 inside each register, stages 8, 16 between registers.
template <class Fin>
inline void d4_tile_decode(__m256 (&p)[4], __m256 vs, bool last, Fin fin, float* out) {
  const __m256 vh = _mm256_set1_ps(0.5f), zero = _mm256_setzero_ps();  // + 0: see e8_tile_decode
  const __m256 n4 = _mm256_castsi256_ps(_mm256_setr_epi32(0, 0, 0, 0, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN));
#pragma GCC unroll 16
  for (int i = 0; i < 4; ++i) p[i] = _mm256_mul_ps(_mm256_mul_ps(_mm256_add_ps(p[i], zero), vh), vs);
  butterflies<4>(p);
  transpose4x2(p);
#pragma GCC unroll 16
  for (int i = 0; i < 4; ++i)
    p[i] = _mm256_add_ps(_mm256_permute2f128_ps(p[i], p[i], 0x01), _mm256_xor_ps(p[i], n4));
  butterflies<4>(p);
#pragma GCC unroll 16
  for (int i = 0; i < 4; ++i) st(out + 8 * i, last ? fin(p[i]) : p[i]);
}

}  // namespace

namespace {

// R rows at once: R independent chains of additions (each partial sum is a
// chain of d/8 dependent additions, so one row alone is latency-bound).
template <int R>
inline void sumsq8_r(const float* x, int64_t d, double* sumsq, uint32_t* max_mag_bits) {
  const __m256i mag = _mm256_set1_epi32(0x7fffffff);
  __m256d a0[R], a1[R];
  __m256i mb[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) a0[r] = a1[r] = _mm256_setzero_pd(), mb[r] = _mm256_setzero_si256();
  for (int64_t j = 0; j < d; j += 8)
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m256 v = ld(x + r * d + j);
      const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
      const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
      a0[r] = _mm256_add_pd(a0[r], _mm256_mul_pd(lo, lo));
      a1[r] = _mm256_add_pd(a1[r], _mm256_mul_pd(hi, hi));
      mb[r] = _mm256_max_epu32(mb[r], _mm256_and_si256(_mm256_castps_si256(v), mag));
    }
  for (int r = 0; r < R; ++r) {
    double acc[8];
    _mm256_storeu_pd(acc, a0[r]);
    _mm256_storeu_pd(acc + 4, a1[r]);
    sumsq[r] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    uint32_t m[8];
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(m), mb[r]);
    uint32_t best = 0;
    for (uint32_t v : m) best = v > best ? v : best;
    max_mag_bits[r] = best;
  }
}

}  // namespace

void sumsq8_rows(const float* x, int64_t rows, int64_t d, double* sumsq, uint32_t* max_mag_bits) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) sumsq8_r<4>(x + r * d, d, sumsq + r, max_mag_bits + r);
  for (; r < rows; ++r) sumsq8_r<1>(x + r * d, d, sumsq + r, max_mag_bits + r);
}

float div_fwht_absmax(const float* x, float nrm, int64_t d, float* y) {
  const __m256 vn = _mm256_set1_ps(nrm);
  const __m256 c = _mm256_set1_ps(hadamard_norm_factor(d));
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 mx = _mm256_setzero_ps();
  fwht(
      y, d, [&](int64_t i) { return _mm256_div_ps(ld(x + i), vn); },
      [&](__m256 v) {
        v = _mm256_mul_ps(v, c);
        mx = _mm256_max_ps(mx, _mm256_and_ps(v, absmask));
        return v;
      });
  return hmax(mx);
}

int64_t quantize_blocks(LatticeKind k, int q, const float* y, int64_t d, float s, int32_t* pts2) {
  const __m256 vs = _mm256_set1_ps(s);
  if (k == LatticeKind::kE8) {
    const int64_t done = d / 64 * 64;
    for (int64_t t = 0; t < done; t += 64) {
      __m256 z[8];
      e8_load_search(y + t, vs, q, z);
      transpose8(z);
      #pragma GCC unroll 16
      for (int i = 0; i < 8; ++i)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(pts2 + t + 8 * i), _mm256_cvtps_epi32(z[i]));
    }
    return done;
  }
  const int64_t done = d / 32 * 32;
  for (int64_t t = 0; t < done; t += 32) {
    __m256 r[4];
    d4_load_search(y + t, vs, q, r);
    transpose4x2(r);
    #pragma GCC unroll 16
    for (int i = 0; i < 4; ++i)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(pts2 + t + 8 * i), _mm256_cvtps_epi32(r[i]));
  }
  return done;
}

void quantize_roundtrip(LatticeKind k, int q, const float* y, int64_t d, float s, float nv, float* out) {
  const __m256 vs = _mm256_set1_ps(s), vn = _mm256_set1_ps(nv);
  const __m256 c = _mm256_set1_ps(hadamard_norm_factor(d));
  const auto fin = [&](__m256 v) { return _mm256_mul_ps(_mm256_mul_ps(v, c), vn); };
  if (k == LatticeKind::kE8) {
    const bool last = d == 64;
    for (int64_t t = 0; t < d; t += 64) {
      __m256 z[8];
      e8_load_search(y + t, vs, q, z);
      e8_tile_decode(z, vs, last, fin, out + t);
    }
    if (!last) fwht_tail(out, d, fin, 64);
    return;
  }
  const bool last = d == 32;
  for (int64_t t = 0; t < d; t += 32) {
    __m256 r[4];
    d4_load_search(y + t, vs, q, r);
    d4_tile_decode(r, vs, last, fin, out + t);
  }
  if (!last) fwht_tail(out, d, fin, 32);
}

void dequant_fwht_scale(const int32_t* pts2, int64_t d, float s, float nv, float* out) {
  const __m256 vs = _mm256_set1_ps(s), vh = _mm256_set1_ps(0.5f), vn = _mm256_set1_ps(nv);
  const __m256 c = _mm256_set1_ps(hadamard_norm_factor(d));
  fwht(
      out, d,
      [&](int64_t i) {
        const __m256 p = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(pts2 + i)));
        return _mm256_mul_ps(_mm256_mul_ps(p, vh), vs);
      },
      [&](__m256 v) { return _mm256_mul_ps(_mm256_mul_ps(v, c), vn); });
}

bool fp8_roundtrip_row(const float* x, int64_t ncols, int64_t block, float* out) {
  const __m256i mag = _mm256_set1_epi32(0x7fffffff), sgn = _mm256_set1_epi32(INT32_MIN);
  const __m256i expo = _mm256_set1_epi32(0x7f800000), shift = _mm256_set1_epi32(20 << 23);
  const __m256i cmin = _mm256_set1_epi32(0x46800000);  // 2^14
  const __m256 fmax = _mm256_set1_ps(kE4m3Max), absmask = _mm256_castsi256_ps(mag);
  for (int64_t k = 0; k < ncols; k += block) {
    const float* v = x + k;
    __m256i mb = _mm256_setzero_si256();
    for (int64_t j = 0; j < block; j += 8)
      mb = _mm256_max_epu32(mb, _mm256_and_si256(_mm256_castps_si256(ld(v + j)), mag));
    __m128i m4 = _mm_max_epu32(_mm256_castsi256_si128(mb), _mm256_extracti128_si256(mb, 1));
    m4 = _mm_max_epu32(m4, _mm_shuffle_epi32(m4, 0x4E));
    m4 = _mm_max_epu32(m4, _mm_shuffle_epi32(m4, 0xB1));
    uint16_t code;
    float scale;
    if (!fp8_scale_from_max_bits(uint32_t(_mm_cvtsi128_si32(m4)), &code, &scale))
      return false;  // non-finite, or beyond the uf16 field: the caller reports it
    const __m256 vs = _mm256_set1_ps(scale);
    for (int64_t j = 0; j < block; j += 8) {
      // t = v / s; a = min(|t|, 448) rounded to E4M3 as (a + C) - C with
      // C = max(2^(e+20), 2^14) (simd_avx512.cpp's e4m3_round16 explains
      // why this equals fp8_block.cpp's e4m3_round_inline); t's sign back.
      const __m256 t = _mm256_div_ps(ld(v + j), vs);
      const __m256 a = _mm256_min_ps(_mm256_and_ps(t, absmask), fmax);
      const __m256 c = _mm256_castsi256_ps(
          _mm256_max_epi32(_mm256_add_epi32(_mm256_and_si256(_mm256_castps_si256(a), expo), shift), cmin));
      const __m256 r = _mm256_sub_ps(_mm256_add_ps(a, c), c);
      const __m256 q = _mm256_or_ps(r, _mm256_and_ps(t, _mm256_castsi256_ps(sgn)));
      st(out + k + j, _mm256_mul_ps(q, vs));
    }
  }
  return true;
}

void fwht_normalized(float* x, int64_t d) {
  const __m256 c = _mm256_set1_ps(hadamard_norm_factor(d));
  fwht(
      x, d, [&](int64_t i) { return ld(x + i); }, [&](__m256 v) { return _mm256_mul_ps(v, c); });
}

}  // namespace kvlab::kernels::avx2

#pragma GCC pop_options

#else  // not x86-64: simd_level() never selects AVX2, these are never called

#include "common/error.h"

namespace kvlab::kernels::avx2 {
void sumsq8_rows(const float*, int64_t, int64_t, double*, uint32_t*) {
  KVLAB_ASSERT(false, "AVX2 kernel on a non-x86 build");
}
float div_fwht_absmax(const float*, float, int64_t, float*) {
  KVLAB_ASSERT(false, "AVX2 kernel on a non-x86 build");
  return 0.0f;
}
int64_t quantize_blocks(LatticeKind, int, const float*, int64_t, float, int32_t*) {
  KVLAB_ASSERT(false, "AVX2 kernel on a non-x86 build");
  return 0;
}
void dequant_fwht_scale(const int32_t*, int64_t, float, float, float*) {
  KVLAB_ASSERT(false, "AVX2 kernel on a non-x86 build");
}
void fwht_normalized(float*, int64_t) { KVLAB_ASSERT(false, "AVX2 kernel on a non-x86 build"); }
void quantize_roundtrip(LatticeKind, int, const float*, int64_t, float, float, float*) {
  KVLAB_ASSERT(false, "AVX2 kernel on a non-x86 build");
}
bool fp8_roundtrip_row(const float*, int64_t, int64_t, float*) {
  KVLAB_ASSERT(false, "AVX2 kernel on a non-x86 build");
  return false;
}
}  // namespace kvlab::kernels::avx2

#endif
