// Adaptive range coder; see range_coder.h.
#include "kernels/range_coder.h"

#include "common/error.h"

namespace kvlab::kernels {

namespace {
constexpr uint32_t kTop = 1u << 24;  // renormalise below this range
}  // namespace

// ---------------------------------------------------------------- model

AdaptiveModel::AdaptiveModel(int alphabet) : k_(alphabet) {
  KVLAB_CHECK(alphabet >= 1 && alphabet <= kMaxAlphabet,
              "range coder: alphabet of {} symbols (expected 1 <= K <= {})", alphabet, kMaxAlphabet);
  freq_.assign(std::size_t(k_), 1);
  top_bit_ = 1;
  while (top_bit_ * 2 <= k_) top_bit_ *= 2;
  rebuild();
}

void AdaptiveModel::rebuild() {
  tree_.assign(std::size_t(2 * top_bit_) + 1, 0);
  for (std::size_t i = std::size_t(k_) + 1; i < tree_.size(); ++i) tree_[i] = 0xFFFFFFFFu;
  total_ = 0;
  for (int i = 1; i <= k_; ++i) {
    tree_[std::size_t(i)] += freq_[std::size_t(i - 1)];
    total_ += freq_[std::size_t(i - 1)];
    const int parent = i + (i & -i);
    if (parent <= k_) tree_[std::size_t(parent)] += tree_[std::size_t(i)];
  }
}

uint32_t AdaptiveModel::cum(int s) const {
  uint32_t c = 0;
  for (int i = s; i > 0; i -= i & -i) c += tree_[std::size_t(i)];
  return c;
}

int AdaptiveModel::find(uint32_t target, uint32_t* low) const {
  // Largest prefix length p with cum(p) <= target: symbol p (branch-free;
  // the padding entries past k_ are never taken).
  const uint32_t t0 = target;
  int p = 0;
  for (int step = top_bit_; step > 0; step >>= 1) {
    const uint32_t f = tree_[std::size_t(p + step)];
    const bool take = f <= target;
    p += take ? step : 0;
    target -= take ? f : 0;
  }
  if (low != nullptr) *low = t0 - target;
  return p;
}

void AdaptiveModel::update(int s) {
  if (total_ + kIncrement > kMaxTotal) {
    for (auto& f : freq_) f = (f + 1) / 2;
    rebuild();
  }
  freq_[std::size_t(s)] += kIncrement;
  total_ += kIncrement;
  for (int i = s + 1; i <= k_; i += i & -i) tree_[std::size_t(i)] += kIncrement;
}

// ---------------------------------------------------------------- encoder

RangeEncoder::RangeEncoder(std::vector<uint8_t>* out) : out_(out), start_(out->size()) {}

void RangeEncoder::shift_low() {
  if (uint32_t(low_) < 0xFF000000u || (low_ >> 32) != 0) {
    const uint8_t carry = uint8_t(low_ >> 32);
    uint8_t b = cache_;
    do {
      out_->push_back(uint8_t(b + carry));
      b = 0xFF;
    } while (--pending_ != 0);
    cache_ = uint8_t(low_ >> 24);
  }
  ++pending_;
  low_ = (low_ & 0x00FFFFFFu) << 8;
}

void RangeEncoder::narrow(uint32_t cum, uint32_t freq, uint32_t total) {
  const uint32_t r = range_ / total;
  low_ += uint64_t(r) * cum;
  range_ = r * freq;
  while (range_ < kTop) {
    range_ <<= 8;
    shift_low();
  }
  ++symbols_;
}

void RangeEncoder::encode(AdaptiveModel& m, int s) {
  KVLAB_ASSERT(!finished_, "range encoder used after finish()");
  KVLAB_CHECK(s >= 0 && s < m.alphabet(), "range encoder: symbol {} (number {}) outside the alphabet 0..{}", s,
              symbols_, m.alphabet() - 1);
  narrow(m.cum(s), m.freq(s), m.total());
  m.update(s);
}

void RangeEncoder::encode_bits(uint32_t v, int w) {
  KVLAB_ASSERT(!finished_, "range encoder used after finish()");
  KVLAB_CHECK(w >= 0 && w <= 16, "range encoder: raw field of {} bits (expected 0..16)", w);
  KVLAB_CHECK((v >> w) == 0, "range encoder: raw value {} (number {}) does not fit in {} bits", v, symbols_, w);
  if (w == 0) return;
  narrow(v, 1, 1u << w);
}

std::size_t RangeEncoder::finish() {
  KVLAB_ASSERT(!finished_, "range encoder finished twice");
  for (int i = 0; i < 5; ++i) shift_low();
  finished_ = true;
  return out_->size() - start_;
}

// ---------------------------------------------------------------- decoder

RangeDecoder::RangeDecoder(std::span<const uint8_t> in) : in_(in) {
  KVLAB_CHECK(in.size() >= 5, "range decoder: stream of {} bytes (expected at least 5: a truncated stream)",
              in.size());
  KVLAB_CHECK(in[0] == 0, "range decoder: first byte is {} (expected 0: not a range-coded stream or corrupt)",
              int(in[0]));
  pos_ = 1;
  for (int i = 0; i < 4; ++i) code_ = (code_ << 8) | in_[pos_++];
}

uint8_t RangeDecoder::next_byte() {
  KVLAB_CHECK(pos_ < in_.size(),
              "range decoder: stream truncated: byte {} needed while decoding symbol {}, but the stream has {} bytes",
              pos_, symbols_, in_.size());
  return in_[pos_++];
}

uint32_t RangeDecoder::target(uint32_t total) {
  r_ = range_ / total;
  const uint32_t v = code_ / r_;
  KVLAB_CHECK(v < total,
              "range decoder: corrupt stream at byte {}: symbol {} has frequency target {} (expected < total {})",
              pos_, symbols_, v, total);
  return v;
}

void RangeDecoder::consume(uint32_t cum, uint32_t freq) {
  code_ -= r_ * cum;
  range_ = r_ * freq;
  while (range_ < kTop) {
    code_ = (code_ << 8) | next_byte();
    range_ <<= 8;
  }
  ++symbols_;
}

int RangeDecoder::decode(AdaptiveModel& m) {
  const uint32_t v = target(m.total());
  uint32_t low = 0;
  const int s = m.find(v, &low);
  consume(low, m.freq(s));
  m.update(s);
  return s;
}

uint32_t RangeDecoder::decode_bits(int w) {
  KVLAB_CHECK(w >= 0 && w <= 16, "range decoder: raw field of {} bits (expected 0..16)", w);
  if (w == 0) return 0;
  const uint32_t v = target(1u << w);
  consume(v, 1);
  return v;
}

void RangeDecoder::finish() const {
  KVLAB_CHECK(pos_ == in_.size(),
              "range decoder: {} bytes left over after {} symbols (read {} of {} bytes: corrupt or wrong stream)",
              in_.size() - pos_, symbols_, pos_, in_.size());
}

}  // namespace kvlab::kernels
