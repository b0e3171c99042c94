// Tests for src/io/safetensors: round trips, the reference files, and every
// class of malformed header the reader must refuse with a named error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "io/safetensors.h"
#include "testutil/testutil.h"

using kvlab::io::DType;
using kvlab::io::SafetensorsFile;
using kvlab::io::SafetensorsWriter;

namespace {

// A raw image: u64 header length, header text, data bytes.
std::vector<std::byte> image(const std::string& header, std::size_t data_bytes, uint64_t forced_len = ~0ull) {
  std::vector<std::byte> out(8 + header.size() + data_bytes, std::byte{0});
  uint64_t n = forced_len == ~0ull ? header.size() : forced_len;
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}

// Expects parse() to throw kvlab::Error whose message contains every needle.
void expect_error(const std::vector<std::byte>& img, std::initializer_list<std::string> needles) {
  try {
    SafetensorsFile::parse(img, "bad.safetensors");
    ADD_FAILURE() << "no error; expected one mentioning " << *needles.begin();
  } catch (const kvlab::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("bad.safetensors"), std::string::npos) << msg;
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "missing '" << n << "' in: " << msg;
  }
}

}  // namespace

TEST(Safetensors, DTypeNames) {
  EXPECT_EQ(kvlab::io::dtype_from_name("F8_E8M0"), DType::E8M0);
  EXPECT_EQ(kvlab::io::dtype_from_name("U8"), DType::U8);
  EXPECT_EQ(kvlab::io::dtype_name(DType::BF16), "BF16");
  EXPECT_EQ(kvlab::io::dtype_size(DType::F64), 8u);
  EXPECT_EQ(kvlab::io::dtype_size(DType::F8_E4M3), 1u);
  EXPECT_THROW(kvlab::io::dtype_from_name("F4"), kvlab::Error);
}

TEST(Safetensors, WriteReadRoundTrip) {
  auto dir = kvlab::testutil::make_temp_dir("io_st");
  std::string path = dir + "/a.safetensors";
  std::vector<float> a(2 * 3);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = 0.5f * static_cast<float>(i) - 1.f;
  std::vector<double> b = {1.0, -2.5, 1e-300};
  std::vector<uint8_t> c = {1, 2, 3, 4, 5};
  SafetensorsWriter w;
  w.add_f32("x/a", {2, 3}, a.data());
  w.add("b", DType::F64, {3}, b.data(), b.size() * 8);
  w.add("c", DType::U8, {5}, c.data(), c.size());
  w.add("empty", DType::F32, {0, 4}, nullptr, 0);
  w.set_metadata("k", "v");
  w.set_metadata("json", "{\"a\": 1}");
  w.write(path);
  // Atomic write leaves no temporary behind.
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1);

  auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f.path(), path);
  EXPECT_EQ(f.names(), (std::vector<std::string>{"b", "c", "empty", "x/a"}));
  EXPECT_EQ(f.info("x/a").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f.info("x/a").dtype, DType::F32);
  EXPECT_EQ(f.to_f32("x/a"), a);
  auto bf = f.to_f32("b");
  ASSERT_EQ(bf.size(), 3u);
  EXPECT_EQ(bf[1], -2.5f);
  EXPECT_EQ(bf[2], 0.f);  // 1e-300 underflows to 0 in float
  auto cb = f.bytes("c");
  ASSERT_EQ(cb.size(), 5u);
  EXPECT_EQ(static_cast<int>(cb[4]), 5);
  EXPECT_THROW(f.to_f32("c"), kvlab::Error);  // U8 is not silently reinterpreted
  EXPECT_EQ(f.info("empty").numel(), 0);
  EXPECT_TRUE(f.to_f32("empty").empty());
  EXPECT_EQ(f.metadata().at("k"), "v");
  EXPECT_EQ(f.metadata().at("json"), "{\"a\": 1}");
  EXPECT_TRUE(f.has("b"));
  EXPECT_FALSE(f.has("zz"));
  try {
    f.info("zz");
    ADD_FAILURE();
  } catch (const kvlab::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'zz'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
  }
  // Header is padded to a multiple of 8 (so F32/F64 data is 8-aligned in the file).
  EXPECT_EQ(f.header_bytes() % 8, 0u);
  // Movable: the moved-to object keeps the mapping.
  SafetensorsFile g = std::move(f);
  EXPECT_EQ(g.to_f32("x/a"), a);
  // Writer image == file bytes.
  auto img = w.serialize();
  std::ifstream in(path, std::ios::binary);
  std::vector<char> disk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_EQ(disk.size(), img.size());
  EXPECT_EQ(std::memcmp(disk.data(), img.data(), img.size()), 0);
}

