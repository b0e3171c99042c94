// `kvlab kv`: the V4 KV write path from the command line, and
// `kvlab bench kv`: its speed against LibTorch's own matmul rate.
//
//   kvlab kv --weights PATH|random:seed=N [--config config.json] [--layers 0,2,3]
//            (--hidden FILE.safetensors[:TENSOR] | --host SPEC --seqlen N [--passage-seed N] [--text FILE])
//            --out streams.safetensors [--dtype bf16|fp32] [--write-path published|v4]
//   kvlab bench kv [--config config.json] [--seqlen 2048] [--passages 3] [--dtype bf16|fp32]
//                  [--threads N] [--matmul-n 2048] [--json]
//
// The streams are written as tensors sliding_window_kv, csa_pool_kv_ratio4,
// hca_pool_kv_ratio128 ([B, tokens, D], BF16 or F32) with the provenance
// (config, weights, layers, dtype, BLAS, LibTorch version) in __metadata__.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "common/error.h"
#include "host/host.h"
#include "io/safetensors.h"
#include "kvlab_version.h"
#include "model/blas.h"
#include "model/config.h"
#include "model/v4_kv.h"

namespace po = boost::program_options;
using kvlab::Error;
using kvlab::UsageError;

namespace {

std::vector<int> parse_layers(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty() || item.find_first_not_of("0123456789") != std::string::npos || item.size() > 6)
      throw UsageError(fmt::format("--layers '{}': expected three comma-separated layer ids SWA,CSA,HCA (e.g. 0,2,3)", s));
    out.push_back(std::stoi(item));
  }
  if (out.size() != 3)
    throw UsageError(fmt::format("--layers '{}': expected three comma-separated layer ids SWA,CSA,HCA (e.g. 0,2,3)", s));
  return out;
}

at::ScalarType parse_dtype(const std::string& s) {
  if (s == "bf16") return at::kBFloat16;
  if (s == "fp32") return at::kFloat;
  throw UsageError(fmt::format("--dtype '{}': expected bf16 or fp32", s));
}

// FILE[:TENSOR] -> [B, S, hidden] float32.
at::Tensor read_hidden(const std::string& arg) {
  std::string path = arg, tensor;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    auto colon = arg.rfind(':');
    if (colon != std::string::npos) {
      path = arg.substr(0, colon);
      tensor = arg.substr(colon + 1);
    }
  }
  auto f = kvlab::io::SafetensorsFile::open(path);
  if (tensor.empty()) {
    auto names = f.names();
    KVLAB_CHECK(names.size() == 1, "{}: holds {} tensors; name one as {}:TENSOR", path, names.size(), path);
    tensor = names[0];
  }
  const auto& ti = f.info(tensor);
  KVLAB_CHECK(ti.shape.size() == 2 || ti.shape.size() == 3,
              "{}: tensor '{}' has shape {}; hidden states must be [S, hidden] or [B, S, hidden]", path, tensor,
              kvlab::io::shape_str(ti.shape));
  std::vector<float> v = f.to_f32(tensor);
  at::Tensor t = at::empty(at::IntArrayRef(ti.shape), at::TensorOptions().dtype(at::kFloat));
  std::memcpy(t.data_ptr<float>(), v.data(), v.size() * sizeof(float));
  return ti.shape.size() == 2 ? t.unsqueeze(0) : t;
}

void add_stream(kvlab::io::SafetensorsWriter& w, const std::string& name, const at::Tensor& t) {
  at::Tensor c = t.cpu().contiguous();
  std::vector<int64_t> shape(c.sizes().begin(), c.sizes().end());
  if (c.scalar_type() == at::kBFloat16) {
    w.add(name, kvlab::io::DType::BF16, shape, c.data_ptr(), static_cast<std::size_t>(c.numel()) * 2);
  } else {
    c = c.to(at::kFloat);
    w.add_f32(name, shape, c.data_ptr<float>());
  }
}

