// `kvlab attention`: how much a codec moves V4's attention on one layer, and
// `kvlab bench attention`: the cost of building an attention probe and of
// scoring one codec with it.
//
//   kvlab attention --weights PATH|random[:seed] [--config config.json] --layer L
//                   --hidden FILE [--tensor NAME] [--batch B] --codec SPEC
//                   [--coded window|compressed] [--queries N] [--query-seed N]
//                   [--write-path published|v4] [--json]
//   kvlab bench attention [--seqlen 2048] [--queries 256] [--json]
//
// The layer's streams come from the V4 KV write path (V4KVWriter: the
// sliding-window KV, plus the CSA or HCA compressed KV on those layers), its
// queries from the query path (v4_attention.h); the coded part (default: the
// window on SWA layers, the compressed KV on CSA / HCA layers) goes through
// the codec's round trip and AttentionProbe scores it against the uncoded
// attention. The probe's inputs (query sample, queries, RoPE of queries and
// keys by layer kind and write-path mode) come from
// model::layer_attention_inputs, as in the experiment executor. Not here:
// sweeps over codecs or passages (the experiment executor's job).
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <ctime>
#include <functional>
#include <filesystem>
#include <iostream>
#include <optional>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "codec/codec.h"
#include "codec/torch_adapter.h"
#include "common/error.h"
#include "io/safetensors.h"
#include "model/blas.h"
#include "model/config.h"
#include "model/v4_attention.h"
#include "model/v4_kv.h"

namespace po = boost::program_options;
using kvlab::Error;
using kvlab::UsageError;
namespace km = kvlab::model;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// argv for a re-exec (fix_openblas_core): the subcommand words, then its arguments.
std::vector<std::string> with_command(std::initializer_list<const char*> words, const std::vector<std::string>& args) {
  std::vector<std::string> v(words.begin(), words.end());
  v.insert(v.end(), args.begin(), args.end());
  return v;
}

// "random", "random:N", "random:seed=N" -> seed; false for a path.
bool parse_random(const std::string& s, uint64_t* seed) {
  if (s.rfind("random", 0) != 0 || (s.size() > 6 && s[6] != ':')) return false;
  *seed = 0;
  if (s == "random") return true;
  std::string v = s.substr(7);
  if (v.rfind("seed=", 0) == 0) v = v.substr(5);
  if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != std::string::npos)
    throw UsageError(fmt::format("--weights '{}': expected random, random:N or random:seed=N", s));
  *seed = std::stoull(v);
  return true;
}

// Hidden states [S, hidden] float32 from FILE (tensor `name`, or its only
// tensor; [S, hidden] or [B, S, hidden] with batch row `batch`).
at::Tensor read_hidden(const std::string& path, std::string name, int64_t batch) {
  auto f = kvlab::io::SafetensorsFile::open(path);
  if (name.empty()) {
    auto names = f.names();
    KVLAB_CHECK(names.size() == 1, "{}: holds {} tensors; name one with --tensor", path, names.size());
    name = names[0];
  }
  const auto& ti = f.info(name);
  KVLAB_CHECK(ti.shape.size() == 2 || ti.shape.size() == 3,
              "{}: tensor '{}' has shape {}; hidden states must be [S, hidden] or [B, S, hidden]", path, name,
              kvlab::io::shape_str(ti.shape));
  std::vector<float> v = f.to_f32(name);
  at::Tensor t = at::empty(at::IntArrayRef(ti.shape), at::TensorOptions().dtype(at::kFloat));
  std::memcpy(t.data_ptr<float>(), v.data(), v.size() * sizeof(float));
  if (ti.shape.size() == 2) {
    KVLAB_CHECK(batch == 0, "--batch {}: tensor '{}' is [S, hidden] (one passage)", batch, name);
    return t;
  }
  KVLAB_CHECK(batch >= 0 && batch < ti.shape[0], "--batch {}: tensor '{}' has {} passages", batch, name, ti.shape[0]);
  return t[batch];
}

