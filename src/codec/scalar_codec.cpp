// int / hadamard_int / hadamard_lloyd codecs; see scalar_codec.h.
#include "codec/scalar_codec.h"

#include <algorithm>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "common/error.h"
#include "kernels/entropy.h"

namespace kvlab::codec {

namespace {
// K-bit fields, LSB-first from bit 0 of `bytes` (the int and Lloyd layouts).
void unpack_fields(const uint8_t* bytes, int64_t count, int k, bool is_signed, int32_t* out) {
  uint64_t acc = 0;
  int have = 0;
  const uint32_t mask = (1u << k) - 1;
  for (int64_t j = 0; j < count; ++j) {
    while (have < k) {
      acc |= uint64_t(*bytes++) << have;
      have += 8;
    }
    const uint32_t u = uint32_t(acc) & mask;
    acc >>= k;
    have -= k;
    out[j] = is_signed ? int32_t(u << (32 - k)) >> (32 - k) : int32_t(u);
  }
}

void pack_fields(const int32_t* v, int64_t count, int k, uint8_t* bytes) {
  uint64_t acc = 0;
  int have = 0;
  const uint32_t mask = (1u << k) - 1;
  for (int64_t j = 0; j < count; ++j) {
    acc |= uint64_t(uint32_t(v[j]) & mask) << have;
    have += k;
    while (have >= 8) {
      *bytes++ = uint8_t(acc);
      acc >>= 8;
      have -= 8;
    }
  }
  if (have > 0) *bytes = uint8_t(acc);
}

// Checks the columns against the layout (count and value range of each).
void check_columns(const std::string& spec, const std::vector<SymbolColumn>& cols,
                   const std::vector<SymbolColumn>& layout, const std::vector<std::pair<int32_t, int32_t>>& ranges) {
  KVLAB_CHECK(cols.size() == layout.size(), "{} join: {} symbol columns (expected {})", spec, cols.size(),
              layout.size());
  for (std::size_t i = 0; i < cols.size(); ++i) {
    KVLAB_CHECK(cols[i].values.size() == std::size_t(layout[i].count),
                "{} join: column {} ({}) holds {} values (expected {})", spec, i, layout[i].name,
                cols[i].values.size(), layout[i].count);
    const auto [lo, hi] = ranges[i];
    for (std::size_t j = 0; j < cols[i].values.size(); ++j)
      KVLAB_CHECK(cols[i].values[j] >= lo && cols[i].values[j] <= hi,
                  "{} join: {} value {} is {} (expected {} <= value <= {})", spec, layout[i].name, j,
                  cols[i].values[j], lo, hi);
  }
}

const char* scale_name(ScaleKind s) { return s == ScaleKind::kUf16 ? "fp16" : "ue8m0"; }
}  // namespace

IntBlockCodec::IntBlockCodec(int bits, int block, ScaleKind scale, bool hadamard, int64_t dim) : dim_(dim) {
  KVLAB_CHECK(scale == ScaleKind::kUf16 || scale == ScaleKind::kUe8m0,
              "int codec: scale kind {} is not supported (expected fp16 or ue8m0)", int(scale));
  format_ = kernels::IntFormat{bits, block, scale, hadamard};
  code_size_ = std::size_t(kernels::int_code_size(format_, dim));  // validates bits, block, D
}

std::string IntBlockCodec::spec() const {
  return fmt::format("{}:bits={},block={},scale={}", format_.hadamard ? "hadamard_int" : "int", format_.bits,
                     format_.block, scale_name(format_.scale));
}

void IntBlockCodec::encode(const float* x, int64_t n, uint8_t* codes) const {
  kernels::int_encode(format_, x, n, dim_, codes);
}

void IntBlockCodec::decode(const uint8_t* codes, int64_t n, float* out) const {
  kernels::int_decode(format_, codes, n, dim_, out);
}

void IntBlockCodec::roundtrip_impl(const float* x, int64_t n, float* out) const {
  kernels::int_roundtrip(format_, x, n, dim_, out);
}

void IntBlockCodec::symbols(const uint8_t* codes, int64_t n, int16_t* symbols, uint16_t* scales) const {
  kernels::int_symbols(format_, codes, n, dim_, symbols, scales);
}

StoredEntropy IntBlockCodec::stored_entropy(const uint8_t* codes, int64_t n) const {
  KVLAB_CHECK(n >= 0, "{} entropy: n = {} (expected >= 0)", spec(), n);
  std::vector<int16_t> sym(std::size_t(n * dim_));
  symbols(codes, n, sym.data(), nullptr);
  const bool uf16 = format_.scale == ScaleKind::kUf16;
  StoredEntropy e{n, dim_, {}};
  e.classes.push_back({"code", n * dim_, kernels::plugin_entropy_bits(sym.data(), n * dim_), false});
  e.classes.push_back({uf16 ? "scale_fp16" : "scale_ue8m0", n * (dim_ / format_.block), uf16 ? 16.0 : 8.0, true});
  return e;
}

std::vector<SymbolColumn> IntBlockCodec::symbol_layout(int64_t n) const {
  KVLAB_CHECK(n >= 0, "{} symbol columns: n = {} (expected >= 0)", spec(), n);
  const bool uf16 = format_.scale == ScaleKind::kUf16;
  return {{"code", n * dim_, false, 0, {}},
          {uf16 ? "scale_fp16" : "scale_ue8m0", n * (dim_ / format_.block), true, uf16 ? 16 : 8, {}}};
}

std::vector<SymbolColumn> IntBlockCodec::symbol_columns(const uint8_t* codes, int64_t n) const {
  std::vector<SymbolColumn> cols = symbol_layout(n);
  const int k = format_.bits;
  const int64_t nb = dim_ / format_.block;
  cols[0].values.resize(std::size_t(cols[0].count));
  cols[1].values.resize(std::size_t(cols[1].count));
  const bool uf16 = format_.scale == ScaleKind::kUf16;
  for (int64_t r = 0; r < n; ++r) {
    const uint8_t* c = codes + r * int64_t(code_size_);
    unpack_fields(c, dim_, k, true, cols[0].values.data() + r * dim_);
    const uint8_t* f = c + k * dim_ / 8;
    for (int64_t b = 0; b < nb; ++b)
      cols[1].values[std::size_t(r * nb + b)] = uf16 ? (f[2 * b] | f[2 * b + 1] << 8) : f[b];
  }
  return cols;
}

void IntBlockCodec::join_symbol_columns(const std::vector<SymbolColumn>& cols, int64_t n, uint8_t* codes) const {
  const std::vector<SymbolColumn> layout = symbol_layout(n);
  const int k = format_.bits;
  const int32_t qmax = (1 << (k - 1)) - 1;
  check_columns(spec(), cols, layout, {{-qmax, qmax}, {0, (1 << layout[1].width) - 1}});
  const int64_t nb = dim_ / format_.block;
  const bool uf16 = format_.scale == ScaleKind::kUf16;
  for (int64_t r = 0; r < n; ++r) {
    uint8_t* c = codes + r * int64_t(code_size_);
    pack_fields(cols[0].values.data() + r * dim_, dim_, k, c);
    uint8_t* f = c + k * dim_ / 8;
    for (int64_t b = 0; b < nb; ++b) {
      const int32_t v = cols[1].values[std::size_t(r * nb + b)];
      if (uf16) {
        f[2 * b] = uint8_t(v);
        f[2 * b + 1] = uint8_t(v >> 8);
      } else {
        f[b] = uint8_t(v);
      }
    }
  }
}

HadamardLloydCodec::HadamardLloydCodec(int bits, int64_t dim)
    : bits_(bits), dim_(dim), code_size_(std::size_t(kernels::hadamard_lloyd_code_size(bits, dim))) {
  kernels::lloyd_max_gaussian(bits);  // the tables are built once, here rather than in a timed call
}

std::string HadamardLloydCodec::spec() const { return fmt::format("hadamard_lloyd:bits={}", bits_); }

void HadamardLloydCodec::encode(const float* x, int64_t n, uint8_t* codes) const {
  kernels::hadamard_lloyd_encode(bits_, x, n, dim_, codes);
}

void HadamardLloydCodec::decode(const uint8_t* codes, int64_t n, float* out) const {
  kernels::hadamard_lloyd_decode(bits_, codes, n, dim_, out);
}

void HadamardLloydCodec::roundtrip_impl(const float* x, int64_t n, float* out) const {
  kernels::hadamard_lloyd_roundtrip(bits_, x, n, dim_, out);
}

void HadamardLloydCodec::symbols(const uint8_t* codes, int64_t n, int16_t* symbols, uint16_t* sigma16) const {
  kernels::hadamard_lloyd_symbols(bits_, codes, n, dim_, symbols, sigma16);
}

StoredEntropy HadamardLloydCodec::stored_entropy(const uint8_t* codes, int64_t n) const {
  KVLAB_CHECK(n >= 0, "{} entropy: n = {} (expected >= 0)", spec(), n);
  std::vector<int16_t> sym(std::size_t(n * dim_));
  symbols(codes, n, sym.data(), nullptr);
  StoredEntropy e{n, dim_, {}};
  e.classes.push_back({"index", n * dim_, kernels::plugin_entropy_bits(sym.data(), n * dim_), false});
  e.classes.push_back({"sigma_uf16", n, 16.0, true});
  return e;
}

}  // namespace kvlab::codec

