// Tests for codec::lattice_bits_fn: the bit price of unswept Q values in both
// accountings (published formula vs bytes actually written).
#include <gtest/gtest.h>

#include "codec/codec.h"
#include "common/error.h"

namespace kvlab::codec {
namespace {

TEST(LatticeBitsFn, PublishedFormulaAndWrittenBits) {
  const auto published = lattice_bits_fn(true);
  const auto written = lattice_bits_fn(false);
  // SPEC section 3 figures at D = 512 (exact multiples of 8 bits, so both agree).
  EXPECT_EQ(published("e8", 38, 512), 3296.0);
  EXPECT_EQ(published("e8", 10, 512), 2336.0);
  EXPECT_EQ(published("d4", 38, 512), 3232.0);
  EXPECT_EQ(published("d4", 10, 512), 2208.0);
  EXPECT_EQ(written("e8", 38, 512), 3296.0);
  EXPECT_EQ(written("d4", 10, 512), 2208.0);
  // Q values sharing one bit class price the same; the next class costs more.
  EXPECT_EQ(published("e8", 40, 512), published("e8", 38, 512));
  EXPECT_GT(published("e8", 44, 512), published("e8", 40, 512));
  // Memoised answers stay the same on repeated calls.
  EXPECT_EQ(written("e8", 38, 128), written("e8", 38, 128));
  EXPECT_EQ(written("e8", 38, 128), 848.0);
  // An unknown family is bad input, not a crash.
  EXPECT_THROW(published("z9", 3, 512), Error);
}

}  // namespace
}  // namespace kvlab::codec
