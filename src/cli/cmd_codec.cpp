// `kvlab codec`, `kvlab audit` and `kvlab bench codecs`: the codecs and the
// non-Gaussian audit on any [..., D] tensor of a safetensors file (e.g. KV
// dumped from an inference engine), and the codec speed benchmark.
//
//   kvlab codec --spec e8:q=38 --in FILE.safetensors --tensor NAME
//               [--out OUT.safetensors] [--json]
//   (a spec with entropy=range also writes the range-coded stream of
//   codec/entropy_stream.h, decodes it back, checks it against the fixed
//   codec's output and prints its size)
//   kvlab audit --in FILE.safetensors --tensor NAME [--json]
//   kvlab codecs [--json] [--dim 512]
//   kvlab bench codecs [--json] [--codecs fp8_per64,d4:q=38,e8:q=38]
//               [--dims 512,128] [--sizes 2048,131072] [--threads 1,2] [--min-time 0.2]
//   (an entropy=range spec adds stream_enc / stream_dec: its range-coded
//   stream of all N vectors, at threads = 1, and the stream's size)
//
// `codecs` prints the codec-family table (common/codec_spec.h) with, per
// family, the bits per vector the codec writes at example rates for one D
// and whether re-encoding a decoded vector reproduces its code.
// `codec` really encodes to bytes and decodes them (the code size printed
// is what was written). The benchmark times encode, decode and roundtrip
// and a plain copy of the same float32 tensor in the same run, rows split
// evenly over the threads; it reports the best of repeated timings.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <span>
#include <sstream>
#include <thread>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "codec/codec.h"
#include "common/codec_spec.h"
#include "common/error.h"
#include "io/safetensors.h"
#include "kernels/metrics.h"
#include "kernels/simd.h"
#include "kvlab_version.h"

namespace po = boost::program_options;
using kvlab::Error;
using kvlab::UsageError;

