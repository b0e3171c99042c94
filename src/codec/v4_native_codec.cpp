// v4_native codec; see v4_native_codec.h.
#include "codec/v4_native_codec.h"

#include "common/error.h"
#include "kernels/scalar_quant.h"

namespace kvlab::codec {

V4NativeCodec::V4NativeCodec(int64_t dim)
    : dim_(dim), code_size_(std::size_t(kernels::v4_native_code_size(dim))) {}

void V4NativeCodec::encode(const float* x, int64_t n, uint8_t* codes) const {
  kernels::v4_native_encode(x, n, dim_, codes);
}

void V4NativeCodec::decode(const uint8_t* codes, int64_t n, float* out) const {
  kernels::v4_native_decode(codes, n, dim_, out);
}

void V4NativeCodec::roundtrip_impl(const float* x, int64_t n, float* out) const {
  kernels::v4_native_roundtrip(x, n, dim_, out);
}

void V4NativeCodec::symbols(const uint8_t* codes, int64_t n, int16_t* e4m3, uint8_t* scales, uint16_t* bf16) const {
  KVLAB_CHECK(n >= 0, "v4_native symbols: n = {} (expected >= 0)", n);
  const int64_t nope = dim_ - kernels::kV4RopeDims, nb = nope / kernels::kV4ScaleBlock;
  const int64_t so = kernels::v4_native_scale_offset(dim_);
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* c = codes + i * int64_t(code_size_);
    if (e4m3 != nullptr)
      for (int64_t j = 0; j < nope; ++j) e4m3[i * nope + j] = c[j];
    if (scales != nullptr)
      for (int64_t k = 0; k < nb; ++k) scales[i * nb + k] = c[so + k];
    if (bf16 != nullptr)
      for (int64_t j = 0; j < kernels::kV4RopeDims; ++j)
        bf16[i * kernels::kV4RopeDims + j] = uint16_t(c[nope + 2 * j] | c[nope + 2 * j + 1] << 8);
  }
}

}  // namespace kvlab::codec
