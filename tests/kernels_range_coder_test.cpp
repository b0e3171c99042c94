// The adaptive range coder (kernels/range_coder.h): exact round trips,
// coded size against the source entropy, and errors (not crashes) on
// truncated or corrupt streams.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "common/error.h"
#include "common/rng.h"
#include "kernels/range_coder.h"

namespace kvlab::kernels {
namespace {

// Symbols of one model, then raw fields of the given width (if any).
struct Stream {
  int alphabet = 2;
  std::vector<int> symbols;
  int raw_width = 0;
  std::vector<uint32_t> raw;
};

std::vector<uint8_t> encode(const Stream& s) {
  std::vector<uint8_t> out;
  RangeEncoder enc(&out);
  AdaptiveModel m(s.alphabet);
  for (std::size_t i = 0; i < s.symbols.size(); ++i) {
    enc.encode(m, s.symbols[i]);
    if (i < s.raw.size()) enc.encode_bits(s.raw[i], s.raw_width);
  }
  const std::size_t n = enc.finish();
  EXPECT_EQ(n, out.size());
  return out;
}

Stream decode(const std::vector<uint8_t>& bytes, const Stream& shape) {
  Stream d = shape;
  RangeDecoder dec(bytes);
  AdaptiveModel m(shape.alphabet);
  for (std::size_t i = 0; i < shape.symbols.size(); ++i) {
    d.symbols[i] = dec.decode(m);
    if (i < shape.raw.size()) d.raw[i] = dec.decode_bits(shape.raw_width);
  }
  dec.finish();
  return d;
}

// i.i.d. symbols of a geometric-like distribution p_i ~ rho^i over K
// symbols; returns the entropy in bits.
double skewed(int k, double rho, int64_t n, uint64_t seed, std::vector<int>* out) {
  std::vector<double> p(static_cast<std::size_t>(k));
  double z = 0;
  for (int i = 0; i < k; ++i) z += (p[std::size_t(i)] = std::pow(rho, i));
  double h = 0;
  for (auto& v : p) {
    v /= z;
    h -= v * std::log2(v);
  }
  SplitMix64 rng(seed);
  out->resize(std::size_t(n));
  for (auto& s : *out) {
    double u = rng.uniform() * 0.999999999, c = 0;
    int i = 0;
    while (i < k - 1 && (c += p[std::size_t(i)]) < u) ++i;
    s = i;
  }
  return h;
}

TEST(RangeCoder, EmptyStreamIsFiveBytesAndDecodes) {
  Stream s;
  const auto bytes = encode(s);
  EXPECT_EQ(bytes.size(), 5u);
  EXPECT_EQ(bytes[0], 0);
  EXPECT_NO_THROW(decode(bytes, s));
}

TEST(RangeCoder, SingleSymbolAlphabetCostsAlmostNothing) {
  Stream s;
  s.alphabet = 1;
  s.symbols.assign(100000, 0);
  const auto bytes = encode(s);
  EXPECT_LT(bytes.size(), 16u);  // log2(T / (T - 1))-ish per symbol, ~0 bits
  EXPECT_EQ(decode(bytes, s).symbols, s.symbols);
}

TEST(RangeCoder, AlphabetEdgesRoundTrip) {
  for (int k : {1, 2, 3, 255, 256, 257, AdaptiveModel::kMaxAlphabet}) {
    Stream s;
    s.alphabet = k;
    SplitMix64 rng{uint64_t(k)};
    for (int i = 0; i < 20000; ++i) {
      const uint64_t r = rng.next();
      // Mostly the edges 0 and K - 1, some uniform.
      s.symbols.push_back(r % 3 == 0 ? 0 : r % 3 == 1 ? k - 1 : int((r >> 8) % uint64_t(k)));
    }
    const auto bytes = encode(s);
    EXPECT_EQ(decode(bytes, s).symbols, s.symbols) << "K = " << k;
  }
  EXPECT_THROW(AdaptiveModel(0), Error);
  EXPECT_THROW(AdaptiveModel(AdaptiveModel::kMaxAlphabet + 1), Error);
  std::vector<uint8_t> out;
  RangeEncoder enc(&out);
  AdaptiveModel m(5);
  EXPECT_THROW(enc.encode(m, 5), Error);
  EXPECT_THROW(enc.encode(m, -1), Error);
  EXPECT_THROW(enc.encode_bits(16, 4), Error);
  EXPECT_THROW(enc.encode_bits(0, 17), Error);
}

TEST(RangeCoder, RandomAndSkewedStreamsWithRawFieldsRoundTrip) {
  SplitMix64 rng(7);
  for (int w : {1, 8, 15, 16}) {
    for (double rho : {1.0, 0.9, 0.3, 0.01}) {
      Stream s;
      s.alphabet = 40;
      skewed(40, rho, 30000, uint64_t(w * 100) + uint64_t(rho * 1000), &s.symbols);
      s.raw_width = w;
      for (int i = 0; i < 5000; ++i) s.raw.push_back(uint32_t(rng.next() >> (64 - w)));
      s.raw[0] = (1u << w) - 1;  // the largest raw value
      s.raw[1] = 0;
      const auto bytes = encode(s);
      const Stream d = decode(bytes, s);
      EXPECT_EQ(d.symbols, s.symbols) << "w = " << w << ", rho = " << rho;
      EXPECT_EQ(d.raw, s.raw) << "w = " << w << ", rho = " << rho;
    }
  }
}

// The coded size of an i.i.d. source approaches n H: at most 2 % above it
// plus a few bytes (the flush, the first symbols of an adaptive model).
TEST(RangeCoder, CodedSizeIsCloseToTheSourceEntropy) {
  struct Case {
    int k;
    double rho;
  };
  for (const Case c : {Case{2, 0.1}, Case{4, 0.5}, Case{16, 0.8}, Case{40, 0.9}, Case{40, 1.0}, Case{256, 0.98}}) {
    Stream s;
    s.alphabet = c.k;
    const int64_t n = 400000;
    const double h = skewed(c.k, c.rho, n, uint64_t(c.k) * 31 + 5, &s.symbols);
    const auto bytes = encode(s);
    const double bits = 8.0 * double(bytes.size());
    std::printf("K = %3d rho = %.2f: H = %.4f bits, coded %.4f bits/symbol (+%.2f %%)\n", c.k, c.rho, h,
                bits / double(n), 100.0 * (bits / (double(n) * h) - 1.0));
    EXPECT_LE(bits, 1.02 * double(n) * h + 8.0 * 64) << "K = " << c.k << ", rho = " << c.rho << ", H = " << h;
    // No coder beats the entropy by more than the sampling noise.
    EXPECT_GE(bits, 0.98 * double(n) * h) << "K = " << c.k << ", rho = " << c.rho;
    EXPECT_EQ(decode(bytes, s).symbols, s.symbols);
  }
  // Raw fields cost their width: 10000 x 16 bits.
  Stream r;
  r.alphabet = 1;
  r.symbols.assign(10000, 0);
  r.raw_width = 16;
  SplitMix64 rng(3);
  for (int i = 0; i < 10000; ++i) r.raw.push_back(uint32_t(rng.next() >> 48));
  const auto bytes = encode(r);
  EXPECT_LE(bytes.size(), 10000u * 2 + 16);
  EXPECT_GE(bytes.size(), 10000u * 2);
}

TEST(RangeCoder, TruncatedStreamsThrow) {
  Stream s;
  s.alphabet = 40;
  skewed(40, 0.9, 20000, 11, &s.symbols);
  const auto bytes = encode(s);
  for (std::size_t keep : {std::size_t(0), std::size_t(4), std::size_t(5), bytes.size() / 2, bytes.size() - 1}) {
    const std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + std::ptrdiff_t(keep));
    EXPECT_THROW(decode(cut, s), Error) << "kept " << keep << " of " << bytes.size();
  }
  // A byte too many is reported by finish().
  auto longer = bytes;
  longer.push_back(0);
  EXPECT_THROW(decode(longer, s), Error);
  // The message names the byte and the symbol.
  try {
    decode(std::vector<uint8_t>(bytes.begin(), bytes.begin() + 100), s);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("symbol"), std::string::npos) << e.what();
  }
}