namespace {

struct Loaded {
  std::vector<float> data;
  std::vector<int64_t> shape;
  int64_t n = 0, d = 0;
  std::string dtype;
};

Loaded load_tensor(const std::string& path, const std::string& tensor, const char* cmd) {
  if (path.empty()) throw UsageError(fmt::format("{}: --in FILE.safetensors is required", cmd));
  auto f = kvlab::io::SafetensorsFile::open(path);
  std::string name = tensor;
  if (name.empty()) {
    const auto names = f.names();
    if (names.size() != 1)
      throw UsageError(fmt::format("{}: {} holds {} tensors; choose one with --tensor NAME", cmd, path, names.size()));
    name = names[0];
  }
  KVLAB_CHECK(f.has(name), "{}: {} has no tensor '{}' (it has {} tensors, e.g. '{}')", cmd, path, name,
              f.names().size(), f.names().empty() ? std::string("none") : f.names()[0]);
  const auto& ti = f.info(name);
  Loaded l;
  l.shape = ti.shape;
  l.dtype = std::string(kvlab::io::dtype_name(ti.dtype));
  KVLAB_CHECK(ti.dtype == kvlab::io::DType::F32 || ti.dtype == kvlab::io::DType::F16 ||
                  ti.dtype == kvlab::io::DType::BF16 || ti.dtype == kvlab::io::DType::F64,
              "{}: tensor '{}' has dtype {} (expected F32, F16, BF16 or F64)", cmd, name, l.dtype);
  KVLAB_CHECK(!ti.shape.empty(), "{}: tensor '{}' is a scalar (expected shape [..., D])", cmd, name);
  l.d = ti.shape.back();
  KVLAB_CHECK(l.d > 0, "{}: tensor '{}' has shape {} (expected a positive last dimension D)", cmd, name,
              kvlab::io::shape_str(ti.shape));
  l.n = ti.numel() / l.d;
  KVLAB_CHECK(l.n >= 2, "{}: tensor '{}' has shape {}: {} vector(s) of D = {} (expected at least 2 vectors)", cmd,
              name, kvlab::io::shape_str(ti.shape), l.n, l.d);
  l.data = f.to_f32(name);
  return l;
}

// The entropy=range stream of a tensor: written, decoded back and checked
// against the fixed-size codec's reconstruction (fixed: decode of codes).
struct RangeStream {
  std::size_t bytes = 0;
  double entropy_bits_per_dim = 0;
};

RangeStream range_stream(const kvlab::codec::Codec& c, const Loaded& x, const std::vector<uint8_t>& codes,
                         const std::vector<float>& fixed) {
  const std::vector<uint8_t> stream = c.encode_stream(x.data.data(), x.n);
  std::vector<float> back(x.data.size());
  c.decode_stream(stream, x.n, back.data());
  KVLAB_CHECK(std::memcmp(back.data(), fixed.data(), fixed.size() * sizeof(float)) == 0,
              "codec: {}: the range-coded stream decodes to other values than the fixed-size codec (a bug)", c.spec());
  return {stream.size(), c.stored_entropy(codes.data(), x.n).bits_per_dim()};
}

int run_codec(const std::vector<std::string>& args) {
  std::string spec, in, tensor, out;
  bool json = false;
  po::options_description opts("kvlab codec options");
  opts.add_options()("help,h", "show this help")("spec", po::value<std::string>(&spec),
                                                 "codec spec, e.g. e8:q=38, d4:q=10, fp8_per64, e8:q=38,entropy=range")(
      "in", po::value<std::string>(&in), "input FILE.safetensors")(
      "tensor", po::value<std::string>(&tensor), "tensor name (may be omitted if the file holds one tensor)")(
      "out", po::value<std::string>(&out), "write the reconstruction (F32, same name and shape) here")(
      "json", po::bool_switch(&json), "print one JSON object");
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << "usage: kvlab codec --spec SPEC --in FILE.safetensors --tensor NAME [--out OUT.safetensors] [--json]\n"
                 "Encodes a [..., D] tensor to bytes and decodes it; prints bits per vector, code bytes,\n"
                 "rel-MSE and mean cosine. Codecs: "
              << kvlab::codec::known_codecs_text() << "\n\n"
              << opts;
    return 0;
  }
  if (spec.empty()) throw UsageError("codec: --spec is required (" + kvlab::codec::known_codecs_text() + ")");
  const auto cs = kvlab::codec::parse_codec_spec(spec);
  const Loaded x = load_tensor(in, tensor, "codec");
  auto codec = kvlab::codec::make_codec(cs, x.d);
  std::vector<uint8_t> codes(std::size_t(x.n) * codec->code_size());
  std::vector<float> rec(x.data.size());
  codec->encode(x.data.data(), x.n, codes.data());
  codec->decode(codes.data(), x.n, rec.data());
  const RangeStream rs = cs.entropy_range() ? range_stream(*codec, x, codes, rec) : RangeStream{};
  const double rel = kvlab::kernels::rel_mse(x.data.data(), rec.data(), x.n, x.d);
  const double cos = kvlab::kernels::mean_cosine(x.data.data(), rec.data(), x.n, x.d);
  const std::string name = tensor.empty() ? kvlab::io::SafetensorsFile::open(in).names()[0] : tensor;
  if (!out.empty()) {
    kvlab::io::SafetensorsWriter w;
    w.add_f32(name, x.shape, rec.data());
    w.set_metadata("kvlab_codec", codec->spec());
    w.set_metadata("source", in);
    w.set_metadata("source_tensor", name);
    w.set_metadata("kvlab_version", KVLAB_VERSION);
    w.set_metadata("git_commit", KVLAB_BUILD_GIT_COMMIT);
    w.write(out);
  }
  if (json) {
    nlohmann::json j = {{"spec", codec->spec()},
                        {"tensor", name},
                        {"shape", x.shape},
                        {"n_vectors", x.n},
                        {"dim", x.d},
                        {"bits_per_vector", codec->bits_per_vector()},
                        {"published_bits_per_vector", codec->published_bits_per_vector()},
                        {"code_bytes", codes.size()},
                        {"code_bytes_per_vector", codec->code_size()},
                        {"rel_mse", rel},
                        {"cos_sim", cos}};
    if (cs.entropy_range()) {
      j["stream_bytes"] = rs.bytes;
      j["stream_bits_per_vector"] = 8.0 * double(rs.bytes) / double(x.n);
      j["stream_bits_per_dim"] = 8.0 * double(rs.bytes) / double(x.n * x.d);
      j["entropy_bits_per_dim"] = rs.entropy_bits_per_dim;
    }
    if (!out.empty()) j["out"] = out;
    std::cout << j.dump(2) << "\n";
  } else {
    fmt::print("codec            {}\n", codec->spec());
    fmt::print("tensor           {} {} ({} vectors x D = {}, {})\n", name, kvlab::io::shape_str(x.shape), x.n, x.d,
               x.dtype);
    fmt::print("bits per vector  {} (published accounting {})\n", codec->bits_per_vector(),
               codec->published_bits_per_vector());
    fmt::print("code bytes       {} ({} per vector)\n", codes.size(), codec->code_size());
    if (cs.entropy_range()) {
      fmt::print("range-coded      {} bytes = {:.2f} bits per vector, {:.4f} bits/dim ({:.2f} % of the fixed {} bytes; "
                 "plug-in entropy {:.4f} bits/dim); decoded bit-identical to the fixed codec\n",
                 rs.bytes, 8.0 * double(rs.bytes) / double(x.n), 8.0 * double(rs.bytes) / double(x.n * x.d),
                 100.0 * double(rs.bytes) / double(codes.size()), codes.size(), rs.entropy_bits_per_dim);
    }
    fmt::print("rel-MSE          {:.6g}\n", rel);
    fmt::print("cosine           {:.8f}\n", cos);
    if (!out.empty()) fmt::print("wrote            {}\n", out);
  }
  return 0;
}

