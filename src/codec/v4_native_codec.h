// v4_native: DeepSeek-V4's deployed KV cache record as a codec
// (SPEC-V4-ATTENTION section 5; format and kernels in
// kernels/scalar_quant.h). Per vector of D dims (D % 64 == 0, D >= 128):
// the first D - 64 dims as E4M3 codes with one UE8M0 power-of-two scale per
// 64 dims (s = 2^ceil(log2(max(amax, 1e-4) / 448)), exact from the float32
// bits), the last 64 (RoPE) dims as bf16, then the scale bytes zero-padded
// to a multiple of 8. D = 512: 448 + 128 + 7 + 1 = 584 bytes (4672 bits).
// The deployed page layout (all 576-byte token parts first, then the 8-byte
// scale groups) is a permutation of these per-token records; the bits are
// the same. Entropy classes (stored_entropy): "e4m3" (all nope code bytes,
// one class), "bf16_hi" / "bf16_lo" (the RoPE values' high and low bytes),
// side information "scale_ue8m0" (8 bits per block); the pad byte is
// constant (0 bits). Not here: FP8 with 16-bit scales (fp8_codec.h).
#pragma once

#include "codec/codec.h"

namespace kvlab::codec {

class V4NativeCodec final : public Codec {
 public:
  // Throws kvlab::Error naming D unless D % 64 == 0 and D >= 128.
  explicit V4NativeCodec(int64_t dim);
  std::string spec() const override { return "v4_native"; }
  int64_t dim() const override { return dim_; }
  std::size_t code_size() const override { return code_size_; }
  double published_bits_per_vector() const override { return bits_per_vector(); }
  void encode(const float* x, int64_t n, uint8_t* codes) const override;
  void decode(const uint8_t* codes, int64_t n, float* out) const override;
  StoredEntropy stored_entropy(const uint8_t* codes, int64_t n) const override;
  // The decoded values re-encode to themselves (decode(encode(decode(c))) ==
  // decode(c)) but not always to the same bytes: a block whose maximum
  // rounded down to 224 s (E4M3 spacing 16 there) has 224 s / 448 = s / 2,
  // so re-encoding picks the scale s / 2 and doubled codes.
  bool reencode_is_exact() const override { return false; }

  // The stored symbols of n encoded vectors (any output may be null):
  // e4m3[i * (D-64) + j] = the E4M3 code byte of nope dim j (0..255),
  // scales[i * (D-64)/64 + k] = block k's E8M0 byte, bf16[i * 64 + j] = the
  // bf16 bits of RoPE dim j.
  void symbols(const uint8_t* codes, int64_t n, int16_t* e4m3, uint8_t* scales, uint16_t* bf16) const;

 protected:
  void roundtrip_impl(const float* x, int64_t n, float* out) const override;

 private:
  int64_t dim_;
  std::size_t code_size_;
};

}  // namespace kvlab::codec