nlohmann::json metrics_json(const km::AttentionMetrics& m) {
  return {{"logit_rel_mse", m.logit_rel_mse}, {"logit_rel_mse_coded", m.logit_rel_mse_coded},
          {"kl_mean", m.kl_mean},             {"kl_p99", m.kl_p99},
          {"kl_max", m.kl_max},               {"attn_out_rel", m.attn_out_rel},
          {"queries", m.queries},             {"heads", m.heads},
          {"visible", m.visible},             {"visible_coded", m.visible_coded}};
}

struct AttentionArgs {
  std::string weights, config, hidden, tensor, codec_spec, coded_s, write_path;
  int layer = -1;
  int64_t batch = 0, queries = 256;
  uint64_t query_seed = 0;
  bool has_write_path = false, json = false;
};

// Parses and checks the options; nullopt after printing --help.
std::optional<AttentionArgs> parse_attention_args(const std::vector<std::string>& args) {
  AttentionArgs a;
  po::options_description opts("kvlab attention options");
  opts.add_options()("help,h", "show this help")(
      "weights", po::value<std::string>(&a.weights),
      "checkpoint directory or .safetensors file, or random[:seed] (write-path and query weights)")(
      "config", po::value<std::string>(&a.config), "V4 config.json (default: V4-Flash)")(
      "layer", po::value<int>(&a.layer), "layer id; its kind (SWA / CSA / HCA) comes from compress_ratios")(
      "hidden", po::value<std::string>(&a.hidden), "hidden states FILE.safetensors ([S, hidden] or [B, S, hidden])")(
      "tensor", po::value<std::string>(&a.tensor), "tensor name in --hidden (default: its only tensor)")(
      "batch", po::value<int64_t>(&a.batch), "passage row of a [B, S, hidden] tensor (default 0)")(
      "codec", po::value<std::string>(&a.codec_spec), "codec spec, e.g. e8:q=38, d4:q=10, fp8_per64")(
      "coded", po::value<std::string>(&a.coded_s),
      "part to code: window or compressed (default: window on SWA layers, compressed on CSA / HCA)")(
      "queries", po::value<int64_t>(&a.queries), "sampled query positions (default 256; 0 = all)")(
      "query-seed", po::value<uint64_t>(&a.query_seed), "seed of the query sample (default 0)")(
      "write-path", po::value<std::string>(&a.write_path),
      "published or v4 (default: the config's, else published); the queries' CSA / HCA RoPE uses YaRN "
      "as the write path's compressed keys do (v4: always; published: beyond original_seq_len)")(
      "json", "print one JSON object");
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << "usage: kvlab attention --weights PATH|random[:seed] [--config config.json] --layer L\n"
                 "                       --hidden FILE [--tensor NAME] --codec SPEC [--coded window|compressed]\n"
                 "                       [--queries N] [--query-seed N] [--write-path published|v4] [--json]\n"
                 "Codes layer L's KV with the codec and prints how far V4's attention moves: logit_rel_mse,\n"
                 "kl_mean / kl_p99 (KL(p_ref || p_codec) with the sink), attn_out_rel.\n\n"
              << opts;
    return std::nullopt;
  }
  if (a.weights.empty()) throw UsageError("attention: --weights PATH (or random[:seed]) is required");
  if (a.hidden.empty()) throw UsageError("attention: --hidden FILE is required");
  if (a.codec_spec.empty()) throw UsageError("attention: --codec SPEC is required");
  if (a.layer < 0) throw UsageError("attention: --layer L (>= 0) is required");
  if (a.queries < 0) throw UsageError(fmt::format("--queries {}: expected >= 0", a.queries));
  a.has_write_path = vm.count("write-path") > 0;
  a.json = vm.count("json") > 0;
  return a;
}

// The write-path and query weights of one layer (random or a checkpoint),
// and their description for the JSON output.
struct LayerWeights {
  km::V4Weights kv;
  km::V4QueryWeights q;
  nlohmann::json desc;
};

