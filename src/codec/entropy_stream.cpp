// The range-coded codec stream; see entropy_stream.h.
#include "codec/entropy_stream.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "common/error.h"
#include "kernels/range_coder.h"

namespace kvlab::codec {

namespace {

constexpr uint8_t kMagic[4] = {'K', 'V', 'R', 'C'};
constexpr uint8_t kModeStored = 0;  // the records verbatim (when coding would not be smaller)
constexpr uint8_t kModeRange = 1;   // range-coded columns
constexpr int kWideBuckets = 35;  // bit lengths 0..34 of a zigzag of a 33-bit difference

// Vectors per chunk: the columns of one chunk are materialised at a time
// (~0.5 MB at D = 512), the models persist across chunks.
constexpr int64_t kChunk = 256;

// FNV-1a over 32-bit words (the column values in coding order), continued from h.
uint32_t checksum(const std::vector<SymbolColumn>& cols, uint32_t h) {
  for (const auto& c : cols)
    for (int32_t v : c.values) h = (h ^ uint32_t(v)) * 16777619u;
  return h;
}
constexpr uint32_t kChecksumSeed = 2166136261u;

void put(std::vector<uint8_t>& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(uint8_t(v >> (8 * i)));
}

// Little-endian reader of the header with bounds checks.
struct Reader {
  std::span<const uint8_t> in;
  std::size_t pos = 0;
  uint64_t get(int bytes, const char* what) {
    KVLAB_CHECK(pos + std::size_t(bytes) <= in.size(),
                "range-coded stream: truncated header: {} at byte {} needs {} bytes, the stream has {}", what, pos,
                bytes, in.size());
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t(in[pos + std::size_t(i)]) << (8 * i);
    pos += std::size_t(bytes);
    return v;
  }
};

void encode_raw(kernels::RangeEncoder& enc, uint64_t v, int bits) {
  for (int b = 0; b < bits; b += 16) enc.encode_bits(uint32_t(v >> b) & ((1u << std::min(16, bits - b)) - 1),
                                                     std::min(16, bits - b));
}

uint64_t decode_raw(kernels::RangeDecoder& dec, int bits) {
  uint64_t v = 0;
  for (int b = 0; b < bits; b += 16) v |= uint64_t(dec.decode_bits(std::min(16, bits - b))) << b;
  return v;
}

// How one column is coded: raw (side information), one model over
// [lo, hi], or (wide) bit lengths through a model plus raw bits.
class ColumnCoder {
 public:
  ColumnCoder(const SymbolColumn& layout, int32_t lo, int32_t hi)
      : name_(layout.name), side_(layout.side_info), width_(layout.width), lo_(lo), hi_(hi),
        wide_(int64_t(hi) - int64_t(lo) + 1 > kernels::AdaptiveModel::kMaxAlphabet),
        center_(std::clamp(0, lo, hi)),
        model_(side_ ? 1 : wide_ ? kWideBuckets : hi - lo + 1) {}

  void encode(kernels::RangeEncoder& enc, const std::vector<int32_t>& values) {
    if (side_) {
      for (int32_t v : values) enc.encode_bits(uint32_t(v), width_);
    } else if (!wide_) {
      for (int32_t v : values) enc.encode(model_, v - lo_);
    } else {
      for (int32_t v : values) {
        const int64_t d = int64_t(v) - center_;
        const uint64_t u = d >= 0 ? uint64_t(d) << 1 : (uint64_t(-d) << 1) - 1;
        const int len = int(std::bit_width(u));
        enc.encode(model_, len);
        if (len > 1) encode_raw(enc, u, len - 1);  // the bits below the leading one
      }
    }
  }

  void decode(kernels::RangeDecoder& dec, std::vector<int32_t>& values) {
    if (side_) {
      for (auto& v : values) v = int32_t(dec.decode_bits(width_));
    } else if (!wide_) {
      for (auto& v : values) v = dec.decode(model_) + lo_;
    } else {
      for (std::size_t i = 0; i < values.size(); ++i) {
        const int len = dec.decode(model_);
        const uint64_t u = len == 0 ? 0 : (uint64_t(1) << (len - 1)) | (len > 1 ? decode_raw(dec, len - 1) : 0);
        const int64_t v = center_ + ((u & 1) ? -int64_t((u + 1) >> 1) : int64_t(u >> 1));
        KVLAB_CHECK(v >= lo_ && v <= hi_,
                    "range-coded stream: column {} value {} decodes to {} (expected {} <= value <= {}; corrupt "
                    "stream)", name_, i, v, lo_, hi_);
        values[i] = int32_t(v);
      }
    }
  }

