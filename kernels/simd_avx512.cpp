// AVX-512 E8 tiles; see simd.h.
//
// The E8 closest-point search is the codec pipeline's hottest step. Here it
// runs on 16 blocks at once (a tile of 128 floats): the tile is transposed
// so that register i holds coordinate i of the 16 blocks, and the search of
// lattice.cpp's dn_box / e8_box runs lane-wise with mask registers (one
// blend per choice instead of three AVX2 uops). Same operations, same
// order, same tie rules as the scalar code: results are bit-identical
// (tests compare every level). Only this file is compiled for AVX-512, and
// only after every #include; its functions run only when the CPU has
// AVX-512 F/DQ/BW/VL (simd.cpp checks).
#include "kernels/simd.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include <cfloat>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/fp8_block.h"
#include "kernels/fp_formats.h"
#include "kernels/hadamard.h"

#pragma GCC push_options
#pragma GCC target("avx2,avx512f,avx512dq,avx512bw,avx512vl")
// GCC 12's AVX-512 intrinsics (e.g. _mm512_cvtps_epi32) start from an
// "undefined" register and trip -Wmaybe-uninitialized (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"  // the same, where GCC is sure of it

namespace kvlab::kernels::avx512 {
namespace {

inline __m512 ld(const float* p) { return _mm512_loadu_ps(p); }
inline void st(float* p, __m512 v) { _mm512_storeu_ps(p, v); }

// Registers R_k = floats [16k, 16k + 16) of a tile (blocks 2k, 2k + 1) ->
// C_i = coordinate i of the 16 blocks, lanes in the block order
// 0,2,4,6, 1,3,5,7, 8,10,12,14, 9,11,13,15. Two 4 x 4 transposes inside
// each 128-bit lane, then 128-bit lanes regrouped.
inline void to_coords(__m512 (&r)[8]) {
  const __m512 t0 = _mm512_unpacklo_ps(r[0], r[1]), t1 = _mm512_unpackhi_ps(r[0], r[1]);
  const __m512 t2 = _mm512_unpacklo_ps(r[2], r[3]), t3 = _mm512_unpackhi_ps(r[2], r[3]);
  const __m512 t4 = _mm512_unpacklo_ps(r[4], r[5]), t5 = _mm512_unpackhi_ps(r[4], r[5]);
  const __m512 t6 = _mm512_unpacklo_ps(r[6], r[7]), t7 = _mm512_unpackhi_ps(r[6], r[7]);
  const __m512 u0 = _mm512_shuffle_ps(t0, t2, 0x44), u1 = _mm512_shuffle_ps(t0, t2, 0xEE);
  const __m512 u2 = _mm512_shuffle_ps(t1, t3, 0x44), u3 = _mm512_shuffle_ps(t1, t3, 0xEE);
  const __m512 u4 = _mm512_shuffle_ps(t4, t6, 0x44), u5 = _mm512_shuffle_ps(t4, t6, 0xEE);
  const __m512 u6 = _mm512_shuffle_ps(t5, t7, 0x44), u7 = _mm512_shuffle_ps(t5, t7, 0xEE);
  // u_j lanes: (coord j, blocks 0,2,4,6), (coord j+4, same), (coord j, 1,3,5,7),
  // (coord j+4, same); u_{j+4} likewise for blocks 8..15.
  r[0] = _mm512_shuffle_f32x4(u0, u4, 0x88);  // lanes 0, 2 of u0 then of u4
  r[1] = _mm512_shuffle_f32x4(u1, u5, 0x88);
  r[2] = _mm512_shuffle_f32x4(u2, u6, 0x88);
  r[3] = _mm512_shuffle_f32x4(u3, u7, 0x88);
  r[4] = _mm512_shuffle_f32x4(u0, u4, 0xDD);  // lanes 1, 3
  r[5] = _mm512_shuffle_f32x4(u1, u5, 0xDD);
  r[6] = _mm512_shuffle_f32x4(u2, u6, 0xDD);
  r[7] = _mm512_shuffle_f32x4(u3, u7, 0xDD);
}

// The inverse of to_coords.
inline void from_coords(__m512 (&c)[8]) {
  const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
  const __m512i hi = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
  __m512 u[8];
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    u[j] = _mm512_permutex2var_ps(c[j], lo, c[j + 4]);
    u[j + 4] = _mm512_permutex2var_ps(c[j], hi, c[j + 4]);
  }
  // u_j is back (its lanes: a.L0, b.L0, a.L1, b.L1 with a = c_j, b = c_j+4);
  // the in-lane 4 x 4 transposes are their own inverse.
#pragma GCC unroll 2
  for (int g = 0; g < 8; g += 4) {
    const __m512 t0 = _mm512_unpacklo_ps(u[g], u[g + 1]), t1 = _mm512_unpackhi_ps(u[g], u[g + 1]);
    const __m512 t2 = _mm512_unpacklo_ps(u[g + 2], u[g + 3]), t3 = _mm512_unpackhi_ps(u[g + 2], u[g + 3]);
    u[g] = _mm512_shuffle_ps(t0, t2, 0x44);
    u[g + 1] = _mm512_shuffle_ps(t0, t2, 0xEE);
    u[g + 2] = _mm512_shuffle_ps(t1, t3, 0x44);
    u[g + 3] = _mm512_shuffle_ps(t1, t3, 0xEE);
  }
  for (int j = 0; j < 8; ++j) c[j] = u[j];
}

// D4 tiles: registers R_k = blocks 4k .. 4k+3 (16 floats) <-> coordinate
// registers over the blocks in lane order 0,4,8,12, 1,5,9,13, ...: the
// 4 x 4 transpose inside each 128-bit lane (its own inverse).
inline void transpose4_lanes(__m512 (&r)[4]) {
  const __m512 t0 = _mm512_unpacklo_ps(r[0], r[1]), t1 = _mm512_unpackhi_ps(r[0], r[1]);
  const __m512 t2 = _mm512_unpacklo_ps(r[2], r[3]), t3 = _mm512_unpackhi_ps(r[2], r[3]);
  r[0] = _mm512_shuffle_ps(t0, t2, 0x44);
  r[1] = _mm512_shuffle_ps(t0, t2, 0xEE);
  r[2] = _mm512_shuffle_ps(t1, t3, 0x44);
  r[3] = _mm512_shuffle_ps(t1, t3, 0xEE);
}

template <int R>
inline void butterflies(__m512 (&v)[R]) {
#pragma GCC unroll 4
  for (int s = 1; s < R; s *= 2)
#pragma GCC unroll 16
    for (int t = 0; t < R; ++t)
      if ((t & s) == 0) {
        const __m512 a = v[t], b = v[t ^ s];
        v[t] = _mm512_add_ps(a, b);
        v[t ^ s] = _mm512_sub_ps(a, b);
      }
}

// Butterfly stages h = h0 .. d/2 (h0 >= 16) over y[0, d), two or one per
// pass (simd_avx2.cpp's fwht_tail with 16 lanes; same operations per value,
// same order); the last pass's values go through fin and are handed to
// put(offset, v) instead of stored back into y.
template <class Fin, class Put>
inline void tail_put(float* y, int64_t d, int64_t h0, Fin fin, Put put) {
  for (int64_t h = h0; h < d;) {
    const bool two = 4 * h <= d;
    const bool last = two ? 4 * h == d : true;
    const int64_t span = two ? 4 * h : 2 * h;
    for (int64_t i = 0; i < d; i += span)
      for (int64_t j = i; j < i + h; j += 16) {
        if (two) {
          __m512 v[4] = {ld(y + j), ld(y + j + h), ld(y + j + 2 * h), ld(y + j + 3 * h)};
          butterflies<4>(v);
          if (last) {
#pragma GCC unroll 4
            for (int r = 0; r < 4; ++r) put(j + r * h, fin(v[r]));
          } else {
#pragma GCC unroll 4
            for (int r = 0; r < 4; ++r) st(y + j + r * h, v[r]);
          }
        } else {
          __m512 v[2] = {ld(y + j), ld(y + j + h)};
          butterflies<2>(v);
          put(j, fin(v[0]));
          put(j + h, fin(v[1]));
        }
      }
    h *= two ? 4 : 2;
  }
}

// tail_put storing the last pass's values back into x.
template <class Fin>
inline void tail(float* x, int64_t d, int64_t h0, Fin fin) {
  tail_put(x, d, h0, fin, [x](int64_t o, __m512 v) { st(x + o, v); });
}

// The tail with x * c * nv as its last step.
inline void tail_scaled(float* x, int64_t d, int64_t h0, __m512 c, __m512 vn) {
  tail(x, d, h0, [&](__m512 v) { return _mm512_mul_ps(_mm512_mul_ps(v, c), vn); });
}

// Stages h = 1, 2, 4, 8 of the butterflies on one register of 16
// consecutive values (simd_avx2.cpp's h8 with one more stage): the partner
// lanes swapped plus the register with the upper partners negated, which
// is a + b in the lower and a - b in the upper lane, exactly.
inline __m512 h16(__m512 v) {
  constexpr int32_t M = INT32_MIN;
  const __m512 n1 = _mm512_castsi512_ps(_mm512_setr_epi32(0, M, 0, M, 0, M, 0, M, 0, M, 0, M, 0, M, 0, M));
  const __m512 n2 = _mm512_castsi512_ps(_mm512_setr_epi32(0, 0, M, M, 0, 0, M, M, 0, 0, M, M, 0, 0, M, M));
  const __m512 n4 = _mm512_castsi512_ps(_mm512_setr_epi32(0, 0, 0, 0, M, M, M, M, 0, 0, 0, 0, M, M, M, M));
  const __m512 n8 = _mm512_castsi512_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, M, M, M, M, M, M, M, M));
  v = _mm512_add_ps(_mm512_permute_ps(v, 0xB1), _mm512_xor_ps(v, n1));       // pairs swapped
  v = _mm512_add_ps(_mm512_permute_ps(v, 0x4E), _mm512_xor_ps(v, n2));       // pairs of pairs swapped
  v = _mm512_add_ps(_mm512_shuffle_f32x4(v, v, 0xB1), _mm512_xor_ps(v, n4));  // 128-bit lanes swapped in pairs
  v = _mm512_add_ps(_mm512_shuffle_f32x4(v, v, 0x4E), _mm512_xor_ps(v, n8));  // 256-bit halves swapped
  return v;
}

