// End-to-end tests of `kvlab codec`, `kvlab audit` and `kvlab bench codecs`
// (the built binary, run as a user would): JSON keys and values equal the
// library's, --out writes the reconstruction, bad input gives a clear error
// and the documented exit code.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "codec/codec.h"
#include "io/safetensors.h"
#include "kernels/metrics.h"
#include "testutil/testutil.h"

namespace kvlab::codec {
namespace {

int kvlab(const std::string& args, std::string* out) {
  return testutil::run_command(testutil::kvlab_binary() + " " + args, out);
}

std::string stdout_json_part(const std::string& s) {
  const auto b = s.find_first_of("{[");
  return b == std::string::npos ? s : s.substr(b);
}

TEST(CodecCli, CodecJsonAndOutputFile) {
  const std::string ref = testutil::reference_path("codecs_e8.safetensors");
  const std::string dir = testutil::make_temp_dir("kvlab-codec-cli");
  const std::string outp = dir + "/rec.safetensors";
  std::string out;
  ASSERT_EQ(kvlab("codec --spec E8:Q=38 --in " + ref + " --tensor input/D512/gauss --out " + outp + " --json", &out), 0)
      << out;
  const auto j = nlohmann::json::parse(stdout_json_part(out));
  EXPECT_EQ(j["spec"], "e8:q=38");
  EXPECT_EQ(j["bits_per_vector"], 3296.0);
  EXPECT_EQ(j["code_bytes"], 64 * 412);
  // Same numbers as the library on the same tensor.
  const auto f = io::SafetensorsFile::open(ref);
  const auto x = f.to_f32("input/D512/gauss");
  std::vector<float> rt(x.size());
  make_codec("e8:q=38", 512)->roundtrip(x.data(), 64, rt.data());
  EXPECT_DOUBLE_EQ(j["rel_mse"].get<double>(), kernels::rel_mse(x.data(), rt.data(), 64, 512));
  EXPECT_DOUBLE_EQ(j["cos_sim"].get<double>(), kernels::mean_cosine(x.data(), rt.data(), 64, 512));
  const auto o = io::SafetensorsFile::open(outp);
  EXPECT_EQ(o.info("input/D512/gauss").shape, (std::vector<int64_t>{64, 512}));
  const auto rec = o.to_f32("input/D512/gauss");
  ASSERT_EQ(rec.size(), rt.size());
  EXPECT_EQ(std::memcmp(rec.data(), rt.data(), rt.size() * 4), 0);
  EXPECT_EQ(o.metadata().at("kvlab_codec"), "e8:q=38");
}

// `kvlab codecs --json` lists every row of the family table with its fields,
// and its bits equal the codecs' own at each example rate.
TEST(CodecCli, CodecsJsonListsEveryTableRow) {
  std::string out;
  ASSERT_EQ(kvlab("codecs --json", &out), 0) << out;
  const auto j = nlohmann::json::parse(stdout_json_part(out));
  EXPECT_EQ(j["dim"], 512);
  const auto& table = codec_family_table();
  ASSERT_EQ(j["families"].size(), table.size());
  for (std::size_t i = 0; i < table.size(); ++i) {
    const auto& f = table[i];
    const auto& r = j["families"][i];
    SCOPED_TRACE(f.name);
    EXPECT_EQ(r["family"], f.name);
    EXPECT_EQ(r["is_baseline"], f.is_baseline);
    EXPECT_EQ(r["byte_format"], f.byte_format);
    EXPECT_EQ(r["description"], f.description);
    if (f.rate_param.empty()) {
      EXPECT_TRUE(r["rate_param"].is_null());
      EXPECT_TRUE(r["rate_range"].is_null());
    } else {
      EXPECT_EQ(r["rate_param"], f.rate_param);
      EXPECT_EQ(r["rate_range"], nlohmann::json::array({f.min_rate, f.max_rate}));
    }
    ASSERT_EQ(r["params"].size(), f.params.size());
    for (std::size_t k = 0; k < f.params.size(); ++k) {
      EXPECT_EQ(r["params"][k]["name"], f.params[k].name);
      EXPECT_EQ(r["params"][k]["allowed"], f.params[k].allowed);
      EXPECT_EQ(r["params"][k]["default"], f.params[k].default_value);
    }
    // Every family supports D = 512: examples present and equal to the codec's bits.
    const auto& rates = r["bits_example"]["rates"];
    ASSERT_FALSE(rates.empty());
    for (const auto& e : rates) {
      const auto c = make_codec(e["spec"].get<std::string>(), 512);
      EXPECT_EQ(e["bits_per_vector"].get<double>(), c->bits_per_vector()) << e.dump();
      EXPECT_EQ(r["reencode_is_exact"].get<bool>(), c->reencode_is_exact()) << e.dump();
      if (!f.rate_param.empty()) {
        EXPECT_GE(e["rate"].get<int>(), f.min_rate);
        EXPECT_LE(e["rate"].get<int>(), f.max_rate);
      }
    }
  }
  // The text form names every family too.
  ASSERT_EQ(kvlab("codecs", &out), 0) << out;
  for (const auto& f : table) EXPECT_NE(out.find(f.name + (f.is_baseline ? " (baseline)" : "") + "\n"), std::string::npos) << f.name;
  for (const auto& r : j["families"])
    for (const auto& e : r["bits_example"]["rates"]) {
      const std::string shown =
          fmt::format("{} = {}", e["spec"].get<std::string>(), e["bits_per_vector"].get<double>());
      EXPECT_NE(out.find(shown), std::string::npos) << shown;
    }
}

TEST(CodecCli, AuditJson) {
  const std::string ref = testutil::reference_path("audit.safetensors");
  std::string out;
  ASSERT_EQ(kvlab("audit --in " + ref + " --tensor input/T512 --json", &out), 0) << out;
  const auto j = nlohmann::json::parse(stdout_json_part(out));
  const auto f = io::SafetensorsFile::open(ref);
  const auto x = f.to_f32("input/T512");
  const auto a = kernels::non_gaussian_audit(x.data(), 512, 512);
  for (const auto& g : kernels::kAuditGates) EXPECT_DOUBLE_EQ(j[std::string(g.name)].get<double>(), a.*(g.value));
  EXPECT_EQ(j["num_vectors"], 512);
  EXPECT_EQ(j["D"], 512);
}

TEST(CodecCli, BadInputIsAClearError) {
  const std::string dir = testutil::make_temp_dir("kvlab-codec-bad");
  io::SafetensorsWriter w;
  std::vector<float> odd(4 * 96, 1.0f), nan(4 * 128, 1.0f);
  nan[130] = std::numeric_limits<float>::quiet_NaN();
  std::vector<int32_t> ints(4 * 128, 1);
  w.add_f32("odd", {4, 96}, odd.data());
  w.add_f32("nan", {4, 128}, nan.data());
  w.add_f32("one", {128}, nan.data() + 256);
  w.add("ints", io::DType::I32, {4, 128}, ints.data(), ints.size() * 4);
  const std::string p = dir + "/bad.safetensors";
  w.write(p);
  struct Case {
    std::string args;
    int rc;
    std::string must_mention;
  };
  const std::vector<Case> cases = {
      {"codec --spec e9:q=3 --in " + p + " --tensor odd", 1, "e9:q=3"},
      {"codec --in " + p + " --tensor odd", 2, "--spec"},
      {"codec --spec e8:q=38 --in " + p + " --tensor odd", 1, "96"},
      {"codec --spec e8:q=0 --in " + p + " --tensor nan", 1, "Q = 0"},
      {"codec --spec e8:q=38 --in " + p + " --tensor nan", 1, "coordinate 2 is nan"},
      {"codec --spec fp8_per64 --in " + p + " --tensor nan", 1, "column 2"},
      {"codec --spec e8:q=38 --in " + p + " --tensor ints", 1, "I32"},
      {"codec --spec e8:q=38 --in " + p + " --tensor one", 1, "at least 2"},
      {"codec --spec e8:q=38 --in " + p + " --tensor missing", 1, "missing"},
      {"codec --spec e8:q=38 --in " + dir + "/nofile.safetensors --tensor x", 1, "nofile"},
      {"audit --in " + p + " --tensor odd", 1, "96"},
      {"bench codecs --codecs e8:q=0", 1, "Q = 0"},
      {"bench codecs --codecs scale=ue8m0,e8:q=38", 2, "'scale=ue8m0' comes before any codec spec"},
      {"bench codecs --codecs int:bits=4,scale=fp32", 1, "fp32"},
  };
  for (const auto& c : cases) {
    std::string out;
    EXPECT_EQ(kvlab(c.args, &out), c.rc) << c.args << "\n" << out;
    EXPECT_NE(out.find(c.must_mention), std::string::npos) << c.args << "\n" << out;
  }
}

TEST(CodecCli, BenchJsonShape) {
  std::string out;
  ASSERT_EQ(kvlab("bench codecs --json --dims 128 --sizes 256 --threads 1,2 --min-time 0", &out), 0) << out;
  const auto j = nlohmann::json::parse(stdout_json_part(out));
  ASSERT_TRUE(j.is_array());
  // copy + 3 codecs x 3 ops, for 2 thread counts.
  EXPECT_EQ(j.size(), 2u * (1 + 3 * 3));
  for (const auto& r : j) {
    for (const char* k : {"codec", "D", "N", "threads", "op", "ns_per_vector", "ratio_to_copy"})
      EXPECT_TRUE(r.contains(k)) << k;
    EXPECT_GT(r["ns_per_vector"].get<double>(), 0.0);
  }
}

// Parameters after a comma belong to the spec before them, so specs with
// several parameters can be benchmarked.
TEST(CodecCli, BenchCodecListKeepsEachSpecsParameters) {
  std::string out;
  ASSERT_EQ(kvlab("bench codecs --json --codecs int:bits=4,block=64,scale=ue8m0,e8:q=38,fp8_per64 --dims 128 "
                  "--sizes 64 --threads 1 --min-time 0",
                  &out),
            0)
      << out;
  const auto j = nlohmann::json::parse(stdout_json_part(out));
  std::set<std::string> codecs;
  for (const auto& r : j) codecs.insert(r["codec"].get<std::string>());
  EXPECT_EQ(codecs, (std::set<std::string>{"copy", "int:bits=4,block=64,scale=ue8m0", "e8:q=38", "fp8_per64"}));
}

}  // namespace
}  // namespace kvlab::codec
