// D4 / E8 codecs: block indexing and bit packing; see lattice_codec.h.
#include "codec/lattice_codec.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "kernels/fp_formats.h"
#include "kernels/simd.h"

namespace kvlab::codec {

using u128 = unsigned __int128;

namespace {

u128 ipow(u128 b, int e) {
  u128 r = 1;
  for (int i = 0; i < e; ++i) r *= b;
  return r;
}

int bit_width128(u128 v) {
  const uint64_t hi = uint64_t(v >> 64);
  return hi ? 64 + int(std::bit_width(hi)) : int(std::bit_width(uint64_t(v)));
}

// Rows per internal batch (bounds the temporary buffers).
constexpr int64_t kBatch = 256;

// LSB-first bit writer/reader over a byte buffer (values of <= 64 bits):
// bit i of the stream is bit i % 8 of byte i / 8, i.e. the stream read as
// little-endian 64-bit words. Whole words move with one 8-byte access.
inline void store_le64(uint8_t* p, uint64_t w) {
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(p, &w, 8);
  } else {
    for (int i = 0; i < 8; ++i) p[i] = uint8_t(w >> (8 * i));
  }
}
inline uint64_t load_le64(const uint8_t* p) {
  uint64_t w;
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(&w, p, 8);
  } else {
    w = 0;
    for (int i = 0; i < 8; ++i) w |= uint64_t(p[i]) << (8 * i);
  }
  return w;
}

struct BitWriter {
  uint8_t* p;
  u128 acc = 0;
  int n = 0;
  void put(uint64_t v, int bits) {
    acc |= u128(v) << n;
    n += bits;
    if (n >= 64) {
      store_le64(p, uint64_t(acc));
      p += 8;
      acc >>= 64;
      n -= 64;
    }
  }
  void put128(u128 v, int bits) {
    if (bits <= 64) return put(uint64_t(v), bits);
    put(uint64_t(v), 64);
    put(uint64_t(v >> 64), bits - 64);
  }
  void flush() {
    while (n > 0) {
      *p++ = uint8_t(acc);
      acc >>= 8;
      n -= 8;
    }
    n = 0;
  }
};

// A branch-free writer for fields of <= 56 bits: after each field the 8
// bytes at p are stored whole (bits past the field are zero), then p moves
// past the completed bytes. The buffer needs 8 bytes of slack at its end.
struct FastBitWriter {
  uint8_t* p;
  uint64_t acc = 0;
  int n = 0;  // pending bits in acc, < 8
  void put(uint64_t v, int bits) {
    acc |= v << n;
    store_le64(p, acc);
    n += bits;
    p += n >> 3;
    acc >>= 8 * (n >> 3);  // n <= 63: a shift below 64
    n &= 7;
  }
};

struct BitReader {
  const uint8_t* p;
  const uint8_t* end;
  uint64_t pos = 0;  // bits consumed
  // The 64 bits from byte `byte` on (zeros past the end).
  uint64_t word(uint64_t byte) const {
    const uint8_t* q = p + byte;
    if (q + 8 <= end) return load_le64(q);
    uint64_t w = 0;
    for (int i = 0; q + i < end && i < 8; ++i) w |= uint64_t(q[i]) << (8 * i);
    return w;
  }
  // bits <= 57: the shift inside the first byte leaves room.
  uint64_t get57(int bits) {
    const uint64_t w = word(pos >> 3) >> (pos & 7);
    pos += uint64_t(bits);
    return w & ((uint64_t(1) << bits) - 1);
  }
  uint64_t get(int bits) {
    if (bits <= 57) return get57(bits);
    const uint64_t lo = get57(32);
    return lo | (get57(bits - 32) << 32);
  }
  u128 get128(int bits) {
    if (bits <= 64) return get(bits);
    const u128 lo = get(64);
    return lo | (u128(get(bits - 64)) << 64);
  }
};


template <class U>
U dn_index(const int32_t* p2, int b, int q) {
  const U m = U(2 * q + 1);
  U idx = 0;
  for (int i = b - 1; i >= 0; --i) idx = idx * m + U(p2[i] / 2 + q);
  return idx >> 1;
}

// Exact n / d for n < 2^32 and 2 <= d <= 2^16 by one multiplication:
// with m = ceil(2^48 / d) = 2^48 / d + e (0 <= e < 1), n m / 2^48 exceeds
// n / d by n e / 2^48 < 1 / d, which never reaches the next integer.
struct FastDiv32 {
  uint64_t m;
  uint32_t d;
  static uint64_t multiplier(uint32_t div) { return ((uint64_t(1) << 48) + div - 1) / div; }
  uint32_t quot(uint32_t n) const { return uint32_t((unsigned __int128)n * m >> 48); }
};