// Full FWHT into y (d = 16R, or d > 128 with R = 8): in(i) yields the 16
// input values at offset i, fin post-maps the final values. Tiles of 16R
// values take stages 1 .. 8R in registers; the tail does the rest.
template <int R, class In, class Fin>
inline void fwht_r(float* y, int64_t d, In in, Fin fin) {
  const bool last = d == 16 * R;
  for (int64_t i = 0; i < d; i += 16 * R) {
    __m512 v[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) v[r] = h16(in(i + 16 * r));
    butterflies<R>(v);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) st(y + i + 16 * r, last ? fin(v[r]) : v[r]);
  }
  if (!last) tail(y, d, 16 * R, fin);
}

// lattice.cpp's dn_box on 16 lanes (see simd_avx2.cpp's dn_box for the
// derivation of ok from z and of the combined index/direction code).
// Boxed = false is the same search for tiles where no coordinate can reach
// the box (the caller checks |z| < the bound): no clamp, every move "ok",
// so the key is -|d| (compared as |d| with max) and dir = sign(d).
template <int B, bool Boxed>
inline void dn_box(const __m512 (&c)[B], __m512 flo, __m512 fhi, __m512 (&r)[B]) {
  // The scalar search scans the coordinates in order and keeps the first
  // best key (Boxed: the smallest key; else the largest |d|). Here each
  // coordinate's key and code come first, then a tree of pairwise choices in
  // which the right one wins only when strictly better: the same first best,
  // with a dependency chain of log2(B) steps instead of B. The sum of the
  // rounded coordinates (integers, exact in any order) is a tree too.
  const __m512 sign = _mm512_set1_ps(-0.0f), one = _mm512_set1_ps(1.0f);
  const __m512i isign = _mm512_castps_si512(sign);
  __m512 key[B], code[B], sum[B];
#pragma GCC unroll 8
  for (int i = 0; i < B; ++i) {
    __m512 ri = _mm512_roundscale_ps(c[i], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (Boxed) ri = _mm512_min_ps(_mm512_max_ps(ri, flo), fhi);
    r[i] = ri;
    sum[i] = ri;
    const __m512 d = _mm512_sub_ps(c[i], ri);
    const __m512 absd = _mm512_abs_ps(d);
    if (Boxed) {
      const __mmask16 ok = _mm512_mask_cmp_ps_mask(_mm512_cmp_ps_mask(c[i], fhi, _CMP_LT_OQ), c[i], flo, _CMP_GE_OQ);
      key[i] = _mm512_mask_xor_ps(absd, ok, absd, sign);  // ok ? -|d| : |d|
      // sign(code) = sign(d) ^ !ok, |code| = i + 1: (d & sign) ^ -(i + 1), flipped where ok.
      code[i] = _mm512_castsi512_ps(_mm512_ternarylogic_epi32(
          _mm512_castps_si512(d), isign, _mm512_castps_si512(_mm512_set1_ps(-float(i + 1))), 0x6A));
      code[i] = _mm512_mask_xor_ps(code[i], ok, code[i], sign);
    } else {
      key[i] = absd;
      code[i] = _mm512_castsi512_ps(_mm512_ternarylogic_epi32(  // (d & sign) | (i + 1)
          _mm512_castps_si512(d), isign, _mm512_castps_si512(_mm512_set1_ps(float(i + 1))), 0xEA));
    }
  }
#pragma GCC unroll 4
  for (int w = 1; w < B; w *= 2)
#pragma GCC unroll 8
    for (int i = 0; i + w < B; i += 2 * w) {
      // Right strictly better: Boxed key_r < key_l; else |d|_r > |d|_l.
      const __mmask16 right = _mm512_cmp_ps_mask(key[i + w], key[i], Boxed ? _CMP_LT_OQ : _CMP_GT_OQ);
      key[i] = _mm512_mask_mov_ps(key[i], right, key[i + w]);
      code[i] = _mm512_mask_mov_ps(code[i], right, code[i + w]);
      sum[i] = _mm512_add_ps(sum[i], sum[i + w]);
    }
  const __mmask16 odd = _mm512_test_epi32_mask(_mm512_cvtps_epi32(sum[0]), _mm512_set1_epi32(1));
  const __m512 dir = _mm512_or_ps(_mm512_and_ps(code[0], sign), one);
  const __m512 idx = _mm512_abs_ps(code[0]);
#pragma GCC unroll 8
  for (int i = 0; i < B; ++i) {
    const __mmask16 m = _mm512_mask_cmp_ps_mask(odd, idx, _mm512_set1_ps(float(i + 1)), _CMP_EQ_OQ);
    r[i] = _mm512_mask_add_ps(r[i], m, r[i], dir);
  }
}

// True when every |z| < bound: then no coordinate's rounding or move can
// reach the box of either coset (E8: bound Q - 1, which also keeps the
// half coset's z - 1/2 inside [-Q, Q - 1); D4: bound Q).
template <int B>
inline bool inside(const __m512 (&z)[B], float bound) {
  __m512 m = _mm512_abs_ps(z[0]);
#pragma GCC unroll 8
  for (int i = 1; i < B; ++i) m = _mm512_max_ps(m, _mm512_abs_ps(z[i]));
  return _mm512_cmp_ps_mask(m, _mm512_set1_ps(bound), _CMP_GE_OQ) == 0;
}

// e8_box on a transposed tile: z in, doubled coordinates out.
// e8_box on T transposed tiles (z in, doubled coordinates out), step by
// step: each step on every tile before the next, so that with T = 2 the core
// always has independent work (one tile's search is a long dependency
// chain). Same operations per tile.
template <bool Boxed, int T>
inline void e8_tiles(__m512 (&z)[T][8], int q) {
  const __m512 half = _mm512_set1_ps(0.5f);
  __m512 a[T][8], g[T][8], w[T][8];
#pragma GCC unroll 2
  for (int u = 0; u < T; ++u) dn_box<8, Boxed>(z[u], _mm512_set1_ps(float(-q)), _mm512_set1_ps(float(q)), a[u]);
#pragma GCC unroll 2
  for (int u = 0; u < T; ++u)
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) w[u][i] = _mm512_sub_ps(z[u][i], half);
#pragma GCC unroll 2
  for (int u = 0; u < T; ++u) dn_box<8, Boxed>(w[u], _mm512_set1_ps(float(-q)), _mm512_set1_ps(float(q - 1)), g[u]);
  __m512 da[T], db[T];
#pragma GCC unroll 2
  for (int u = 0; u < T; ++u) da[u] = db[u] = _mm512_setzero_ps();
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i)
#pragma GCC unroll 2
    for (int u = 0; u < T; ++u) {
      const __m512 ea = _mm512_sub_ps(z[u][i], a[u][i]);
      g[u][i] = _mm512_add_ps(g[u][i], half);
      const __m512 eb = _mm512_sub_ps(z[u][i], g[u][i]);
      da[u] = _mm512_add_ps(da[u], _mm512_mul_ps(ea, ea));
      db[u] = _mm512_add_ps(db[u], _mm512_mul_ps(eb, eb));
    }
#pragma GCC unroll 2
  for (int u = 0; u < T; ++u) {
    const __mmask16 use_a = _mm512_cmp_ps_mask(da[u], db[u], _CMP_LE_OQ);
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
      const __m512 p = _mm512_mask_mov_ps(g[u][i], use_a, a[u][i]);
      z[u][i] = _mm512_add_ps(p, p);
    }
  }
}

