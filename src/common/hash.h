// SHA-256 (FIPS 180-4) for content hashes: passage identity, spec hashes,
// database and weight-file fingerprints. Not for security.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kvlab {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // Returns the digest as 64 lowercase hex characters. Call once.
  std::string hex_digest();

 private:
  void block(const std::uint8_t* p);
  std::uint32_t h_[8];
  std::uint8_t buf_[64];
  std::size_t buf_len_ = 0;
  std::uint64_t total_ = 0;
};

std::string sha256_hex(std::string_view data);
// Hash of a whole file, streamed; throws kvlab::Error naming the path if it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace kvlab