// Digits of a mixed-radix number v < r^k (r <= 2^16), least significant
// first, writing k digits; v must be < 2^32.
inline void digits32(uint32_t v, const FastDiv32& r, int k, int32_t* out) {
  for (int i = 0; i < k; ++i) {
    const uint32_t q = r.quot(v);
    out[i] = int32_t(v - q * r.d);
    v = q;
  }
}

template <class U>
void dn_point(U index, int b, int q, int32_t* p2) {
  const U m = U(2 * q + 1);
  U idx = index << 1;
  for (int i = 0; i < b; ++i) {
    p2[i] = 2 * (int32_t(idx % m) - q);
    idx /= m;
  }
}

template <class U>
U half_index(const int32_t* p2, int q) {
  const U r = U(2 * q);
  U idx = U((p2[7] - 1) / 2 + q) >> 1;  // (x_7 - 1/2 + Q) / 2
  for (int i = 6; i >= 0; --i) idx = idx * r + U((p2[i] - 1) / 2 + q);
  return idx;
}

template <class U>
void half_point(U idx, int q, int32_t* p2) {
  const U r = U(2 * q);
  int32_t parity = 0;
  for (int i = 0; i < 7; ++i) {
    const int32_t h = int32_t(idx % r);
    idx /= r;
    parity ^= h & 1;
    p2[i] = 2 * (h - q) + 1;
  }
  const int32_t h7 = 2 * int32_t(idx) + parity;
  p2[7] = 2 * (h7 - q) + 1;
}

}  // namespace

int lattice_bits_per_block(kernels::LatticeKind kind, int q) {
  KVLAB_CHECK(q >= 1 && q <= kernels::kLatticeMaxQ, "lattice bits: Q = {} out of range [1, {}]", q,
              kernels::kLatticeMaxQ);
  const u128 m = u128(2 * q + 1);
  // log2 of an odd number > 1 is never an integer, so ceil(b log2 M) is the
  // bit width of M^b.
  if (kind == kernels::LatticeKind::kD4) return bit_width128(ipow(m, 4)) - 1;
  return bit_width128(ipow(m, 8));
}

LatticeCodec::LatticeCodec(kernels::LatticeKind kind, int q, int64_t dim)
    : kind_(kind), q_(q), dim_(dim), block_(kernels::lattice_block_dim(kind)) {
  kernels::check_lattice_params(kind, dim, q);
  bits_per_block_ = lattice_bits_per_block(kind, q);
  const u128 m = u128(2 * q + 1);
  count_int_ = (ipow(m, block_) + 1) / 2;
  count_half_ = kind == kernels::LatticeKind::kE8 ? ipow(u128(2 * q), 8) / 2 : 0;
  KVLAB_ASSERT(bit_width128(count_int_ + count_half_ - 1) <= bits_per_block_, "block index does not fit");
  // Fast digit extraction when M^4 < 2^32 (Q <= 32767 gives M <= 65535; the
  // 4-digit halves fit 32 bits for M <= 255, i.e. Q <= 127).
  fast_ = q <= 127;
  if (fast_) {
    mul_m_ = FastDiv32::multiplier(uint32_t(2 * q + 1));
    mul_r_ = FastDiv32::multiplier(uint32_t(2 * q));
    pow4_m_ = uint64_t(ipow(m, 4));
    pow4_r_ = uint64_t(ipow(u128(2 * q), 4));
    // Block indices below 2^53 (Q <= 48 for E8) split by multiplication.
    split_ = ipow(m, 8) < (u128(1) << 53);
    split_m_ = detail::FastDiv53(pow4_m_);
    split_r_ = detail::FastDiv53(pow4_r_);
  }
  const int64_t payload_bits = (dim / block_) * bits_per_block_;
  code_size_ = std::size_t(4 + (payload_bits + 7) / 8);
}

std::string LatticeCodec::spec() const { return fmt::format("{}:q={}", kernels::lattice_name(kind_), q_); }

double LatticeCodec::published_bits_per_vector() const {
  return double((dim_ / block_) * bits_per_block_ + 32);
}

u128 LatticeCodec::points_per_block() const { return count_int_ + count_half_; }