// The decode half of the fused E8 roundtrip on one searched tile of
// doubled points (coordinate registers) -> 128 values before the last
// FWHT stages: (p * 0.5) * s; stages h = 1, 2, 4 between coordinate
// registers; back to registers of two blocks; stage 8 between their halves;
// stages 16, 32, 64 between registers. The + 0 turns a point's -0 (rounding
// of a small negative) into the +0 that the integer path's float(int)
// gives, so the outputs' zero signs agree.
inline void e8_decode_tile(__m512 (&p)[8], __m512 vs) {
  const __m512 vh = _mm512_set1_ps(0.5f), zero = _mm512_setzero_ps();
  const __m512 n8 = _mm512_castsi512_ps(
      _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN,
                        INT32_MIN, INT32_MIN));
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) p[i] = _mm512_mul_ps(_mm512_mul_ps(_mm512_add_ps(p[i], zero), vh), vs);
  butterflies<8>(p);
  from_coords(p);
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) p[i] = _mm512_add_ps(_mm512_shuffle_f32x4(p[i], p[i], 0x4E), _mm512_xor_ps(p[i], n8));
  butterflies<8>(p);
}

// load_search on two tiles at once (y and y + 128).
inline void load_search2(const float* y, __m512 vs, int q, __m512 (&z)[2][8]) {
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    z[0][i] = _mm512_div_ps(ld(y + 16 * i), vs);
    z[1][i] = _mm512_div_ps(ld(y + 128 + 16 * i), vs);
  }
  to_coords(z[0]);
  to_coords(z[1]);
  if (inside(z[0], float(q - 1)) && inside(z[1], float(q - 1)))
    e8_tiles<false, 2>(z, q);
  else
    e8_tiles<true, 2>(z, q);  // the boxed search is exact for any tile
}

// z = y / s for one tile, transposed, searched.
inline void load_search(const float* y, __m512 vs, int q, __m512 (&z)[8]) {
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) z[i] = _mm512_div_ps(ld(y + 16 * i), vs);
  to_coords(z);
  auto& one = reinterpret_cast<__m512(&)[1][8]>(z);
  if (inside(z, float(q - 1)))
    e8_tiles<false, 1>(one, q);
  else
    e8_tiles<true, 1>(one, q);
}

// D4: z = y / s for one tile of 16 blocks, transposed, searched; r gets
// the doubled coordinates (transposed).
inline void d4_load_search(const float* y, __m512 vs, int q, __m512 (&r)[4]) {
  __m512 z[4];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) z[i] = _mm512_div_ps(ld(y + 16 * i), vs);
  transpose4_lanes(z);
  const __m512 flo = _mm512_set1_ps(float(-q)), fhi = _mm512_set1_ps(float(q));
  if (inside(z, float(q)))
    dn_box<4, false>(z, flo, fhi, r);
  else
    dn_box<4, true>(z, flo, fhi, r);
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) r[i] = _mm512_add_ps(r[i], r[i]);
}

}  // namespace

void sumsq8_rows(const float* x, int64_t rows, int64_t d, double* sumsq, uint32_t* max_mag_bits) {
  // As avx2::sumsq8_rows: partial l of row r accumulates x_j^2 (j = l mod 8)
  // in order; one register holds a row's 8 partials, 4 rows interleaved.
  const __m256i mag = _mm256_set1_epi32(0x7fffffff);
  for (int64_t r0 = 0; r0 < rows; r0 += 4) {
    const int nr = int(rows - r0 < 4 ? rows - r0 : 4);
    __m512d acc[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
    __m256i mb[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
    for (int64_t j = 0; j < d; j += 8)
#pragma GCC unroll 4
      for (int r = 0; r < 4; ++r) {
        if (r >= nr) break;
        const __m256 v = _mm256_loadu_ps(x + (r0 + r) * d + j);
        const __m512d w = _mm512_cvtps_pd(v);
        acc[r] = _mm512_add_pd(acc[r], _mm512_mul_pd(w, w));
        mb[r] = _mm256_max_epu32(mb[r], _mm256_and_si256(_mm256_castps_si256(v), mag));
      }
    for (int r = 0; r < nr; ++r) {
      double a[8];
      _mm512_storeu_pd(a, acc[r]);
      sumsq[r0 + r] = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
      uint32_t m[8];
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(m), mb[r]);
      uint32_t best = 0;
      for (uint32_t u : m) best = u > best ? u : best;
      max_mag_bits[r0 + r] = best;
    }
  }
}

float div_fwht_absmax(const float* x, float nrm, int64_t d, float* y) {
  const __m512 vn = _mm512_set1_ps(nrm), c = _mm512_set1_ps(hadamard_norm_factor(d));
  __m512 mx = _mm512_setzero_ps();
  const auto in = [&](int64_t i) { return _mm512_div_ps(ld(x + i), vn); };
  const auto fin = [&](__m512 v) {
    v = _mm512_mul_ps(v, c);
    mx = _mm512_max_ps(mx, _mm512_abs_ps(v));
    return v;
  };
  switch (d) {
    case 16: fwht_r<1>(y, d, in, fin); break;
    case 32: fwht_r<2>(y, d, in, fin); break;
    case 64: fwht_r<4>(y, d, in, fin); break;
    default: fwht_r<8>(y, d, in, fin); break;
  }
  return _mm512_reduce_max_ps(mx);
}

void dequant_fwht_scale(const int32_t* pts2, int64_t d, float s, float nv, float* out) {
  const __m512 vs = _mm512_set1_ps(s), vh = _mm512_set1_ps(0.5f), vn = _mm512_set1_ps(nv);
  const __m512 c = _mm512_set1_ps(hadamard_norm_factor(d));
  const auto in = [&](int64_t i) {
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(pts2 + i)), vh), vs);
  };
  const auto fin = [&](__m512 v) { return _mm512_mul_ps(_mm512_mul_ps(v, c), vn); };
  switch (d) {
    case 16: fwht_r<1>(out, d, in, fin); break;
    case 32: fwht_r<2>(out, d, in, fin); break;
    case 64: fwht_r<4>(out, d, in, fin); break;
    default: fwht_r<8>(out, d, in, fin); break;
  }
}

namespace {

// Unpacking packed block indices (the lattice codecs' decode), 16 blocks a
// step. Fields: bpb <= 57 bits at bit k * bpb of an LSB-first stream; lane
// L of the result holds block order[L]; two registers of 8 64-bit lanes.
struct Fields {
  __m512i lo, hi;
};
inline Fields gather_fields(const uint8_t* bits, int64_t k0, int bpb, __m512i lanes_lo, __m512i lanes_hi) {
  const __m512i base = _mm512_set1_epi64(k0 * int64_t(bpb)), seven = _mm512_set1_epi64(7);
  const __m512i field = _mm512_set1_epi64(int64_t((uint64_t(1) << bpb) - 1));
  const __m512i plo = _mm512_add_epi64(base, lanes_lo), phi = _mm512_add_epi64(base, lanes_hi);
  const __m512i wlo = _mm512_i64gather_epi64(_mm512_srli_epi64(plo, 3), bits, 1);
  const __m512i whi = _mm512_i64gather_epi64(_mm512_srli_epi64(phi, 3), bits, 1);
  return {_mm512_and_si512(_mm512_srlv_epi64(wlo, _mm512_and_si512(plo, seven)), field),
          _mm512_and_si512(_mm512_srlv_epi64(whi, _mm512_and_si512(phi, seven)), field)};
}

// Bit positions of the 16 blocks of a step, lanes in the given block order.
inline void field_lanes(int bpb, const int64_t (&order)[16], __m512i* lo, __m512i* hi) {
  alignas(64) int64_t p[16];
  for (int l = 0; l < 16; ++l) p[l] = order[l] * bpb;
  *lo = _mm512_load_si512(p);
  *hi = _mm512_load_si512(p + 8);
}

inline __m512i u64_to_u32x16(__m512i lo, __m512i hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(lo)), _mm512_cvtepi64_epi32(hi), 1);
}

// n / d and n % d for 16 lanes of n < 2^32, d <= 2^16 (per lane; inv_lo /
// inv_hi = RN(1 / d) for lanes 0-7 / 8-15 in double). n * RN(1/d) is within
// 2^-20 of n / d, less than the 1/d to the next integer, so the floor is
// exact except possibly one below at exact multiples, which r >= d fixes.
inline __m512i divmod_u32(__m512i n, __m512i d, __m512d inv_lo, __m512d inv_hi, __m512i* rem) {
  const __m256i q0 = _mm512_cvttpd_epu32(_mm512_roundscale_pd(
      _mm512_mul_pd(_mm512_cvtepu32_pd(_mm512_castsi512_si256(n)), inv_lo), _MM_FROUND_TO_NEG_INF));
  const __m256i q1 = _mm512_cvttpd_epu32(_mm512_roundscale_pd(
      _mm512_mul_pd(_mm512_cvtepu32_pd(_mm512_extracti64x4_epi64(n, 1)), inv_hi), _MM_FROUND_TO_NEG_INF));
  __m512i qt = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
  const __m512i r = _mm512_sub_epi32(n, _mm512_mullo_epi32(qt, d));
  const __mmask16 over = _mm512_cmpge_epu32_mask(r, d);
  qt = _mm512_mask_add_epi32(qt, over, qt, _mm512_set1_epi32(1));
  *rem = _mm512_mask_sub_epi32(r, over, r, d);
  return qt;
}