namespace kvlab::codec {

std::vector<SymbolColumn> HadamardLloydCodec::symbol_layout(int64_t n) const {
  KVLAB_CHECK(n >= 0, "{} symbol columns: n = {} (expected >= 0)", spec(), n);
  return {{"index", n * dim_, false, 0, {}}, {"sigma_uf16", n, true, 16, {}}};
}

std::vector<SymbolColumn> HadamardLloydCodec::symbol_columns(const uint8_t* codes, int64_t n) const {
  std::vector<SymbolColumn> cols = symbol_layout(n);
  cols[0].values.resize(std::size_t(cols[0].count));
  cols[1].values.resize(std::size_t(cols[1].count));
  for (int64_t r = 0; r < n; ++r) {
    const uint8_t* c = codes + r * int64_t(code_size_);
    cols[1].values[std::size_t(r)] = c[0] | c[1] << 8;
    unpack_fields(c + 2, dim_, bits_, false, cols[0].values.data() + r * dim_);
  }
  return cols;
}

void HadamardLloydCodec::join_symbol_columns(const std::vector<SymbolColumn>& cols, int64_t n, uint8_t* codes) const {
  const std::vector<SymbolColumn> layout = symbol_layout(n);
  check_columns(spec(), cols, layout, {{0, (1 << bits_) - 1}, {0, 65535}});
  for (int64_t r = 0; r < n; ++r) {
    uint8_t* c = codes + r * int64_t(code_size_);
    std::fill(c, c + code_size_, uint8_t(0));
    const int32_t s16 = cols[1].values[std::size_t(r)];
    c[0] = uint8_t(s16);
    c[1] = uint8_t(s16 >> 8);
    pack_fields(cols[0].values.data() + r * dim_, dim_, bits_, c + 2);
  }
}

}  // namespace kvlab::codec