TEST(Safetensors, WriterRejectsBadInput) {
  SafetensorsWriter w;
  float x[4] = {};
  EXPECT_THROW(w.add("", DType::F32, {1}, x, 4), kvlab::Error);
  EXPECT_THROW(w.add("__metadata__", DType::F32, {1}, x, 4), kvlab::Error);
  EXPECT_THROW(w.add("a", DType::F32, {2}, x, 4), kvlab::Error);   // byte count mismatch
  EXPECT_THROW(w.add("a", DType::F32, {-1}, x, 4), kvlab::Error);  // negative dim
  w.add("a", DType::F32, {1}, x, 4);
  EXPECT_THROW(w.add("a", DType::F32, {1}, x, 4), kvlab::Error);  // duplicate
  EXPECT_THROW(w.write("/nonexistent-dir/x.safetensors"), kvlab::Error);
}

TEST(Safetensors, ConvertsSmallFloatFormats) {
  // Hand-checked bit patterns: fp16 0x3C00 = 1, 0xC000 = -2, 0x0001 = 2^-24;
  // bf16 0x3F80 = 1, 0xC0A0 = -5; E4M3 0x7E = 448, 0x01 = 2^-9, 0xB8 = -1;
  // E8M0 127 = 1, 130 = 8, 0 = 2^-127, 0xFF = NaN.
  std::vector<uint16_t> f16 = {0x3C00, 0xC000, 0x0001};
  std::vector<uint16_t> bf = {0x3F80, 0xC0A0};
  std::vector<uint8_t> e4 = {0x7E, 0x01, 0xB8};
  std::vector<uint8_t> e8 = {127, 130, 0, 0xFF};
  SafetensorsWriter w;
  w.add("f16", DType::F16, {3}, f16.data(), 6);
  w.add("bf16", DType::BF16, {2}, bf.data(), 4);
  w.add("e4", DType::F8_E4M3, {3}, e4.data(), 3);
  w.add("e8", DType::E8M0, {4}, e8.data(), 4);
  auto f = SafetensorsFile::parse(w.serialize(), "mem");
  EXPECT_EQ(f.info("e8").dtype, DType::E8M0);
  EXPECT_EQ(f.to_f32("f16"), (std::vector<float>{1.f, -2.f, std::ldexp(1.f, -24)}));
  EXPECT_EQ(f.to_f32("bf16"), (std::vector<float>{1.f, -5.f}));
  EXPECT_EQ(f.to_f32("e4"), (std::vector<float>{448.f, std::ldexp(1.f, -9), -1.f}));
  auto v = f.to_f32("e8");
  EXPECT_EQ(v[0], 1.f);
  EXPECT_EQ(v[1], 8.f);
  EXPECT_EQ(v[2], std::ldexp(1.f, -127));
  EXPECT_TRUE(std::isnan(v[3]));
}

TEST(Safetensors, ReadsReferenceFile) {
  auto f = SafetensorsFile::open(kvlab::testutil::reference_path("dsv4_small.safetensors"));
  ASSERT_TRUE(f.has("weight/main_kv.wkv.weight"));
  EXPECT_EQ(f.info("weight/main_kv.wkv.weight").shape, (std::vector<int64_t>{128, 256}));
  EXPECT_EQ(f.info("input/S1024").shape, (std::vector<int64_t>{1, 1024, 256}));
  auto norm = f.to_f32("weight/main_kv.kv_norm.weight");
  ASSERT_EQ(norm.size(), 128u);
  for (float v : norm) EXPECT_EQ(v, 1.0f);
  EXPECT_TRUE(f.metadata().count("config/S512"));
  // Every tensor's bytes lie within the file and match its shape.
  for (const auto& n : f.names()) EXPECT_EQ(f.bytes(n).size(), f.info(n).nbytes());
}

TEST(Safetensors, RejectsTruncatedAndBadLength) {
  expect_error(std::vector<std::byte>(5), {"8-byte"});
  expect_error(image("{}", 0, 1000), {"header length 1000", "past the end"});
  expect_error(image("{}", 0, ~0ull - 1), {"past the end"});
  expect_error(image("{\"a\":", 0), {"not valid JSON"});
  expect_error(image("{", 0), {"too small"});
  expect_error(image("[1,2]", 0), {"JSON object"});
  expect_error(image("{\"a\": {\"dtype\": \"F32\", \"shape\": [[[[1]]]], \"data_offsets\": [0, 4]}}", 4),
               {"nests deeper"});
}

