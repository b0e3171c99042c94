// D4 / E8 closest-point kernels and the lattice pipeline:
//  - in-box closest point == exhaustive search over every lattice point of
//    the box (small Q), and == the published decoder wherever the published
//    point lies in the box (same tie rules);
//  - hand-checked tie cases;
//  - pipeline fast == `*_ref` bit-exact, outputs in box and in the lattice;
//  - bad input (NaN, norm beyond the 16-bit field, D, Q) is an Error.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "common/error.h"
#include "kernels/lattice.h"
#include "kernels/parity.h"

namespace kvlab::kernels {
namespace {

// Every lattice point of [-Q, Q]^b, doubled coordinates.
std::vector<std::vector<int32_t>> box_points(LatticeKind k, int q) {
  const int b = lattice_block_dim(k);
  std::vector<std::vector<int32_t>> pts;
  std::vector<int32_t> p(size_t(b), 0);
  auto rec = [&](auto&& self, int i, int lo, int hi, int step) -> void {
    if (i == b) {
      int64_t s = 0;
      for (int v : p) s += (v - (step == 2 && (lo & 1) ? 1 : 0)) / 2;
      if ((s & 1) == 0) pts.push_back(p);
      return;
    }
    for (int v = lo; v <= hi; v += step) {
      p[i] = v;
      self(self, i + 1, lo, hi, step);
    }
  };
  rec(rec, 0, -2 * q, 2 * q, 2);                         // integer coset
  if (k == LatticeKind::kE8) rec(rec, 0, -2 * q + 1, 2 * q - 1, 2);  // half-integer coset
  return pts;
}

double dist2(const float* z, const int32_t* p2, int b) {
  double s = 0;
  for (int i = 0; i < b; ++i) {
    const double e = double(z[i]) - 0.5 * p2[i];
    s += e * e;
  }
  return s;
}

bool in_box(const int32_t* p2, int b, int q) {
  for (int i = 0; i < b; ++i)
    if (std::abs(p2[i]) > 2 * q) return false;
  return true;
}

bool in_lattice(LatticeKind k, const int32_t* p2) {
  const int b = lattice_block_dim(k);
  const int par = p2[0] & 1;
  if (k == LatticeKind::kD4 && par) return false;
  int64_t s = 0;
  for (int i = 0; i < b; ++i) {
    if ((p2[i] & 1) != par) return false;
    s += (p2[i] - par) / 2;
  }
  return (s & 1) == 0;
}

void closest(LatticeKind k, const float* z, int q, int32_t* out) {
  if (k == LatticeKind::kD4)
    d4_closest_in_box(z, q, out);
  else
    e8_closest_in_box(z, q, out);
}
void published(LatticeKind k, const float* z, int32_t* out) {
  if (k == LatticeKind::kD4)
    dn_closest_published(z, 4, out);
  else
    e8_closest_published(z, out);
}

void brute_force_check(LatticeKind k, int q, int samples) {
  const int b = lattice_block_dim(k);
  const auto pts = box_points(k, q);
  std::mt19937 rng(unsigned(q * 10 + b));
  std::uniform_real_distribution<float> u(-(q + 0.6f), q + 0.6f);
  std::uniform_real_distribution<float> edge(q - 0.2f, q + 0.49f);
  std::uniform_int_distribution<int> coin(0, 3);
  int published_out_of_box = 0, published_agree = 0;
  for (int t = 0; t < samples; ++t) {
    float z[8];
    for (int i = 0; i < b; ++i) {
      z[i] = u(rng);
      // Push some coordinates to the box edge, where the published clamp
      // leaves the lattice; snap some to half-integers for ties.
      if (coin(rng) == 0) z[i] = (coin(rng) & 1 ? 1.f : -1.f) * edge(rng);
      if (coin(rng) == 0) z[i] = std::round(z[i] * 2.f) / 2.f;
    }
    int32_t got[8];
    closest(k, z, q, got);
    ASSERT_TRUE(in_box(got, b, q));
    ASSERT_TRUE(in_lattice(k, got));
    double best = INFINITY;
    for (const auto& p : pts) best = std::min(best, dist2(z, p.data(), b));
    ASSERT_LE(dist2(z, got, b), best + 1e-5) << "sample " << t;
    int32_t pub[8];
    published(k, z, pub);
    if (in_box(pub, b, q)) {
      ++published_agree;
      for (int i = 0; i < b; ++i) ASSERT_EQ(got[i], pub[i]) << "sample " << t << " coord " << i;
    } else {
      ++published_out_of_box;
    }
  }
  // The samples exercise both regimes.
  EXPECT_GT(published_out_of_box, samples / 50) << lattice_name(k) << " Q=" << q;
  EXPECT_GT(published_agree, samples / 4);
}

TEST(LatticeClosest, D4InBoxIsExhaustiveOptimum) {
  for (int q : {1, 2, 3, 5}) brute_force_check(LatticeKind::kD4, q, 3000);
}

TEST(LatticeClosest, E8InBoxIsExhaustiveOptimum) {
  brute_force_check(LatticeKind::kE8, 1, 3000);
  brute_force_check(LatticeKind::kE8, 2, 150);
}

TEST(LatticeClosest, CountsOfBoxPoints) {
  // ((2Q+1)^b + 1)/2 integer-coset points, (2Q)^8/2 half-coset points.
  EXPECT_EQ(box_points(LatticeKind::kD4, 1).size(), 41u);
  EXPECT_EQ(box_points(LatticeKind::kD4, 2).size(), 313u);
  EXPECT_EQ(box_points(LatticeKind::kE8, 1).size(), 3281u + 128u);
}

TEST(LatticeClosest, PublishedTieRules) {
  int32_t p[8];
  // D4: odd sum, all residuals equal (0): first index, +1.
  const float z1[4] = {1.f, 0.f, 0.f, 0.f};
  dn_closest_published(z1, 4, p);
  EXPECT_EQ(p[0], 4);
  EXPECT_EQ(p[1], 0);
  // In the box Q = 1 the +1 step leaves the box; the in-box optimum is at
  // distance 1 (either coordinate 0 -> 0 or another coordinate -> +-1).
  d4_closest_in_box(z1, 1, p);
  EXPECT_NEAR(dist2(z1, p, 4), 1.0, 0.0);
  // Round half to even: 0.5 -> 0, 1.5 -> 2, -2.5 -> -2 (sum 0, even).
  const float z2[4] = {0.5f, 1.5f, -2.5f, 0.f};
  d4_closest_in_box(z2, 3, p);
  EXPECT_EQ(p[0], 0);
  EXPECT_EQ(p[1], 4);
  EXPECT_EQ(p[2], -4);
  // Odd sum: flip the largest residual toward the input; first index on ties.
  const float z3[4] = {0.6f, 0.f, 0.f, 0.f};  // f = (1,0,0,0), d0 = -0.4 -> 0
  d4_closest_in_box(z3, 3, p);
  EXPECT_EQ(p[0], 0);
  const float z4[4] = {0.3f, 0.7f, -0.7f, 0.f};  // f = (0,1,-1,0) even
  d4_closest_in_box(z4, 3, p);
  EXPECT_EQ(p[1], 2);
  EXPECT_EQ(p[2], -2);
  // E8: zero vector -> integer coset (A preferred on... strictly closer here).
  const float z0[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  e8_closest_in_box(z0, 1, p);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(p[i], 0);
  // E8: all coordinates 0.5 -> half coset point (1/2)^8 exactly.
  float zh[8];
  for (float& v : zh) v = 0.5f;
  e8_closest_in_box(zh, 1, p);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(p[i], 1);
  // E8: equal distance between cosets goes to the integer coset:
  // z = (0.25 x 8): A = 0 (da = 0.5), B = (1/2)^8 (db = 0.5).
  float zt[8];
  for (float& v : zt) v = 0.25f;
  e8_closest_in_box(zt, 2, p);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(p[i], 0);
  // The published clamp case: half coordinate Q + 1/2 wins without the box.
  float zc[8] = {1.45f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, -0.5f};
  e8_closest_published(zc, p);
  EXPECT_EQ(p[0], 3);  // 1.5 > Q = 1: out of box
  e8_closest_in_box(zc, 1, p);
  EXPECT_TRUE(in_box(p, 8, 1));
  EXPECT_TRUE(in_lattice(LatticeKind::kE8, p));
}

std::vector<float> heavy_rows(int64_t n, int64_t d, unsigned seed) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> t(3.f);
  std::vector<float> v(static_cast<size_t>(n * d));
  for (auto& x : v) x = t(rng);
  for (int64_t j = 0; j < d; ++j) v[j] = 0.f;  // row 0: zero vector
  return v;
}

TEST(LatticePipeline, FastMatchesReferenceBitExact) {
  for (auto k : {LatticeKind::kD4, LatticeKind::kE8})
    for (int64_t d : {8, 128, 512})
      for (int q : {1, 3, 38, 1000}) {
        const int64_t n = 19;
        const auto x = heavy_rows(n, d, unsigned(d + q));
        std::vector<uint16_t> n1(n), n2(n), q1(n), q2(n);
        std::vector<int32_t> p1(static_cast<size_t>(n * d)), p2(p1.size());
        lattice_encode_rows(k, q, x.data(), n, d, n1.data(), q1.data(), p1.data());
        lattice_encode_rows_ref(k, q, x.data(), n, d, n2.data(), q2.data(), p2.data());
        ASSERT_TRUE(check_parity(n1.data(), n2.data(), n).ok());
        ASSERT_TRUE(check_parity(q1.data(), q2.data(), n).ok());
        const auto r = check_parity(p1.data(), p2.data(), n * d);
        ASSERT_TRUE(r.ok()) << lattice_name(k) << " D=" << d << " Q=" << q << ": " << r.summary();
        const int b = lattice_block_dim(k);
        for (int64_t i = 0; i < n * d; i += b) {
          ASSERT_TRUE(in_box(&p1[i], b, q));
          ASSERT_TRUE(in_lattice(k, &p1[i]));
        }
        std::vector<float> o1(static_cast<size_t>(n * d)), o2(o1.size());
        lattice_decode_rows(q, n1.data(), q1.data(), p1.data(), n, d, o1.data());
        lattice_decode_rows_ref(q, n1.data(), q1.data(), p1.data(), n, d, o2.data());
        ASSERT_TRUE(check_parity(o1.data(), o2.data(), n * d).ok());
        for (int64_t j = 0; j < d; ++j) ASSERT_EQ(o1[j], 0.0f);  // zero vector -> 0
      }
}

TEST(LatticePipeline, LargeNormsUseTheWideNormField) {
  // ||x|| = 7e4 overflows fp16 (published: inf/NaN); uf16 stores it.
  const int64_t d = 128;
  auto x = heavy_rows(2, d, 5);
  double s = 0;
  for (int64_t j = d; j < 2 * d; ++j) s += double(x[j]) * x[j];
  for (int64_t j = d; j < 2 * d; ++j) x[j] = float(x[j] * 7e4 / std::sqrt(s));
  std::vector<uint16_t> n16(2), q16(2);
  std::vector<int32_t> p(static_cast<size_t>(2 * d));
  std::vector<float> out(static_cast<size_t>(2 * d));
  lattice_encode_rows(LatticeKind::kE8, 38, x.data(), 2, d, n16.data(), q16.data(), p.data());
  lattice_decode_rows(38, n16.data(), q16.data(), p.data(), 2, d, out.data());
  double err = 0;
  for (int64_t j = d; j < 2 * d; ++j) {
    ASSERT_TRUE(std::isfinite(out[j]));
    err += (double(out[j]) - x[j]) * (double(out[j]) - x[j]);
  }
  EXPECT_LT(std::sqrt(err) / 7e4, 0.02);
  // Beyond the uf16 range: a clear error naming the norm.
  x[d + 3] = 1e10f;
  try {
    lattice_encode_rows(LatticeKind::kE8, 38, x.data(), 2, d, n16.data(), q16.data(), p.data());
    FAIL() << "norm 1e10 accepted";
  } catch (const kvlab::Error& e) {
    EXPECT_NE(std::string(e.what()).find("norm"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("vector 1"), std::string::npos) << e.what();
  }
}

TEST(LatticePipeline, RejectsBadInput) {
  std::vector<float> x(256, 1.0f);
  std::vector<uint16_t> a(2), b(2);
  std::vector<int32_t> p(256);
  x[200] = std::numeric_limits<float>::quiet_NaN();
  try {
    lattice_encode_rows(LatticeKind::kD4, 10, x.data(), 2, 128, a.data(), b.data(), p.data());
    FAIL();
  } catch (const kvlab::Error& e) {
    EXPECT_NE(std::string(e.what()).find("vector 1 coordinate 72"), std::string::npos) << e.what();
  }
  x[200] = 1.f;
  EXPECT_THROW(check_lattice_params(LatticeKind::kD4, 96, 10), kvlab::Error);   // not a power of two
  EXPECT_THROW(check_lattice_params(LatticeKind::kE8, 4, 10), kvlab::Error);    // D < block
  EXPECT_THROW(check_lattice_params(LatticeKind::kE8, 128, 0), kvlab::Error);   // Q < 1
  EXPECT_THROW(check_lattice_params(LatticeKind::kE8, 128, kLatticeMaxQ + 1), kvlab::Error);
  EXPECT_NO_THROW(check_lattice_params(LatticeKind::kE8, 128, kLatticeMaxQ));
}

}  // namespace
}  // namespace kvlab::kernels