// Corrupt streams: every outcome is either an exception or some decoded
// symbols (all within the alphabet); never a crash or an endless loop.
TEST(RangeCoder, CorruptStreamsThrowOrDecodeWithinTheAlphabet) {
  Stream s;
  s.alphabet = 40;
  skewed(40, 0.9, 5000, 12, &s.symbols);
  const auto bytes = encode(s);
  SplitMix64 rng(99);
  int thrown = 0;
  for (int t = 0; t < 300; ++t) {
    auto bad = bytes;
    const std::size_t at = std::size_t(rng.next() % bad.size());
    bad[at] = uint8_t(bad[at] ^ uint8_t(1 + rng.next() % 255));
    try {
      const Stream d = decode(bad, s);
      for (int v : d.symbols) ASSERT_TRUE(v >= 0 && v < 40);
    } catch (const Error&) {
      ++thrown;
    }
  }
  // The first byte must be 0, a flipped byte elsewhere usually changes how
  // many bytes the decoder consumes.
  EXPECT_GT(thrown, 0);
  auto first = bytes;
  first[0] = 1;
  EXPECT_THROW(decode(first, s), Error);
  // All 0xFF: the window holds a frequency target >= total.
  EXPECT_THROW(decode(std::vector<uint8_t>{0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, s), Error);
}

}  // namespace
}  // namespace kvlab::kernels