kvlab::model::V4Config load_config(const std::string& path) {
  return path.empty() ? kvlab::model::V4Config::flash() : kvlab::model::V4Config::from_json_file(path);
}

kvlab::model::GemmMode parse_gemm(const std::string& s) {
  try {
    return kvlab::model::parse_gemm_mode(s, "--gemm");
  } catch (const kvlab::Error& e) {
    throw UsageError(e.what());
  }
}

// argv for a re-exec: the subcommand words, then its arguments.
std::vector<std::string> with_command(std::initializer_list<const char*> words, const std::vector<std::string>& args) {
  std::vector<std::string> v(words.begin(), words.end());
  v.insert(v.end(), args.begin(), args.end());
  return v;
}

int run_kv(const std::vector<std::string>& args) {
  kvlab::model::fix_openblas_core(with_command({"kv"}, args));
  std::string weights, config, layers = "0,2,3", hidden, host, text_file, out, dtype = "bf16", gemm = "auto",
                                                                                      write_path;
  int64_t seqlen = 0;
  uint64_t passage_seed = 0;
  po::options_description opts("kvlab kv options");
  opts.add_options()("help,h", "show this help")(
      "weights", po::value<std::string>(&weights),
      "checkpoint directory, one .safetensors file (checkpoint or reference names), or random:seed=N")(
      "config", po::value<std::string>(&config), "V4 config.json or reference-style JSON (default: V4-Flash)")(
      "layers", po::value<std::string>(&layers), "layer ids SWA,CSA,HCA for checkpoint weights (default 0,2,3)")(
      "hidden", po::value<std::string>(&hidden), "hidden states FILE.safetensors[:TENSOR], [B,S,hidden] or [S,hidden]")(
      "host", po::value<std::string>(&host), "instead of --hidden: a host spec such as synthetic:seed=1")(
      "seqlen", po::value<int64_t>(&seqlen), "tokens per passage with --host (multiple of 128)")(
      "passage-seed", po::value<uint64_t>(&passage_seed), "passage seed with --host (default 0)")(
      "text", po::value<std::string>(&text_file), "passage text file with --host")(
      "out", po::value<std::string>(&out), "output streams.safetensors (required)")(
      "dtype", po::value<std::string>(&dtype), "stream dtype: bf16 (default) or fp32")(
      "gemm", po::value<std::string>(&gemm), "projection GEMM: auto (default), fp32 or bf16")(
      "write-path", po::value<std::string>(&write_path),
      "published (SPEC section 2; default) or v4 (SPEC-V4-ATTENTION: compressor YaRN always, UE8M0 FP8 "
      "scales)");
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << "usage: kvlab kv --weights PATH [--config config.json] [--layers 0,2,3]\n"
                 "                (--hidden FILE.safetensors[:TENSOR] | --host SPEC --seqlen N)\n"
                 "                --out streams.safetensors [--dtype bf16|fp32] [--gemm auto|fp32|bf16]\n"
                 "                [--write-path published|v4]\n"
                 "Writes sliding_window_kv, csa_pool_kv_ratio4, hca_pool_kv_ratio128 ([B, tokens, D]).\n\n"
              << opts;
    return 0;
  }
  if (weights.empty()) throw UsageError("kv: --weights PATH (or random:seed=N) is required");
  if (out.empty()) throw UsageError("kv: --out FILE.safetensors is required");
  if (hidden.empty() == host.empty()) throw UsageError("kv: give exactly one of --hidden FILE or --host SPEC");
  if (!host.empty() && seqlen <= 0) throw UsageError("kv: --host needs --seqlen N (a multiple of 128)");
  const at::ScalarType st = parse_dtype(dtype);
  const auto gemm_mode = parse_gemm(gemm);
  const std::vector<int> L = parse_layers(layers);
  kvlab::model::V4Config cfg = load_config(config);
  if (vm.count("write-path")) {
    try {
      cfg.write_path = kvlab::model::parse_write_path(write_path, "--write-path");
    } catch (const kvlab::Error& e) {
      throw UsageError(e.what());
    }
  }

  kvlab::model::V4Weights w;
  nlohmann::json weights_desc;
  if (weights.rfind("random", 0) == 0) {
    uint64_t seed = 0;
    if (weights != "random") {
      const std::string pre = "random:seed=";
      if (weights.rfind(pre, 0) != 0 || weights.size() == pre.size() ||
          weights.find_first_not_of("0123456789", pre.size()) != std::string::npos)
        throw UsageError(fmt::format("--weights '{}': expected random:seed=N", weights));
      seed = std::stoull(weights.substr(pre.size()));
    }
    w = kvlab::model::random_weights(cfg, seed);
    weights_desc = {{"kind", "random"}, {"seed", seed}};
  } else {
    w = kvlab::model::load_weights(weights, cfg, L[0], L[1], L[2]);
    weights_desc = {{"kind", "checkpoint"}, {"path", weights}, {"layers", L}};
  }

  at::Tensor x;
  nlohmann::json input_desc;
  if (!hidden.empty()) {
    x = read_hidden(hidden);
    input_desc = {{"hidden", hidden}};
  } else {
    auto h = kvlab::host::make_host(host);
    kvlab::host::PassageInput p{"cli", "", passage_seed};
    if (!text_file.empty()) {
      std::ifstream in(text_file, std::ios::binary);
      KVLAB_CHECK(in.good(), "{}: cannot read the passage text", text_file);
      p.text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      p.name = text_file;
    }
    x = h->hidden(p, seqlen, cfg.hidden_size, c10::Device(c10::kCPU));
    input_desc = {{"host", h->describe()}, {"passage_seed", passage_seed}, {"seqlen", seqlen}, {"text", text_file}};
  }

  kvlab::model::V4KVWriter writer(cfg, w, c10::Device(c10::kCPU), gemm_mode);
  auto t0 = std::chrono::steady_clock::now();
  kvlab::model::ForwardInfo info;
  auto streams = writer.forward(x, st, &info);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  kvlab::io::SafetensorsWriter sw;
  for (const auto& [name, t] : streams) add_stream(sw, name, t);
  sw.set_metadata("kvlab_version", KVLAB_VERSION);
  sw.set_metadata("kvlab_git_commit", KVLAB_BUILD_GIT_COMMIT);
  sw.set_metadata("config", cfg.to_json().dump());
  sw.set_metadata("weights", weights_desc.dump());
  sw.set_metadata("input", input_desc.dump());
  sw.set_metadata("stream_dtype", dtype);
  sw.set_metadata("blas", kvlab::model::blas_info());
  sw.set_metadata("gemm", info.gemm);
  sw.set_metadata("torch_version", kvlab::model::torch_version());
  sw.write(out);
  for (const auto& [name, t] : streams)
    fmt::print("{:<22} {}  {}\n", name, c10::str(t.sizes()), c10::toString(t.scalar_type()));
  fmt::print("wrote {} ({:.3f} s, GEMM {})\n", out, secs, info.gemm);
  return 0;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run_bench_kv(const std::vector<std::string>& args) {
  kvlab::model::fix_openblas_core(with_command({"bench", "kv"}, args));
  std::string config, dtype = "bf16", gemm = "auto";
  int64_t seqlen = 2048;
  int passages = 3, threads = 0;
  int64_t matmul_n = 2048;
  po::options_description opts("kvlab bench kv options");
  opts.add_options()("help,h", "show this help")(
      "config", po::value<std::string>(&config), "V4 config (default: V4-Flash)")(
      "seqlen", po::value<int64_t>(&seqlen), "tokens per passage (default 2048)")(
      "passages", po::value<int>(&passages), "timed passages (default 3; one extra warm-up)")(
      "dtype", po::value<std::string>(&dtype), "stream dtype bf16 (default) or fp32")(
      "gemm", po::value<std::string>(&gemm), "projection GEMM: auto (default), fp32 or bf16")(
      "threads", po::value<int>(&threads), "LibTorch intra-op threads (default: leave as is)")(
      "matmul-n", po::value<int64_t>(&matmul_n), "size of the square reference matmul (default 2048)")(
      "json", "print one JSON object");
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << "usage: kvlab bench kv [--config config.json] [--seqlen 2048] [--passages 3] [--dtype bf16|fp32]\n"
                 "                      [--gemm auto|fp32|bf16] [--threads N] [--json]\n"
                 "Seconds per passage of the V4 KV write path (random weights, synthetic host) and its\n"
                 "GFLOP/s as a fraction of LibTorch's square fp32 matmul rate measured in the same run.\n\n"
              << opts;
    return 0;
  }
  if (passages < 1) throw UsageError(fmt::format("--passages {}: expected >= 1", passages));
  if (threads < 0) throw UsageError(fmt::format("--threads {}: expected >= 0", threads));
  if (matmul_n < 16 || matmul_n > 16384) throw UsageError(fmt::format("--matmul-n {}: expected 16..16384", matmul_n));
  const at::ScalarType st = parse_dtype(dtype);
  const auto gemm_mode = parse_gemm(gemm);
  if (threads > 0) at::set_num_threads(threads);
  kvlab::model::V4Config cfg = load_config(config);
  kvlab::model::V4KVWriter writer(cfg, kvlab::model::random_weights(cfg, 0), c10::Device(c10::kCPU), gemm_mode);
  auto host = kvlab::host::make_host("synthetic:seed=1");
  const c10::Device cpu(c10::kCPU);

  // LibTorch's own rate: square fp32 matmul, best of 3 after a warm-up.
  const int64_t n = matmul_n;
  at::Tensor a = at::randn({n, n}), b = at::randn({n, n});
  (void)at::mm(a, b);
  double best_mm = 1e30;
  for (int i = 0; i < 3; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    at::Tensor c = at::mm(a, b);
    best_mm = std::min(best_mm, seconds_since(t0));
  }
  const double mm_gflops = 2.0 * n * n * n / best_mm / 1e9;

  // The fused projection GEMM alone, same shapes as the writer's: fp32
  // (at::mm) always, bf16 (oneDNN) when the writer has that path.
  at::Tensor xs = host->hidden({"warm", "", 0}, seqlen, cfg.hidden_size, cpu).reshape({seqlen, cfg.hidden_size});
  at::Tensor xs32 = xs.to(at::kFloat);
  at::Tensor wf = at::randn({7 * cfg.head_dim, cfg.hidden_size});
  auto best_of_3 = [](auto&& f) {
    f();
    double best = 1e30;
    for (int i = 0; i < 3; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      f();
      best = std::min(best, seconds_since(t0));
    }
    return best;
  };
  const double best_gemm_fp32 = best_of_3([&] { (void)at::mm(xs32, wf.t()); });
  double best_gemm_bf16 = 0;
  if (writer.bf16_ready()) {
    kvlab::model::Bf16Gemm g(wf.to(at::kBFloat16).to(at::kFloat));
    const at::Tensor xb = xs.to(at::kBFloat16).contiguous();
    best_gemm_bf16 = best_of_3([&] { (void)g.run(xb); });
  }
  const double gemm_flops = 2.0 * static_cast<double>(seqlen) * cfg.hidden_size * 7.0 * cfg.head_dim;

  // Passages: hidden states prepared outside the timed region.
  std::vector<double> secs;
  kvlab::model::ForwardInfo info;
  for (int p = 0; p <= passages; ++p) {
    at::Tensor x = host->hidden({"p" + std::to_string(p), "", static_cast<uint64_t>(p)}, seqlen, cfg.hidden_size, cpu);
    auto t0 = std::chrono::steady_clock::now();
    auto out = writer.forward(x, st, &info);
    const double s = seconds_since(t0);
    if (p > 0) secs.push_back(s);  // p = 0 is the warm-up
  }
  double mean = 0;
  for (double s : secs) mean += s;
  mean /= static_cast<double>(secs.size());
  const double best = *std::min_element(secs.begin(), secs.end());
  const double flops = writer.projection_flops(seqlen);
  const double gflops = flops / mean / 1e9;
  nlohmann::json j = {{"seqlen", seqlen},
                      {"hidden_size", cfg.hidden_size},
                      {"head_dim", cfg.head_dim},
                      {"stream_dtype", dtype},
                      {"passages", passages},
                      {"seconds_per_passage", mean},
                      {"seconds_per_passage_best", best},
                      {"projection_gflop", flops / 1e9},
                      {"gflops", gflops},
                      {"gemm", info.gemm},
                      {"fused_gemm_seconds", writer.bf16_ready() ? best_gemm_bf16 : best_gemm_fp32},
                      {"fused_gemm_fp32_seconds", best_gemm_fp32},
                      {"fused_gemm_fp32_gflops", gemm_flops / best_gemm_fp32 / 1e9},
                      {"fused_gemm_bf16_seconds", writer.bf16_ready() ? nlohmann::json(best_gemm_bf16) : nlohmann::json()},
                      {"fused_gemm_bf16_gflops",
                       writer.bf16_ready() ? nlohmann::json(gemm_flops / best_gemm_bf16 / 1e9) : nlohmann::json()},
                      {"bf16_unavailable", writer.bf16_unavailable_reason()},
                      {"matmul_gflops", mm_gflops},
                      {"fraction_of_matmul", gflops / mm_gflops},
                      {"torch_threads", at::get_num_threads()},
                      {"openblas_core", kvlab::model::openblas_core()},
                      {"blas", kvlab::model::blas_info()},
                      {"torch_version", kvlab::model::torch_version()}};
  if (vm.count("json")) {
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  fmt::print("V4 KV write path: seqlen {}, hidden {}, head_dim {}, stream {}\n", seqlen, cfg.hidden_size, cfg.head_dim,
             dtype);
  fmt::print("  seconds per passage   {:.4f} (best {:.4f}, {} passages)\n", mean, best, passages);
  fmt::print("  projection            {:.1f} GFLOP -> {:.1f} GFLOP/s\n", flops / 1e9, gflops);
  fmt::print("  GEMM path             {}\n", info.gemm);
  if (!writer.bf16_ready()) fmt::print("  (bf16 GEMM not used: {})\n", writer.bf16_unavailable_reason());
  if (writer.bf16_ready())
    fmt::print("  fused GEMM alone      bf16 {:.4f} s ({:.1f} GFLOP/s), fp32 {:.4f} s ({:.1f} GFLOP/s)\n",
               best_gemm_bf16, gemm_flops / best_gemm_bf16 / 1e9, best_gemm_fp32, gemm_flops / best_gemm_fp32 / 1e9);
  else
    fmt::print("  fused GEMM alone      fp32 {:.4f} s ({:.1f} GFLOP/s)\n", best_gemm_fp32,
               gemm_flops / best_gemm_fp32 / 1e9);
  fmt::print("  LibTorch matmul rate  {:.1f} GFLOP/s ({}x{} fp32)\n", mm_gflops, n, n);
  fmt::print("  fraction of matmul    {:.1f} %\n", 100.0 * gflops / mm_gflops);
  fmt::print("  threads {}, BLAS {}, LibTorch {}\n", at::get_num_threads(), kvlab::model::blas_info(),
             kvlab::model::torch_version());
  return 0;
}

kvlab::cli::CommandRegistrar reg_kv{"kv", "V4 KV write path: hidden states -> the three KV streams", run_kv};
kvlab::cli::CommandRegistrar reg_bench_kv{"bench kv", "speed of the V4 KV write path vs LibTorch's matmul rate",
                                          run_bench_kv};

}  // namespace
