// Lattice block indexing and bit packing, reference and fast; see
// lattice_pack.h.
#include "kernels/lattice_pack.h"

#include <bit>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "kernels/simd.h"

namespace kvlab::kernels {

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

// LSB-first bit streams: bit i of the stream is bit i % 8 of byte i / 8,
// i.e. the stream read as little-endian 64-bit words. Whole words move with
// one 8-byte access.
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

// Fields of <= 64 bits (put) or <= 128 (put128); n pending bits in acc.
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
// past the completed bytes. Needs 8 writable bytes at p for each put.
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

// Exact n / d for n < 2^32 and 2 <= d <= 2^16 by one multiplication:
// with m = ceil(2^48 / d) = 2^48 / d + e (0 <= e < 1), n m / 2^48 exceeds
// n / d by n e / 2^48 < 1 / d, which never reaches the next integer.
struct FastDiv32 {
  uint64_t m;
  uint32_t d;
  static uint64_t multiplier(uint32_t div) { return ((uint64_t(1) << 48) + div - 1) / div; }
  uint32_t quot(uint32_t n) const { return uint32_t(u128(n) * m >> 48); }
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

}  // namespace

int lattice_bits_per_block(LatticeKind kind, int q) {
  KVLAB_CHECK(q >= 1 && q <= kLatticeMaxQ, "lattice bits: Q = {} out of range [1, {}]", q, kLatticeMaxQ);
  const u128 m = u128(2 * q + 1);
  // log2 of an odd number > 1 is never an integer, so ceil(b log2 M) is the
  // bit width of M^b.
  if (kind == LatticeKind::kD4) return bit_width128(ipow(m, 4)) - 1;
  return bit_width128(ipow(m, 8));
}

FastDiv53::FastDiv53(uint64_t div) : shift(53 + int(std::bit_width(div))), d(div) {
  const u128 one = u128(1) << shift;
  m = uint64_t((one + div - 1) / div);
}

LatticeIndexer::LatticeIndexer(LatticeKind kind, int q)
    : kind_(kind), q_(q), block_(lattice_block_dim(kind)), bits_(lattice_bits_per_block(kind, q)) {
  const u128 m = u128(2 * q + 1);
  count_int_ = (ipow(m, block_) + 1) / 2;
  count_half_ = kind == LatticeKind::kE8 ? ipow(u128(2 * q), 8) / 2 : 0;
  KVLAB_ASSERT(bit_width128(count_int_ + count_half_ - 1) <= bits_, "block index does not fit");
  // Fast digit extraction when the 4-digit halves fit 32 bits (M <= 255,
  // i.e. Q <= 127).
  fast_ = q <= 127;
  if (fast_) {
    mul_m_ = FastDiv32::multiplier(uint32_t(2 * q + 1));
    mul_r_ = FastDiv32::multiplier(uint32_t(2 * q));
    pow4_m_ = uint64_t(ipow(m, 4));
    pow4_r_ = uint64_t(ipow(u128(2 * q), 4));
    split_ = ipow(m, 8) < (u128(1) << 53);
    split_m_ = FastDiv53(pow4_m_);
    split_r_ = FastDiv53(pow4_r_);
  }
}

u128 LatticeIndexer::index_ref(const int32_t* p2) const {
  const bool half = (p2[0] & 1) != 0;
  const bool small = bits_ <= 64;
  if (!half) return small ? u128(dn_index<uint64_t>(p2, block_, q_)) : dn_index<u128>(p2, block_, q_);
  return count_int_ + (small ? u128(half_index<uint64_t>(p2, q_)) : half_index<u128>(p2, q_));
}

bool LatticeIndexer::point_ref(u128 index, int32_t* p2) const {
  if (index >= points_per_block()) return false;
  const bool small = bits_ <= 64;
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
  return true;
}

uint64_t LatticeIndexer::index_fast(const int32_t* p2) const {
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

bool LatticeIndexer::point_fast(uint64_t index, int32_t* p2) const {
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

void lattice_pack_ref(const LatticeIndexer& ix, const int32_t* pts2, int64_t nblocks, uint8_t* out) {
  const int b = ix.block_dim(), bits = ix.bits_per_block();
  BitWriter w{out};
  for (int64_t k = 0; k < nblocks; ++k) w.put128(ix.index_ref(pts2 + k * b), bits);
  w.flush();
  KVLAB_ASSERT(w.p == out + ix.payload_bytes(nblocks), "bit packing wrote {} bytes, expected {}", w.p - out,
               ix.payload_bytes(nblocks));
}

[[gnu::flatten]] void lattice_pack(const LatticeIndexer& ix, const int32_t* pts2, int64_t nblocks, uint8_t* out) {
  const int b = ix.block_dim(), bits = ix.bits_per_block();
  if (!ix.fast() || bits > 56) return lattice_pack_ref(ix, pts2, nblocks, out);
  // Indices in blocks of kChunk (16 at a step on AVX-512), then written by
  // the branch-free writer while 8 bytes fit, the rest by the plain one.
  constexpr int64_t kChunk = 256;
  uint64_t idx[kChunk];
  const bool wide = simd_level() >= SimdLevel::kAvx512;
  uint8_t* const end = out + ix.payload_bytes(nblocks);
  FastBitWriter fw{out};
  BitWriter w{nullptr};
  bool tail = false;
  for (int64_t k0 = 0; k0 < nblocks; k0 += kChunk) {
    const int64_t nk = std::min(kChunk, nblocks - k0);
    const int32_t* p = pts2 + k0 * b;
    int64_t k = wide ? avx512::block_indices(ix.kind(), p, nk, ix.q(), uint64_t(ix.count_int()), idx) : 0;
    for (; k < nk; ++k) idx[k] = ix.index_fast(p + k * b);
    for (k = 0; k < nk; ++k) {
      if (!tail && fw.p + 8 > end) {
        w = BitWriter{fw.p, u128(fw.acc), fw.n};
        tail = true;
      }
      if (tail)
        w.put(idx[k], bits);
      else
        fw.put(idx[k], bits);
    }
  }
  if (!tail) w = BitWriter{fw.p, u128(fw.acc), fw.n};
  w.flush();
  KVLAB_ASSERT(w.p == end, "bit packing wrote {} bytes, expected {}", w.p - out, end - out);
}

int64_t lattice_unpack_ref(const LatticeIndexer& ix, const uint8_t* bits, int64_t readable, int64_t nblocks,
                           int32_t* pts2) {
  KVLAB_ASSERT(readable >= ix.payload_bytes(nblocks), "unpack: {} readable bytes for a payload of {}", readable,
               ix.payload_bytes(nblocks));
  BitReader rd{bits, bits + ix.payload_bytes(nblocks)};
  for (int64_t k = 0; k < nblocks; ++k)
    if (!ix.point_ref(rd.get128(ix.bits_per_block()), pts2 + k * ix.block_dim())) return k;
  return nblocks;
}

// flatten: the index arithmetic and the bit reader inline into the loop
// (measured: e8:q=100 decode 25 % slower as calls).
[[gnu::flatten]] int64_t lattice_unpack(const LatticeIndexer& ix, const uint8_t* bits, int64_t readable,
                                        int64_t nblocks, int32_t* pts2) {
  if (!ix.fast()) return lattice_unpack_ref(ix, bits, readable, nblocks, pts2);
  KVLAB_ASSERT(readable >= ix.payload_bytes(nblocks), "unpack: {} readable bytes for a payload of {}", readable,
               ix.payload_bytes(nblocks));
  // The AVX-512 unpackers: D4 for Q <= 127, E8 while indices stay below
  // 2^53 (split(): Q <= 48); they stop at a corrupt index, which the scalar
  // loop below then finds.
  const bool wide = (ix.block_dim() == 4 || ix.split()) && simd_level() >= SimdLevel::kAvx512;
  int64_t k = wide ? avx512::unpack_points(ix.kind(), bits, readable, nblocks, ix.bits_per_block(), ix.q(),
                                           uint64_t(ix.count_int()), uint64_t(ix.points_per_block()), pts2)
                   : 0;
  BitReader rd{bits, bits + ix.payload_bytes(nblocks), uint64_t(k) * uint64_t(ix.bits_per_block())};
  for (; k < nblocks; ++k)
    if (!ix.point_fast(rd.get(ix.bits_per_block()), pts2 + k * ix.block_dim())) return k;
  return nblocks;
}

}  // namespace kvlab::kernels
