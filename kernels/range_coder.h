// An adaptive multi-symbol range coder (kvlab's own; no LibTorch, no I/O),
// for the entropy-coded codec streams (codec/entropy_stream.h).
//
// Coder: a byte-oriented range coder with a 32-bit range and a 64-bit low
// (33 significant bits) whose carry is propagated through a run of pending
// 0xFF bytes (the "cache" scheme). Encoding a symbol with cumulative
// frequency [cum, cum + freq) of total T narrows the range to
// r = floor(range / T), low += r * cum, range = r * freq; whenever the range
// drops below 2^24 one byte leaves the top of low. T <= 2^16 keeps the
// rounding loss of floor(range / T) below T / 2^24 <= 1/256 of the range,
// i.e. under 0.006 bits per symbol (typically far less). finish() writes
// five bytes so that the decoder's 4-byte window ends exactly at the end of
// the stream: an encoder that made S byte shifts writes S + 5 bytes and the
// decoder reads exactly those; its first byte is always 0.
//
// Model (AdaptiveModel): K symbols 0..K-1 (1 <= K <= kMaxAlphabet), every
// frequency starts at 1, coding symbol s adds kIncrement to its frequency;
// when the total would exceed kMaxTotal every frequency is halved (rounded
// up, so none reaches 0). The model thus follows a stationary source with
// an effective memory of a few thousand symbols (the adaptive overhead
// over the plug-in entropy is about (K - 1) / (2 N_eff ln 2) bits per
// symbol, ~0.01 bits for K = 40) and tracks slow drift. Frequencies live in
// a Fenwick tree: cumulative frequency, update and the decoder's search are
// O(log K) each, rescaling O(K).
//
// Raw bits (side information at its stored width): encode_bits(v, w) codes
// the w <= 16 low bits of v with the uniform distribution (exactly w bits).
//
// Decoder: reads a span; throws kvlab::Error naming the byte offset and the
// symbol count when the stream is truncated (a byte past the end is
// needed), when its first byte is not 0, when the window holds a value no
// encoder can produce (a frequency target >= T), and, in finish(), when
// bytes are left over. Every loop is bounded by the symbols requested, so
// no input reads out of bounds or loops forever. A corrupt stream that
// still decodes consistently yields other symbols; callers that need
// integrity check a checksum of what they decoded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace kvlab::kernels {

class AdaptiveModel {
 public:
  static constexpr int kMaxAlphabet = 1 << 12;
  static constexpr uint32_t kMaxTotal = 1u << 16;
  static constexpr uint32_t kIncrement = 24;

  // Throws kvlab::Error unless 1 <= alphabet <= kMaxAlphabet.
  explicit AdaptiveModel(int alphabet);
  int alphabet() const { return k_; }
  uint32_t total() const { return total_; }
  uint32_t freq(int s) const { return freq_[std::size_t(s)]; }
  // Sum of the frequencies of symbols < s.
  uint32_t cum(int s) const;
  // The symbol s with cum(s) <= target < cum(s) + freq(s); target < total().
  // *low (if given) receives cum(s).
  int find(uint32_t target, uint32_t* low = nullptr) const;
  // Adds kIncrement to s (halving every frequency first when needed).
  void update(int s);

 private:
  void rebuild();
  int k_;
  int top_bit_;                 // largest power of two <= k_
  uint32_t total_ = 0;
  std::vector<uint32_t> freq_;  // freq_[s]
  std::vector<uint32_t> tree_;  // Fenwick tree over freq_, 1-based; entries k_+1 .. 2 top_bit_ hold
                                // 0xFFFFFFFF so that find() needs no bounds test
};

class RangeEncoder {
 public:
  // Appends to *out (which must outlive the encoder).
  explicit RangeEncoder(std::vector<uint8_t>* out);
  // Codes s (0 <= s < m.alphabet(), else kvlab::Error) and updates m.
  void encode(AdaptiveModel& m, int s);
  // Codes the w low bits of v uniformly, 0 <= w <= 16 (v must fit in w bits).
  void encode_bits(uint32_t v, int w);
  // Flushes; call once, after the last symbol. Returns the bytes written
  // by this encoder.
  std::size_t finish();
  int64_t symbols() const { return symbols_; }

 private:
  void narrow(uint32_t cum, uint32_t freq, uint32_t total);
  void shift_low();
  std::vector<uint8_t>* out_;
  std::size_t start_;
  uint64_t low_ = 0;
  uint32_t range_ = 0xFFFFFFFFu;
  uint8_t cache_ = 0;
  uint64_t pending_ = 1;  // the cache byte plus pending 0xFF bytes
  int64_t symbols_ = 0;
  bool finished_ = false;
};

class RangeDecoder {
 public:
  // Reads the first five bytes (throws kvlab::Error if the stream is shorter
  // or its first byte is not 0).
  explicit RangeDecoder(std::span<const uint8_t> in);
  int decode(AdaptiveModel& m);
  uint32_t decode_bits(int w);
  // Throws kvlab::Error unless every byte of the stream was consumed.
  void finish() const;
  std::size_t position() const { return pos_; }
  int64_t symbols() const { return symbols_; }

 private:
  uint32_t target(uint32_t total);
  void consume(uint32_t cum, uint32_t freq);
  uint8_t next_byte();
  std::span<const uint8_t> in_;
  std::size_t pos_ = 0;
  uint32_t code_ = 0;
  uint32_t range_ = 0xFFFFFFFFu;
  uint32_t r_ = 0;  // range / total of the symbol being decoded
  int64_t symbols_ = 0;
};

}  // namespace kvlab::kernels
