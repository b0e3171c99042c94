// D4 / E8 closest-point kernels and the lattice codec pipeline; see lattice.h.
#include "kernels/lattice.h"

#include <cfloat>
#include <algorithm>
#include <cmath>
#include <vector>

#include "common/error.h"
#include "kernels/dispatch.h"
#include "kernels/fp_formats.h"
#include "kernels/hadamard.h"
#include "kernels/simd.h"

namespace kvlab::kernels {

void check_lattice_params(LatticeKind k, int64_t d, int q) {
  const int b = lattice_block_dim(k);
  KVLAB_CHECK(is_power_of_two(d) && d >= b && d <= (int64_t(1) << 30),
              "{} codec: dimension D = {} is not supported (expected a power of two >= {} so that the Hadamard "
              "transform and the {}-blocks apply)",
              lattice_name(k), d, b, b);
  KVLAB_CHECK(q >= 1 && q <= kLatticeMaxQ, "{} codec: Q = {} is out of range (expected 1 <= Q <= {})",
              lattice_name(k), q, kLatticeMaxQ);
}

namespace {

// Published D_n decoder (Conway-Sloane with the published tie rules).
inline void dn_published(const float* z, int n, float* f) {
  int64_t sum = 0;
  for (int i = 0; i < n; ++i) {
    f[i] = std::nearbyint(z[i]);
    sum += int64_t(f[i]);
  }
  if ((sum & 1) == 0) return;
  int best = 0;
  float bestabs = -1.0f;
  for (int i = 0; i < n; ++i) {
    const float a = std::fabs(z[i] - f[i]);
    if (a > bestabs) {
      bestabs = a;
      best = i;
    }
  }
  f[best] += (z[best] - f[best]) >= 0.0f ? 1.0f : -1.0f;
}

// Closest even-sum integer point of the box [lo, hi]^n (hi > lo) to z.
// f receives the integer coordinates.
inline void dn_box(const float* z, int n, int lo, int hi, int32_t* f) {
  float d[8];
  int32_t sum = 0;
  const float flo = float(lo), fhi = float(hi);
  for (int i = 0; i < n; ++i) {
    float r = std::nearbyint(z[i]);
    r = r < flo ? flo : (r > fhi ? fhi : r);
    f[i] = int32_t(r);
    d[i] = z[i] - r;
    sum += f[i];
  }
  if ((sum & 1) == 0) return;
  // Cost of moving coordinate i by dir: 1 - 2 dir d_i. Toward the input
  // (dir = sign d, +1 on d == 0) when that stays in the box, else away.
  int best = 0, bestdir = 1;
  float bestkey = FLT_MAX;
  for (int i = 0; i < n; ++i) {
    const int pref = d[i] >= 0.0f ? 1 : -1;
    const float a = std::fabs(d[i]);
    const bool ok = f[i] + pref >= lo && f[i] + pref <= hi;
    const float key = ok ? -a : a;
    if (key < bestkey) {
      bestkey = key;
      best = i;
      bestdir = ok ? pref : -pref;
    }
  }
  f[best] += bestdir;
}

inline void e8_box(const float* z, int q, int32_t* out2) {
  int32_t a[8], g[8];
  float w[8];
  dn_box(z, 8, -q, q, a);
  for (int i = 0; i < 8; ++i) w[i] = z[i] - 0.5f;
  dn_box(w, 8, -q, q - 1, g);
  float da = 0.0f, db = 0.0f;
  for (int i = 0; i < 8; ++i) {
    const float ea = z[i] - float(a[i]);
    const float eb = z[i] - (float(g[i]) + 0.5f);
    da += ea * ea;
    db += eb * eb;
  }
  if (da <= db) {
    for (int i = 0; i < 8; ++i) out2[i] = 2 * a[i];
  } else {
    for (int i = 0; i < 8; ++i) out2[i] = 2 * g[i] + 1;
  }
}

// ---- Fast path: 8 blocks at a time, one SIMD lane per block ("SoA").
// Same arithmetic as dn_box / e8_box above, per lane, in the same order
// (rounding by the 1.5 * 2^23 trick equals nearbyint for |z| < 2^22, which
// kLatticeMaxQ guarantees; a zero's sign never matters here), so results
// are bit-identical to the scalar path (checked by the parity tests).
constexpr int kLanes = 8;

template <int B>
inline void dn_box_soa(const float (&z)[B][kLanes], int lo, int hi, int32_t (&f)[B][kLanes]) {
  const float magic = 12582912.0f;  // 1.5 * 2^23
  const float flo = float(lo), fhi = float(hi);
  float d[B][kLanes];
  int32_t sum[kLanes] = {};
  for (int i = 0; i < B; ++i)
    for (int l = 0; l < kLanes; ++l) {
      float r = (z[i][l] + magic) - magic;
      r = r < flo ? flo : r;
      r = r > fhi ? fhi : r;
      f[i][l] = int32_t(r);
      d[i][l] = z[i][l] - r;
      sum[l] += f[i][l];
    }
  float bestkey[kLanes];
  int32_t besti[kLanes], bestdir[kLanes];
  for (int l = 0; l < kLanes; ++l) bestkey[l] = FLT_MAX, besti[l] = 0, bestdir[l] = 1;
  for (int i = 0; i < B; ++i)
    for (int l = 0; l < kLanes; ++l) {
      const int32_t pref = d[i][l] >= 0.0f ? 1 : -1;
      const float a = std::fabs(d[i][l]);
      const int32_t fp = f[i][l] + pref;
      const bool ok = (fp >= lo) & (fp <= hi);
      const float key = ok ? -a : a;
      const bool better = key < bestkey[l];
      bestkey[l] = better ? key : bestkey[l];
      besti[l] = better ? i : besti[l];
      bestdir[l] = better ? (ok ? pref : -pref) : bestdir[l];
    }
  for (int i = 0; i < B; ++i)
    for (int l = 0; l < kLanes; ++l) f[i][l] += (((sum[l] & 1) != 0) & (besti[l] == i)) ? bestdir[l] : 0;
}

// nblk blocks of 8 (E8) starting at z (AoS), up to kLanes of them.
KVLAB_TARGET_CLONES void e8_blocks_fast(const float* __restrict z, int nblk, int q, int32_t* __restrict out2) {
  for (int b0 = 0; b0 < nblk; b0 += kLanes) {
    const int nb = std::min(kLanes, nblk - b0);
    float zs[8][kLanes], ws[8][kLanes];
    for (int l = 0; l < kLanes; ++l)
      for (int i = 0; i < 8; ++i) zs[i][l] = l < nb ? z[(b0 + l) * 8 + i] : 0.0f;
    for (int i = 0; i < 8; ++i)
      for (int l = 0; l < kLanes; ++l) ws[i][l] = zs[i][l] - 0.5f;
    int32_t a[8][kLanes], g[8][kLanes];
    dn_box_soa<8>(zs, -q, q, a);
    dn_box_soa<8>(ws, -q, q - 1, g);
    float da[kLanes] = {}, db[kLanes] = {};
    for (int i = 0; i < 8; ++i)
      for (int l = 0; l < kLanes; ++l) {
        const float ea = zs[i][l] - float(a[i][l]);
        const float eb = zs[i][l] - (float(g[i][l]) + 0.5f);
        da[l] += ea * ea;
        db[l] += eb * eb;
      }
    int32_t res[8][kLanes];
    for (int i = 0; i < 8; ++i)
      for (int l = 0; l < kLanes; ++l) res[i][l] = da[l] <= db[l] ? 2 * a[i][l] : 2 * g[i][l] + 1;
    for (int l = 0; l < nb; ++l)
      for (int i = 0; i < 8; ++i) out2[(b0 + l) * 8 + i] = res[i][l];
  }
}

KVLAB_TARGET_CLONES void d4_blocks_fast(const float* __restrict z, int nblk, int q, int32_t* __restrict out2) {
  for (int b0 = 0; b0 < nblk; b0 += kLanes) {
    const int nb = std::min(kLanes, nblk - b0);
    float zs[4][kLanes];
    for (int l = 0; l < kLanes; ++l)
      for (int i = 0; i < 4; ++i) zs[i][l] = l < nb ? z[(b0 + l) * 4 + i] : 0.0f;
    int32_t a[4][kLanes];
    dn_box_soa<4>(zs, -q, q, a);
    for (int l = 0; l < nb; ++l)
      for (int i = 0; i < 4; ++i) out2[(b0 + l) * 4 + i] = 2 * a[i][l];
  }
}

[[noreturn]] void throw_nonfinite_row(const float* row, int64_t r, int64_t d, LatticeKind k) {
  for (int64_t j = 0; j < d; ++j)
    if (!std::isfinite(row[j]))
      throw Error(fmt::format("{} codec: input vector {} coordinate {} is {} (expected finite values)",
                              lattice_name(k), r, j, row[j]));
  throw Error(fmt::format("{} codec: non-finite input in vector {}", lattice_name(k), r));
}

// Squared norm over 8 interleaved double partial sums; false on non-finite
// (detected as magnitude bits >= 0x7f800000, an integer max reduction).
KVLAB_TARGET_CLONES bool sumsq8(const float* __restrict x, int64_t d, double* out) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  uint32_t mbits = 0;
  int64_t j = 0;
  for (; j + 8 <= d; j += 8)
    for (int l = 0; l < 8; ++l) {
      const double v = x[j + l];
      acc[l] += v * v;
    }
  for (int l = 0; j < d; ++j, ++l) {
    const double v = x[j];
    acc[l] += v * v;
  }
  for (int64_t i = 0; i < d; ++i) {
    const uint32_t m = f32_bits(x[i]) & 0x7fffffffu;
    mbits = m > mbits ? m : mbits;
  }
  *out = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  return mbits < 0x7f800000u;
}

float norm_from_sumsq(LatticeKind k, double ss, int64_t r, uint16_t* n16) {
  float nrm = float(std::sqrt(ss));
  nrm = nrm > kLatticeEps ? nrm : kLatticeEps;
  KVLAB_CHECK(uf16_fits(nrm),
              "{} codec: vector {} has norm {} above the 16-bit (uf16) norm field's largest value {}; rescale the "
              "input",
              lattice_name(k), r, nrm, kUf16Max);
  *n16 = f32_to_uf16(nrm);
  return nrm;
}

float checked_norm(LatticeKind k, const float* row, int64_t r, int64_t d, uint16_t* n16) {
  double ss;
  if (!sumsq8(row, d, &ss)) throw_nonfinite_row(row, r, d, k);
  return norm_from_sumsq(k, ss, r, n16);
}

// Rows whose norms the AVX2 path computes together (independent chains).
constexpr int64_t kNormGroup = 4;

// avx2/avx512::sumsq8_rows at the current level (same values).
void row_norms(const float* x, int64_t rows, int64_t d, double* ss, uint32_t* mb) {
  if (simd_level() >= SimdLevel::kAvx512)
    avx512::sumsq8_rows(x, rows, d, ss, mb);
  else
    avx2::sumsq8_rows(x, rows, d, ss, mb);
}

// The AVX2 pipeline for one row (D >= 8), same values as the portable one:
// norm and qmax codes, y = H(x / n) normalised; returns the scale s.
// ss and mbits: the row's avx2::sumsq8_rows results.
float encode_head_avx2(LatticeKind k, int q, const float* row, int64_t r, int64_t d, double ss, uint32_t mbits,
                       float* y, uint16_t* n16, uint16_t* q16) {
  if (mbits >= 0x7f800000u) throw_nonfinite_row(row, r, d, k);
  const float nrm = norm_from_sumsq(k, ss, r, n16);
  float m = d >= 16 && simd_level() >= SimdLevel::kAvx512 ? avx512::div_fwht_absmax(row, nrm, d, y)
                                                         : avx2::div_fwht_absmax(row, nrm, d, y);
  m = m > kLatticeEps ? m : kLatticeEps;
  *q16 = f32_to_f16(m);
  return f16_to_f32(*q16) / float(q);
}

void encode_row_avx2(LatticeKind k, int q, const float* row, int64_t r, int64_t d, double ss, uint32_t mbits, float* y,
                     uint16_t* n16, uint16_t* q16, int32_t* p) {
  const float s = encode_head_avx2(k, q, row, r, d, ss, mbits, y, n16, q16);
  const int b = lattice_block_dim(k);
  const bool wide = d >= 16 * b && simd_level() >= SimdLevel::kAvx512;
  const int64_t done = wide ? avx512::quantize_blocks(k, q, y, d, s, p) : avx2::quantize_blocks(k, q, y, d, s, p);
  for (int64_t j = done; j < d; j += b) {
    float z[8];
    for (int i = 0; i < b; ++i) z[i] = y[j + i] / s;
    if (k == LatticeKind::kD4)
      d4_closest_in_box(z, q, p + j);
    else
      e8_box(z, q, p + j);
  }
}

KVLAB_TARGET_CLONES void div_inplace(float* __restrict x, int64_t d, float c) {
  for (int64_t j = 0; j < d; ++j) x[j] = x[j] / c;
}
KVLAB_TARGET_CLONES void div_copy(const float* __restrict x, float* __restrict y, int64_t d, float c) {
  for (int64_t j = 0; j < d; ++j) y[j] = x[j] / c;
}
KVLAB_TARGET_CLONES float absmax(const float* __restrict x, int64_t d) {
  uint32_t mbits = 0;  // integer max over magnitude bits (inputs are finite here)
  for (int64_t j = 0; j < d; ++j) {
    const uint32_t m = f32_bits(x[j]) & 0x7fffffffu;
    mbits = m > mbits ? m : mbits;
  }
  return bits_f32(mbits);
}
KVLAB_TARGET_CLONES void dequant(const int32_t* __restrict p, float* __restrict y, int64_t d, float s) {
  for (int64_t j = 0; j < d; ++j) y[j] = (float(p[j]) * 0.5f) * s;
}
KVLAB_TARGET_CLONES void mul_inplace(float* __restrict x, int64_t d, float c) {
  for (int64_t j = 0; j < d; ++j) x[j] *= c;
}

template <bool kRef>
void encode_rows_impl(LatticeKind k, int q, const float* x, int64_t n, int64_t d, uint16_t* norm16,
                      uint16_t* qmax16, int32_t* pts2) {
  check_lattice_params(k, d, q);
  const int b = lattice_block_dim(k);
  std::vector<float> y(size_t(d), 0.0f);
  if (!kRef && d >= 8 && simd_level() >= SimdLevel::kAvx2) {
    double ss[kNormGroup];
    uint32_t mb[kNormGroup];
    for (int64_t r = 0; r < n; ++r) {
      if (r % kNormGroup == 0) row_norms(x + r * d, std::min<int64_t>(kNormGroup, n - r), d, ss, mb);
      encode_row_avx2(k, q, x + r * d, r, d, ss[r % kNormGroup], mb[r % kNormGroup], y.data(), &norm16[r],
                      &qmax16[r], pts2 + r * d);
    }
    return;
  }
  for (int64_t r = 0; r < n; ++r) {
    const float* row = x + r * d;
    const float nrm = checked_norm(k, row, r, d, &norm16[r]);
    if constexpr (kRef) {
      for (int64_t j = 0; j < d; ++j) y[j] = row[j] / nrm;
      fwht_normalized_ref(y.data(), d);
    } else {
      div_copy(row, y.data(), d, nrm);
      fwht_normalized(y.data(), d);
    }
    float m;
    if constexpr (kRef) {
      m = 0.0f;
      for (int64_t j = 0; j < d; ++j) m = std::max(m, std::fabs(y[j]));
    } else {
      m = absmax(y.data(), d);
    }
    m = m > kLatticeEps ? m : kLatticeEps;
    qmax16[r] = f32_to_f16(m);
    const float s = f16_to_f32(qmax16[r]) / float(q);
    if constexpr (kRef) {
      for (int64_t j = 0; j < d; ++j) y[j] = y[j] / s;
    } else {
      div_inplace(y.data(), d, s);
    }
    int32_t* p = pts2 + r * d;
    if constexpr (kRef) {
      if (k == LatticeKind::kD4) {
        for (int64_t j = 0; j < d; j += b) d4_closest_in_box(&y[j], q, p + j);
      } else {
        for (int64_t j = 0; j < d; j += b) e8_closest_in_box(&y[j], q, p + j);
      }
    } else {
      if (k == LatticeKind::kD4)
        d4_blocks_fast(y.data(), int(d / b), q, p);
      else
        e8_blocks_fast(y.data(), int(d / b), q, p);
    }
  }
}

template <bool kRef>
void decode_rows_impl(int q, const uint16_t* norm16, const uint16_t* qmax16, const int32_t* pts2, int64_t n,
                      int64_t d, float* out) {
  KVLAB_CHECK(q >= 1 && q <= kLatticeMaxQ, "lattice decode: Q = {} out of range [1, {}]", q, kLatticeMaxQ);
  check_hadamard_dim(d);
  for (int64_t r = 0; r < n; ++r) {
    const float s = f16_to_f32(qmax16[r]) / float(q);
    const float nv = uf16_to_f32(norm16[r]);
    float* o = out + r * d;
    const int32_t* p = pts2 + r * d;
    if constexpr (kRef) {
      for (int64_t j = 0; j < d; ++j) o[j] = (float(p[j]) * 0.5f) * s;
      fwht_normalized_ref(o, d);
      for (int64_t j = 0; j < d; ++j) o[j] = o[j] * nv;
    } else if (d >= 16 && simd_level() >= SimdLevel::kAvx512) {
      avx512::dequant_fwht_scale(p, d, s, nv, o);
    } else if (d >= 8 && simd_level() >= SimdLevel::kAvx2) {
      avx2::dequant_fwht_scale(p, d, s, nv, o);
    } else {
      dequant(p, o, d, s);
      fwht_normalized(o, d);
      mul_inplace(o, d, nv);
    }
  }
}

}  // namespace

