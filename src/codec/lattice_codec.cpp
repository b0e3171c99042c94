// D4 / E8 codecs: the byte format around kernels/lattice_pack; see lattice_codec.h.
#include "codec/lattice_codec.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/error.h"
#include "kernels/entropy.h"
#include "kernels/fp_formats.h"

namespace kvlab::codec {

using u128 = unsigned __int128;

namespace {

// Rows per internal batch (bounds the temporary buffers).
constexpr int64_t kBatch = 256;

}  // namespace

LatticeCodec::LatticeCodec(kernels::LatticeKind kind, int q, int64_t dim)
    : kind_(kind),
      q_(q),
      dim_(dim),
      block_(kernels::lattice_block_dim(kind)),
      ix_((kernels::check_lattice_params(kind, dim, q), kernels::LatticeIndexer(kind, q))),
      code_size_(std::size_t(4 + ix_.payload_bytes(dim / block_))) {}

std::string LatticeCodec::spec() const { return fmt::format("{}:q={}", kernels::lattice_name(kind_), q_); }

double LatticeCodec::published_bits_per_vector() const {
  return double((dim_ / block_) * bits_per_block() + 32);
}

u128 LatticeCodec::block_index(const int32_t* p2) const { return ix_.index_ref(p2); }

void LatticeCodec::block_point(u128 index, int32_t* p2) const {
  KVLAB_CHECK(ix_.point_ref(index, p2), "{} decode: block index out of range (corrupt code)", spec());
}

void LatticeCodec::encode(const float* x, int64_t n, uint8_t* codes) const {
  KVLAB_CHECK(n >= 0, "{} encode: n = {} (expected >= 0)", spec(), n);
  std::vector<uint16_t> n16(kBatch), q16(kBatch);
  std::vector<int32_t> pts(std::size_t(kBatch * dim_));
  const int64_t nblocks = dim_ / block_;
  for (int64_t r0 = 0; r0 < n; r0 += kBatch) {
    const int64_t rows = std::min(kBatch, n - r0);
    kernels::lattice_encode_rows(kind_, q_, x + r0 * dim_, rows, dim_, n16.data(), q16.data(), pts.data());
    for (int64_t r = 0; r < rows; ++r) {
      uint8_t* c = codes + (r0 + r) * int64_t(code_size_);
      c[0] = uint8_t(n16[r]);
      c[1] = uint8_t(n16[r] >> 8);
      c[2] = uint8_t(q16[r]);
      c[3] = uint8_t(q16[r] >> 8);
      kernels::lattice_pack(ix_, pts.data() + r * dim_, nblocks, c + 4);
    }
  }
}

void LatticeCodec::decode(const uint8_t* codes, int64_t n, float* out) const {
  KVLAB_CHECK(n >= 0, "{} decode: n = {} (expected >= 0)", spec(), n);
  std::vector<uint16_t> n16(kBatch), q16(kBatch);
  std::vector<int32_t> pts(std::size_t(kBatch * dim_));
  const int64_t nblocks = dim_ / block_;
  for (int64_t r0 = 0; r0 < n; r0 += kBatch) {
    const int64_t rows = std::min(kBatch, n - r0);
    for (int64_t r = 0; r < rows; ++r) {
      const uint8_t* c = codes + (r0 + r) * int64_t(code_size_);
      n16[r] = uint16_t(c[0] | (c[1] << 8));
      q16[r] = uint16_t(c[2] | (c[3] << 8));
      const float qm = kernels::f16_to_f32(q16[r]);
      KVLAB_CHECK(std::isfinite(qm) && qm >= 0.0f && qm <= 2.0f,
                  "{} decode: vector {} has qmax field {} (expected a finite value in [0, 2]; corrupt code)", spec(),
                  r0 + r, qm);
      // Readable: up to the end of the whole code array (the unpacker masks
      // each field, so bytes of the next vector do no harm).
      const int64_t readable = (n - (r0 + r)) * int64_t(code_size_) - 4;
      const int64_t k = kernels::lattice_unpack(ix_, c + 4, readable, nblocks, pts.data() + r * dim_);
      KVLAB_CHECK(k == nblocks, "{} decode: vector {} block {} has an index out of range (corrupt code)", spec(),
                  r0 + r, k);
    }
    kernels::lattice_decode_rows(q_, n16.data(), q16.data(), pts.data(), rows, dim_, out + r0 * dim_);
  }
}

void LatticeCodec::block_points(const uint8_t* codes, int64_t n, int32_t* pts2) const {
  KVLAB_CHECK(n >= 0, "{} block points: n = {} (expected >= 0)", spec(), n);
  const int64_t nblocks = dim_ / block_;
  for (int64_t r = 0; r < n; ++r) {
    const uint8_t* c = codes + r * int64_t(code_size_);
    const int64_t k = kernels::lattice_unpack(ix_, c + 4, (n - r) * int64_t(code_size_) - 4, nblocks, pts2 + r * dim_);
    KVLAB_CHECK(k == nblocks, "{} block points: vector {} block {} has an index out of range (corrupt code)", spec(), r,
                k);
  }
}

StoredEntropy LatticeCodec::stored_entropy(const uint8_t* codes, int64_t n) const {
  KVLAB_CHECK(n >= 0, "{} entropy: n = {} (expected >= 0)", spec(), n);
  std::vector<int32_t> p2(std::size_t(n * dim_));
  block_points(codes, n, p2.data());
  // Per block: coset c = p2 & 1 (E8), y_i = (p2_i - c) / 2 = p2_i >> 1, and
  // the last coordinate halved (its parity follows from the others).
  const int64_t nblk = n * (dim_ / block_);
  std::vector<int32_t> coset(static_cast<std::size_t>(nblk));
  for (int64_t k = 0; k < nblk; ++k) {
    int32_t* p = p2.data() + k * block_;
    coset[std::size_t(k)] = p[0] & 1;
    for (int i = 0; i < block_; ++i) p[i] >>= 1;
    p[block_ - 1] >>= 1;
  }
  StoredEntropy e{n, dim_, {}};
  if (kind_ == kernels::LatticeKind::kE8)
    e.classes.push_back({"coset", nblk, kernels::plugin_entropy_bits(coset.data(), nblk), false});
  for (int i = 0; i < block_; ++i)
    e.classes.push_back({fmt::format("coord{}{}", i, i == block_ - 1 ? "_half" : ""), nblk,
                         kernels::plugin_entropy_bits(p2.data() + i, nblk, block_), false});
  e.classes.push_back({"norm_uf16", n, 16.0, true});
  e.classes.push_back({"qmax_f16", n, 16.0, true});
  return e;
}

std::vector<SymbolColumn> LatticeCodec::symbol_layout(int64_t n) const {
  KVLAB_CHECK(n >= 0, "{} symbol columns: n = {} (expected >= 0)", spec(), n);
  const int64_t nblk = n * (dim_ / block_);
  std::vector<SymbolColumn> cols;
  if (kind_ == kernels::LatticeKind::kE8) cols.push_back({"coset", nblk, false, 0, {}});
  for (int i = 0; i < block_; ++i)
    cols.push_back({fmt::format("coord{}{}", i, i == block_ - 1 ? "_half" : ""), nblk, false, 0, {}});
  cols.push_back({"norm_uf16", n, true, 16, {}});
  cols.push_back({"qmax_f16", n, true, 16, {}});
  return cols;
}

std::vector<SymbolColumn> LatticeCodec::symbol_columns(const uint8_t* codes, int64_t n) const {
  std::vector<SymbolColumn> cols = symbol_layout(n);
  std::vector<int32_t> p2(std::size_t(n * dim_));
  block_points(codes, n, p2.data());
  const int64_t nblk = n * (dim_ / block_);
  const std::size_t first = kind_ == kernels::LatticeKind::kE8 ? 1 : 0;
  for (auto& c : cols) c.values.resize(std::size_t(c.count));
  for (int64_t k = 0; k < nblk; ++k) {
    const int32_t* p = p2.data() + k * block_;
    if (first) cols[0].values[std::size_t(k)] = p[0] & 1;
    for (int i = 0; i < block_; ++i) {
      const int32_t y = p[i] >> 1;
      cols[first + std::size_t(i)].values[std::size_t(k)] = i == block_ - 1 ? y >> 1 : y;
    }
  }
  auto& norm = cols[cols.size() - 2].values;
  auto& qmax = cols[cols.size() - 1].values;
  for (int64_t r = 0; r < n; ++r) {
    const uint8_t* c = codes + r * int64_t(code_size_);
    norm[std::size_t(r)] = c[0] | (c[1] << 8);
    qmax[std::size_t(r)] = c[2] | (c[3] << 8);
  }
  return cols;
}

void LatticeCodec::join_symbol_columns(const std::vector<SymbolColumn>& cols, int64_t n, uint8_t* codes) const {
  const std::vector<SymbolColumn> layout = symbol_layout(n);
  KVLAB_CHECK(cols.size() == layout.size(), "{} join: {} symbol columns (expected {})", spec(), cols.size(),
              layout.size());
  for (std::size_t i = 0; i < cols.size(); ++i)
    KVLAB_CHECK(cols[i].values.size() == std::size_t(layout[i].count),
                "{} join: column {} ({}) holds {} values (expected {})", spec(), i, layout[i].name,
                cols[i].values.size(), layout[i].count);
  const int64_t nb = dim_ / block_;
  const std::size_t first = kind_ == kernels::LatticeKind::kE8 ? 1 : 0;
  std::vector<int32_t> p2(std::size_t(nb * block_));
  for (int64_t r = 0; r < n; ++r) {
    uint8_t* c = codes + r * int64_t(code_size_);
    const int32_t nv = cols[cols.size() - 2].values[std::size_t(r)], qv = cols[cols.size() - 1].values[std::size_t(r)];
    KVLAB_CHECK(nv >= 0 && nv < 65536 && qv >= 0 && qv < 65536,
                "{} join: vector {} has norm/qmax fields {}/{} (expected 16-bit values)", spec(), r, nv, qv);
    c[0] = uint8_t(nv);
    c[1] = uint8_t(nv >> 8);
    c[2] = uint8_t(qv);
    c[3] = uint8_t(qv >> 8);
    for (int64_t b = 0; b < nb; ++b) {
      const std::size_t k = std::size_t(r * nb + b);
      const int32_t coset = first ? cols[0].values[k] : 0;
      KVLAB_CHECK(coset == 0 || coset == 1, "{} join: block {} has coset {} (expected 0 or 1)", spec(), k, coset);
      // In the box: integer coset x in [-Q, Q]; half-integer y in [-Q, Q - 1].
      const int32_t lo = -q_, hi = coset ? q_ - 1 : q_;
      int32_t* p = p2.data() + b * block_;
      int64_t parity = 0;
      for (int i = 0; i < block_; ++i) {
        int64_t y = cols[first + std::size_t(i)].values[k];
        if (i == block_ - 1) y = 2 * y + (parity & 1);
        KVLAB_CHECK(y >= lo && y <= hi, "{} join: block {} coordinate {} is {} (expected {} <= y <= {})", spec(), k,
                    i, y, lo, hi);
        parity += y;
        p[i] = int32_t(2 * y + coset);
      }
    }
    std::fill(c + 4, c + code_size_, uint8_t(0));
    kernels::lattice_pack(ix_, p2.data(), nb, c + 4);
  }
}

void LatticeCodec::roundtrip_impl(const float* x, int64_t n, float* out) const {
  kernels::lattice_roundtrip_rows(kind_, q_, x, n, dim_, out);
}

}  // namespace kvlab::codec