inline uint64_t LatticeCodec::index_fast(const int32_t* p2) const {
  // Digits t_i = x_i + Q (integer coset) or h_i = x_i - 1/2 + Q (half
  // coset) are p2 >> 1 (+ Q) either way; 4-digit halves fit 32 bits.
  const uint32_t q = uint32_t(q_);
  auto t = [&](int i) { return uint32_t(p2[i] >> 1) + q; };
  if (block_ == 4) {
    const uint32_t m = 2 * q + 1;
    return (t(0) + m * (t(1) + m * (t(2) + m * t(3)))) >> 1;
  }
  if ((p2[0] & 1) == 0) {
    const uint32_t m = 2 * q + 1;
    const uint32_t lo = t(0) + m * (t(1) + m * (t(2) + m * t(3)));
    const uint32_t hi = t(4) + m * (t(5) + m * (t(6) + m * t(7)));
    return (uint64_t(hi) * pow4_m_ + lo) >> 1;
  }
  const uint32_t r = 2 * q;
  const uint32_t lo = t(0) + r * (t(1) + r * (t(2) + r * t(3)));
  const uint32_t hi = t(4) + r * (t(5) + r * (t(6) + r * (t(7) >> 1)));
  return uint64_t(count_int_) + uint64_t(hi) * pow4_r_ + lo;
}

inline bool LatticeCodec::point_fast(uint64_t index, int32_t* p2) const {
  const FastDiv32 div_m{mul_m_, uint32_t(2 * q_ + 1)}, div_r{mul_r_, uint32_t(2 * q_)};
  const uint64_t n_int = uint64_t(count_int_);
  int32_t dg[8];
  if (index < n_int) {
    const uint64_t idx = index << 1;
    if (block_ == 4) {
      digits32(uint32_t(idx), div_m, 4, dg);
    } else {
      const uint64_t hi = split_ ? split_m_.quot(idx) : idx / pow4_m_;
      digits32(uint32_t(idx - hi * pow4_m_), div_m, 4, dg);
      digits32(uint32_t(hi), div_m, 4, dg + 4);
    }
    for (int i = 0; i < block_; ++i) p2[i] = 2 * (dg[i] - q_);
    return true;
  }
  if (block_ == 4 || index - n_int >= uint64_t(count_half_)) return false;
  const uint64_t j = index - n_int;
  const uint64_t hi = split_ ? split_r_.quot(j) : j / pow4_r_;
  digits32(uint32_t(j - hi * pow4_r_), div_r, 4, dg);
  // h_4, h_5, h_6 (radix 2Q), then floor(h_7 / 2) < Q as the 4th digit.
  digits32(uint32_t(hi), div_r, 4, dg + 4);
  const int32_t parity = (dg[0] ^ dg[1] ^ dg[2] ^ dg[3] ^ dg[4] ^ dg[5] ^ dg[6]) & 1;
  dg[7] = 2 * dg[7] + parity;
  for (int i = 0; i < 8; ++i) p2[i] = 2 * (dg[i] - q_) + 1;
  return true;
}

u128 LatticeCodec::block_index(const int32_t* p2) const {
  if (fast_) return index_fast(p2);
  const bool half = (p2[0] & 1) != 0;
  const bool small = bits_per_block_ <= 64;
  if (!half) return small ? u128(dn_index<uint64_t>(p2, block_, q_)) : dn_index<u128>(p2, block_, q_);
  return count_int_ + (small ? u128(half_index<uint64_t>(p2, q_)) : half_index<u128>(p2, q_));
}

void LatticeCodec::block_point(u128 index, int32_t* p2) const {
  KVLAB_CHECK(index < points_per_block(), "{} decode: block index out of range (corrupt code)", spec());
  const bool small = bits_per_block_ <= 64;
  if (fast_) {
    const bool ok = point_fast(uint64_t(index), p2);
    KVLAB_ASSERT(ok, "index checked above");
    return;
  }
  if (index < count_int_) {
    if (small)
      dn_point<uint64_t>(uint64_t(index), block_, q_, p2);
    else
      dn_point<u128>(index, block_, q_, p2);
  } else {
    const u128 j = index - count_int_;
    if (small)
      half_point<uint64_t>(uint64_t(j), q_, p2);
    else
      half_point<u128>(j, q_, p2);
  }
}