 private:
  std::string name_;
  bool side_;
  int width_;
  int32_t lo_, hi_;
  bool wide_;
  int64_t center_;
  kernels::AdaptiveModel model_;
};

void check_codec(const Codec& c) {
  KVLAB_CHECK(c.has_symbol_columns(), "{}: no symbol columns to range-code (entropy=range is available for {})",
              c.spec(), entropy_range_families_text());
}

// Pass 1 of the encoder: each coded column's value range and the checksum.
uint32_t scan_columns(const Codec& c, const uint8_t* codes, int64_t n,
                      std::vector<std::pair<int32_t, int32_t>>& ranges) {
  uint32_t sum = kChecksumSeed;
  std::vector<bool> seen;
  for (int64_t r0 = 0; r0 < n; r0 += kChunk) {
    const int64_t rows = std::min(kChunk, n - r0);
    const std::vector<SymbolColumn> cols = c.symbol_columns(codes + r0 * int64_t(c.code_size()), rows);
    seen.resize(cols.size(), false);
    ranges.resize(cols.size(), {0, 0});
    for (std::size_t i = 0; i < cols.size(); ++i) {
      KVLAB_ASSERT(cols[i].values.size() == std::size_t(cols[i].count), "{} column {}: {} values, count {}",
                   c.spec(), cols[i].name, cols[i].values.size(), cols[i].count);
      if (cols[i].side_info || cols[i].values.empty()) continue;
      const auto [mn, mx] = std::minmax_element(cols[i].values.begin(), cols[i].values.end());
      ranges[i] = seen[i] ? std::make_pair(std::min(ranges[i].first, *mn), std::max(ranges[i].second, *mx))
                          : std::make_pair(*mn, *mx);
      seen[i] = true;
    }
    sum = checksum(cols, sum);
  }
  return sum;
}

}  // namespace

std::vector<uint8_t> range_encode_records(const Codec& c, const uint8_t* codes, int64_t n, bool allow_stored) {
  check_codec(c);
  KVLAB_CHECK(n >= 0, "{} range coding: n = {} (expected >= 0)", c.spec(), n);
  const std::vector<SymbolColumn> layout = c.symbol_layout(std::min(n, kChunk));
  std::vector<std::pair<int32_t, int32_t>> ranges(layout.size(), {0, 0});
  const uint32_t sum = scan_columns(c, codes, n, ranges);
  const std::size_t raw = std::size_t(n) * c.code_size();
  std::vector<uint8_t> out(std::begin(kMagic), std::end(kMagic));
  out.reserve(64 + 8 * layout.size() + raw);
  out.push_back(kModeRange);
  put(out, uint64_t(c.dim()), 4);
  put(out, uint64_t(n), 8);
  const std::size_t head = out.size();
  put(out, layout.size(), 4);
  put(out, sum, 4);
  std::vector<ColumnCoder> coders;
  for (std::size_t i = 0; i < layout.size(); ++i) {
    coders.emplace_back(layout[i], ranges[i].first, ranges[i].second);
    if (layout[i].side_info) continue;
    put(out, uint32_t(ranges[i].first), 4);
    put(out, uint32_t(ranges[i].second), 4);
  }
  kernels::RangeEncoder enc(&out);
  for (int64_t r0 = 0; r0 < n; r0 += kChunk) {
    const std::vector<SymbolColumn> cols = c.symbol_columns(codes + r0 * int64_t(c.code_size()), std::min(kChunk, n - r0));
    for (std::size_t i = 0; i < cols.size(); ++i) coders[i].encode(enc, cols[i].values);
  }
  enc.finish();
  if (allow_stored && out.size() - head > raw) {  // e.g. a few vectors: the models have not learnt yet
    out.resize(head);
    out[4] = kModeStored;
    out.insert(out.end(), codes, codes + raw);
  }
  return out;
}

void range_decode_records(const Codec& c, std::span<const uint8_t> bytes, int64_t n, uint8_t* codes) {
  check_codec(c);
  KVLAB_CHECK(n >= 0, "{} range decoding: n = {} (expected >= 0)", c.spec(), n);
  Reader r{bytes};
  for (int i = 0; i < 4; ++i)
    KVLAB_CHECK(r.get(1, "magic") == kMagic[i], "{} range decoding: not a range-coded stream (expected magic KVRC)",
                c.spec());
  const uint64_t mode = r.get(1, "mode");
  KVLAB_CHECK(mode == kModeRange || mode == kModeStored,
              "{} range decoding: stream mode {} (expected {} range-coded or {} stored)", c.spec(), mode, kModeRange,
              kModeStored);
  const uint64_t dim = r.get(4, "D"), n_in = r.get(8, "n");
  KVLAB_CHECK(dim == uint64_t(c.dim()) && n_in == uint64_t(n),
              "{} range decoding: stream holds {} vectors of D = {} (expected {} of D = {})", c.spec(), n_in, dim, n,
              c.dim());
  if (mode == kModeStored) {
    const std::size_t raw = std::size_t(n) * c.code_size();
    KVLAB_CHECK(bytes.size() - r.pos == raw,
                "{} range decoding: stored stream has {} record bytes (expected n * code_size = {})", c.spec(),
                bytes.size() - r.pos, raw);
    std::copy(bytes.begin() + std::ptrdiff_t(r.pos), bytes.end(), codes);
    return;
  }
  const std::vector<SymbolColumn> layout = c.symbol_layout(std::min(n, kChunk));
  const uint64_t ncols = r.get(4, "column count");
  KVLAB_CHECK(ncols == layout.size(), "{} range decoding: stream has {} columns (expected {})", c.spec(), ncols,
              layout.size());
  const uint32_t sum = uint32_t(r.get(4, "checksum"));
  std::vector<ColumnCoder> coders;
  for (std::size_t i = 0; i < layout.size(); ++i) {
    int32_t lo = 0, hi = 0;
    if (!layout[i].side_info) {
      lo = int32_t(uint32_t(r.get(4, "column minimum")));
      hi = int32_t(uint32_t(r.get(4, "column maximum")));
      KVLAB_CHECK(lo <= hi, "{} range decoding: column {} ({}) has range [{}, {}] (expected minimum <= maximum)",
                  c.spec(), i, layout[i].name, lo, hi);
    }
    coders.emplace_back(layout[i], lo, hi);
  }
  kernels::RangeDecoder dec(bytes.subspan(r.pos));
  uint32_t got = kChecksumSeed;
  for (int64_t r0 = 0; r0 < n; r0 += kChunk) {
    const int64_t rows = std::min(kChunk, n - r0);
    std::vector<SymbolColumn> cols = c.symbol_layout(rows);
    for (std::size_t i = 0; i < cols.size(); ++i) {
      cols[i].values.resize(std::size_t(cols[i].count));
      coders[i].decode(dec, cols[i].values);
    }
    got = checksum(cols, got);
    c.join_symbol_columns(cols, rows, codes + r0 * int64_t(c.code_size()));
  }
  dec.finish();
  KVLAB_CHECK(got == sum,
              "{} range decoding: checksum of the decoded symbols is {:08x} (expected {:08x}; corrupt stream)",
              c.spec(), got, sum);
}

RangeCodedCodec::RangeCodedCodec(std::unique_ptr<Codec> inner) : inner_(std::move(inner)) {
  KVLAB_CHECK(inner_ != nullptr, "entropy=range: no inner codec");
  check_codec(*inner_);
}

std::string RangeCodedCodec::spec() const { return inner_->spec() + ",entropy=range"; }

std::vector<uint8_t> RangeCodedCodec::encode_stream(const float* x, int64_t n) const {
  KVLAB_CHECK(n >= 0, "{}: stream of n = {} vectors (expected n >= 0)", spec(), n);
  std::vector<uint8_t> codes(std::size_t(n) * code_size());
  inner_->encode(x, n, codes.data());
  return range_encode_records(*inner_, codes.data(), n);
}

void RangeCodedCodec::decode_stream(std::span<const uint8_t> bytes, int64_t n, float* out) const {
  KVLAB_CHECK(n >= 0, "{}: stream of n = {} vectors (expected n >= 0)", spec(), n);
  std::vector<uint8_t> codes(std::size_t(n) * code_size());
  range_decode_records(*inner_, bytes, n, codes.data());
  inner_->decode(codes.data(), n, out);
}

}  // namespace kvlab::codec