// n / p and n % p for 8 lanes of n < 2^53, p < 2^32 (per lane, inv = RN(1/p)
// in double): the double quotient is within one of the truth, corrected
// both ways by the exact 64-bit remainder. (One too low happens at exact
// multiples and the tests reach it; one too high needs n > 2^52, i.e.
// Q >= 46, and no test input has reached it: the check stays so that the
// result never depends on the direction of a rounding.)
inline __m512i divmod_u53(__m512i n, __m512i p, __m512d inv, __m512i* rem) {
  __m512i qt = _mm512_cvttpd_epu64(
      _mm512_roundscale_pd(_mm512_mul_pd(_mm512_cvtepu64_pd(n), inv), _MM_FROUND_TO_NEG_INF));
  __m512i r = _mm512_sub_epi64(n, _mm512_mullo_epi64(qt, p));
  const __mmask8 neg = _mm512_cmplt_epi64_mask(r, _mm512_setzero_si512());
  qt = _mm512_mask_sub_epi64(qt, neg, qt, _mm512_set1_epi64(1));
  r = _mm512_mask_add_epi64(r, neg, r, p);
  const __mmask8 over = _mm512_cmpge_epi64_mask(r, p);
  qt = _mm512_mask_add_epi64(qt, over, qt, _mm512_set1_epi64(1));
  *rem = _mm512_mask_sub_epi64(r, over, r, p);
  return qt;
}

}  // namespace

static int64_t d4_unpack_points(const uint8_t* bits, int64_t nbytes, int64_t nblocks, int bpb, int q, uint32_t count,
                         int32_t* pts2) {
  // Digits of 2 * index in radix m = 2Q + 1 (LatticeIndexer::point_fast),
  // lanes in transpose4_lanes' block order, then that transpose to
  // block-major.
  const uint32_t m = uint32_t(2 * q + 1);
  const __m512d inv = _mm512_set1_pd(1.0 / double(m));
  const __m512i vm = _mm512_set1_epi32(int32_t(m)), vq = _mm512_set1_epi32(q);
  __m512i lanes_lo, lanes_hi;
  field_lanes(bpb, {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15}, &lanes_lo, &lanes_hi);
  int64_t k0 = 0;
  for (; k0 + 16 <= nblocks; k0 += 16) {
    if ((((k0 + 15) * int64_t(bpb)) >> 3) + 8 > nbytes) break;  // would read past the codes: scalar path
    const Fields f = gather_fields(bits, k0, bpb, lanes_lo, lanes_hi);
    const __m512i idx = u64_to_u32x16(f.lo, f.hi);
    if (_mm512_cmpge_epu32_mask(idx, _mm512_set1_epi32(int32_t(count))) != 0) break;  // corrupt: scalar reports it
    __m512i d[4];
    __m512i n = _mm512_slli_epi32(idx, 1);
    n = divmod_u32(n, vm, inv, inv, &d[0]);
    n = divmod_u32(n, vm, inv, inv, &d[1]);
    d[3] = divmod_u32(n, vm, inv, inv, &d[2]);
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) d[i] = _mm512_slli_epi32(_mm512_sub_epi32(d[i], vq), 1);
    // Lanes hold the blocks in transpose4_lanes' order: back to block-major.
    __m512 c[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) c[i] = _mm512_castsi512_ps(d[i]);
    transpose4_lanes(c);
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) _mm512_storeu_si512(pts2 + 4 * k0 + 16 * i, _mm512_castps_si512(c[i]));
  }
  return k0;
}

static int64_t e8_unpack_points(const uint8_t* bits, int64_t nbytes, int64_t nblocks, int bpb, int q, uint64_t count_int,
                         uint64_t count, int32_t* pts2) {
  // LatticeIndexer::point_fast on 16 lanes. Integer coset (index <
  // count_int): 2 * index in radix m = 2Q + 1, split by m^4 into two 4-digit
  // halves. Half coset: j = index - count_int in radix r = 2Q, split by r^4;
  // its last digit is floor(h7 / 2), and h7 = 2 * that + the parity of
  // h0..h6. Each lane takes its coset's radix. Lanes hold the blocks in
  // to_coords' order, so from_coords turns the coordinate registers into
  // block-major rows.
  const uint32_t m = uint32_t(2 * q + 1), rr = uint32_t(2 * q);
  const uint64_t pm = uint64_t(m) * m * m * m, pr = uint64_t(rr) * rr * rr * rr;
  const __m512i vq = _mm512_set1_epi32(q);
  __m512i lanes_lo, lanes_hi;
  field_lanes(bpb, {0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15}, &lanes_lo, &lanes_hi);
  const __m512i cint = _mm512_set1_epi64(int64_t(count_int)), ctot = _mm512_set1_epi64(int64_t(count));
  const __m512d inv_pm = _mm512_set1_pd(1.0 / double(pm)), inv_pr = _mm512_set1_pd(1.0 / double(pr));
  const __m512d inv_m = _mm512_set1_pd(1.0 / double(m)), inv_r = _mm512_set1_pd(1.0 / double(rr));
  int64_t k0 = 0;
  for (; k0 + 16 <= nblocks; k0 += 16) {
    if ((((k0 + 15) * int64_t(bpb)) >> 3) + 8 > nbytes) break;  // would read past the codes: scalar path
    const Fields f = gather_fields(bits, k0, bpb, lanes_lo, lanes_hi);
    if ((_mm512_cmpge_epu64_mask(f.lo, ctot) | _mm512_cmpge_epu64_mask(f.hi, ctot)) != 0) break;  // corrupt
    const __mmask8 hlo = _mm512_cmpge_epu64_mask(f.lo, cint), hhi = _mm512_cmpge_epu64_mask(f.hi, cint);
    const __mmask16 half = __mmask16(hlo | (unsigned(hhi) << 8));
    // n: 2 * index (integer coset) or index - count_int (half coset).
    const __m512i nlo = _mm512_mask_sub_epi64(_mm512_slli_epi64(f.lo, 1), hlo, f.lo, cint);
    const __m512i nhi = _mm512_mask_sub_epi64(_mm512_slli_epi64(f.hi, 1), hhi, f.hi, cint);
    const __m512i plo = _mm512_mask_mov_epi64(_mm512_set1_epi64(int64_t(pm)), hlo, _mm512_set1_epi64(int64_t(pr)));
    const __m512i phi = _mm512_mask_mov_epi64(_mm512_set1_epi64(int64_t(pm)), hhi, _mm512_set1_epi64(int64_t(pr)));
    __m512i rlo, rhi;
    const __m512i qlo = divmod_u53(nlo, plo, _mm512_mask_mov_pd(inv_pm, hlo, inv_pr), &rlo);
    const __m512i qhi = divmod_u53(nhi, phi, _mm512_mask_mov_pd(inv_pm, hhi, inv_pr), &rhi);
    const __m512i radix = _mm512_mask_mov_epi32(_mm512_set1_epi32(int32_t(m)), half, _mm512_set1_epi32(int32_t(rr)));
    const __m512d ilo = _mm512_mask_mov_pd(inv_m, hlo, inv_r), ihi = _mm512_mask_mov_pd(inv_m, hhi, inv_r);
    __m512i d[8];
    __m512i n = u64_to_u32x16(rlo, rhi);  // the low half, < radix^4
    n = divmod_u32(n, radix, ilo, ihi, &d[0]);
    n = divmod_u32(n, radix, ilo, ihi, &d[1]);
    d[3] = divmod_u32(n, radix, ilo, ihi, &d[2]);
    n = u64_to_u32x16(qlo, qhi);  // the high half
    n = divmod_u32(n, radix, ilo, ihi, &d[4]);
    n = divmod_u32(n, radix, ilo, ihi, &d[5]);
    d[7] = divmod_u32(n, radix, ilo, ihi, &d[6]);
    const __m512i parity = _mm512_and_si512(
        _mm512_xor_si512(_mm512_xor_si512(_mm512_xor_si512(d[0], d[1]), _mm512_xor_si512(d[2], d[3])),
                         _mm512_xor_si512(_mm512_xor_si512(d[4], d[5]), d[6])),
        _mm512_set1_epi32(1));
    d[7] = _mm512_mask_add_epi32(d[7], half, _mm512_add_epi32(d[7], d[7]), parity);
    const __m512i one = _mm512_maskz_mov_epi32(half, _mm512_set1_epi32(1));
    __m512 c[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i)
      c[i] = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_slli_epi32(_mm512_sub_epi32(d[i], vq), 1), one));
    from_coords(c);
    int32_t* o = pts2 + 8 * k0;
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) _mm512_storeu_si512(o + 16 * i, _mm512_castps_si512(c[i]));
  }
  return k0;
}