LayerWeights load_layer_weights(const AttentionArgs& a, const km::V4Config& cfg, const km::V4AttentionConfig& acfg,
                                km::LayerKind kind) {
  LayerWeights w;
  uint64_t seed = 0;
  if (parse_random(a.weights, &seed)) {
    w.kv = km::random_weights(cfg, seed);
    w.q = km::random_query_weights(cfg, acfg, seed);
    w.desc = {{"kind", "random"}, {"seed", seed}};
    return w;
  }
  // The loader reads one layer of each kind: this layer for its own kind.
  auto first_of = [&](km::LayerKind k) {
    auto ids = cfg.layers_of(k);
    KVLAB_CHECK(!ids.empty(), "{}: the config has no {} layer", a.config, km::layer_kind_name(k));
    return ids[0];
  };
  const int csa = kind == km::LayerKind::CSA ? a.layer : first_of(km::LayerKind::CSA);
  const int hca = kind == km::LayerKind::HCA ? a.layer : first_of(km::LayerKind::HCA);
  w.kv = km::load_weights(a.weights, cfg, a.layer, csa, hca);
  w.q = km::load_query_weights(a.weights, cfg, acfg, a.layer);
  w.desc = {{"kind", "checkpoint"}, {"path", a.weights}, {"layer", a.layer}};
  return w;
}

void print_attention_text(const nlohmann::json& j, const km::AttentionMetrics& m,
                          const std::vector<int64_t>& positions) {
  fmt::print("layer {} ({}, {} write path), {} tokens, coded {} ({} vectors), codec {} ({} bits/vector)\n",
             j["layer"].get<int>(), j["kind"].get<std::string>(), j["write_path"].get<std::string>(),
             j["seqlen"].get<int64_t>(), j["coded"].get<std::string>(), j["coded_entries"].get<int64_t>(),
             j["codec"].get<std::string>(), j["bits_per_vector"].get<double>());
  fmt::print("{} queries x {} heads (seed {}, positions {}..{}), {} visible entries ({} coded)\n", m.queries, m.heads,
             j["query_seed"].get<uint64_t>(), positions.front(), positions.back(), m.visible, m.visible_coded);
  fmt::print("  logit_rel_mse        {:.6g}\n", m.logit_rel_mse);
  fmt::print("  logit_rel_mse_coded  {:.6g}\n", m.logit_rel_mse_coded);
  fmt::print("  kl_mean              {:.6g}\n", m.kl_mean);
  fmt::print("  kl_p99               {:.6g}\n", m.kl_p99);
  fmt::print("  kl_max               {:.6g}\n", m.kl_max);
  fmt::print("  attn_out_rel         {:.6g}\n", m.attn_out_rel);
  const auto& t = j["seconds"];
  fmt::print("seconds: weights {:.3f}, streams {:.3f}, queries {:.3f}, probe {:.3f}, codec {:.3f}, score {:.3f}\n",
             t["weights"].get<double>(), t["streams"].get<double>(), t["queries"].get<double>(),
             t["probe"].get<double>(), t["codec"].get<double>(), t["score"].get<double>());
}

