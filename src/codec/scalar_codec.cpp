// int / hadamard_int / hadamard_lloyd codecs; see scalar_codec.h.
#include "codec/scalar_codec.h"

#include <fmt/format.h>

#include "common/error.h"

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

}  // namespace kvlab::codec