static int64_t d4_block_indices(const int32_t* pts2, int64_t nblocks, int q, uint64_t* idx) {
  // LatticeIndexer::index_fast on 16 blocks: digits t_i = (p2_i >> 1) + Q,
  // (t0 + m (t1 + m (t2 + m t3))) >> 1, m = 2Q + 1 (< 2^32 for Q <= 127).
  const __m512i vm = _mm512_set1_epi32(2 * q + 1), vq = _mm512_set1_epi32(q);
  int64_t k0 = 0;
  for (; k0 + 16 <= nblocks; k0 += 16) {
    // Block-major (4 coordinates per block) -> coordinate registers over
    // the blocks 0,4,8,12, 1,5,9,13, ... (transpose4_lanes), indices back in
    // block order by one permutation each.
    __m512 c[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) c[i] = _mm512_castsi512_ps(_mm512_loadu_si512(pts2 + 4 * k0 + 16 * i));
    transpose4_lanes(c);
    __m512i t[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) t[i] = _mm512_add_epi32(_mm512_srai_epi32(_mm512_castps_si512(c[i]), 1), vq);
    __m512i v = t[3];
    v = _mm512_add_epi32(t[2], _mm512_mullo_epi32(vm, v));
    v = _mm512_add_epi32(t[1], _mm512_mullo_epi32(vm, v));
    v = _mm512_srli_epi32(_mm512_add_epi32(t[0], _mm512_mullo_epi32(vm, v)), 1);
    // Lane l holds block 4 (l % 4) + l / 4.
    v = _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), v);
    _mm512_storeu_si512(idx + k0, _mm512_cvtepu32_epi64(_mm512_castsi512_si256(v)));
    _mm512_storeu_si512(idx + k0 + 8, _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(v, 1)));
  }
  return k0;
}

static int64_t e8_block_indices(const int32_t* pts2, int64_t nblocks, int q, uint64_t count_int, uint64_t* idx) {
  // LatticeIndexer::index_fast on 16 blocks, each lane in its own coset:
  // digits t_i = (p2_i >> 1) + Q; integer coset (p2_0 even) radix m = 2Q + 1,
  // (hi m^4 + lo) >> 1; half coset radix r = 2Q with t7 halved,
  // count_int + hi r^4 + lo; lo, hi the 4-digit halves (< 2^32, Q <= 127).
  const int32_t m = 2 * q + 1, rr = 2 * q;
  const __m512i vq = _mm512_set1_epi32(q);
  const __m512i pm = _mm512_set1_epi64(int64_t(m) * m * m * m), pr = _mm512_set1_epi64(int64_t(rr) * rr * rr * rr);
  const __m512i cint = _mm512_set1_epi64(int64_t(count_int));
  // to_coords' lane order (0,2,4,6,1,3,5,7 per 8) back to block order.
  const __m512i order = _mm512_setr_epi64(0, 4, 1, 5, 2, 6, 3, 7);
  int64_t k0 = 0;
  for (; k0 + 16 <= nblocks; k0 += 16) {
    __m512 c[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) c[i] = _mm512_castsi512_ps(_mm512_loadu_si512(pts2 + 8 * k0 + 16 * i));
    to_coords(c);
    const __mmask16 half = _mm512_test_epi32_mask(_mm512_castps_si512(c[0]), _mm512_set1_epi32(1));
    const __m512i radix = _mm512_mask_mov_epi32(_mm512_set1_epi32(m), half, _mm512_set1_epi32(rr));
    __m512i t[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) t[i] = _mm512_add_epi32(_mm512_srai_epi32(_mm512_castps_si512(c[i]), 1), vq);
    t[7] = _mm512_mask_srli_epi32(t[7], half, t[7], 1);
    __m512i lo = t[3], hi = t[7];
#pragma GCC unroll 3
    for (int i = 2; i >= 0; --i) {
      lo = _mm512_add_epi32(t[i], _mm512_mullo_epi32(radix, lo));
      hi = _mm512_add_epi32(t[i + 4], _mm512_mullo_epi32(radix, hi));
    }
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const __mmask8 hm = __mmask8(half >> (8 * h));
      const __m256i lo8 = h == 0 ? _mm512_castsi512_si256(lo) : _mm512_extracti64x4_epi64(lo, 1);
      const __m256i hi8 = h == 0 ? _mm512_castsi512_si256(hi) : _mm512_extracti64x4_epi64(hi, 1);
      const __m512i v = _mm512_add_epi64(
          _mm512_mul_epu32(_mm512_cvtepu32_epi64(hi8), _mm512_mask_mov_epi64(pm, hm, pr)), _mm512_cvtepu32_epi64(lo8));
      const __m512i r = _mm512_mask_add_epi64(_mm512_srli_epi64(v, 1), hm, v, cint);
      _mm512_storeu_si512(idx + k0 + 8 * h, _mm512_permutexvar_epi64(order, r));
    }
  }
  return k0;
}

static int64_t e8_quantize_blocks(int q, const float* y, int64_t d, float s, int32_t* pts2) {
  const __m512 vs = _mm512_set1_ps(s);
  const int64_t done = d / 128 * 128;
  for (int64_t t = 0; t < done; t += 128) {
    __m512 z[8];
    load_search(y + t, vs, q, z);
    from_coords(z);
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) _mm512_storeu_si512(pts2 + t + 16 * i, _mm512_cvtps_epi32(z[i]));
  }
  return done;
}

static void e8_quantize_roundtrip(int q, const float* y, int64_t d, float s, float nv, float* out) {
  const __m512 vs = _mm512_set1_ps(s);
  const __m512 c = _mm512_set1_ps(hadamard_norm_factor(d)), vn = _mm512_set1_ps(nv);
  const bool last = d == 128;
  if (d >= 256) {  // two tiles at a time (see e8_tiles)
    for (int64_t t = 0; t < d; t += 256) {
      __m512 p[2][8];
      load_search2(y + t, vs, q, p);
#pragma GCC unroll 2
      for (int u = 0; u < 2; ++u) {
        e8_decode_tile(p[u], vs);
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) st(out + t + 128 * u + 16 * i, p[u][i]);
      }
    }
    tail_scaled(out, d, 128, c, vn);
    return;
  }
  for (int64_t t = 0; t < d; t += 128) {
    __m512 p[8];
    load_search(y + t, vs, q, p);
    e8_decode_tile(p, vs);
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) st(out + t + 16 * i, last ? _mm512_mul_ps(_mm512_mul_ps(p[i], c), vn) : p[i]);
  }
  if (!last) tail_scaled(out, d, 128, c, vn);
}

static int64_t d4_quantize_blocks(int q, const float* y, int64_t d, float s, int32_t* pts2) {
  const __m512 vs = _mm512_set1_ps(s);
  const int64_t done = d / 64 * 64;
  for (int64_t t = 0; t < done; t += 64) {
    __m512 r[4];
    d4_load_search(y + t, vs, q, r);
    transpose4_lanes(r);
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) _mm512_storeu_si512(pts2 + t + 16 * i, _mm512_cvtps_epi32(r[i]));
  }
  return done;
}

static void d4_quantize_roundtrip(int q, const float* y, int64_t d, float s, float nv, float* out) {
  const __m512 vs = _mm512_set1_ps(s), vh = _mm512_set1_ps(0.5f), zero = _mm512_setzero_ps();  // + 0: see above
  const __m512 c = _mm512_set1_ps(hadamard_norm_factor(d)), vn = _mm512_set1_ps(nv);
  // Sign masks negating 128-bit lanes 1, 3 (stage 4) and 2, 3 (stage 8).
  const __m512 n4 = _mm512_castsi512_ps(_mm512_setr_epi32(0, 0, 0, 0, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, 0, 0,
                                                          0, 0, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN));
  const __m512 n8 = _mm512_castsi512_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, INT32_MIN, INT32_MIN, INT32_MIN,
                                                          INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN));
  const bool last = d == 64;
  for (int64_t t = 0; t < d; t += 64) {
    __m512 p[4];
    d4_load_search(y + t, vs, q, p);
    // Decode: doubled points -> (p * 0.5) * s; stages 1, 2 between the
    // coordinate registers; back to block registers; stages 4 and 8 between
    // 128-bit lanes; stages 16, 32 between registers.
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) p[i] = _mm512_mul_ps(_mm512_mul_ps(_mm512_add_ps(p[i], zero), vh), vs);
    butterflies<4>(p);
    transpose4_lanes(p);
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      p[i] = _mm512_add_ps(_mm512_shuffle_f32x4(p[i], p[i], 0xB1), _mm512_xor_ps(p[i], n4));
      p[i] = _mm512_add_ps(_mm512_shuffle_f32x4(p[i], p[i], 0x4E), _mm512_xor_ps(p[i], n8));
    }
    butterflies<4>(p);
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) st(out + t + 16 * i, last ? _mm512_mul_ps(_mm512_mul_ps(p[i], c), vn) : p[i]);
  }
  if (!last) tail_scaled(out, d, 64, c, vn);
}

int64_t quantize_blocks(LatticeKind k, int q, const float* y, int64_t d, float s, int32_t* pts2) {
  return k == LatticeKind::kE8 ? e8_quantize_blocks(q, y, d, s, pts2) : d4_quantize_blocks(q, y, d, s, pts2);
}

void quantize_roundtrip(LatticeKind k, int q, const float* y, int64_t d, float s, float nv, float* out) {
  if (k == LatticeKind::kE8)
    e8_quantize_roundtrip(q, y, d, s, nv, out);
  else
    d4_quantize_roundtrip(q, y, d, s, nv, out);
}

int64_t block_indices(LatticeKind k, const int32_t* pts2, int64_t nblocks, int q, uint64_t count_int, uint64_t* idx) {
  return k == LatticeKind::kE8 ? e8_block_indices(pts2, nblocks, q, count_int, idx)
                               : d4_block_indices(pts2, nblocks, q, idx);
}

