// Tests for src/common/hash: SHA-256 against FIPS 180-4 example vectors.
#include <gtest/gtest.h>

#include <string>

#include "common/hash.h"

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(kvlab::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(kvlab::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(kvlab::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, MillionA) {
  kvlab::Sha256 h;
  std::string chunk(1000, 'a');
  for (int i = 0; i < 1000; ++i) h.update(chunk);
  EXPECT_EQ(h.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, StreamingEqualsOneShot) {
  std::string s(1000, '\0');
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(i * 31 + 7);
  kvlab::Sha256 h;
  for (std::size_t i = 0; i < s.size(); i += 37) h.update(s.substr(i, 37));
  EXPECT_EQ(h.hex_digest(), kvlab::sha256_hex(s));
}