int run_audit(const std::vector<std::string>& args) {
  std::string in, tensor;
  bool json = false;
  po::options_description opts("kvlab audit options");
  opts.add_options()("help,h", "show this help")("in", po::value<std::string>(&in), "input FILE.safetensors")(
      "tensor", po::value<std::string>(&tensor), "tensor name (may be omitted if the file holds one tensor)")(
      "json", po::bool_switch(&json), "print one JSON object");
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << "usage: kvlab audit --in FILE.safetensors --tensor NAME [--json]\n"
                 "The four non-Gaussian audit values of SPEC section 4 on a [..., D] tensor (D a power of two)\n"
                 "and the published gates they are compared with.\n\n"
              << opts;
    return 0;
  }
  const Loaded x = load_tensor(in, tensor, "audit");
  const auto a = kvlab::kernels::non_gaussian_audit(x.data.data(), x.n, x.d);
  if (json) {
    nlohmann::json j;
    for (const auto& g : kvlab::kernels::kAuditGates) j[std::string(g.name)] = a.*(g.value);
    j["num_vectors"] = a.n_vectors;
    j["D"] = a.dim;
    nlohmann::json fires;
    for (const auto& g : kvlab::kernels::kAuditGates) fires[std::string(g.name)] = a.*(g.value) > g.threshold;
    j["fires"] = fires;
    std::cout << j.dump(2) << "\n";
  } else {
    fmt::print("{} vectors x D = {}\n", a.n_vectors, a.dim);
    fmt::print("{:<38} {:>14} {:>6}  {}\n", "metric", "value", "gate", "fires");
    for (const auto& g : kvlab::kernels::kAuditGates)
      fmt::print("{:<38} {:>14.6g} {:>6}  {}\n", g.name, a.*(g.value), g.threshold,
                 a.*(g.value) > g.threshold ? "yes" : "no");
    fmt::print("(rms_wasserstein2_over_sigma_per_dim is a p99 tail-quantile ratio despite its published name;\n"
               " a Gaussian stream scores ~0.107 on it)\n");
  }
  return 0;
}

template <class T>
std::vector<T> parse_list(const std::string& s, const char* opt) {
  std::vector<T> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if constexpr (std::is_same_v<T, std::string>) {
      out.push_back(item);
    } else {
      std::size_t pos = 0;
      long long v = 0;
      try {
        v = std::stoll(item, &pos);
      } catch (...) {
        pos = 0;
      }
      if (pos != item.size() || item.empty() || v <= 0)
        throw UsageError(fmt::format("{} '{}': expected a comma-separated list of positive integers", opt, s));
      out.push_back(T(v));
    }
  }
  if (out.empty()) throw UsageError(fmt::format("{} is empty", opt));
  return out;
}