TEST(Safetensors, RejectsBadEntries) {
  const std::string ok = R"("dtype":"F32","shape":[2],"data_offsets":[0,8])";
  // Sanity: the good entry parses.
  EXPECT_NO_THROW(SafetensorsFile::parse(image("{\"t\":{" + ok + "}}", 8), "x"));
  expect_error(image(R"({"t":{"dtype":"F99","shape":[2],"data_offsets":[0,8]}})", 8), {"'t'", "F99", "F32"});
  expect_error(image(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), {"'t'", "[3]", "12 bytes"});
  expect_error(image(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8), {"'t'", "non-negative"});
  expect_error(image(R"({"t":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", 8), {"'t'", "non-negative"});
  expect_error(image(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", 8), {"'t'", "out of range"});
  expect_error(image(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8), {"'t'", "begin > end"});
  expect_error(image(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8), {"'t'", "[begin, end]"});
  expect_error(image(R"({"t":{"dtype":"F32","shape":[2]}})", 8), {"'t'", "data_offsets"});
  expect_error(image(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", 8), {"'t'", "'x'"});
  expect_error(image(R"({"t":[1]})", 8), {"'t'", "object"});
  expect_error(
      image(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}})", 8),
      {"'t'", "overflow"});
  expect_error(image(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8),
               {"'t'", "twice"});
}

TEST(Safetensors, RejectsOverlapGapsAndUncoveredBytes) {
  expect_error(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                     R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                     12),
               {"'b'", "overlap", "'a'"});
  expect_error(image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                     R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                     12),
               {"'b'", "gap"});
  expect_error(image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8), {"'a'", "gap"});
  expect_error(image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8), {"cover only 4"});
}

TEST(Safetensors, RejectsBadMetadata) {
  expect_error(image(R"({"__metadata__":{"k":1}})", 0), {"'k'", "string"});
  expect_error(image(R"({"__metadata__":[1]})", 0), {"__metadata__"});
  auto f = SafetensorsFile::parse(image(R"({"__metadata__":{"k":"v"}})", 0), "m");
  EXPECT_EQ(f.metadata().at("k"), "v");
  EXPECT_TRUE(f.names().empty());
}

TEST(Safetensors, OpenErrors) {
  EXPECT_THROW(SafetensorsFile::open("/nonexistent/file.safetensors"), kvlab::Error);
  auto dir = kvlab::testutil::make_temp_dir("io_st");
  EXPECT_THROW(SafetensorsFile::open(dir), kvlab::Error);  // a directory
  std::string empty = dir + "/empty.safetensors";
  std::ofstream(empty).close();
  EXPECT_THROW(SafetensorsFile::open(empty), kvlab::Error);
}

namespace {

// True when s is well-formed UTF-8 with no C0 control bytes other than '\n'.
bool valid_printable_utf8(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7F) return false;
      ++i;
      continue;
    }
    std::size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (n == 0 || c > 0xF4 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

std::string error_of(const std::vector<std::byte>& img) {
  try {
    SafetensorsFile::parse(img, "bad.safetensors");
  } catch (const kvlab::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// A header with invalid UTF-8 and control bytes: the error is valid UTF-8
// text and shows the bad bytes as \xNN escapes.
TEST(Safetensors, ErrorMessagesEscapeRawHeaderBytes) {
  // Not valid JSON: the parser's message quotes the raw bytes it read.
  const std::string bad_json = std::string("{\"t\xff\x01") + "\":1";
  std::string msg = error_of(image(bad_json, 0));
  ASSERT_FALSE(msg.empty());
  EXPECT_TRUE(valid_printable_utf8(msg)) << msg;
  EXPECT_NE(msg.find("\\xff"), std::string::npos) << msg;
  // A valid JSON key carrying control bytes and a C1 control (U+0085) as a tensor name.
  msg = error_of(image("{\"a\\u0007\\u0085b\":[1]}", 8));
  ASSERT_FALSE(msg.empty());
  EXPECT_TRUE(valid_printable_utf8(msg)) << msg;
  EXPECT_NE(msg.find("'a\\x07\\xc2\\x85b'"), std::string::npos) << msg;
  // Printable non-ASCII names are echoed as they are.
  msg = error_of(image("{\"\xc3\xa9t\\u00e9\":[1]}", 8));
  EXPECT_NE(msg.find("'\xc3\xa9t\xc3\xa9'"), std::string::npos) << msg;
}
