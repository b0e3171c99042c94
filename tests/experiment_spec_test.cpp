// Tests of experiment/spec.h: the shipped specs parse into the planned
// shapes, params_json follows the contract, and every kind of bad input
// is refused with file:line and the offending value.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "common/error.h"
#include "codec/codec.h"
#include "common/hash.h"
#include "experiment/spec.h"
#include "testutil/testutil.h"

namespace kvlab::experiment {
namespace {

using testutil::source_path;

TEST(ExperimentSpec, ShippedN8Spec) {
  const auto s = load_spec(source_path("experiments/stage075_n8.ini"));
  EXPECT_EQ(s.name, "stage075_n8");
  EXPECT_EQ(s.passages.size(), 8u);
  EXPECT_EQ(s.streams, known_streams());
  ASSERT_EQ(s.codecs.size(), 5u);
  EXPECT_EQ(s.codecs[0].codec, "fp8_per64");
  EXPECT_FALSE(s.codecs[0].q);
  EXPECT_EQ(s.codecs[1].codec, "d4:q=10");
  EXPECT_EQ(*s.codecs[4].q, 38);
  EXPECT_EQ(s.run_count(), 8u * 3 * 5);
  // Passages are the committed texts, named by file stem, hashed by content.
  for (const auto& p : s.passages) {
    ASSERT_TRUE(p.text);
    EXPECT_GT(p.text->size(), 500u) << p.name;
    EXPECT_EQ(p.source, "text:passages/" + p.name + ".txt");
  }
  const auto plan = s.plan();
  EXPECT_EQ(plan.spec_hash, sha256_hex(s.spec_text));
  EXPECT_EQ(plan.passages[0].content_hash, sha256_hex(*s.passages[0].text));
  // params_json contract.
  const auto j = nlohmann::json::parse(plan.params_json);
  EXPECT_EQ(j["seqlen"], 2048);
  EXPECT_EQ(j["stream_dtype"], "bf16");
  EXPECT_EQ(j["device"], "cpu");
  EXPECT_EQ(j["weights"]["kind"], "random");
  EXPECT_EQ(j["host"]["kind"], "synthetic");
  EXPECT_EQ(j["host"]["spec"], "synthetic:seed=1234");
  EXPECT_EQ(j["streams"].size(), 3u);
  EXPECT_EQ(j["codecs"][4], "e8:q=38");
  EXPECT_EQ(j["layer_mix"]["sliding_window_kv"], 3);
  EXPECT_EQ(j["layer_mix"]["csa_pool_kv_ratio4"], 20);
  EXPECT_EQ(j["layer_mix"]["hca_pool_kv_ratio128"], 20);
  EXPECT_EQ(j["report"]["codec"], "e8:q=38");
  EXPECT_EQ(j["report"]["compare"], "d4:q=38");
  EXPECT_GT(j["forecast"]["kv_memory_gib_per_node"].get<double>(), 0);
  EXPECT_GT(j["forecast"]["context_tokens"].get<double>(), 0);
}

TEST(ExperimentSpec, ShippedQsweepAndSmokeSpecs) {
  const auto q = load_spec(source_path("experiments/stage075_qsweep.ini"));
  EXPECT_EQ(q.codecs.size(), 18u);
  EXPECT_EQ(q.codecs.back().codec, "e8:q=76");
  EXPECT_EQ(q.passages.size(), 8u);
  const auto s = load_spec(source_path("experiments/smoke.ini"));
  EXPECT_EQ(s.seqlen, 512);
  ASSERT_EQ(s.passages.size(), 2u);
  EXPECT_EQ(s.passages[1].name, "p1");
  EXPECT_EQ(s.passages[1].seed, 101u);
  EXPECT_EQ(s.passages[1].source, "synthetic:seed=101");
  EXPECT_FALSE(s.passages[1].text);
  // Default layer mix is V4-Flash's.
  EXPECT_EQ(s.layer_mix.at("sliding_window_kv"), 3);
  EXPECT_EQ(s.layer_mix.at("hca_pool_kv_ratio128"), 20);
  EXPECT_EQ(s.params()["report"]["compare"], nullptr);
}

TEST(ExperimentSpec, IdRanges) {
  EXPECT_EQ(parse_id_ranges("0-3 7"), (std::vector<int>{0, 1, 2, 3, 7}));
  EXPECT_THROW(parse_id_ranges("3-1"), Error);
  EXPECT_THROW(parse_id_ranges("1 1"), Error);
  EXPECT_THROW(parse_id_ranges("a"), Error);
  EXPECT_THROW(parse_id_ranges(""), Error);
}

const char* kGood = R"([experiment]
name = t
seqlen = 256
[passages]
synthetic = 0-2
[codecs]
codec = fp8_per64
e8.q = 10
)";

// Expects parse_spec(text) to fail with a message containing each needle.
void expect_error(const std::string& text, const std::vector<std::string>& needles) {
  try {
    parse_spec(text, "/tmp/x.ini");
    ADD_FAILURE() << "expected an error for:\n" << text;
  } catch (const Error& e) {
    for (const auto& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << "message: " << e.what() << "\nmissing: " << n;
  }
}

TEST(ExperimentSpec, MinimalSpecParses) {
  const auto s = parse_spec(kGood, "/tmp/x.ini");
  EXPECT_EQ(s.run_count(), 3u * 3 * 2);
  EXPECT_EQ(s.params()["report"]["codec"], "e8:q=10");
}

TEST(ExperimentSpec, ErrorsNameFileLineAndValue) {
  const std::string g = kGood;
  // Unknown key in a known section, with the expected keys listed.
  expect_error(g + "bogus = 1\n", {"/tmp/x.ini:9:", "unknown key 'bogus' in [codecs]", "codec"});
  // Unknown section.
  expect_error(g + "[nope]\nx = 1\n", {"/tmp/x.ini:10:", "unknown key 'nope.x'"});
  // Bad Q values.
  expect_error(g + "d4.q = 0\n", {"x.ini:9:", "codec 'd4:q=0'"});
  expect_error(g + "d4.q = ten\n", {"x.ini:9:", "'ten'", "not a positive integer"});
  expect_error(g + "codec = e8:q=-3\n", {"x.ini:9:", "e8:q=-3"});
  // Unknown codec family.
  expect_error(g + "codec = zstd\n", {"x.ini:9:", "codec 'zstd'"});
  // Duplicate codec (after canonicalisation), naming the first line.
  expect_error(g + "codec = E8:Q=10\n", {"x.ini:9:", "e8:q=10", "listed twice (first at line 8)"});
  // Syntax.
  expect_error(g + "just words\n", {"x.ini:9:", "not 'key = value'"});
  // Single-valued key given twice.
  expect_error("[experiment]\nname = a\nname = b\n", {"x.ini:3:", "given again (first at line 2)"});
  // Value checks.
  expect_error(std::string(kGood).replace(g.find("256"), 3, "300"), {"x.ini:3:", "not a multiple of 128"});
  expect_error(std::string(kGood).replace(g.find("256"), 3, "128"), {"x.ini:3:", "out of range"});
  expect_error(g + "[experiment]\nstream_dtype = fp16\n", {"x.ini:10:", "fp16", "bf16 or fp32"});
  expect_error(g + "[experiment]\nstreams = sliding_window_kv mla\n", {"x.ini:10:", "unknown stream 'mla'"});
  expect_error(g + "[experiment]\ndevice = tpu\n", {"x.ini:10:", "device 'tpu'"});
  expect_error(g + "[weights]\nkind = magic\n", {"x.ini:10:", "weights kind 'magic'"});
  expect_error(g + "[weights]\nkind = checkpoint\npath = /no/such/ckpt\n",
               {"x.ini:11:", "/no/such/ckpt", "does not exist"});
  expect_error(g + "[weights]\nkind = random\nlayer.sliding_window_kv = 0\n", {"x.ini:11:", "does not apply"});
  expect_error(g + "[host]\nkind = hf\npath = /no/such/hf\n", {"x.ini:11:", "/no/such/hf"});
  expect_error(g + "[passages]\ntext = no_such_passage.txt\n", {"x.ini:10:", "no_such_passage.txt"});
  expect_error(g + "[passages]\nsynthetic = 2-4\n", {"x.ini:10:", "'p2' is listed twice"});
  expect_error(g + "[layer_mix]\nsliding_window_kv = 3\n", {"no layer count for stream 'csa_pool_kv_ratio4'"});
  expect_error(g + "[layer_mix]\nsliding_window_kv = -1\n", {"x.ini:10:", "out of range"});
  expect_error(g + "[report]\ncodec = d4:q=10\n", {"x.ini:10:", "not one of this experiment's codecs"});
  expect_error(g + "[forecast]\ncontext_tokens = 100\n", {"missing 'forecast.kv_memory_gib_per_node'"});
  expect_error(g + "[forecast]\nkv_memory_gib_per_node = -5\ncontext_tokens = 1\n", {"x.ini:10:", "-5"});
  // Missing pieces.
  expect_error("[codecs]\ncodec = fp8_per64\n", {"missing 'experiment.name'"});
  expect_error("[experiment]\nname = a\n[codecs]\ncodec = fp8_per64\n", {"no passages"});
  expect_error("[experiment]\nname = a\n[passages]\nsynthetic = 0\n", {"no codecs"});
  expect_error("[experiment]\nname = a b\n", {"x.ini:2:", "'a b'"});
}

TEST(ExperimentSpec, RelativePathsResolveAgainstTheSpecFile) {
  const auto dir = testutil::make_temp_dir("spec");
  std::filesystem::create_directories(dir + "/texts");
  std::ofstream(dir + "/texts/alpha.txt") << "Some passage text.\n";
  std::ofstream(dir + "/s.ini") << "[experiment]\nname = r\n[passages]\ntext = texts/alpha.txt\n[codecs]\ncodec = fp8_per64\n";
  const auto s = load_spec(dir + "/s.ini");
  ASSERT_EQ(s.passages.size(), 1u);
  EXPECT_EQ(s.passages[0].name, "alpha");
  EXPECT_EQ(*s.passages[0].text, "Some passage text.\n");
  std::ofstream(dir + "/texts/empty.txt") << "  \n";
  std::ofstream(dir + "/e.ini") << "[experiment]\nname = r\n[passages]\ntext = texts/empty.txt\n[codecs]\ncodec = fp8_per64\n";
  try {
    load_spec(dir + "/e.ini");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("e.ini:4: passage file 'texts/empty.txt' is empty"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(load_spec(dir + "/missing.ini"), Error);
}

TEST(ExperimentSpec, SimulateFp8Switch) {
  const std::string g = kGood;
  // Absent: the key is not recorded and the executor uses the SPEC default (on).
  EXPECT_FALSE(parse_spec(g, "/tmp/x.ini").params()["weights"].contains("simulate_fp8"));
  const auto off = parse_spec(g + "[weights]\nkind = random\nsimulate_fp8 = false\n", "/tmp/x.ini");
  EXPECT_EQ(off.params()["weights"]["simulate_fp8"], false);
  const auto on = parse_spec(g + "[weights]\nsimulate_fp8 = true\n", "/tmp/x.ini");
  EXPECT_EQ(on.params()["weights"]["simulate_fp8"], true);
  expect_error(g + "[weights]\nsimulate_fp8 = maybe\n", {"x.ini:10:", "simulate_fp8 'maybe'", "true or false"});
  // The shipped study specs compress the pre-storage KV.
  EXPECT_EQ(load_spec(source_path("experiments/stage075_n8.ini")).params()["weights"]["simulate_fp8"], false);
}

TEST(ExperimentSpec, WritePathSwitch) {
  const std::string g = kGood;
  // Absent: not recorded (specs keep their identity); the executor uses
  // published, and the layer mix is SPEC's.
  const auto pub = parse_spec(g, "/tmp/x.ini");
  EXPECT_FALSE(pub.params()["weights"].contains("write_path"));
  EXPECT_EQ(pub.params()["layer_mix"]["sliding_window_kv"], 3);
  EXPECT_EQ(pub.params()["layer_mix"]["csa_pool_kv_ratio4"], 20);
  EXPECT_EQ(pub.params()["layer_mix"]["hca_pool_kv_ratio128"], 20);
  const auto p2 = parse_spec(g + "[weights]\nwrite_path = published\n", "/tmp/x.ini");
  EXPECT_EQ(p2.params()["weights"]["write_path"], "published");
  EXPECT_EQ(p2.params()["layer_mix"], pub.params()["layer_mix"]);
  // v4: recorded; the layer mix comes from V4-Flash's compress_ratios.
  const auto v4 = parse_spec(g + "[weights]\nkind = random\nwrite_path = v4\n", "/tmp/x.ini");
  EXPECT_EQ(v4.params()["weights"]["write_path"], "v4");
  EXPECT_EQ(v4.params()["layer_mix"]["sliding_window_kv"], 2);
  EXPECT_EQ(v4.params()["layer_mix"]["csa_pool_kv_ratio4"], 21);
  EXPECT_EQ(v4.params()["layer_mix"]["hca_pool_kv_ratio128"], 20);
  // An explicit [layer_mix] wins.
  const auto mixed = parse_spec(g +
                                    "[weights]\nwrite_path = v4\n[layer_mix]\nsliding_window_kv = 3\n"
                                    "csa_pool_kv_ratio4 = 20\nhca_pool_kv_ratio128 = 20\n",
                                "/tmp/x.ini");
  EXPECT_EQ(mixed.params()["layer_mix"]["sliding_window_kv"], 3);
  EXPECT_EQ(mixed.params()["layer_mix"]["csa_pool_kv_ratio4"], 20);
  expect_error(g + "[weights]\nwrite_path = v5\n", {"x.ini:10:", "write_path 'v5'", "expected published or v4"});
}


TEST(ExperimentSpec, MetricsSection) {
  const std::string g = kGood;
  // No [metrics]: attention off, params unchanged (no "metrics" key).
  EXPECT_FALSE(parse_spec(g, "/tmp/x.ini").params().contains("metrics"));
  const auto on = parse_spec(g + "[weights]\nseed = 7\n[metrics]\nattention = on\n", "/tmp/x.ini");
  const auto m = on.params()["metrics"];
  EXPECT_EQ(m["attention"], true);
  EXPECT_EQ(m["attention_queries"], 256);
  EXPECT_EQ(m["attention_seed"], 7);  // default: the weights' seed
  const auto off = parse_spec(g + "[metrics]\nattention = off\nattention_queries = 12\nattention_seed = 3\n", "/tmp/x.ini");
  EXPECT_EQ(off.params()["metrics"]["attention"], false);
  EXPECT_EQ(off.params()["metrics"]["attention_queries"], 12);
  EXPECT_EQ(off.params()["metrics"]["attention_seed"], 3);
  expect_error(g + "[metrics]\nattention = yes\n", {"x.ini:10:", "attention 'yes'", "expected on or off"});
  expect_error(g + "[metrics]\nattention_queries = 0\n", {"x.ini:10:", "= 0 is out of range", "1 .. 1048576"});
  expect_error(g + "[metrics]\nattention_queries = many\n", {"x.ini:10:", "'many' is not an integer"});
  expect_error(g + "[metrics]\nattention_seed = -1\n", {"x.ini:10:", "out of range", "a seed >= 0"});
  expect_error(g + "[metrics]\nentropy = on\n", {"x.ini:10:", "unknown key 'entropy' in [metrics]", "attention"});
}

// The baselines/frontier issue's bad-input list: each names the value and what is allowed.
TEST(ExperimentSpec, BadCodecInputNamesValueAndAllowed) {
  const std::string g = kGood;
  expect_error(g + "codec = zstd:q=3\n", {"x.ini:9:", "zstd", "e8", "hadamard_lloyd", "v4_native"});
  expect_error(g + "e8.q = 40000\n", {"x.ini:9:", "40000", "1 <= Q <= 32767"});
  expect_error(g + "hadamard_lloyd.bits = 5\n", {"x.ini:9:", "bits = 5", "1 <= bits <= 4"});
  expect_error(g + "[weights]\nwrite_path = deployed\n", {"x.ini:10:", "'deployed'", "published or v4"});
  // The range-coded variant is not a sweep codec (every run stores range_bits_per_dim).
  expect_error(g + "codec = e8:q=38,entropy=range\n",
               {"x.ini:9:", "entropy=range is not a sweep codec", "range_bits_per_dim", "list 'e8:q=38'"});
  expect_error(g + "codec = fp8_per64:entropy=range\n", {"x.ini:9:", "not available for fp8_per64"});
  // D not divisible by the block: the codec refuses, naming D and the block.
  try {
    codec::make_codec("int:bits=4,block=64,scale=fp16", 100);
    ADD_FAILURE() << "D = 100 with block 64 accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("100"), std::string::npos) << m;
    EXPECT_NE(m.find("64"), std::string::npos) << m;
  }
}
}  // namespace
}  // namespace kvlab::experiment


namespace kvlab::experiment {
namespace {
TEST(ExperimentSpec, BaselineAndScalarRates) {
  const std::string g = std::string(kGood) + "codec = v4_native\nint.bits = 4 8\n";
  const auto s = parse_spec(g, "/tmp/x.ini");
  EXPECT_FALSE(s.params().contains("baseline"));  // default: fp8_per64, chosen by the statistics
  bool int4 = false;
  for (const auto& c : s.codecs) int4 |= c.codec == "int:bits=4,block=64,scale=fp16" && c.q == 4;
  EXPECT_TRUE(int4);
  const auto b = parse_spec(g + "[report]\nbaseline = V4_NATIVE\n", "/tmp/x.ini");
  EXPECT_EQ(b.params()["baseline"], "v4_native");
  expect_error(g + "[report]\nbaseline = e8:q=10\n", {"x.ini:12:", "'e8:q=10' is not a baseline format", "fp8_per64, v4_native"});
  expect_error(std::string(kGood) + "[report]\nbaseline = v4_native\n", {"'v4_native' is not one of this experiment's codecs"});
  expect_error(g + "int.bits = 9\n", {"bits = 9", "2 <= bits <= 8"});
}

}  // namespace
}  // namespace kvlab::experiment
