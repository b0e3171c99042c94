// Tests for src/common/error: escape_nonprintable and the Error message filter.
#include <gtest/gtest.h>

#include <string>

#include "common/error.h"

using kvlab::escape_nonprintable;

TEST(EscapeNonprintable, KeepsPrintableTextAndEscapesTheRest) {
  EXPECT_EQ(escape_nonprintable("plain text 123 {}'\""), "plain text 123 {}'\"");
  EXPECT_EQ(escape_nonprintable(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(escape_nonprintable("tab\tnl\n\x7f"), "tab\\x09nl\\x0a\\x7f");
  EXPECT_EQ(escape_nonprintable("tab\tnl\n", /*keep_newlines=*/true), "tab\tnl\n");
  // Well-formed printable UTF-8 (2, 3 and 4 bytes) stays.
  EXPECT_EQ(escape_nonprintable("\xc3\xa9 \xc2\xb1 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "\xc3\xa9 \xc2\xb1 \xe2\x82\xac \xf0\x9f\x98\x80");
  // C1 control U+0085, stray continuation, truncated and invalid lead bytes.
  EXPECT_EQ(escape_nonprintable("\xc2\x85"), "\\xc2\\x85");
  EXPECT_EQ(escape_nonprintable("\x80x"), "\\x80x");
  EXPECT_EQ(escape_nonprintable("\xe2\x82"), "\\xe2\\x82");
  EXPECT_EQ(escape_nonprintable("\xff\xfe\xc0\xaf"), "\\xff\\xfe\\xc0\\xaf");
  // Overlong 3-byte form, UTF-16 surrogate, code point above U+10FFFF.
  EXPECT_EQ(escape_nonprintable("\xe0\x80\xaf"), "\\xe0\\x80\\xaf");
  EXPECT_EQ(escape_nonprintable("\xed\xa0\x80"), "\\xed\\xa0\\x80");
  EXPECT_EQ(escape_nonprintable("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");
}

TEST(EscapeNonprintable, ErrorMessagesAreFiltered) {
  const kvlab::Error e(std::string("bad value '\xff\x1b[31m'\nsecond line"));
  EXPECT_STREQ(e.what(), "bad value '\\xff\\x1b[31m'\nsecond line");
  try {
    KVLAB_CHECK(false, "key '{}' unknown", std::string("k\x01"));
    FAIL() << "no throw";
  } catch (const kvlab::Error& x) {
    EXPECT_STREQ(x.what(), "key 'k\\x01' unknown");
  }
}
