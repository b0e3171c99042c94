// V4 KV writer: weights validation, random init, the fused forward pass,
// provenance helpers. See v4_kv.h.
#include "model/v4_kv.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/version.h>
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "common/error.h"
#include "model/blas.h"
#include "model/ops.h"

namespace kvlab::model {

namespace {

std::string shape_of(const at::Tensor& t) {
  if (!t.defined()) return "(missing)";
  return c10::str(t.sizes());
}

void check_tensor(const at::Tensor& t, const char* name, std::vector<int64_t> want) {
  KVLAB_CHECK(t.defined(), "weights: tensor {} is missing (expected shape {})", name, c10::str(at::IntArrayRef(want)));
  KVLAB_CHECK(t.sizes() == at::IntArrayRef(want), "weights: tensor {} has shape {}, expected {}", name, shape_of(t),
              c10::str(at::IntArrayRef(want)));
  KVLAB_CHECK(t.is_floating_point(), "weights: tensor {} has dtype {}, expected a floating-point type", name,
              c10::toString(t.scalar_type()));
  // A finite sum proves every element finite (one pass); only a non-finite
  // sum (NaN/Inf, or an overflow of the sum) needs the element-wise search.
  if (std::isfinite(t.sum(at::kDouble).item<double>())) return;
  at::Tensor bad = at::logical_not(at::isfinite(t.to(at::kFloat)));
  if (bad.any().item<bool>()) {
    int64_t idx = bad.flatten().nonzero().select(1, 0)[0].item<int64_t>();
    float v = t.to(at::kFloat).flatten()[idx].item<float>();
    throw Error(fmt::format("weights: tensor {} has a non-finite value {} at flat index {}", name, v, idx));
  }
}

at::Tensor to_dev(const at::Tensor& t, c10::Device d) { return t.to(d, at::kFloat).contiguous(); }

}  // namespace

void V4Weights::validate(const V4Config& cfg) const {
  const int64_t d = cfg.head_dim, h = cfg.hidden_size;
  check_tensor(wkv, "main wkv", {d, h});
  check_tensor(kv_norm, "main kv_norm", {d});
  check_tensor(csa.wkv, "csa compressor wkv", {2 * d, h});
  check_tensor(csa.wgate, "csa compressor wgate", {2 * d, h});
  check_tensor(csa.ape, "csa compressor ape", {cfg.csa_ratio, 2 * d});
  check_tensor(csa.norm, "csa compressor norm", {d});
  check_tensor(hca.wkv, "hca compressor wkv", {d, h});
  check_tensor(hca.wgate, "hca compressor wgate", {d, h});
  check_tensor(hca.ape, "hca compressor ape", {cfg.hca_ratio, d});
  check_tensor(hca.norm, "hca compressor norm", {d});
}

V4Weights V4Weights::to(c10::Device device) const {
  V4Weights o;
  o.wkv = to_dev(wkv, device);
  o.kv_norm = to_dev(kv_norm, device);
  for (auto [src, dst] : {std::pair{&csa, &o.csa}, std::pair{&hca, &o.hca}}) {
    dst->wkv = to_dev(src->wkv, device);
    dst->wgate = to_dev(src->wgate, device);
    dst->ape = to_dev(src->ape, device);
    dst->norm = to_dev(src->norm, device);
  }
  return o;
}

V4Weights random_weights(const V4Config& cfg, uint64_t seed, c10::Device device) {
  cfg.validate();
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const int64_t d = cfg.head_dim, h = cfg.hidden_size;
  const double wstd = 1.0 / std::sqrt(static_cast<double>(h));
  auto opts = at::TensorOptions().dtype(at::kFloat);
  auto normal = [&](std::vector<int64_t> shape, double stdv) {
    return at::normal(0.0, stdv, at::IntArrayRef(shape), gen, opts);
  };
  // Projection weights as a bf16 checkpoint stores them.
  auto normal_bf16 = [&](std::vector<int64_t> shape, double stdv) {
    return normal(std::move(shape), stdv).to(at::kBFloat16).to(at::kFloat);
  };
  V4Weights w;
  w.wkv = normal_bf16({d, h}, wstd);
  w.kv_norm = at::ones({d}, opts);
  w.csa.ape = normal({cfg.csa_ratio, 2 * d}, 0.02);
  w.csa.wkv = normal_bf16({2 * d, h}, wstd);
  w.csa.wgate = normal_bf16({2 * d, h}, wstd);
  w.csa.norm = at::ones({d}, opts);
  w.hca.ape = normal({cfg.hca_ratio, d}, 0.02);
  w.hca.wkv = normal_bf16({d, h}, wstd);
  w.hca.wgate = normal_bf16({d, h}, wstd);
  w.hca.norm = at::ones({d}, opts);
  return device.is_cpu() ? w : w.to(device);
}

V4KVWriter::V4KVWriter(V4Config cfg, V4Weights w, c10::Device device, GemmMode gemm)
    : cfg_(std::move(cfg)), device_(device), gemm_mode_(gemm) {
  cfg_.validate();
  w.validate(cfg_);
  w_ = w.to(device_);
  fused_ = at::cat({w_.wkv, w_.csa.wkv, w_.csa.wgate, w_.hca.wkv, w_.hca.wgate}, 0).contiguous();
  if (gemm_mode_ == GemmMode::kFp32) {
    bf16_why_not_ = "gemm = fp32";
    return;
  }
  weights_bf16_exact_ = is_bf16_exact(fused_);
  const auto& sup = bf16_gemm_support();
  if (!device_.is_cpu()) {
    bf16_why_not_ = fmt::format("the bf16 GEMM runs on the CPU only (device {})", device_.str());
  } else if (!sup.fast) {
    bf16_why_not_ = sup.why_not;
  } else if (!weights_bf16_exact_) {
    bf16_why_not_ = "the projection weights are not exactly representable in bf16";
  } else {
    bf16_ = std::make_shared<Bf16Gemm>(fused_);
  }
  KVLAB_CHECK(bf16_ || gemm_mode_ != GemmMode::kBf16, "gemm = bf16 cannot run: {} (use gemm = auto or fp32)",
              bf16_why_not_);
}

namespace {

// Flat index of the first NaN/Inf of a contiguous CPU bf16 tensor, or -1.
int64_t first_nonfinite_bf16(const at::Tensor& x) {
  const auto* p = reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>());
  const int64_t n = x.numel();
  constexpr int64_t kChunk = 1 << 16;
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const int64_t c1 = std::min(n, c0 + kChunk);
    // Exponent bits all ones (0x7F80) + 0x80 sets bit 15; any other exponent does not.
    uint16_t acc = 0;
    for (int64_t i = c0; i < c1; ++i) acc = static_cast<uint16_t>(acc | ((p[i] & 0x7F80u) + 0x80u));
    if (acc & 0x8000u)
      for (int64_t i = c0; i < c1; ++i)
        if ((p[i] & 0x7F80u) == 0x7F80u) return i;
  }
  return -1;
}

}  // namespace