void LatticeCodec::encode(const float* x, int64_t n, uint8_t* codes) const {
  KVLAB_CHECK(n >= 0, "{} encode: n = {} (expected >= 0)", spec(), n);
  std::vector<uint16_t> n16(kBatch), q16(kBatch);
  std::vector<int32_t> pts(std::size_t(kBatch * dim_));
  const int64_t nblocks = dim_ / block_;
  const std::size_t payload_bytes = std::size_t((nblocks * bits_per_block_ + 7) / 8);
  std::vector<uint64_t> idx(static_cast<std::size_t>(nblocks));
  std::vector<uint8_t> stage(payload_bytes + 8);
  const bool wide = fast_ && kernels::simd_level() >= kernels::SimdLevel::kAvx512;
  for (int64_t r0 = 0; r0 < n; r0 += kBatch) {
    const int64_t rows = std::min(kBatch, n - r0);
    kernels::lattice_encode_rows(kind_, q_, x + r0 * dim_, rows, dim_, n16.data(), q16.data(), pts.data());
    for (int64_t r = 0; r < rows; ++r) {
      uint8_t* c = codes + (r0 + r) * int64_t(code_size_);
      c[0] = uint8_t(n16[r]);
      c[1] = uint8_t(n16[r] >> 8);
      c[2] = uint8_t(q16[r]);
      c[3] = uint8_t(q16[r] >> 8);
      const int32_t* p = pts.data() + r * dim_;
      if (fast_ && bits_per_block_ <= 56) {
        // Indices 16 blocks a step where AVX-512 is there, then packed
        // through a staging buffer with the writer's slack.
        int64_t k = 0;
        if (wide)
          k = block_ == 4 ? kernels::avx512::d4_block_indices(p, nblocks, q_, idx.data())
                          : kernels::avx512::e8_block_indices(p, nblocks, q_, uint64_t(count_int_), idx.data());
        for (; k < nblocks; ++k) idx[size_t(k)] = index_fast(p + k * block_);
        FastBitWriter fw{stage.data()};
        for (k = 0; k < nblocks; ++k) fw.put(idx[size_t(k)], bits_per_block_);
        std::memcpy(c + 4, stage.data(), payload_bytes);
        for (uint8_t* z = c + 4 + payload_bytes; z < c + code_size_; ++z) *z = 0;
        continue;
      }
      BitWriter w{c + 4};
      if (fast_) {  // bits_per_block_ <= 64
        for (int64_t k = 0; k < nblocks; ++k) w.put(index_fast(p + k * block_), bits_per_block_);
      } else {
        for (int64_t k = 0; k < nblocks; ++k) w.put128(block_index(p + k * block_), bits_per_block_);
      }
      w.flush();
      KVLAB_ASSERT(w.p <= c + code_size_, "bit packing overran the code");
      for (uint8_t* z = w.p; z < c + code_size_; ++z) *z = 0;
    }
  }
}

void LatticeCodec::decode(const uint8_t* codes, int64_t n, float* out) const {
  KVLAB_CHECK(n >= 0, "{} decode: n = {} (expected >= 0)", spec(), n);
  std::vector<uint16_t> n16(kBatch), q16(kBatch);
  std::vector<int32_t> pts(std::size_t(kBatch * dim_));
  const int64_t nblocks = dim_ / block_;
  // The AVX-512 unpackers: D4 for Q <= 127, E8 while indices stay below
  // 2^53 (split_: Q <= 48).
  const bool wide = fast_ && (block_ == 4 || split_) && kernels::simd_level() >= kernels::SimdLevel::kAvx512;
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
      BitReader rd{c + 4, c + code_size_};
      int32_t* p = pts.data() + r * dim_;
      if (fast_) {
        int64_t k = 0;
        if (wide) {  // 16 blocks at a time; the rest (and any corrupt index) below
          // Readable: up to the end of the whole code array (the unpacker
          // masks each field, so bytes of the next vector do no harm).
          const int64_t readable = (n - (r0 + r)) * int64_t(code_size_) - 4;
          k = block_ == 4 ? kernels::avx512::d4_unpack_points(c + 4, readable, nblocks, bits_per_block_, q_,
                                                              uint32_t(count_int_), p)
                          : kernels::avx512::e8_unpack_points(c + 4, readable, nblocks, bits_per_block_, q_,
                                                              uint64_t(count_int_),
                                                              uint64_t(count_int_ + count_half_), p);
          rd.pos = uint64_t(k) * uint64_t(bits_per_block_);
        }
        for (; k < nblocks; ++k)
          KVLAB_CHECK(point_fast(rd.get(bits_per_block_), p + k * block_),
                      "{} decode: vector {} block {} has an index out of range (corrupt code)", spec(), r0 + r, k);
      } else {
        for (int64_t k = 0; k < nblocks; ++k) block_point(rd.get128(bits_per_block_), p + k * block_);
      }
    }
    kernels::lattice_decode_rows(q_, n16.data(), q16.data(), pts.data(), rows, dim_, out + r0 * dim_);
  }
}

void LatticeCodec::roundtrip_impl(const float* x, int64_t n, float* out) const {
  kernels::lattice_roundtrip_rows(kind_, q_, x, n, dim_, out);
}

}  // namespace kvlab::codec