// --codecs: specs separated by commas, where a comma also separates a spec's
// own parameters ("int:bits=4,block=64,scale=ue8m0"): an item with '=' but
// no ':' continues the spec before it.
std::vector<std::string> parse_codec_list(const std::string& s) {
  std::vector<std::string> out;
  for (const auto& item : parse_list<std::string>(s, "--codecs")) {
    const bool continues = item.find('=') != std::string::npos && item.find(':') == std::string::npos;
    if (continues && !out.empty())
      out.back() += "," + item;
    else if (continues)
      throw UsageError(fmt::format("--codecs '{}': parameter '{}' comes before any codec spec", s, item));
    else
      out.push_back(item);
  }
  return out;
}

// A 64-byte aligned float buffer.
class AlignedFloats {
 public:
  explicit AlignedFloats(std::size_t n)
      : p_(static_cast<float*>(std::aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64))) {
    if (p_ == nullptr) throw Error(fmt::format("bench codecs: cannot allocate {} floats", n));
  }
  ~AlignedFloats() { std::free(p_); }
  AlignedFloats(const AlignedFloats&) = delete;
  AlignedFloats& operator=(const AlignedFloats&) = delete;
  float* data() const { return p_; }

 private:
  float* p_;
};

// Runs fn(row_begin, row_end) on `threads` threads over n rows.
template <class F>
void parallel_rows(int64_t n, int threads, F&& fn) {
  if (threads <= 1) return fn(int64_t(0), n);
  std::vector<std::thread> pool;
  const int64_t chunk = (n + threads - 1) / threads;
  for (int t = 0; t < threads; ++t) {
    const int64_t b = t * chunk, e = std::min(n, b + chunk);
    if (b < e) pool.emplace_back([&fn, b, e] { fn(b, e); });
  }
  for (auto& th : pool) th.join();
}

// Best (minimum) seconds per call over repeats lasting at least min_time.
template <class F>
double best_seconds(F&& fn, double min_time) {
  using clk = std::chrono::steady_clock;
  double best = 1e30, total = 0;
  int reps = 0;
  while ((total < min_time || reps < 3) && reps < 1000) {
    const auto t0 = clk::now();
    fn();
    const double s = std::chrono::duration<double>(clk::now() - t0).count();
    best = std::min(best, s);
    total += s;
    ++reps;
  }
  return best;
}