int64_t unpack_points(LatticeKind k, const uint8_t* bits, int64_t nbytes, int64_t nblocks, int bpb, int q,
                      uint64_t count_int, uint64_t count, int32_t* pts2) {
  return k == LatticeKind::kE8 ? e8_unpack_points(bits, nbytes, nblocks, bpb, q, count_int, count, pts2)
                               : d4_unpack_points(bits, nbytes, nblocks, bpb, q, uint32_t(count), pts2);
}

namespace {

// The stored scales of up to 8 consecutive blocks at x (block % 16 == 0),
// as fp8_scale_from_max_bits computes them one by one: each block's
// largest magnitude bit pattern; a = max(amax, 1e-4) rounded to uf16 (a
// normal uf16 value here: 11 significant bits, RNE); the uf16 code and
// s = a16 / 448. The 8 maxima come out of one reduction tree (8 vectors ->
// 4 -> 2 -> 1, halving the partials per block at each level) instead of 8
// horizontal reductions, and the scale arithmetic runs on 8 lanes. False
// when a block maximum is non-finite or beyond the uf16 field (the caller's
// scalar path reports it). Blocks past nb read nothing.
// kBlock: the block size when known at compile time (64: the codec's), so
// the loops unroll; 0 for any other block (then `block`). ahead > 0:
// prefetch that many floats ahead of each load.
// Why 8 blocks and not 16: with 64-value blocks, 16 of them are 4 KiB, and
// the next group's loads then sit at the same 4 KiB offsets as the stores
// just made to an output allocated like the input (4K aliasing, measured
// 10 % slower at D = 512).
constexpr int kFp8Group = 8;

template <int64_t kBlock>
inline bool fp8_scales8(const float* x, int64_t block, int nb, float* s, uint16_t* codes, int64_t ahead) {
  if (kBlock > 0) block = kBlock;
  const __m512i mag = _mm512_set1_epi32(0x7fffffff);
  __m512i m[8];
#pragma GCC unroll 8
  for (int b = 0; b < 8; ++b) {
    m[b] = _mm512_setzero_si512();
    if (b >= nb) continue;
#pragma GCC unroll 8
    for (int64_t j = b * block; j < (b + 1) * block; j += 16) {
      if (ahead > 0) __builtin_prefetch(x + j + ahead, 0, 3);
      m[b] = _mm512_max_epu32(m[b], _mm512_and_si512(_mm512_castps_si512(ld(x + j)), mag));
    }
  }
  // Level 1: 128-bit lanes 0-1 = block 2i (8 partials), 2-3 = block 2i + 1.
  __m512i l1[4];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i)
    l1[i] = _mm512_max_epu32(_mm512_shuffle_i32x4(m[2 * i], m[2 * i + 1], 0x44),
                             _mm512_shuffle_i32x4(m[2 * i], m[2 * i + 1], 0xEE));
  // Level 2: 128-bit lane k = block 4i + k (4 partials).
  __m512i l2[2];
#pragma GCC unroll 2
  for (int i = 0; i < 2; ++i)
    l2[i] = _mm512_max_epu32(_mm512_shuffle_i32x4(l1[2 * i], l1[2 * i + 1], 0x88),
                             _mm512_shuffle_i32x4(l1[2 * i], l1[2 * i + 1], 0xDD));
  // Level 3: in 128-bit lane k, 2 partials of block k, then of block 4 + k.
  const __m512 g = _mm512_castsi512_ps(
      _mm512_max_epu32(_mm512_unpacklo_epi64(l2[0], l2[1]), _mm512_unpackhi_epi64(l2[0], l2[1])));
  // Level 4: lane 4k = block k, lane 4k + 1 = block 4 + k (4k + 2, 4k + 3
  // repeat them); then blocks 0..7 in lanes 0..7.
  const __m512i l4 = _mm512_max_epu32(_mm512_castps_si512(_mm512_shuffle_ps(g, g, 0x88)),
                                      _mm512_castps_si512(_mm512_shuffle_ps(g, g, 0xDD)));
  const __m512i mb =
      _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0), l4);
  uint32_t limit;
  std::memcpy(&limit, &kUf16Max, 4);
  const __mmask16 active = __mmask16((1u << nb) - 1u);
  if (_mm512_mask_cmpgt_epu32_mask(active, mb, _mm512_set1_epi32(int32_t(limit))) != 0) return false;
  // fp8_scale_from_max_bits on the lanes (same operations).
  const __m256i a = _mm256_castps_si256(
      _mm256_max_ps(_mm512_castps512_ps256(_mm512_castsi512_ps(mb)), _mm256_set1_ps(kFp8AmaxFloor)));
  const __m256i au = _mm256_and_si256(_mm256_add_epi32(_mm256_add_epi32(a, _mm256_set1_epi32(0xfff)),
                                                       _mm256_and_si256(_mm256_srli_epi32(a, 13), _mm256_set1_epi32(1))),
                                      _mm256_set1_epi32(int32_t(0xffffe000u)));
  if (codes != nullptr) {
    const __m256i c = _mm256_or_si256(
        _mm256_slli_epi32(_mm256_sub_epi32(_mm256_srli_epi32(au, 23), _mm256_set1_epi32(96)), 10),
        _mm256_and_si256(_mm256_srli_epi32(au, 13), _mm256_set1_epi32(0x3ff)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(codes), _mm256_cvtepi32_epi16(c));
  }
  _mm256_storeu_ps(s, _mm256_div_ps(_mm256_castsi256_ps(au), _mm256_set1_ps(kE4m3Max)));
  return true;
}

// t = clamp(v / s, -448, 448) rounded to E4M3 (fp8_block.cpp's
// e4m3_round_inline): the rounded magnitude bits and the sign bit of t.
// The rounding is float arithmetic instead of bit manipulation: with
// a = min(|t|, 448) in [2^e, 2^(e+1)) and C = 2^(e+20), a + C lies in C's
// binade, whose spacing is 2^(e-3): the E4M3 quantum for 3 mantissa bits.
// So (a + C) - C is a rounded to E4M3 with ties to even, exactly (the
// subtraction is exact). Below 2^-5 the quantum stays 2^-9 (E4M3
// subnormals): C = max(2^(e+20), 2^14). Same values as the integer form.
inline void e4m3_round16(__m512 v, __m512 vs, __m512i* mag_bits, __m512i* sign_bits) {
  const __m512 t = _mm512_div_ps(v, vs);
  const __m512 a = _mm512_min_ps(_mm512_abs_ps(t), _mm512_set1_ps(kE4m3Max));
  const __m512i c = _mm512_max_epi32(
      _mm512_add_epi32(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7f800000)),
                       _mm512_set1_epi32(20 << 23)),
      _mm512_set1_epi32(0x46800000));  // 2^14
  const __m512 cf = _mm512_castsi512_ps(c);
  *mag_bits = _mm512_castps_si512(_mm512_sub_ps(_mm512_add_ps(a, cf), cf));
  *sign_bits = _mm512_and_si512(_mm512_castps_si512(t), _mm512_set1_epi32(INT32_MIN));
}

}  // namespace

namespace {

// fp8_roundtrip_rows / fp8_encode_rows for a block size known at compile
// time (kBlock > 0) or not (kBlock = 0).
template <int64_t kBlock>
int64_t fp8_roundtrip_rows_impl(const float* x, int64_t rows, int64_t ncols, int64_t block, float* out, bool stream) {
  if (kBlock > 0) block = kBlock;
  // Blocks never straddle rows and rows are contiguous: groups of 8 blocks
  // run over the whole tensor.
  const int64_t nbr = ncols / block, total = rows * nbr;
  const int64_t ahead = stream ? 2 * ncols : 0;  // large inputs: fetch two rows ahead of use
  alignas(32) float s[kFp8Group];
  for (int64_t g = 0; g < total; g += kFp8Group) {
    const int nb = int(total - g < kFp8Group ? total - g : kFp8Group);
    const float* xg = x + g * block;
    float* og = out + g * block;
    if (!fp8_scales8<kBlock>(xg, block, nb, s, nullptr, ahead)) return g / nbr;
    for (int b = 0; b < nb; ++b) {
      const __m512 vs = _mm512_set1_ps(s[b]);
#pragma GCC unroll 8
      for (int64_t j = b * block; j < (b + 1) * block; j += 16) {
        __m512i r, sg;
        e4m3_round16(ld(xg + j), vs, &r, &sg);
        const __m512 o = _mm512_mul_ps(_mm512_castsi512_ps(_mm512_or_si512(r, sg)), vs);
        if (stream)
          _mm512_stream_ps(og + j, o);
        else
          st(og + j, o);
      }
    }
  }
  return rows;
}

template <int64_t kBlock>
int64_t fp8_encode_rows_impl(const float* x, int64_t rows, int64_t ncols, int64_t block, uint8_t* codes) {
  if (kBlock > 0) block = kBlock;
  const int64_t nbr = ncols / block, total = rows * nbr, cs = ncols + 2 * nbr;
  alignas(32) float s[kFp8Group];
  alignas(16) uint16_t sc[kFp8Group];
  for (int64_t g = 0; g < total; g += kFp8Group) {
    const int nb = int(total - g < kFp8Group ? total - g : kFp8Group);
    const float* xg = x + g * block;
    if (!fp8_scales8<kBlock>(xg, block, nb, s, sc, 0)) return g / nbr;
    for (int b = 0; b < nb; ++b) {
      const int64_t row = (g + b) / nbr, k = (g + b) % nbr;
      uint8_t* c = codes + row * cs;
      c[2 * k] = uint8_t(sc[b] & 0xff);
      c[2 * k + 1] = uint8_t(sc[b] >> 8);
      uint8_t* q = c + 2 * nbr + k * block;
      const __m512 vs = _mm512_set1_ps(s[b]);
#pragma GCC unroll 8
      for (int64_t j = 0; j < block; j += 16) {
        __m512i r, sg;
        e4m3_round16(ld(xg + b * block + j), vs, &r, &sg);
        // fp8_block.cpp's e4m3_code_of_grid_value: normal (r >> 20) - (120 << 3),
        // subnormal r * 2^9 (an integer 0..7), then the sign.
        const __m512i normal = _mm512_sub_epi32(_mm512_srli_epi32(r, 20), _mm512_set1_epi32(120 << 3));
        const __m512i subn = _mm512_cvttps_epi32(_mm512_mul_ps(_mm512_castsi512_ps(r), _mm512_set1_ps(512.0f)));
        const __m512i cv =
            _mm512_mask_mov_epi32(normal, _mm512_cmpgt_epi32_mask(_mm512_set1_epi32(0x3c800000), r), subn);
        const __m512i cvs = _mm512_or_si512(cv, _mm512_srli_epi32(sg, 24));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(q + j), _mm512_cvtepi32_epi8(cvs));
      }
    }
  }
  return rows;
}

}  // namespace

