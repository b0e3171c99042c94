// int / hadamard_int / hadamard_lloyd codecs; see scalar_codec.h.
#include "codec/scalar_codec.h"

#include <vector>

#include <fmt/format.h>

#include "common/error.h"
#include "kernels/entropy.h"

namespace kvlab::codec {

namespace {
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
