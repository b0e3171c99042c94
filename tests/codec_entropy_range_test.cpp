// The entropy=range codec variant (codec/entropy_stream.h): spec parsing,
// symbol columns equal to stored_entropy()'s classes, streams that decode
// bit-identically to the fixed-size codec, coded rates close to the plug-in
// entropy and below the fixed size, and errors on corrupt streams.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "codec/entropy_stream.h"
#include "common/error.h"
#include "kernels/entropy.h"
#include "testutil/testutil.h"

#include <nlohmann/json.hpp>

namespace kvlab::codec {
namespace {

using testutil::gauss;

// Heavy-tailed KV-like rows: Student-t (3 degrees of freedom) values with a
// few outlier channels 20x larger (the lattice and hadamard codecs rotate
// them by their Hadamard transform).
std::vector<float> heavy(int64_t n, int64_t d, unsigned seed) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> t(3.0f);
  std::vector<float> v(static_cast<size_t>(n * d));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) v[size_t(i * d + j)] = t(rng) * (j % 97 == 5 ? 20.0f : 1.0f);
  return v;
}

void expect_error(const std::string& spec, const std::vector<std::string>& needles) {
  try {
    parse_codec_spec(spec);
    ADD_FAILURE() << spec << ": expected an error";
  } catch (const Error& e) {
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

TEST(EntropyRange, SpecParsing) {
  EXPECT_EQ(parse_codec_spec("e8:q=38,entropy=range").canonical, "e8:q=38,entropy=range");
  EXPECT_EQ(parse_codec_spec(" E8 : ENTROPY = Range , Q = 38").canonical, "e8:q=38,entropy=range");
  EXPECT_EQ(parse_codec_spec("d4:q=10,entropy=none").canonical, "d4:q=10");
  EXPECT_EQ(parse_codec_spec("e8:q=38").canonical, "e8:q=38");  // plain specs unchanged
  const auto s = parse_codec_spec("int:bits=4,entropy=range");
  EXPECT_EQ(s.canonical, "int:bits=4,block=64,scale=fp16,entropy=range");
  EXPECT_EQ(s.variant(), "int:block=64,scale=fp16,entropy=range");
  EXPECT_EQ(s.with_rate(6), "int:bits=6,block=64,scale=fp16,entropy=range");
  EXPECT_TRUE(s.entropy_range());
  EXPECT_FALSE(parse_codec_spec("int:bits=4").entropy_range());
  EXPECT_EQ(codec_spec_at_rate("e8:entropy=range", 12).canonical, "e8:q=12,entropy=range");
  EXPECT_EQ(parse_codec_spec("hadamard_lloyd:bits=3,entropy=range").canonical, "hadamard_lloyd:bits=3,entropy=range");
  expect_error("fp8_per64:entropy=range", {"fp8_per64", "not available", "d4, e8, int, hadamard_int, hadamard_lloyd"});
  expect_error("v4_native:entropy=range", {"v4_native", "not available"});
  expect_error("e8:q=38,entropy=huffman", {"'huffman'", "range or none"});
  expect_error("e8:q=38,entropy=range,entropy=range", {"given twice"});
  expect_error("e8:q=38,entropi=range", {"unknown parameter 'entropi'", "entropy"});
  EXPECT_EQ(make_codec("e8:q=38,entropy=range", 512)->spec(), "e8:q=38,entropy=range");
  EXPECT_EQ(make_codec("e8:q=38,entropy=range", 512)->code_size(), make_codec("e8:q=38", 512)->code_size());
}

// The columns are stored_entropy()'s classes (names, counts, side widths,
// plug-in entropies exactly) and rebuild the records byte for byte.
TEST(EntropyRange, ColumnsAreTheStoredEntropyClassesAndRebuildTheRecords) {
  const int64_t d = 256, n = 40;
  const auto x = heavy(n, d, 3);
  int with_columns = 0;
  for (const auto& spec : example_codec_specs()) {
    auto c = make_codec(spec, d);
    std::vector<uint8_t> codes(size_t(n) * c->code_size());
    c->encode(x.data(), n, codes.data());
    const bool expected = entropy_range_supported(parse_codec_spec(spec).family);
    ASSERT_EQ(c->has_symbol_columns(), expected) << spec;
    if (!expected) {
      EXPECT_THROW(c->symbol_layout(n), Error) << spec;
      EXPECT_EQ(c->encode_stream(x.data(), n), codes) << spec;  // fixed-size stream: the records
      continue;
    }
    ++with_columns;
    const auto cols = c->symbol_columns(codes.data(), n);
    const auto e = c->stored_entropy(codes.data(), n);
    ASSERT_EQ(cols.size(), e.classes.size()) << spec;
    for (size_t i = 0; i < cols.size(); ++i) {
      EXPECT_EQ(cols[i].name, e.classes[i].name) << spec;
      EXPECT_EQ(cols[i].count, e.classes[i].count) << spec;
      ASSERT_EQ(cols[i].values.size(), size_t(cols[i].count)) << spec;
      EXPECT_EQ(cols[i].side_info, e.classes[i].side_info) << spec;
      if (cols[i].side_info) {
        EXPECT_EQ(double(cols[i].width), e.classes[i].bits_per_symbol) << spec << " " << cols[i].name;
      } else {
        EXPECT_EQ(kernels::plugin_entropy_bits(cols[i].values.data(), cols[i].count), e.classes[i].bits_per_symbol)
            << spec << " " << cols[i].name;
      }
    }
    std::vector<uint8_t> rebuilt(codes.size(), 0xAB);
    c->join_symbol_columns(cols, n, rebuilt.data());
    EXPECT_EQ(rebuilt, codes) << spec;
  }
  EXPECT_GE(with_columns, 15);
}

// Stream of x through spec: decodes to exactly the fixed codec's output.
size_t check_stream(const std::string& spec, const std::vector<float>& x, int64_t d) {
  auto c = make_codec(spec + ",entropy=range", d);
  const int64_t n = int64_t(x.size()) / d;
  std::vector<uint8_t> codes(size_t(n) * c->code_size());
  std::vector<float> fixed(x.size()), back(x.size(), -1.0f);
  c->encode(x.data(), n, codes.data());
  c->decode(codes.data(), n, fixed.data());
  const auto bytes = c->encode_stream(x.data(), n);
  c->decode_stream(bytes, n, back.data());
  EXPECT_EQ(std::memcmp(back.data(), fixed.data(), fixed.size() * sizeof(float)), 0) << spec << " n = " << n;
  std::vector<uint8_t> records(codes.size());
  range_decode_records(*make_codec(spec, d), bytes, n, records.data());
  EXPECT_EQ(records, codes) << spec;
  return bytes.size();
}

TEST(EntropyRange, EveryFamilyRoundTripsBitIdentically) {
  const int64_t d = 512;
  for (const auto& spec : example_codec_specs()) {
    if (!entropy_range_supported(parse_codec_spec(spec).family)) continue;
    check_stream(spec, gauss(64, d, 5), d);
    check_stream(spec, heavy(33, d, 6), d);
    check_stream(spec, gauss(1, d, 7), d);
    check_stream(spec, {}, d);  // n = 0
  }
  // Lattice coordinates wider than one model's alphabet (the bit-length path).
  for (const std::string spec : {"d4:q=9000", "e8:q=32767", "d4:q=2100"}) {
    const auto x = gauss(20, 64, 8);
    check_stream(spec, x, 64);
    // Always range-coded (mode 1), whatever its size.
    auto c = make_codec(spec, 64);
    std::vector<uint8_t> codes(20 * c->code_size()), back(codes.size());
    c->encode(x.data(), 20, codes.data());
    const auto b = range_encode_records(*c, codes.data(), 20, /*allow_stored=*/false);
    ASSERT_EQ(b[4], 1);
    range_decode_records(*c, b, 20, back.data());
    EXPECT_EQ(back, codes) << spec;
    if (spec != "d4:q=9000") continue;
    // The header's range of the first coordinate column (bytes 25..32) is wider than one model.
    int32_t lo = 0, hi = 0;
    std::memcpy(&lo, b.data() + 25, 4);
    std::memcpy(&hi, b.data() + 29, 4);
    EXPECT_GT(int64_t(hi) - lo + 1, 4096) << lo << " " << hi;
  }
  // Several chunks of 256 vectors, the last one partial (the models carry over).
  for (const std::string spec : {"e8:q=38", "int:bits=5,block=32,scale=ue8m0", "hadamard_lloyd:bits=4"})
    check_stream(spec, heavy(600, 256, 12), 256);
  // A zero vector and a constant one.
  std::vector<float> z(2 * 128, 0.0f);
  for (size_t i = 128; i < z.size(); ++i) z[i] = 3.0f;
  for (const std::string spec : {"e8:q=38", "d4:q=10", "int:bits=8", "hadamard_int:bits=3", "hadamard_lloyd:bits=2"})
    check_stream(spec, z, 128);
}

// The rate: below the fixed size and within a few % of the plug-in rate.
TEST(EntropyRange, CodedRateIsNearThePluginEntropyAndBelowTheFixedSize) {
  const int64_t d = 512, n = 2048;
  struct Case {
    std::string spec;
    bool heavy_tailed;
  };
  for (const Case& k : {Case{"e8:q=38", false}, Case{"d4:q=10", false}, Case{"e8:q=38", true}, Case{"d4:q=10", true},
                        Case{"hadamard_int:bits=4", true}, Case{"hadamard_lloyd:bits=3", false}}) {
    const auto x = k.heavy_tailed ? heavy(n, d, 21) : gauss(n, d, 22);
    auto c = make_codec(k.spec, d);
    std::vector<uint8_t> codes(size_t(n) * c->code_size());
    c->encode(x.data(), n, codes.data());
    const double h = c->stored_entropy(codes.data(), n).bits_per_dim();
    const size_t bytes = check_stream(k.spec, x, d);
    const double r = 8.0 * double(bytes) / double(n * d);
    std::printf("%-22s %s: fixed %.4f, plug-in %.4f, range-coded %.4f bits/dim (+%.2f %%)\n", k.spec.c_str(),
                k.heavy_tailed ? "heavy" : "gauss", c->bits_per_vector() / double(d), h, r, 100.0 * (r / h - 1.0));
    EXPECT_LT(bytes, codes.size()) << k.spec;
    EXPECT_LE(r, 1.02 * h) << k.spec;
    EXPECT_GE(r, 0.99 * h) << k.spec;  // an adaptive coder gains little over the static one on these sources
  }
}

// A few vectors: the records verbatim (mode 0) behind the 17-byte prefix,
// never more than that above the fixed size; many: range-coded (mode 1).
TEST(EntropyRange, ShortStreamsAreStoredVerbatim) {
  const int64_t d = 512;
  auto c = make_codec("e8:q=38,entropy=range", d);
  const auto one = c->encode_stream(gauss(1, d, 1).data(), 1);
  EXPECT_EQ(one[4], 0);
  EXPECT_EQ(one.size(), 17 + c->code_size());
  std::vector<float> out(d);
  auto cut = one;
  cut.pop_back();
  EXPECT_THROW(c->decode_stream(cut, 1, out.data()), Error);
  const auto many = c->encode_stream(gauss(64, d, 2).data(), 64);
  EXPECT_EQ(many[4], 1);
  EXPECT_LT(many.size(), 64 * c->code_size());
  auto mode = many;
  mode[4] = 2;
  EXPECT_THROW(c->decode_stream(mode, 64, std::vector<float>(64 * d).data()), Error);
}

TEST(EntropyRange, CorruptOrMismatchedStreamsThrow) {
  const int64_t d = 256, n = 50;
  const auto x = gauss(n, d, 9);
  auto c = make_codec("e8:q=38,entropy=range", d);
  const auto bytes = c->encode_stream(x.data(), n);
  std::vector<float> out(x.size());
  auto fails = [&](std::vector<uint8_t> b, int64_t nn, const std::string& needle) {
    std::vector<float> o(size_t(std::max<int64_t>(nn, 0) * d));
    try {
      c->decode_stream(b, nn, o.data());
      ADD_FAILURE() << "expected an error containing '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  fails({}, n, "truncated header");
  fails({bytes.begin(), bytes.begin() + 30}, n, "truncated");
  fails({bytes.begin(), bytes.end() - 1}, n, "truncated");
  auto longer = bytes;
  longer.push_back(7);
  fails(longer, n, "left over");
  fails(bytes, n - 1, "expected 49 of D = 256");
  auto magic = bytes;
  magic[0] = 'X';
  fails(magic, n, "magic");
  // Another codec's stream.
  fails(make_codec("d4:q=10,entropy=range", d)->encode_stream(x.data(), n), n, "columns");
  // Flipped payload bytes: an error every time (range decoder, checksum,
  // column values, the codec's own decode), never a crash.
  std::mt19937 rng(4);
  for (int t = 0; t < 200; ++t) {
    auto bad = bytes;
    const size_t at = 21 + rng() % (bad.size() - 21);
    bad[at] ^= uint8_t(1 + rng() % 255);
    EXPECT_THROW(c->decode_stream(bad, n, out.data()), Error) << "byte " << at;
  }
  // Codecs without symbol columns.
  EXPECT_THROW(RangeCodedCodec(make_codec("fp8_per64", d)), Error);
  std::vector<uint8_t> codes(size_t(n) * make_codec("fp8_per64", d)->code_size());
  EXPECT_THROW(range_encode_records(*make_codec("fp8_per64", d), codes.data(), n), Error);
}

// `kvlab codec --spec 'e8:q=38,entropy=range'`: writes the stream, decodes
// it back (the command checks bit-identity) and reports its size.
TEST(EntropyRange, CodecCommandWritesAndDecodesTheStream) {
  ASSERT_TRUE(std::filesystem::exists(testutil::kvlab_binary())) << testutil::kvlab_binary();
  const std::string ref = testutil::reference_path("codecs_e8.safetensors");
  for (const std::string spec : {"e8:q=38", "d4:q=10", "hadamard_int:bits=4,block=64,scale=fp16"}) {
    std::string out;
    ASSERT_EQ(testutil::run_command(testutil::kvlab_binary() + " codec --spec '" + spec + ",entropy=range' --in " + ref +
                                        " --tensor input/D512/t3 --json 2>&1",
                                    &out),
              0)
        << out;
    const auto j = nlohmann::json::parse(out.substr(out.find('{')));
    EXPECT_EQ(j["spec"], parse_codec_spec(spec).canonical + ",entropy=range");
    EXPECT_LT(j["stream_bytes"].get<double>(), j["code_bytes"].get<double>()) << spec;
    // 64 vectors: the models' learning cost is a few % of the plug-in rate.
    EXPECT_LE(j["stream_bits_per_dim"].get<double>(), 1.05 * j["entropy_bits_per_dim"].get<double>()) << spec;
    EXPECT_NEAR(j["stream_bits_per_vector"].get<double>(), 8.0 * j["stream_bytes"].get<double>() / 64, 1e-9);
  }
  std::string out;
  EXPECT_NE(testutil::run_command(testutil::kvlab_binary() + " codec --spec fp8_per64:entropy=range --in " + ref +
                                      " --tensor input/D512/t3 2>&1",
                                  &out),
            0);
  EXPECT_NE(out.find("entropy=range is not available for fp8_per64"), std::string::npos) << out;
}

}  // namespace
}  // namespace kvlab::codec
