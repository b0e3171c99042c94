// v4_native codec; see v4_native_codec.h.
#include "codec/v4_native_codec.h"

#include <vector>

#include "common/error.h"
#include "kernels/entropy.h"
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

StoredEntropy V4NativeCodec::stored_entropy(const uint8_t* codes, int64_t n) const {
  KVLAB_CHECK(n >= 0, "v4_native entropy: n = {} (expected >= 0)", n);
  const int64_t nope = dim_ - kernels::kV4RopeDims, nb = nope / kernels::kV4ScaleBlock;
  const int64_t nr = n * kernels::kV4RopeDims;
  std::vector<int16_t> e4(std::size_t(n * nope));
  std::vector<uint16_t> bf(static_cast<std::size_t>(nr));
  symbols(codes, n, e4.data(), nullptr, bf.data());
  // The bf16 values as their high and low bytes.
  std::vector<uint8_t> hi(static_cast<std::size_t>(nr)), lo(static_cast<std::size_t>(nr));
  for (int64_t i = 0; i < nr; ++i) {
    hi[std::size_t(i)] = uint8_t(bf[std::size_t(i)] >> 8);
    lo[std::size_t(i)] = uint8_t(bf[std::size_t(i)]);
  }
  StoredEntropy e{n, dim_, {}};
  e.classes.push_back({"e4m3", n * nope, kernels::plugin_entropy_bits(e4.data(), n * nope), false});
  e.classes.push_back({"bf16_hi", nr, kernels::plugin_entropy_bits(hi.data(), nr), false});
  e.classes.push_back({"bf16_lo", nr, kernels::plugin_entropy_bits(lo.data(), nr), false});
  e.classes.push_back({"scale_ue8m0", n * nb, 8.0, true});
  return e;
}

}  // namespace kvlab::codec