int64_t fp8_roundtrip_rows(const float* x, int64_t rows, int64_t ncols, int64_t block, float* out, bool stream) {
  return block == 64 ? fp8_roundtrip_rows_impl<64>(x, rows, ncols, block, out, stream)
                     : fp8_roundtrip_rows_impl<0>(x, rows, ncols, block, out, stream);
}

int64_t fp8_encode_rows(const float* x, int64_t rows, int64_t ncols, int64_t block, uint8_t* codes) {
  return block == 64 ? fp8_encode_rows_impl<64>(x, rows, ncols, block, codes)
                     : fp8_encode_rows_impl<0>(x, rows, ncols, block, codes);
}

void fp8_decode_row(const uint8_t* codes, int64_t ncols, int64_t block, float* out) {
  const int64_t nb = ncols / block;
  const uint8_t* q = codes + 2 * nb;
  const __m512i c7f = _mm512_set1_epi32(0x7f), c07 = _mm512_set1_epi32(7);
  for (int64_t k = 0; k < nb; ++k) {
    const float s = uf16_to_f32(uint16_t(codes[2 * k] | (codes[2 * k + 1] << 8))) / kE4m3Max;
    const __m512 vs = _mm512_set1_ps(s);
    for (int64_t j = k * block; j < (k + 1) * block; j += 16) {
      // e4m3_to_f32 on 16 codes: normal ((c & 0x7f) << 20) + (120 << 23),
      // subnormal (exponent field 0) m * 2^-9, 0x7f/0xff quiet NaN; sign.
      const __m512i c = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + j)));
      const __m512i low = _mm512_and_si512(c, c7f);
      __m512i v = _mm512_add_epi32(_mm512_slli_epi32(low, 20), _mm512_set1_epi32(120 << 23));
      const __mmask16 subn = _mm512_cmplt_epi32_mask(low, _mm512_set1_epi32(8));
      v = _mm512_mask_mov_epi32(
          v, subn,
          _mm512_castps_si512(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(c, c07)), _mm512_set1_ps(0x1p-9f))));
      v = _mm512_mask_mov_epi32(v, _mm512_cmpeq_epi32_mask(low, c7f), _mm512_set1_epi32(0x7fc00000));
      v = _mm512_or_si512(v, _mm512_slli_epi32(_mm512_andnot_si512(c7f, c), 24));
      st(out + j, _mm512_mul_ps(_mm512_castsi512_ps(v), vs));
    }
  }
}


// ---------------------------------------------------------------- FWHT and the rotated scalar codecs

namespace {

// h16 with each stage as one permute and one FMA instead of permute, xor
// and add: v * (+-1) + (v with partners swapped) is, exactly rounded once,
// a + b in the lower and a - b in the upper lane of each pair (the product
// is exact; signed zeros follow the same rule as the sum), so bit-identical
// to h16 and to the reference's butterflies.
inline __m512 h16f(__m512 v) {
  const __m512 s1 = _mm512_setr_ps(1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1);
  const __m512 s2 = _mm512_setr_ps(1, 1, -1, -1, 1, 1, -1, -1, 1, 1, -1, -1, 1, 1, -1, -1);
  const __m512 s4 = _mm512_setr_ps(1, 1, 1, 1, -1, -1, -1, -1, 1, 1, 1, 1, -1, -1, -1, -1);
  const __m512 s8 = _mm512_setr_ps(1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1, -1);
  v = _mm512_fmadd_ps(v, s1, _mm512_permute_ps(v, 0xB1));       // pairs swapped
  v = _mm512_fmadd_ps(v, s2, _mm512_permute_ps(v, 0x4E));       // pairs of pairs swapped
  v = _mm512_fmadd_ps(v, s4, _mm512_shuffle_f32x4(v, v, 0xB1));  // 128-bit lanes swapped in pairs
  v = _mm512_fmadd_ps(v, s8, _mm512_shuffle_f32x4(v, v, 0x4E));  // 256-bit halves swapped
  return v;
}

// fwht_r with put: the values in(i) (16 at offset i, i a multiple of 16;
// read before anything at [i, i + 16R) of y is written), tiles of 16R in
// registers (stored into the scratch row y unless they are final), then
// tail_put. Every final value is handed to put exactly once.
template <int R, class In, class Fin, class Put>
inline void fwht_put_r(float* y, int64_t d, In in, Fin fin, Put put) {
  const bool last = d == 16 * R;
  for (int64_t i = 0; i < d; i += 16 * R) {
    __m512 v[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) v[r] = h16f(in(i + 16 * r));
    butterflies<R>(v);
    if (last) {
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) put(i + 16 * r, fin(v[r]));
    } else {
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) st(y + i + 16 * r, v[r]);
    }
  }
  if (!last) tail_put(y, d, 16 * R, fin, put);
}

template <class In, class Fin, class Put>
inline void fwht_put(float* y, int64_t d, In in, Fin fin, Put put) {
  switch (d) {
    case 16: return fwht_put_r<1>(y, d, in, fin, put);
    case 32: return fwht_put_r<2>(y, d, in, fin, put);
    case 64: return fwht_put_r<4>(y, d, in, fin, put);
    default: return fwht_put_r<8>(y, d, in, fin, put);
  }
}

// The normalised FWHT of in(i) into out (stream: non-temporal), y scratch.
template <class In, class Pre>
inline void fwht_norm_put(float* y, int64_t d, In in, float* out, bool stream, Pre pre) {
  const __m512 c = _mm512_set1_ps(hadamard_norm_factor(d));
  const auto fin = [&](__m512 v) { return pre(_mm512_mul_ps(v, c)); };
  // out by value: a stored value cannot change it, so it stays in a register.
  if (stream)
    fwht_put(y, d, in, fin, [out](int64_t o, __m512 v) { _mm512_stream_ps(out + o, v); });
  else
    fwht_put(y, d, in, fin, [out](int64_t o, __m512 v) { st(out + o, v); });
}

struct Identity {
  __m512 operator()(__m512 v) const { return v; }
};

// The index #{k : z > thr_k} of z (16 lanes) by binary search over the
// ascending thresholds in register t (padded with +inf): K steps, unrolled
// (the first probe, thr_{2^(K-1) - 1} for every lane, is loop-invariant).
template <int K>
inline __m512i lloyd_index16(__m512 z, __m512 t) {
  __m512i idx = _mm512_setzero_si512();
#pragma GCC unroll 4
  for (int step = 1 << (K - 1); step >= 1; step >>= 1) {
    const __m512i probe = _mm512_add_epi32(idx, _mm512_set1_epi32(step - 1));
    const __mmask16 gt = _mm512_cmp_ps_mask(z, _mm512_permutexvar_ps(probe, t), _CMP_GT_OQ);
    idx = _mm512_mask_add_epi32(idx, gt, idx, _mm512_set1_epi32(step));
  }
  return idx;
}

// f(std::integral_constant<int, K>{}) for K = bits (1..4): the index
// search with K a constant.
template <class F>
inline void with_bits(int bits, F f) {
  switch (bits) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    default: return f(std::integral_constant<int, 4>{});
  }
}

// z = v * c / sig -> lev[i(z)] * sig (c: the FWHT's normalisation).
template <int K>
inline __m512 lloyd_requant16(__m512 v, __m512 c, __m512 vsig, __m512 t, __m512 l) {
  const __m512 z = _mm512_div_ps(_mm512_mul_ps(v, c), vsig);
  return _mm512_mul_ps(_mm512_permutexvar_ps(lloyd_index16<K>(z, t), l), vsig);
}

}  // namespace

