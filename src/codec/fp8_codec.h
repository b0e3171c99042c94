// fp8_per64: the DeepSeek-V4 KV storage baseline as a real codec (SPEC
// section 3). Per vector of D values (D a positive multiple of 64): D/64
// block scales of 16 bits each, then D E4M3FN codes (8 bits each):
// 8 D + 16 D/64 bits, exactly the published accounting (4224 at D = 512).
//
// The 16-bit scale field is kvlab's "uf16" (fp_formats.h: unsigned, 6-bit
// exponent, 10-bit mantissa, range to ~8.6e9) holding the block maximum
// a16 = uf16(RNE(a)), a = max(max|v|, 1e-4); the scale is s16 = a16 / 448
// (float32) on both sides; codes q = E4M3(clamp(v / s16, -448, 448));
// decode q * s16. Against the float32 scale of the SPEC simulation this
// moves a scale by at most 2^-11 relative (and not at all when a has <= 11
// significant bits); the effect on rel-MSE is measured in
// codec_reference_test. Blocks with max|v| above the uf16 range (~8.59e9)
// and non-finite input are rejected (kvlab::Error).
// Entropy classes (stored_entropy): "e4m3" (all n D code bytes, one
// class), side information "scale_uf16" (16 bits per block).
#pragma once

#include "codec/codec.h"

namespace kvlab::codec {

class Fp8Per64Codec final : public Codec {
 public:
  static constexpr int64_t kBlock = 64;
  explicit Fp8Per64Codec(int64_t dim);
  std::string spec() const override { return "fp8_per64"; }
  int64_t dim() const override { return dim_; }
  std::size_t code_size() const override { return code_size_; }
  double published_bits_per_vector() const override { return double(8 * dim_ + 16 * (dim_ / kBlock)); }
  void encode(const float* x, int64_t n, uint8_t* codes) const override;
  void decode(const uint8_t* codes, int64_t n, float* out) const override;
  StoredEntropy stored_entropy(const uint8_t* codes, int64_t n) const override;

 protected:
  void roundtrip_impl(const float* x, int64_t n, float* out) const override;

 private:
  int64_t dim_;
  std::size_t code_size_;
};

}  // namespace kvlab::codec