double V4KVWriter::projection_flops(int64_t tokens) const {
  return 2.0 * static_cast<double>(tokens) * static_cast<double>(cfg_.hidden_size) * 7.0 *
         static_cast<double>(cfg_.head_dim);
}

std::map<std::string, at::Tensor> V4KVWriter::forward(const at::Tensor& hidden, at::ScalarType stream_dtype,
                                                      ForwardInfo* info) const {
  return forward_streams(hidden, {kStreamSWA, kStreamCSA, kStreamHCA}, stream_dtype, info);
}

PreparedHidden V4KVWriter::prepare(const at::Tensor& hidden) const {
  KVLAB_CHECK(hidden.defined() && hidden.dim() == 3, "V4KVWriter: hidden states must be [B, S, hidden], got {}",
              shape_of(hidden));
  const int64_t B = hidden.size(0), S = hidden.size(1), H = hidden.size(2);
  KVLAB_CHECK(H == cfg_.hidden_size, "V4KVWriter: hidden size {} does not match the config's hidden_size {}", H,
              cfg_.hidden_size);
  KVLAB_CHECK(S >= cfg_.hca_ratio && S % cfg_.hca_ratio == 0,
              "V4KVWriter: seqlen {} must be a positive multiple of {} (the HCA ratio)", S, cfg_.hca_ratio);
  KVLAB_CHECK(B >= 1, "V4KVWriter: batch size must be >= 1, got {}", B);
  KVLAB_CHECK(hidden.scalar_type() == at::kFloat || hidden.scalar_type() == at::kBFloat16 ||
                  hidden.scalar_type() == at::kHalf || hidden.scalar_type() == at::kDouble,
              "V4KVWriter: hidden states must be float32/bf16/fp16/fp64, got {}",
              c10::toString(hidden.scalar_type()));
  auto nonfinite_error = [&](int64_t idx) {
    return Error(fmt::format("V4KVWriter: hidden states contain a non-finite value (NaN or Inf) at batch {}, token {}, "
                             "channel {}",
                             idx / (S * H), (idx / H) % S, idx % H));
  };
  PreparedHidden p;
  p.B = B;
  p.S = S;
  // bf16 path: the hidden states must be exactly bf16 (a bf16 tensor is,
  // unless it holds subnormals; a float one is checked value by value).
  if (bf16_) {
    p.bf16 = is_bf16_exact(hidden);
    KVLAB_CHECK(p.bf16 || gemm_mode_ != GemmMode::kBf16,
                "gemm = bf16 cannot run: the hidden states ({}) are not exactly representable in bf16 (use gemm = "
                "auto or fp32)",
                c10::toString(hidden.scalar_type()));
  }
  if (p.bf16) {
    p.x = hidden.to(device_, at::kBFloat16).reshape({B * S, H}).contiguous();
    if (const int64_t idx = first_nonfinite_bf16(p.x); idx >= 0) throw nonfinite_error(idx);
  } else {
    p.x = hidden.to(device_, at::kFloat).reshape({B * S, H});
    // A finite sum proves every element finite (NaN/Inf propagate); only a
    // non-finite sum (or an overflow of it) needs the element-wise pass.
    if (!std::isfinite(p.x.sum().item<double>())) {
      at::Tensor bad = at::logical_not(at::isfinite(p.x));
      if (bad.any().item<bool>()) throw nonfinite_error(bad.flatten().nonzero().select(1, 0)[0].item<int64_t>());
    }
  }
  return p;
}

