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

// FNV-1a over 32-bit words (the column values in order).
uint32_t checksum(const std::vector<SymbolColumn>& cols) {
  uint32_t h = 2166136261u;
  for (const auto& c : cols)
    for (int32_t v : c.values) h = (h ^ uint32_t(v)) * 16777619u;
  return h;
}

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

bool is_wide(int32_t lo, int32_t hi) { return int64_t(hi) - int64_t(lo) + 1 > kernels::AdaptiveModel::kMaxAlphabet; }
int32_t wide_center(int32_t lo, int32_t hi) { return std::clamp(0, lo, hi); }

void encode_raw(kernels::RangeEncoder& enc, uint64_t v, int bits) {
  for (int b = 0; b < bits; b += 16) enc.encode_bits(uint32_t(v >> b) & ((1u << std::min(16, bits - b)) - 1),
                                                     std::min(16, bits - b));
}

uint64_t decode_raw(kernels::RangeDecoder& dec, int bits) {
  uint64_t v = 0;
  for (int b = 0; b < bits; b += 16) v |= uint64_t(dec.decode_bits(std::min(16, bits - b))) << b;
  return v;
}

void encode_column(kernels::RangeEncoder& enc, const SymbolColumn& c, int32_t lo, int32_t hi) {
  if (c.side_info) {
    for (int32_t v : c.values) enc.encode_bits(uint32_t(v), c.width);
    return;
  }
  if (!is_wide(lo, hi)) {
    kernels::AdaptiveModel m(hi - lo + 1);
    for (int32_t v : c.values) enc.encode(m, v - lo);
    return;
  }
  kernels::AdaptiveModel m(kWideBuckets);
  const int64_t center = wide_center(lo, hi);
  for (int32_t v : c.values) {
    const int64_t d = int64_t(v) - center;
    const uint64_t u = d >= 0 ? uint64_t(d) << 1 : (uint64_t(-d) << 1) - 1;
    const int len = int(std::bit_width(u));
    enc.encode(m, len);
    if (len > 1) encode_raw(enc, u, len - 1);  // the bits below the leading one
  }
}

void decode_column(kernels::RangeDecoder& dec, SymbolColumn& c, int32_t lo, int32_t hi) {
  c.values.resize(std::size_t(c.count));
  if (c.side_info) {
    for (auto& v : c.values) v = int32_t(dec.decode_bits(c.width));
    return;
  }
  if (!is_wide(lo, hi)) {
    kernels::AdaptiveModel m(hi - lo + 1);
    for (auto& v : c.values) v = dec.decode(m) + lo;
    return;
  }
  kernels::AdaptiveModel m(kWideBuckets);
  const int64_t center = wide_center(lo, hi);
  for (std::size_t i = 0; i < c.values.size(); ++i) {
    const int len = dec.decode(m);
    const uint64_t u = len == 0 ? 0 : (uint64_t(1) << (len - 1)) | (len > 1 ? decode_raw(dec, len - 1) : 0);
    const int64_t d = (u & 1) ? -int64_t((u + 1) >> 1) : int64_t(u >> 1);
    const int64_t v = center + d;
    KVLAB_CHECK(v >= lo && v <= hi,
                "range-coded stream: column {} value {} decodes to {} (expected {} <= value <= {}; corrupt stream)",
                c.name, i, v, lo, hi);
    c.values[i] = int32_t(v);
  }
}

void check_codec(const Codec& c) {
  KVLAB_CHECK(c.has_symbol_columns(), "{}: no symbol columns to range-code (entropy=range is available for {})",
              c.spec(), entropy_range_families_text());
}

}  // namespace

std::vector<uint8_t> range_encode_records(const Codec& c, const uint8_t* codes, int64_t n, bool allow_stored) {
  check_codec(c);
  KVLAB_CHECK(n >= 0, "{} range coding: n = {} (expected >= 0)", c.spec(), n);
  const std::vector<SymbolColumn> cols = c.symbol_columns(codes, n);
  std::vector<uint8_t> out(std::begin(kMagic), std::end(kMagic));
  out.push_back(kModeRange);
  put(out, uint64_t(c.dim()), 4);
  put(out, uint64_t(n), 8);
  const std::size_t head = out.size();
  put(out, cols.size(), 4);
  put(out, checksum(cols), 4);
  std::vector<std::pair<int32_t, int32_t>> ranges(cols.size(), {0, 0});
  for (std::size_t i = 0; i < cols.size(); ++i) {
    const auto& col = cols[i];
    KVLAB_ASSERT(col.values.size() == std::size_t(col.count), "{} column {}: {} values, count {}", c.spec(), col.name,
                 col.values.size(), col.count);
    if (col.side_info) continue;
    if (!col.values.empty()) {
      const auto [mn, mx] = std::minmax_element(col.values.begin(), col.values.end());
      ranges[i] = {*mn, *mx};
    }
    put(out, uint32_t(ranges[i].first), 4);
    put(out, uint32_t(ranges[i].second), 4);
  }
  kernels::RangeEncoder enc(&out);
  for (std::size_t i = 0; i < cols.size(); ++i) encode_column(enc, cols[i], ranges[i].first, ranges[i].second);
  enc.finish();
  const std::size_t raw = std::size_t(n) * c.code_size();
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
  std::vector<SymbolColumn> cols = c.symbol_layout(n);
  const uint64_t ncols = r.get(4, "column count");
  KVLAB_CHECK(ncols == cols.size(), "{} range decoding: stream has {} columns (expected {})", c.spec(), ncols,
              cols.size());
  const uint32_t sum = uint32_t(r.get(4, "checksum"));
  std::vector<std::pair<int32_t, int32_t>> ranges(cols.size(), {0, 0});
  for (std::size_t i = 0; i < cols.size(); ++i) {
    if (cols[i].side_info) continue;
    ranges[i].first = int32_t(uint32_t(r.get(4, "column minimum")));
    ranges[i].second = int32_t(uint32_t(r.get(4, "column maximum")));
    KVLAB_CHECK(ranges[i].first <= ranges[i].second,
                "{} range decoding: column {} ({}) has range [{}, {}] (expected minimum <= maximum)", c.spec(), i,
                cols[i].name, ranges[i].first, ranges[i].second);
  }
  kernels::RangeDecoder dec(bytes.subspan(r.pos));
  for (std::size_t i = 0; i < cols.size(); ++i) decode_column(dec, cols[i], ranges[i].first, ranges[i].second);
  dec.finish();
  KVLAB_CHECK(checksum(cols) == sum,
              "{} range decoding: checksum of the decoded symbols is {:08x} (expected {:08x}; corrupt stream)",
              c.spec(), checksum(cols), sum);
  c.join_symbol_columns(cols, n, codes);
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