int run_bench_codecs(const std::vector<std::string>& args) {
  bool json = false;
  std::string codecs = "fp8_per64,d4:q=38,e8:q=38", dims = "512,128", sizes = "2048,131072", threads = "1,2";
  double min_time = 0.2;
  std::string simd = "auto";
  po::options_description opts("kvlab bench codecs options");
  opts.add_options()("help,h", "show this help")("json", po::bool_switch(&json), "print a JSON array")(
      "codecs", po::value<std::string>(&codecs),
      "comma-separated codec specs, e.g. fp8_per64,e8:q=38,entropy=range,int:bits=4,block=32 (default "
      "fp8_per64,d4:q=38,e8:q=38)")(
      "dims", po::value<std::string>(&dims), "dimensions D (default 512,128)")(
      "sizes", po::value<std::string>(&sizes), "vector counts N (default 2048,131072)")(
      "threads", po::value<std::string>(&threads), "thread counts (default 1,2)")(
      "min-time", po::value<double>(&min_time), "seconds of repeats per measurement (default 0.2)")(
      "simd", po::value<std::string>(&simd),
      "kernel level: auto (the CPU's best, or KVLAB_SIMD), scalar (portable), avx2 or avx512 (default auto)");
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << "usage: kvlab bench codecs [--json] [--codecs LIST] [--dims LIST] [--sizes LIST] [--threads LIST]\n"
                 "Nanoseconds per vector of encode, decode and roundtrip, and the ratio to a plain copy of the\n"
                 "same float32 tensor timed in the same run (best of repeats).\n\n"
              << opts;
    return 0;
  }
  if (!(min_time >= 0 && min_time <= 60)) throw UsageError(fmt::format("--min-time {}: expected 0..60 s", min_time));
  if (simd == "scalar") {
    kvlab::kernels::set_simd_level(kvlab::kernels::SimdLevel::kScalar);
  } else if (simd == "avx2") {
    if (!kvlab::kernels::cpu_has_avx2()) throw UsageError("--simd avx2: this CPU has no AVX2 (use auto or scalar)");
    kvlab::kernels::set_simd_level(kvlab::kernels::SimdLevel::kAvx2);
  } else if (simd == "avx512") {
    if (!kvlab::kernels::cpu_has_avx512())
      throw UsageError("--simd avx512: this CPU lacks AVX-512 F/DQ/BW/VL (use auto, avx2 or scalar)");
    kvlab::kernels::set_simd_level(kvlab::kernels::SimdLevel::kAvx512);
  } else if (simd != "auto") {
    throw UsageError(fmt::format("--simd '{}': expected auto, scalar, avx2 or avx512", simd));
  }
  const std::string level = kvlab::kernels::simd_level_name(kvlab::kernels::simd_level());
  const auto specs = parse_codec_list(codecs);
  const auto ds = parse_list<int64_t>(dims, "--dims");
  const auto ns = parse_list<int64_t>(sizes, "--sizes");
  const auto ts = parse_list<int>(threads, "--threads");
  for (const auto& s : specs) kvlab::codec::parse_codec_spec(s);  // validate before any work
  for (int64_t n : ns)
    if (n > (int64_t(1) << 24)) throw UsageError(fmt::format("--sizes {}: at most 2^24 vectors", n));
  nlohmann::json rows = nlohmann::json::array();
  if (!json) {
    fmt::print("kernels: {}\n", level);
    fmt::print("{:<12} {:>5} {:>8} {:>7} {:<10} {:>12} {:>14}\n", "codec", "D", "N", "threads", "op", "ns/vector",
               "ratio_to_copy");
  }
  for (int64_t d : ds)
    for (int64_t n : ns) {
      // Cache-line aligned, as LibTorch allocates tensors (64 bytes).
      AlignedFloats xbuf(std::size_t(n * d)), obuf(std::size_t(n * d));
      const std::span<float> x(xbuf.data(), std::size_t(n * d)), out(obuf.data(), std::size_t(n * d));
      uint64_t st = 0x9e3779b97f4a7c15ull ^ uint64_t(n * d);
      for (auto& v : x) {  // fixed pseudo-Gaussian data (sum of uniforms)
        float s = 0;
        for (int k = 0; k < 4; ++k) {
          st = st * 6364136223846793005ull + 1442695040888963407ull;
          s += float(st >> 40) / float(1 << 24);
        }
        v = (s - 2.0f) * 1.7320508f;
      }
      for (int t : ts) {
        const double copy_s = best_seconds(
            [&] {
              parallel_rows(n, t, [&](int64_t b, int64_t e) {
                std::memcpy(out.data() + b * d, x.data() + b * d, std::size_t((e - b) * d) * sizeof(float));
              });
            },
            min_time);
        const double copy_ns = copy_s * 1e9 / double(n);
        auto emit = [&](const std::string& codec, const std::string& op, double ns_per) {
          const double ratio = ns_per / copy_ns;
          rows.push_back({{"codec", codec}, {"D", d}, {"N", n}, {"threads", t}, {"op", op},
                          {"ns_per_vector", ns_per}, {"ratio_to_copy", ratio}, {"simd", level}});
          if (!json)
            fmt::print("{:<12} {:>5} {:>8} {:>7} {:<10} {:>12.1f} {:>14.2f}\n", codec, d, n, t, op, ns_per, ratio);
        };
        emit("copy", "copy", copy_ns);
        for (const auto& s : specs) {
          std::unique_ptr<kvlab::codec::Codec> c;
          try {
            c = kvlab::codec::make_codec(s, d);
          } catch (const Error& e) {
            if (!json) fmt::print("{:<12} {:>5}  skipped: {}\n", s, d, e.what());
            continue;
          }
          const std::size_t cs = c->code_size();
          std::vector<uint8_t> codes(std::size_t(n) * cs);
          auto enc = [&] {
            parallel_rows(n, t, [&](int64_t b, int64_t e) { c->encode(x.data() + b * d, e - b, codes.data() + b * cs); });
          };
          auto dec = [&] {
            parallel_rows(n, t, [&](int64_t b, int64_t e) { c->decode(codes.data() + b * cs, e - b, out.data() + b * d); });
          };
          auto rt = [&] {
            parallel_rows(n, t, [&](int64_t b, int64_t e) { c->roundtrip(x.data() + b * d, e - b, out.data() + b * d); });
          };
          emit(c->spec(), "encode", best_seconds(enc, min_time) * 1e9 / double(n));
          emit(c->spec(), "decode", best_seconds(dec, min_time) * 1e9 / double(n));
          emit(c->spec(), "roundtrip", best_seconds(rt, min_time) * 1e9 / double(n));
          // The range-coded stream (entropy=range): one stream of all n
          // vectors, single-threaded (timed at threads = 1 only).
          if (t == 1 && kvlab::codec::parse_codec_spec(s).entropy_range()) {
            std::vector<uint8_t> stream;
            auto senc = [&] { stream = c->encode_stream(x.data(), n); };
            auto sdec = [&] { c->decode_stream(stream, n, out.data()); };
            emit(c->spec(), "stream_enc", best_seconds(senc, min_time) * 1e9 / double(n));
            emit(c->spec(), "stream_dec", best_seconds(sdec, min_time) * 1e9 / double(n));
            rows.back()["stream_bits_per_vector"] = 8.0 * double(stream.size()) / double(n);
            if (!json)
              fmt::print("{:<12} {:>5} {:>8} {:>7} stream {:.1f} bits/vector ({:.2f} % of the fixed {} bytes)\n",
                         c->spec(), d, n, t, 8.0 * double(stream.size()) / double(n),
                         100.0 * double(stream.size()) / double(std::size_t(n) * cs), std::size_t(n) * cs);
          }
        }
      }
    }
  if (json) std::cout << rows.dump(2) << "\n";
  return 0;
}