std::map<std::string, at::Tensor> V4KVWriter::forward_streams(const at::Tensor& hidden,
                                                              const std::vector<std::string>& streams,
                                                              at::ScalarType stream_dtype, ForwardInfo* info) const {
  return forward_streams(prepare(hidden), streams, stream_dtype, info);
}

std::map<std::string, at::Tensor> V4KVWriter::forward_streams(const PreparedHidden& h,
                                                              const std::vector<std::string>& streams,
                                                              at::ScalarType stream_dtype, ForwardInfo* info) const {
  // Columns of the fused projection each stream needs: main wkv [0, d),
  // CSA wkv|wgate [d, 5d), HCA wkv|wgate [5d, 7d).
  const int64_t d = cfg_.head_dim;
  bool want_swa = false, want_csa = false, want_hca = false;
  for (const auto& s : streams) {
    if (s == kStreamSWA) want_swa = true;
    else if (s == kStreamCSA) want_csa = true;
    else if (s == kStreamHCA) want_hca = true;
    else throw Error(fmt::format("V4KVWriter: unknown stream '{}'; expected {}, {} or {}", s, kStreamSWA, kStreamCSA,
                                 kStreamHCA));
  }
  KVLAB_CHECK(want_swa || want_csa || want_hca, "V4KVWriter: no stream requested");
  const int64_t lo = want_swa ? 0 : want_csa ? d : 5 * d;
  const int64_t hi = want_hca ? 7 * d : want_csa ? 5 * d : d;
  KVLAB_CHECK(stream_dtype == at::kBFloat16 || stream_dtype == at::kFloat,
              "V4KVWriter: stream dtype must be bf16 or fp32, got {}", c10::toString(stream_dtype));
  KVLAB_CHECK(h.x.defined() && h.x.dim() == 2 && h.x.size(1) == cfg_.hidden_size && h.x.size(0) == h.B * h.S,
              "V4KVWriter: hidden states not prepared by this writer");
  const int64_t B = h.B, S = h.S;
  at::Tensor y;
  if (h.bf16) {
    KVLAB_CHECK(bf16_, "V4KVWriter: hidden states prepared for the bf16 GEMM, which this writer does not have");
    y = bf16_->run(h.x, lo, hi - lo);  // [B*S, hi - lo] float32
    if (info) {
      const auto& sup = bf16_gemm_support();
      info->gemm = fmt::format("bf16 (oneDNN {} {})", sup.onednn_version, sup.impl);
    }
  } else {
    // [B*S, hi - lo], one pass over the hidden states
    y = at::mm(h.x, lo == 0 && hi == 7 * d ? fused_.t() : fused_.narrow(0, lo, hi - lo).t());
    if (info) info->gemm = "fp32 (at::mm)";
  }
  auto part = [&](int64_t col, int64_t width) { return y.narrow(1, col - lo, width).reshape({B, S, width}); };

  const RopeParams main_rope{cfg_.qk_rope_head_dim, cfg_.rope_theta_main, 0, cfg_.rope_factor, cfg_.beta_fast,
                             cfg_.beta_slow};
  // v4 mode: the compressors' YaRN applies at every seqlen, FP8 scales are UE8M0.
  const bool v4 = cfg_.write_path == WritePath::kV4;
  const RopeParams comp_rope{cfg_.qk_rope_head_dim, cfg_.rope_theta_compress, cfg_.original_seq_len,
                             cfg_.rope_factor,      cfg_.beta_fast,           cfg_.beta_slow,
                             /*yarn_always=*/v4};
  const Fp8Scale fp8_scale = v4 ? Fp8Scale::kUe8m0 : Fp8Scale::kAmax;
  // RMSNorm -> (bf16 storage) -> RoPE on the last rope dims -> FP8 on the nope dims.
  auto finish = [&](const at::Tensor& v, const at::Tensor& norm, const RopeParams& rp, int64_t stride) {
    at::Tensor t = rms_norm(v, norm, cfg_.rms_norm_eps);
    if (stream_dtype == at::kBFloat16) t = t.to(at::kBFloat16).to(at::kFloat);
    t = apply_rope(t, rp, S, stride);
    if (cfg_.simulate_fp8) t = fp8_simulate(t, cfg_.nope_dim(), cfg_.fp8_block_size_nope, cfg_.fp8_max, fp8_scale);
    return t.to(stream_dtype).contiguous();
  };

  std::map<std::string, at::Tensor> out;
  if (want_swa) out[kStreamSWA] = finish(part(0, d), w_.kv_norm, main_rope, 1);
  if (want_csa) {
    at::Tensor csa = compress_pool(part(d, 2 * d), part(3 * d, 2 * d), w_.csa.ape, cfg_.csa_ratio, /*overlap=*/true);
    out[kStreamCSA] = finish(csa, w_.csa.norm, comp_rope, cfg_.csa_ratio);
  }
  if (want_hca) {
    at::Tensor hca = compress_pool(part(5 * d, d), part(6 * d, d), w_.hca.ape, cfg_.hca_ratio, /*overlap=*/false);
    out[kStreamHCA] = finish(hca, w_.hca.norm, comp_rope, cfg_.hca_ratio);
  }
  return out;
}

