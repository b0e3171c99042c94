// fp8_per64 codec; see fp8_codec.h.
#include "codec/fp8_codec.h"

#include <cstring>
#include <vector>

#include "common/error.h"
#include "kernels/entropy.h"
#include "kernels/fp8_block.h"

namespace kvlab::codec {

Fp8Per64Codec::Fp8Per64Codec(int64_t dim) : dim_(dim) {
  KVLAB_CHECK(dim >= kBlock && dim % kBlock == 0,
              "fp8_per64 codec: dimension D = {} is not supported (expected a positive multiple of the block {})",
              dim, kBlock);
  code_size_ = std::size_t(kernels::fp8_block_code_size(dim, kBlock));
}

void Fp8Per64Codec::encode(const float* x, int64_t n, uint8_t* codes) const {
  KVLAB_CHECK(n >= 0, "fp8_per64 encode: n = {} (expected >= 0)", n);
  kernels::fp8_block_encode(x, n, dim_, kBlock, codes);
}

void Fp8Per64Codec::decode(const uint8_t* codes, int64_t n, float* out) const {
  KVLAB_CHECK(n >= 0, "fp8_per64 decode: n = {} (expected >= 0)", n);
  // Every byte string decodes to finite values except E4M3 NaN codes
  // (0x7F/0xFF), which the encoder never writes.
  const int64_t nb = dim_ / kBlock;
  for (int64_t r = 0; r < n; ++r) {
    const uint8_t* c = codes + r * int64_t(code_size_);
    for (int64_t j = 2 * nb; j < int64_t(code_size_); ++j)
      KVLAB_CHECK((c[j] & 0x7f) != 0x7f, "fp8_per64 decode: vector {} byte {} is an E4M3 NaN code 0x{:02x} (corrupt code)",
                  r, j, c[j]);
  }
  kernels::fp8_block_decode(codes, n, dim_, kBlock, out);
}

void Fp8Per64Codec::roundtrip_impl(const float* x, int64_t n, float* out) const {
  kernels::fp8_block_roundtrip(x, n, dim_, kBlock, out);
}

StoredEntropy Fp8Per64Codec::stored_entropy(const uint8_t* codes, int64_t n) const {
  KVLAB_CHECK(n >= 0, "fp8_per64 entropy: n = {} (expected >= 0)", n);
  const int64_t nb = dim_ / kBlock;
  std::vector<uint8_t> e4(std::size_t(n * dim_));
  for (int64_t r = 0; r < n; ++r)
    std::memcpy(e4.data() + r * dim_, codes + r * int64_t(code_size_) + 2 * nb, std::size_t(dim_));
  StoredEntropy e{n, dim_, {}};
  e.classes.push_back({"e4m3", n * dim_, kernels::plugin_entropy_bits(e4.data(), n * dim_), false});
  e.classes.push_back({"scale_uf16", n * nb, 16.0, true});
  return e;
}

}  // namespace kvlab::codec
