// End-to-end tests of `kvlab attention` and `kvlab bench attention`
// (src/cli/cmd_attention.cpp) on a small random model: JSON output, the
// coded part per layer kind, exit codes for bad input.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "testutil/testutil.h"

using kvlab::testutil::kvlab_binary;
using kvlab::testutil::run_command;

namespace {

struct Files {
  std::string dir, config, hidden;
};

Files small_files() {
  Files f;
  f.dir = kvlab::testutil::make_temp_dir("attention_cli");
  f.config = f.dir + "/config.json";
  std::ofstream(f.config) << nlohmann::json{{"hidden_size", 256},        {"head_dim", 128},
                                            {"qk_rope_head_dim", 64},    {"compress_ratios", {0, 4, 128}},
                                            {"num_attention_heads", 4},  {"q_lora_rank", 64},
                                            {"sliding_window", 128}}
                                 .dump();
  f.hidden = f.dir + "/hidden.safetensors";
  at::Tensor x = at::randn({1, 256, 256});
  kvlab::io::SafetensorsWriter w;
  w.add_f32("x", {1, 256, 256}, x.data_ptr<float>());
  w.write(f.hidden);
  return f;
}

}  // namespace

TEST(AttentionCli, JsonPerLayerKind) {
  Files f = small_files();
  for (int layer : {0, 1, 2}) {
    std::string out;
    const std::string cmd = kvlab_binary() + " attention --weights random:4 --config " + f.config + " --layer " +
                            std::to_string(layer) + " --hidden " + f.hidden + " --tensor x --codec d4:q=10 " +
                            "--queries 50 --query-seed 3 --json";
    ASSERT_EQ(run_command(cmd, &out), 0) << out;
    auto j = nlohmann::json::parse(out.substr(out.find('{')));  // after any OpenBLAS note on stderr
    EXPECT_EQ(j["kind"], layer == 0 ? "swa" : layer == 1 ? "csa" : "hca");
    EXPECT_EQ(j["coded"], layer == 0 ? "window" : "compressed");
    EXPECT_EQ(j["coded_entries"], layer == 0 ? 256 : layer == 1 ? 64 : 2);
    EXPECT_EQ(j["positions"].size(), 50u);
    EXPECT_GE(j["positions"][0].get<int64_t>(), layer == 2 ? 127 : layer == 1 ? 3 : 0);
    const auto& m = j["metrics"];
    for (const char* k : {"logit_rel_mse", "kl_mean", "kl_p99", "attn_out_rel"}) {
      EXPECT_TRUE(std::isfinite(m[k].get<double>())) << k;
      EXPECT_GT(m[k].get<double>(), 0) << k << " layer " << layer;
    }
    EXPECT_EQ(m["queries"], 50);
    EXPECT_EQ(m["heads"], 4);
  }
  // The same call twice: the same numbers (seeded weights and sample).
  std::string a, b;
  const std::string cmd = kvlab_binary() + " attention --weights random:4 --config " + f.config +
                          " --layer 1 --coded window --hidden " + f.hidden + " --codec fp8_per64 --json";
  ASSERT_EQ(run_command(cmd, &a), 0) << a;
  ASSERT_EQ(run_command(cmd, &b), 0) << b;
  auto ja = nlohmann::json::parse(a.substr(a.find('{'))), jb = nlohmann::json::parse(b.substr(b.find('{')));
  EXPECT_EQ(ja["metrics"], jb["metrics"]);
  EXPECT_EQ(ja["coded"], "window");
  EXPECT_EQ(ja["write_path"], "published");
  // v4 write path: other compressed keys and query RoPE (YaRN at every length).
  std::string c;
  ASSERT_EQ(run_command(kvlab_binary() + " attention --weights random:4 --config " + f.config +
                            " --layer 2 --write-path v4 --hidden " + f.hidden + " --codec fp8_per64 --json",
                        &c),
            0)
      << c;
  auto jc = nlohmann::json::parse(c.substr(c.find('{')));
  EXPECT_EQ(jc["write_path"], "v4");
  EXPECT_EQ(jc["kind"], "hca");
  EXPECT_EQ(run_command(kvlab_binary() + " attention --weights random --config " + f.config +
                            " --layer 0 --write-path v5 --hidden " + f.hidden + " --codec fp8_per64",
                        &c),
            2)
      << c;
}

TEST(AttentionCli, BadInput) {
  Files f = small_files();
  const std::string base = kvlab_binary() + " attention --weights random --config " + f.config + " --hidden " +
                           f.hidden;
  std::string out;
  EXPECT_EQ(run_command(base + " --layer 0", &out), 2) << out;  // no --codec
  EXPECT_NE(out.find("--codec"), std::string::npos) << out;
  EXPECT_EQ(run_command(base + " --layer 0 --codec e8:q=38 --coded compressed", &out), 2) << out;
  EXPECT_NE(out.find("sliding-window layer"), std::string::npos) << out;
  EXPECT_EQ(run_command(base + " --layer 3 --codec e8:q=38", &out), 1) << out;
  EXPECT_NE(out.find("layer 3 out of range"), std::string::npos) << out;
  EXPECT_EQ(run_command(base + " --layer 0 --codec zz", &out), 1) << out;
  EXPECT_EQ(run_command(base + " --layer 0 --codec e8:q=38 --batch 1", &out), 1) << out;
  EXPECT_NE(out.find("--batch 1"), std::string::npos) << out;
  EXPECT_EQ(run_command(kvlab_binary() + " attention --weights random:x --config " + f.config + " --hidden " +
                            f.hidden + " --layer 0 --codec e8:q=38",
                        &out),
            2)
      << out;
}

TEST(AttentionCli, BenchReportsEveryKindAndThePerPassageCost) {
  std::string out;
  ASSERT_EQ(run_command(kvlab_binary() + " bench attention --seqlen 256 --queries 16 --reps 1 --json", &out), 0) << out;
  auto j = nlohmann::json::parse(out.substr(out.find('{')));
  ASSERT_EQ(j["rows"].size(), 3u);
  double ref = 0, codec = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& r = j["rows"][i];
    EXPECT_EQ(r["kind"], i == 0 ? "swa" : i == 1 ? "csa" : "hca");
    EXPECT_EQ(r["queries"], 16);
    EXPECT_EQ(r["coded_entries"], i == 0 ? 256 : i == 1 ? 64 : 2);
    EXPECT_GT(r["kl_mean"].get<double>(), 0);
    for (const char* k : {"inputs_cpu_seconds", "build_cpu_seconds", "score_cpu_seconds", "score_seconds"})
      EXPECT_GE(r[k].get<double>(), 0) << k;
    ref += r["inputs_cpu_seconds"].get<double>() + r["build_cpu_seconds"].get<double>();
    codec += r["score_cpu_seconds"].get<double>();
  }
  const auto& p = j["per_passage"];
  EXPECT_DOUBLE_EQ(p["reference_cpu_seconds"].get<double>(), ref);
  EXPECT_DOUBLE_EQ(p["codec_cpu_seconds"].get<double>(), codec);
  EXPECT_DOUBLE_EQ(p["codecs20_cpu_seconds"].get<double>(), ref + 20 * codec);
  EXPECT_GT(j["writer_forward_cpu_seconds"].get<double>(), 0);
  EXPECT_EQ(run_command(kvlab_binary() + " bench attention --seqlen 100", &out), 2) << out;
}