// Rates at which `kvlab codecs` shows the bits: every rate of a short range,
// else the powers of two inside it and its ends.
std::vector<int> example_rates(const kvlab::CodecFamilyInfo& f) {
  std::vector<int> r;
  if (f.rate_param.empty()) return r;
  if (f.max_rate - f.min_rate < 8) {
    for (int v = f.min_rate; v <= f.max_rate; ++v) r.push_back(v);
    return r;
  }
  r.push_back(f.min_rate);
  for (int v = 2; v < f.max_rate; v *= 2)
    if (v > f.min_rate) r.push_back(v);
  r.push_back(f.max_rate);
  return r;
}

// One table row as JSON; bits and reencode_is_exact from codecs of the
// family's default variant built at `dim` (null when it does not support it).
nlohmann::json family_json(const kvlab::CodecFamilyInfo& f, int64_t dim) {
  nlohmann::json params = nlohmann::json::array();
  for (const auto& p : f.params) params.push_back({{"name", p.name}, {"allowed", p.allowed}, {"default", p.default_value}});
  nlohmann::json j = {{"family", f.name},
                      {"description", f.description},
                      {"is_baseline", f.is_baseline},
                      {"byte_format", f.byte_format},
                      {"rate_param", f.rate_param.empty() ? nlohmann::json(nullptr) : nlohmann::json(f.rate_param)},
                      {"rate_range", f.rate_param.empty() ? nlohmann::json(nullptr)
                                                          : nlohmann::json::array({f.min_rate, f.max_rate})},
                      {"params", params}};
  const auto bits = kvlab::codec::bits_fn(/*published_accounting=*/false);
  nlohmann::json examples = nlohmann::json::array();
  nlohmann::json exact = nullptr;
  try {
    if (f.rate_param.empty()) {
      auto c = kvlab::codec::make_codec(f.name, dim);
      examples.push_back({{"rate", nullptr}, {"spec", c->spec()}, {"bits_per_vector", c->bits_per_vector()}});
      exact = c->reencode_is_exact();
    }
    for (int r : example_rates(f)) {
      const auto spec = kvlab::codec_spec_at_rate(f.name, r);
      examples.push_back({{"rate", r}, {"spec", spec.canonical}, {"bits_per_vector", bits(f.name, r, int(dim))}});
      if (exact.is_null()) exact = kvlab::codec::make_codec(spec, dim)->reencode_is_exact();
    }
  } catch (const Error& e) {
    examples = nlohmann::json::array();
    j["unsupported_dim"] = e.what();
  }
  j["bits_example"] = {{"dim", dim}, {"rates", examples}};
  j["reencode_is_exact"] = exact;
  return j;
}