int run_attention(const std::vector<std::string>& args) {
  km::fix_openblas_core(with_command({"attention"}, args));
  const auto parsed = parse_attention_args(args);
  if (!parsed) return 0;
  const AttentionArgs& a = *parsed;

  km::V4Config cfg = a.config.empty() ? km::V4Config::flash() : km::V4Config::from_json_file(a.config);
  km::V4AttentionConfig acfg =
      a.config.empty() ? km::V4AttentionConfig{} : km::V4AttentionConfig::from_json_file(a.config);
  if (a.has_write_path) {
    try {
      cfg.write_path = km::parse_write_path(a.write_path, "--write-path");
    } catch (const Error& e) {
      throw UsageError(e.what());
    }
  }
  const km::LayerKind kind = cfg.layer_kind(a.layer);
  const km::CodedPart coded = a.coded_s.empty() ? (kind == km::LayerKind::SWA ? km::CodedPart::kWindow
                                                                               : km::CodedPart::kCompressed)
                                                : km::parse_coded_part(a.coded_s);
  if (kind == km::LayerKind::SWA && coded == km::CodedPart::kCompressed)
    throw UsageError(
        fmt::format("--coded compressed: layer {} is a sliding-window layer (no compressed KV)", a.layer));
  auto codec = kvlab::codec::make_codec(a.codec_spec, cfg.head_dim);

  auto t0 = std::chrono::steady_clock::now();
  const LayerWeights w = load_layer_weights(a, cfg, acfg, kind);
  const double t_weights = seconds_since(t0);

  at::Tensor x = read_hidden(a.hidden, a.tensor, a.batch);  // [S, hidden]
  const int64_t S = x.size(0);
  t0 = std::chrono::steady_clock::now();
  km::V4KVWriter writer(cfg, w.kv);
  const char* cstream = kind == km::LayerKind::CSA ? km::kStreamCSA : km::kStreamHCA;
  std::vector<std::string> want = {km::kStreamSWA};
  if (kind != km::LayerKind::SWA) want.push_back(cstream);
  auto streams = writer.forward_streams(x.unsqueeze(0), want);
  const double t_streams = seconds_since(t0);

  t0 = std::chrono::steady_clock::now();
  const km::AttentionInputs in =
      km::layer_attention_inputs(cfg, acfg, w.q, kind, coded, x, streams.at(km::kStreamSWA).squeeze(0),
                                 kind == km::LayerKind::SWA ? at::Tensor() : streams.at(cstream).squeeze(0),
                                 a.queries, a.query_seed);
  const std::vector<int64_t>& positions = in.positions;
  const double t_queries = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  km::AttentionProbe probe(in);
  const double t_probe = seconds_since(t0);
  const at::Tensor& ref = coded == km::CodedPart::kWindow ? in.window_kv : in.compressed_kv;
  t0 = std::chrono::steady_clock::now();
  at::Tensor decoded = kvlab::codec::roundtrip(*codec, ref.to(at::kFloat));
  const double t_codec = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  const km::AttentionMetrics m = probe.score(decoded);
  const double t_score = seconds_since(t0);

  nlohmann::json j = {{"layer", a.layer},
                      {"kind", km::layer_kind_name(kind)},
                      {"seqlen", S},
                      {"write_path", km::write_path_name(cfg.write_path)},
                      {"coded", km::coded_part_name(coded)},
                      {"coded_entries", ref.size(0)},
                      {"codec", codec->spec()},
                      {"bits_per_vector", codec->bits_per_vector()},
                      {"weights", w.desc},
                      {"hidden", a.hidden},
                      {"tensor", a.tensor},
                      {"query_seed", a.query_seed},
                      {"positions", positions},
                      {"metrics", metrics_json(m)},
                      {"seconds",
                       {{"weights", t_weights},
                        {"streams", t_streams},
                        {"queries", t_queries},
                        {"probe", t_probe},
                        {"codec", t_codec},
                        {"score", t_score}}}};
  if (a.json) {
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  print_attention_text(j, m, positions);
  return 0;
}

// Wall and process-CPU seconds (all threads) of the fastest of `reps` calls
// (CPU time is what a loaded machine still measures fairly).
struct Timing {
  double wall = 1e30, cpu = 1e30;
};
template <class F>
Timing best_of(int reps, F&& f) {
  Timing t;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::clock_t c0 = std::clock();
    f();
    t.cpu = std::min(t.cpu, static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC);
    t.wall = std::min(t.wall, seconds_since(t0));
  }
  return t;
}

