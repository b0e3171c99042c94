// End-to-end tests of `kvlab kv` and `kvlab bench kv` (src/cli/cmd_kv.cpp):
// the reference run through the command line, provenance metadata, exit
// codes for bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "testutil/testutil.h"

using kvlab::io::SafetensorsFile;
using kvlab::testutil::kvlab_binary;
using kvlab::testutil::reference_path;
using kvlab::testutil::run_command;

namespace {

// Same bound as model_parity_test (measured 4.8e-6 there).
constexpr double kStreamAbsTol = 1e-5;

std::string small_config(const std::string& dir, const std::string& run) {
  auto ref = SafetensorsFile::open(reference_path("dsv4_small.safetensors"));
  std::string path = dir + "/" + run + ".json";
  std::ofstream(path) << ref.metadata().at("config/" + run);
  return path;
}

}  // namespace

TEST(KvCli, ReferenceRunMatchesPublishedStreams) {
  auto dir = kvlab::testutil::make_temp_dir("model_cli");
  const std::string ref = reference_path("dsv4_small.safetensors");
  const std::string out = dir + "/streams.safetensors";
  std::string log;
  int rc = run_command(kvlab_binary() + " kv --weights " + ref + " --config " + small_config(dir, "S1024_yarn") +
                           " --hidden " + ref + ":input/S1024 --out " + out + " --dtype fp32",
                       &log);
  ASSERT_EQ(rc, 0) << log;
  auto got = SafetensorsFile::open(out);
  auto want = SafetensorsFile::open(ref);
  for (auto [ours, theirs] : {std::pair{"sliding_window_kv", "sliding_window_kv"},
                              std::pair{"csa_pool_kv_ratio4", "csa_pool_kv"},
                              std::pair{"hca_pool_kv_ratio128", "hca_pool_kv"}}) {
    const std::string wn = std::string("output/S1024_yarn/") + theirs;
    ASSERT_EQ(got.info(ours).shape, want.info(wn).shape) << ours;
    EXPECT_EQ(got.info(ours).dtype, kvlab::io::DType::F32);
    auto a = got.to_f32(ours), b = want.to_f32(wn);
    double worst = 0;
    for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, static_cast<double>(std::fabs(a[i] - b[i])));
    EXPECT_LE(worst, kStreamAbsTol) << ours;
  }
  const auto& md = got.metadata();
  EXPECT_EQ(md.at("stream_dtype"), "fp32");
  EXPECT_EQ(nlohmann::json::parse(md.at("config"))["original_seq_len"], 256);
  EXPECT_EQ(nlohmann::json::parse(md.at("weights"))["kind"], "checkpoint");
  EXPECT_FALSE(md.at("blas").empty());
  EXPECT_FALSE(md.at("torch_version").empty());
}

TEST(KvCli, HostInputAndBf16Default) {
  auto dir = kvlab::testutil::make_temp_dir("model_cli");
  const std::string out = dir + "/s.safetensors";
  std::string log;
  int rc = run_command(kvlab_binary() + " kv --weights random:seed=4 --config " + small_config(dir, "S512") +
                           " --host synthetic:seed=2 --seqlen 256 --out " + out,
                       &log);
  ASSERT_EQ(rc, 0) << log;
  auto f = SafetensorsFile::open(out);
  EXPECT_EQ(f.info("sliding_window_kv").dtype, kvlab::io::DType::BF16);
  EXPECT_EQ(f.info("sliding_window_kv").shape, (std::vector<int64_t>{1, 256, 128}));
  EXPECT_EQ(f.info("csa_pool_kv_ratio4").shape, (std::vector<int64_t>{1, 64, 128}));
  EXPECT_EQ(f.info("hca_pool_kv_ratio128").shape, (std::vector<int64_t>{1, 2, 128}));
  auto input = nlohmann::json::parse(f.metadata().at("input"));
  EXPECT_EQ(input["host"]["seed"], 2);
  EXPECT_EQ(nlohmann::json::parse(f.metadata().at("weights"))["seed"], 4);
}

TEST(KvCli, WritePathOption) {
  auto dir = kvlab::testutil::make_temp_dir("model_cli");
  const std::string cfg = small_config(dir, "S512_fp8uniform");  // simulate_fp8 = true
  std::string log;
  auto run = [&](const std::string& mode, const std::string& out) {
    return run_command(kvlab_binary() + " kv --weights random:seed=4 --config " + cfg +
                           " --host synthetic:seed=2 --seqlen 256 --dtype fp32 --out " + out + mode,
                       &log);
  };
  ASSERT_EQ(run("", dir + "/p.safetensors"), 0) << log;
  ASSERT_EQ(run(" --write-path v4", dir + "/v.safetensors"), 0) << log;
  auto p = SafetensorsFile::open(dir + "/p.safetensors");
  auto v = SafetensorsFile::open(dir + "/v.safetensors");
  EXPECT_FALSE(nlohmann::json::parse(p.metadata().at("config")).contains("write_path"));
  EXPECT_EQ(nlohmann::json::parse(v.metadata().at("config"))["write_path"], "v4");
  // Sliding window: the rope dims (last 64 of 128) agree, the FP8 nope dims differ.
  auto a = p.to_f32("sliding_window_kv"), b = v.to_f32("sliding_window_kv");
  ASSERT_EQ(a.size(), b.size());
  int rope_diff = 0, nope_diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) (i % 128 < 64 ? nope_diff : rope_diff) += a[i] != b[i];
  EXPECT_EQ(rope_diff, 0);
  EXPECT_GT(nope_diff, 0);
  // HCA: entry 1 sits at position 128, where v4's YaRN changes the low-frequency pairs.
  auto ha = p.to_f32("hca_pool_kv_ratio128"), hb = v.to_f32("hca_pool_kv_ratio128");
  int hca_rope_diff = 0;
  for (std::size_t i = 128; i < ha.size(); ++i) hca_rope_diff += i % 128 >= 64 && ha[i] != hb[i];
  EXPECT_GT(hca_rope_diff, 0);
  EXPECT_EQ(run(" --write-path v5", dir + "/x.safetensors"), 2) << log;
  EXPECT_NE(log.find("write path 'v5'; expected published or v4"), std::string::npos) << log;
}