void dn_closest_published(const float* z, int n, int32_t* out2) {
  KVLAB_ASSERT(n >= 1 && n <= 8);
  float f[8];
  dn_published(z, n, f);
  for (int i = 0; i < n; ++i) out2[i] = 2 * int32_t(f[i]);
}

void e8_closest_published(const float* z, int32_t* out2) {
  float a[8], b[8], w[8];
  dn_published(z, 8, a);
  for (int i = 0; i < 8; ++i) w[i] = z[i] - 0.5f;
  dn_published(w, 8, b);
  float da = 0.0f, db = 0.0f;
  for (int i = 0; i < 8; ++i) {
    b[i] += 0.5f;
    da += (z[i] - a[i]) * (z[i] - a[i]);
    db += (z[i] - b[i]) * (z[i] - b[i]);
  }
  const float* c = da <= db ? a : b;
  for (int i = 0; i < 8; ++i) out2[i] = int32_t(2.0f * c[i]);
}

void d4_closest_in_box(const float* z, int q, int32_t* out2) {
  int32_t f[4];
  dn_box(z, 4, -q, q, f);
  for (int i = 0; i < 4; ++i) out2[i] = 2 * f[i];
}

void e8_closest_in_box(const float* z, int q, int32_t* out2) { e8_box(z, q, out2); }