std::string blas_info() {
  // The BLAS actually mapped into this process.
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    auto pos = line.find('/');
    if (pos == std::string::npos) continue;
    std::string p = line.substr(pos);
    auto base = p.substr(p.rfind('/') + 1);
    if (base.rfind("libblas", 0) == 0 || base.rfind("libopenblas", 0) == 0 || base.rfind("libmkl_rt", 0) == 0 ||
        base.rfind("libblis", 0) == 0) {
      std::string kind = "unknown";
      if (p.find("openblas") != std::string::npos) kind = "openblas";
      if (p.find("openblas-pthread") != std::string::npos) kind = "openblas-pthread";
      if (p.find("openblas-openmp") != std::string::npos) kind = "openblas-openmp";
      if (p.find("openblas-serial") != std::string::npos) kind = "openblas-serial";
      if (p.find("/blas/") != std::string::npos) kind = "netlib-reference";
      if (p.find("blis") != std::string::npos) kind = "blis";
      if (p.find("mkl") != std::string::npos) kind = "mkl";
      const std::string core = openblas_core();
      // OpenBLAS's thread count changes the summation split of some GEMMs,
      // so the stored numbers depend on it (kvlab run sets 1; blas.h).
      using Threads = int (*)();
      auto threads = reinterpret_cast<Threads>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
      const int n = threads ? threads() : 0;
      const std::string nt = threads ? fmt::format(", {} thread{}", n, n == 1 ? "" : "s") : "";
      return kind + (core.empty() ? "" : ", core " + core) + nt + " (" + p + ")";
    }
  }
  // Not mapped (statically linked or not loaded yet): the Debian alternative.
  char buf[4096];
  ssize_t n = ::readlink("/etc/alternatives/libblas.so.3-x86_64-linux-gnu", buf, sizeof(buf) - 1);
  if (n > 0) {
    buf[n] = 0;
    return std::string("alternative ") + buf;
  }
  return "unknown";
}

std::string torch_version() { return TORCH_VERSION; }

int torch_threads() { return at::get_num_threads(); }

}  // namespace kvlab::model