TEST(KvCli, BadInputExitCodes) {
  auto dir = kvlab::testutil::make_temp_dir("model_cli");
  const std::string ref = reference_path("dsv4_small.safetensors");
  std::string log;
  // Missing required options: usage error (2).
  EXPECT_EQ(run_command(kvlab_binary() + " kv --weights random --out " + dir + "/x.safetensors", &log), 2) << log;
  EXPECT_EQ(run_command(kvlab_binary() + " kv --weights random --host synthetic --seqlen 256 --out " + dir +
                            "/x.safetensors --dtype fp16",
                        &log),
            2)
      << log;
  // Weights that do not fit the (default V4-Flash) config: error (1) naming the shape.
  EXPECT_EQ(run_command(kvlab_binary() + " kv --weights " + ref + " --hidden " + ref + ":input/S512 --out " + dir +
                            "/x.safetensors",
                        &log),
            1);
  EXPECT_NE(log.find("expected [512, 4096]"), std::string::npos) << log;
  // seqlen not a multiple of 128.
  EXPECT_EQ(run_command(kvlab_binary() + " kv --weights random --config " + small_config(dir, "S512") +
                            " --host synthetic --seqlen 300 --out " + dir + "/x.safetensors",
                        &log),
            1);
  EXPECT_NE(log.find("seqlen 300"), std::string::npos) << log;
  // A corrupt weights file.
  std::ofstream(dir + "/bad.safetensors") << "garbage";
  EXPECT_EQ(run_command(kvlab_binary() + " kv --weights " + dir + "/bad.safetensors --host synthetic --seqlen 256 "
                            "--out " + dir + "/x.safetensors",
                        &log),
            1);
  EXPECT_NE(log.find("bad.safetensors"), std::string::npos) << log;
}

TEST(BenchKvCli, SmallConfigJson) {
  auto dir = kvlab::testutil::make_temp_dir("model_cli");
  std::string log;
  int rc = run_command(kvlab_binary() + " bench kv --config " + small_config(dir, "S512") +
                           " --seqlen 256 --passages 1 --matmul-n 256 --json",
                       &log);
  ASSERT_EQ(rc, 0) << log;
  // The log may start with the BLAS re-exec note on stderr.
  ASSERT_NE(log.find('{'), std::string::npos) << log;
  auto j = nlohmann::json::parse(log.substr(log.find('{')));
  EXPECT_EQ(j["seqlen"], 256);
  EXPECT_GT(j["seconds_per_passage"].get<double>(), 0.0);
  EXPECT_GT(j["matmul_gflops"].get<double>(), 0.0);
  EXPECT_GT(j["fraction_of_matmul"].get<double>(), 0.0);
  EXPECT_NEAR(j["projection_gflop"].get<double>(), 2.0 * 256 * 256 * 7 * 128 / 1e9, 1e-9);
  EXPECT_TRUE(j.contains("blas"));
  EXPECT_TRUE(j.contains("openblas_core"));
  // Which GEMM ran: the embedded default's inputs are bf16-exact, so auto
  // takes the bf16 path wherever the CPU has a fast one.
  const std::string gemm = j["gemm"].get<std::string>();
  EXPECT_TRUE(gemm.rfind("bf16 (oneDNN ", 0) == 0 || gemm == "fp32 (at::mm)") << gemm;
  EXPECT_GT(j["fused_gemm_fp32_gflops"].get<double>(), 0.0);
}

TEST(BenchKvCli, GemmSettingIsCheckedAndForced) {
  auto dir = kvlab::testutil::make_temp_dir("model_cli_gemm");
  std::string log;
  int rc = run_command(kvlab_binary() + " bench kv --gemm amx --passages 1", &log);
  EXPECT_EQ(rc, 2) << log;
  EXPECT_NE(log.find("--gemm 'amx'; expected auto, fp32 or bf16"), std::string::npos) << log;
  rc = run_command(kvlab_binary() + " bench kv --config " + small_config(dir, "S512") +
                       " --seqlen 256 --passages 1 --matmul-n 256 --gemm fp32 --json",
                   &log);
  ASSERT_EQ(rc, 0) << log;
  auto j = nlohmann::json::parse(log.substr(log.find('{')));
  EXPECT_EQ(j["gemm"], "fp32 (at::mm)");
  EXPECT_EQ(j["bf16_unavailable"], "gemm = fp32");
}