void fwht_normalized(float* x, int64_t d) {
  fwht_norm_put(
      x, d, [&](int64_t i) { return ld(x + i); }, x, false, Identity{});
}

void fwht_normalized_from(const float* x, int64_t d, float* y) {
  fwht_norm_put(
      y, d, [&](int64_t i) { return ld(x + i); }, y, false, Identity{});
}

void fwht_normalized_to(float* y, int64_t d, float* out, bool stream) {
  fwht_norm_put(
      y, d, [&](int64_t i) { return ld(y + i); }, out, stream, Identity{});
}

void int_requant_fwht(float* y, int64_t d, int64_t b, const float* s, const float* inv, bool pow2, float qmax,
                      float* out, bool stream) {
  const __m512 vq = _mm512_set1_ps(qmax), vnq = _mm512_set1_ps(-qmax), magic = _mm512_set1_ps(0x1.8p23f);
  const auto requant = [&](int64_t i) {
    const int64_t k = i / b;
    const __m512 vs = _mm512_set1_ps(s[k]);
    __m512 t = pow2 ? _mm512_mul_ps(ld(y + i), _mm512_set1_ps(inv[k])) : _mm512_div_ps(ld(y + i), vs);
    t = _mm512_min_ps(vq, t);   // t > qmax ? qmax : t
    t = _mm512_max_ps(vnq, t);  // t < -qmax ? -qmax : t
    return _mm512_mul_ps(_mm512_sub_ps(_mm512_add_ps(t, magic), magic), vs);
  };
  fwht_norm_put(y, d, requant, out, stream, Identity{});
}

void int_dequant_fwht(const int32_t* codes, int64_t d, int64_t b, const float* s, float* out) {
  const auto deq = [&](int64_t i) {
    return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(codes + i)), _mm512_set1_ps(s[i / b]));
  };
  fwht_norm_put(out, d, deq, out, false, Identity{});
}

void lloyd_rotate_index(const float* x, int64_t d, int bits, const float* thr, float sig, float* y, int32_t* idx) {
  const __m512 t = _mm512_loadu_ps(thr), vsig = _mm512_set1_ps(sig);
  const __m512 c = _mm512_set1_ps(hadamard_norm_factor(d));
  with_bits(bits, [&](auto k) {
    fwht_put(
        y, d, [&](int64_t i) { return ld(x + i); }, [&](__m512 v) { return _mm512_mul_ps(v, c); },
        [&](int64_t o, __m512 v) {
          _mm512_storeu_si512(idx + o, lloyd_index16<decltype(k)::value>(_mm512_div_ps(v, vsig), t));
        });
  });
}

void lloyd_roundtrip_row(const float* x, int64_t d, int bits, const float* thr, const float* lev, float sig, float* y,
                         float* out, bool stream) {
  const __m512 t = _mm512_loadu_ps(thr), l = _mm512_loadu_ps(lev), vsig = _mm512_set1_ps(sig);
  const __m512 c = _mm512_set1_ps(hadamard_norm_factor(d));
  // First rotation; its final values y_j become L_i * sig in place.
  with_bits(bits, [&](auto k) {
    fwht_put(
        y, d, [&](int64_t i) { return ld(x + i); },
        [&](__m512 v) { return lloyd_requant16<decltype(k)::value>(v, c, vsig, t, l); },
        [&](int64_t o, __m512 v) { st(y + o, v); });
  });
  fwht_normalized_to(y, d, out, stream);
}

double fwht_tiles_sumsq(const float* x, int64_t d, float* y) {
  // x is read in order, 16 at a time: its low then high 8 values go through
  // the chain partial l += x_j^2 (j = l mod 8) as in sumsq8_rows (the
  // double products are exact, so the order of the adds is all that counts).
  __m512d acc = _mm512_setzero_pd();
  const auto in = [&](int64_t i) {
    const __m512 v = ld(x + i);
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    acc = _mm512_add_pd(acc, _mm512_mul_pd(lo, lo));
    acc = _mm512_add_pd(acc, _mm512_mul_pd(hi, hi));
    return v;
  };
  for (int64_t i = 0; i < d; i += 128) {
    __m512 v[8];
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) v[r] = h16f(in(i + 16 * r));
    butterflies<8>(v);
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) st(y + i + 16 * r, v[r]);
  }
  alignas(64) double a[8];
  _mm512_store_pd(a, acc);
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

void lloyd_roundtrip_finish(float* y, int64_t d, int bits, const float* thr, const float* lev, float sig, float* out,
                            bool stream) {
  const __m512 t = _mm512_loadu_ps(thr), l = _mm512_loadu_ps(lev), vsig = _mm512_set1_ps(sig);
  const __m512 c = _mm512_set1_ps(hadamard_norm_factor(d));
  // The first rotation's remaining passes (as in lloyd_roundtrip_row): its
  // final values y_j become L_i * sig in place.
  with_bits(bits, [&](auto k) {
    tail_put(
        y, d, 128, [&](__m512 v) { return lloyd_requant16<decltype(k)::value>(v, c, vsig, t, l); },
        [&](int64_t o, __m512 v) { st(y + o, v); });
  });
  fwht_normalized_to(y, d, out, stream);
}

void lloyd_dequant_fwht(const int32_t* idx, int64_t d, const float* lev, float sig, float* out) {
  const __m512 l = _mm512_loadu_ps(lev), vsig = _mm512_set1_ps(sig);
  const auto deq = [&](int64_t i) {
    return _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_loadu_si512(idx + i), l), vsig);
  };
  fwht_norm_put(out, d, deq, out, false, Identity{});
}

}  // namespace kvlab::kernels::avx512

#pragma GCC diagnostic pop
#pragma GCC pop_options

#else  // not x86-64: simd_level() never selects AVX-512

#include "common/error.h"

namespace kvlab::kernels::avx512 {
float div_fwht_absmax(const float*, float, int64_t, float*) {
  KVLAB_ASSERT(false, "AVX-512 kernel on a non-x86 build");
  return 0.0f;
}
void dequant_fwht_scale(const int32_t*, int64_t, float, float, float*) {
  KVLAB_ASSERT(false, "AVX-512 kernel on a non-x86 build");
}
int64_t quantize_blocks(LatticeKind, int, const float*, int64_t, float, int32_t*) {
  KVLAB_ASSERT(false, "AVX-512 kernel on a non-x86 build");
  return 0;
}
void quantize_roundtrip(LatticeKind, int, const float*, int64_t, float, float, float*) {
  KVLAB_ASSERT(false, "AVX-512 kernel on a non-x86 build");
}
int64_t block_indices(LatticeKind, const int32_t*, int64_t, int, uint64_t, uint64_t*) {
  KVLAB_ASSERT(false, "AVX-512 kernel on a non-x86 build");
  return 0;
}
int64_t unpack_points(LatticeKind, const uint8_t*, int64_t, int64_t, int, int, uint64_t, uint64_t, int32_t*) {
  KVLAB_ASSERT(false, "AVX-512 kernel on a non-x86 build");
  return 0;
}
void sumsq8_rows(const float*, int64_t, int64_t, double*, uint32_t*) {
  KVLAB_ASSERT(false, "AVX-512 kernel on a non-x86 build");
}
int64_t fp8_roundtrip_rows(const float*, int64_t, int64_t, int64_t, float*, bool) {
  KVLAB_ASSERT(false, "AVX-512 kernel on a non-x86 build");
  return 0;
}
int64_t fp8_encode_rows(const float*, int64_t, int64_t, int64_t, uint8_t*) {
  KVLAB_ASSERT(false, "AVX-512 kernel on a non-x86 build");
  return 0;
}
void fp8_decode_row(const uint8_t*, int64_t, int64_t, float*) { KVLAB_ASSERT(false, "AVX-512 kernel on a non-x86 build"); }
#define KVLAB_NO_AVX512 KVLAB_ASSERT(false, "AVX-512 kernel on a non-x86 build")
void fwht_normalized(float*, int64_t) { KVLAB_NO_AVX512; }
void fwht_normalized_from(const float*, int64_t, float*) { KVLAB_NO_AVX512; }
void fwht_normalized_to(float*, int64_t, float*, bool) { KVLAB_NO_AVX512; }
void int_requant_fwht(float*, int64_t, int64_t, const float*, const float*, bool, float, float*, bool) { KVLAB_NO_AVX512; }
void int_dequant_fwht(const int32_t*, int64_t, int64_t, const float*, float*) { KVLAB_NO_AVX512; }
void lloyd_rotate_index(const float*, int64_t, int, const float*, float, float*, int32_t*) { KVLAB_NO_AVX512; }
void lloyd_roundtrip_row(const float*, int64_t, int, const float*, const float*, float, float*, float*, bool) {
  KVLAB_NO_AVX512;
}
double fwht_tiles_sumsq(const float*, int64_t, float*) {
  KVLAB_NO_AVX512;
  return 0.0;
}
void lloyd_roundtrip_finish(float*, int64_t, int, const float*, const float*, float, float*, bool) { KVLAB_NO_AVX512; }
void lloyd_dequant_fwht(const int32_t*, int64_t, const float*, float, float*) { KVLAB_NO_AVX512; }
#undef KVLAB_NO_AVX512
}  // namespace kvlab::kernels::avx512

#endif