int run_codecs(const std::vector<std::string>& args) {
  bool json = false;
  int64_t dim = 512;
  po::options_description opts("kvlab codecs options");
  opts.add_options()("help,h", "show this help")("json", po::bool_switch(&json), "print one JSON object")(
      "dim", po::value<int64_t>(&dim)->default_value(512), "vector dimension D of the bits examples");
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << "usage: kvlab codecs [--json] [--dim D]\n"
                 "The codec-family table: rate parameter and range, variant parameters, baseline flag,\n"
                 "byte format, bits per vector at example rates for D, reencode_is_exact.\n\n"
              << opts;
    return 0;
  }
  if (dim <= 0) throw UsageError(fmt::format("codecs: --dim {} (expected a positive dimension)", dim));
  nlohmann::json fams = nlohmann::json::array();
  for (const auto& f : kvlab::codec_family_table()) fams.push_back(family_json(f, dim));
  if (json) {
    std::cout << nlohmann::json{{"dim", dim}, {"families", fams}}.dump(2) << "\n";
    return 0;
  }
  for (const auto& j : fams) {
    std::string rate = "-";
    if (!j["rate_param"].is_null())
      rate = fmt::format("{} {}..{}", j["rate_param"].get<std::string>(), j["rate_range"][0].get<int>(),
                         j["rate_range"][1].get<int>());
    fmt::print("{}{}\n  rate      {}\n", j["family"].get<std::string>(), j["is_baseline"].get<bool>() ? " (baseline)" : "",
               rate);
    for (const auto& p : j["params"]) {
      std::string vals;
      for (const auto& v : p["allowed"]) vals += (vals.empty() ? "" : "|") + v.get<std::string>();
      fmt::print("  param     {} = {} (default {})\n", p["name"].get<std::string>(), vals, p["default"].get<std::string>());
    }
    fmt::print("  bytes     {}\n", j["byte_format"].get<std::string>());
    std::string ex;
    for (const auto& e : j["bits_example"]["rates"])
      ex += fmt::format("{}{} = {}", ex.empty() ? "" : ", ", e["spec"].get<std::string>(), e["bits_per_vector"].get<double>());
    fmt::print("  bits      D = {}: {}\n", dim, ex.empty() ? "not supported at this D" : ex);
    fmt::print("  reencode  {}\n", j["reencode_is_exact"].is_null() ? "-" : j["reencode_is_exact"].get<bool>() ? "exact" : "not exact");
    fmt::print("  {}\n\n", j["description"].get<std::string>());
  }
  return 0;
}

kvlab::cli::CommandRegistrar reg_codec{"codec", "encode + decode a [..., D] tensor with a codec; bits, rel-MSE, cosine",
                                       run_codec};
kvlab::cli::CommandRegistrar reg_codecs{"codecs", "the codec-family table (rates, parameters, byte formats, bits); --json",
                                        run_codecs};
kvlab::cli::CommandRegistrar reg_audit{"audit", "non-Gaussian audit (SPEC section 4) of a [..., D] tensor", run_audit};
kvlab::cli::CommandRegistrar reg_bench_codecs{"bench codecs", "codec speed: encode/decode/roundtrip vs a plain copy",
                                              run_bench_codecs};

}  // namespace