// One layer kind's probe on synthetic V4-Flash-sized data: queries from the
// query path (random weights), probe build, one score.
nlohmann::json bench_kind(const std::string& k, int64_t S, int64_t n, int reps, const km::V4Config& cfg,
                          const km::V4QueryWeights& qw, const at::Tensor& hid,
                          const std::function<at::Tensor(std::vector<int64_t>, double)>& bf) {
  const int64_t D = cfg.head_dim;
  const km::LayerKind kind = k == "csa" ? km::LayerKind::CSA : k == "hca" ? km::LayerKind::HCA : km::LayerKind::SWA;
  const int64_t m = k == "csa" ? cfg.csa_ratio : k == "hca" ? cfg.hca_ratio : 0;
  const km::CodedPart coded = m == 0 ? km::CodedPart::kWindow : km::CodedPart::kCompressed;
  const at::Tensor kw = bf({S, D}, 1.0);
  const at::Tensor kc = m > 0 ? bf({S / m, D}, 1.0) : at::Tensor();
  km::AttentionInputs in;
  const Timing tq = best_of(reps, [&] {
    in = km::layer_attention_inputs(cfg, km::V4AttentionConfig{}, qw, kind, coded, hid, kw, kc, n, 0);
  });
  std::unique_ptr<km::AttentionProbe> probe;
  const Timing tb = best_of(reps, [&] { probe = std::make_unique<km::AttentionProbe>(in); });
  const at::Tensor& ref = probe->coded_reference();
  at::Tensor dec = ref + bf({ref.size(0), D}, 0.05);
  km::AttentionMetrics met;
  const Timing ts = best_of(reps, [&] { met = probe->score(dec); });
  return {{"kind", k},
          {"coded", km::coded_part_name(coded)},
          {"coded_entries", ref.size(0)},
          {"queries", probe->num_queries()},
          {"blocks", probe->blocks()},
          {"inputs_seconds", tq.wall},
          {"inputs_cpu_seconds", tq.cpu},
          {"build_seconds", tb.wall},
          {"build_cpu_seconds", tb.cpu},
          {"score_seconds", ts.wall},
          {"score_cpu_seconds", ts.cpu},
          {"kl_mean", met.kl_mean}};
}

void print_bench_attention(const nlohmann::json& j, int reps) {
  fmt::print("attention probe, {} tokens, {} heads x {} dims (best of {}; {} threads); seconds wall / CPU\n",
             j["seqlen"].get<int64_t>(), j["heads"].get<int64_t>(), j["head_dim"].get<int64_t>(), reps,
             j["torch_threads"].get<int>());
  fmt::print("  V4 KV write path forward (all three streams): {:.3f} / {:.3f}\n",
             j["writer_forward_seconds"].get<double>(), j["writer_forward_cpu_seconds"].get<double>());
  fmt::print("  {:<5} {:<11} {:>7} {:>7} {:>6} {:>15} {:>15} {:>15}\n", "kind", "coded", "entries", "queries",
             "blocks", "inputs", "build", "score");
  auto pair = [](const nlohmann::json& r, const char* w) {
    return fmt::format("{:.3f} / {:.3f}", r[std::string(w) + "_seconds"].get<double>(),
                       r[std::string(w) + "_cpu_seconds"].get<double>());
  };
  for (const auto& r : j["rows"])
    fmt::print("  {:<5} {:<11} {:>7} {:>7} {:>6} {:>15} {:>15} {:>15}\n", r["kind"].get<std::string>(),
               r["coded"].get<std::string>(), r["coded_entries"].get<int64_t>(), r["queries"].get<int64_t>(),
               r["blocks"].get<int64_t>(), pair(r, "inputs"), pair(r, "build"), pair(r, "score"));
  const auto& sm = j["per_passage"];
  fmt::print("per passage, three streams, {} queries (CPU s): reference (inputs + build) {:.3f}, one codec {:.3f}, "
             "20 codecs {:.3f}; write path {:.3f}\n",
             sm["queries"].get<int64_t>(), sm["reference_cpu_seconds"].get<double>(),
             sm["codec_cpu_seconds"].get<double>(), sm["codecs20_cpu_seconds"].get<double>(),
             j["writer_forward_cpu_seconds"].get<double>());
  fmt::print("ratios to the write path: one codec {:.2f} (score only), reference + one codec {:.2f}, "
             "(reference + 20 codecs) / 20 {:.2f}\n",
             sm["codec_over_writer"].get<double>(), sm["reference_and_codec_over_writer"].get<double>(),
             sm["per_codec_of_20_over_writer"].get<double>());
}