void lattice_encode_rows(LatticeKind k, int q, const float* x, int64_t n, int64_t d, uint16_t* norm16,
                         uint16_t* qmax16, int32_t* pts2) {
  encode_rows_impl<false>(k, q, x, n, d, norm16, qmax16, pts2);
}
void lattice_encode_rows_ref(LatticeKind k, int q, const float* x, int64_t n, int64_t d, uint16_t* norm16,
                             uint16_t* qmax16, int32_t* pts2) {
  encode_rows_impl<true>(k, q, x, n, d, norm16, qmax16, pts2);
}
void lattice_roundtrip_rows(LatticeKind k, int q, const float* x, int64_t n, int64_t d, float* out) {
  check_lattice_params(k, d, q);
  KVLAB_CHECK(n >= 0, "{} roundtrip: n = {} (expected >= 0)", lattice_name(k), n);
  const int64_t tile = 8 * lattice_block_dim(k);
  if (d >= tile && simd_level() >= SimdLevel::kAvx2) {
    std::vector<float> y(size_t(d), 0.0f);
    const bool wide = d >= 2 * tile && simd_level() >= SimdLevel::kAvx512;  // 16 blocks per AVX-512 tile
    double ss[kNormGroup];
    uint32_t mb[kNormGroup];
    for (int64_t r = 0; r < n; ++r) {
      if (r % kNormGroup == 0) row_norms(x + r * d, std::min<int64_t>(kNormGroup, n - r), d, ss, mb);
      // Ahead of use: the input of the next group's rows. (Prefetching the
      // next output row as well measured 5-10 % slower: interleaved bench
      // runs, min and median of 7, D = 128 and 512, N = 2^11 and 2^17.)
      if (r + kNormGroup < n)
        for (int64_t j = 0; j < d; j += 16) __builtin_prefetch(x + (r + kNormGroup) * d + j, 0);
      uint16_t n16, q16;
      const float s =
          encode_head_avx2(k, q, x + r * d, r, d, ss[r % kNormGroup], mb[r % kNormGroup], y.data(), &n16, &q16);
      if (wide)
        avx512::quantize_roundtrip(k, q, y.data(), d, s, uf16_to_f32(n16), out + r * d);
      else
        avx2::quantize_roundtrip(k, q, y.data(), d, s, uf16_to_f32(n16), out + r * d);
    }
    return;
  }
  const int64_t batch = std::max<int64_t>(1, 65536 / d);
  std::vector<uint16_t> n16(static_cast<size_t>(batch)), q16(static_cast<size_t>(batch));
  std::vector<int32_t> p(size_t(batch * d));
  for (int64_t r0 = 0; r0 < n; r0 += batch) {
    const int64_t rows = std::min(batch, n - r0);
    encode_rows_impl<false>(k, q, x + r0 * d, rows, d, n16.data(), q16.data(), p.data());
    decode_rows_impl<false>(q, n16.data(), q16.data(), p.data(), rows, d, out + r0 * d);
  }
}

void lattice_decode_rows(int q, const uint16_t* norm16, const uint16_t* qmax16, const int32_t* pts2, int64_t n,
                         int64_t d, float* out) {
  decode_rows_impl<false>(q, norm16, qmax16, pts2, n, d, out);
}
void lattice_decode_rows_ref(int q, const uint16_t* norm16, const uint16_t* qmax16, const int32_t* pts2, int64_t n,
                             int64_t d, float* out) {
  decode_rows_impl<true>(q, norm16, qmax16, pts2, n, d, out);
}

}  // namespace kvlab::kernels