// Synthetic probe inputs of V4-Flash size: random query weights and hidden
// states, bf16 KV with unit RMS.
int run_bench_attention(const std::vector<std::string>& args) {
  km::fix_openblas_core(with_command({"bench", "attention"}, args));
  int64_t S = 2048, nq = 256;
  int reps = 3;
  po::options_description opts("kvlab bench attention options");
  opts.add_options()("help,h", "show this help")("seqlen", po::value<int64_t>(&S), "tokens (default 2048)")(
      "queries", po::value<int64_t>(&nq), "sampled queries (default 256; 0 = all)")(
      "reps", po::value<int>(&reps), "timed repetitions, best taken (default 3)")("json", "print one JSON object");
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << "usage: kvlab bench attention [--seqlen 2048] [--queries 256] [--reps 3] [--json]\n"
                 "Seconds (wall and process CPU) to build the probe inputs (model::layer_attention_inputs:\n"
                 "query sample, queries, RoPE), the AttentionProbe (reference attention) and to score one\n"
                 "decoded KV for SWA (window), CSA (compressed, m = 4) and HCA (compressed, m = 128) on\n"
                 "synthetic V4-Flash-sized data, next to the V4 KV write path (random weights) on the same\n"
                 "tokens, and the per-passage cost of three streams with one and with 20 codecs.\n\n"
              << opts;
    return 0;
  }
  if (S < 128 || S % 128 != 0) throw UsageError(fmt::format("--seqlen {}: expected a multiple of 128", S));
  if (reps < 1) throw UsageError(fmt::format("--reps {}: expected >= 1", reps));
  if (nq < 0) throw UsageError(fmt::format("--queries {}: expected >= 0", nq));
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(1);
  std::function<at::Tensor(std::vector<int64_t>, double)> bf = [&](std::vector<int64_t> shape, double sd) {
    return at::normal(0.0, sd, at::IntArrayRef(shape), g, at::TensorOptions().dtype(at::kFloat))
        .to(at::kBFloat16)
        .to(at::kFloat);
  };
  // The write path on the same number of tokens, for scale.
  km::V4Config cfg = km::V4Config::flash();
  cfg.write_path = km::WritePath::kV4;
  km::V4KVWriter writer(cfg, km::random_weights(cfg, 0));
  const at::Tensor hid = bf({S, cfg.hidden_size}, 1.0);
  (void)writer.forward(hid.unsqueeze(0));
  const Timing tw = best_of(reps, [&] { (void)writer.forward(hid.unsqueeze(0)); });
  const km::V4QueryWeights qw = km::random_query_weights(cfg, km::V4AttentionConfig{}, 0);

  nlohmann::json rows = nlohmann::json::array();
  double ref_cpu = 0, codec_cpu = 0;
  for (const char* kind : {"swa", "csa", "hca"}) {
    rows.push_back(bench_kind(kind, S, nq, reps, cfg, qw, hid, bf));
    ref_cpu += rows.back()["inputs_cpu_seconds"].get<double>() + rows.back()["build_cpu_seconds"].get<double>();
    codec_cpu += rows.back()["score_cpu_seconds"].get<double>();
  }
  nlohmann::json j = {{"seqlen", S},
                      {"heads", km::V4AttentionConfig{}.n_heads},
                      {"head_dim", cfg.head_dim},
                      {"writer_forward_seconds", tw.wall},
                      {"writer_forward_cpu_seconds", tw.cpu},
                      {"rows", rows},
                      {"per_passage",
                       {{"queries", rows[0]["queries"]},
                        {"reference_cpu_seconds", ref_cpu},
                        {"codec_cpu_seconds", codec_cpu},
                        {"codecs20_cpu_seconds", ref_cpu + 20 * codec_cpu},
                        {"codec_over_writer", codec_cpu / tw.cpu},
                        {"reference_and_codec_over_writer", (ref_cpu + codec_cpu) / tw.cpu},
                        {"per_codec_of_20_over_writer", (ref_cpu + 20 * codec_cpu) / 20 / tw.cpu}}},
                      {"torch_threads", at::get_num_threads()},
                      {"blas", km::blas_info()}};
  if (vm.count("json")) {
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  print_bench_attention(j, reps);
  return 0;
}

kvlab::cli::CommandRegistrar reg_attention{"attention", "V4 attention fidelity of a codec on one layer's KV",
                                           run_attention};
kvlab::cli::CommandRegistrar reg_bench_attention{"bench attention",
                                                 "cost of building an attention probe and scoring a codec",
                                                 run_bench_attention};

}  // namespace
