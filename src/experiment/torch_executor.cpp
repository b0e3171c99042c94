// The real executor: host hidden states -> V4 KV write path -> the three
// streams (generated once per passage), then every codec on each stream
// with the SPEC section 4 metrics and audit.
//
// Every codec reads the stream as float32 on the CPU (the stream tensor, in
// the experiment's stream dtype on its device, converted once per passage);
// encode() writes the codec's bytes and decode() reads them back, so
// bits_per_vector is what was written (8 * code_size).
//
// With [metrics] attention = on, every run also gets the V4 attention
// metrics (passage_attention.h): one probe per (passage, stream), whose
// CSA / HCA probes also read the window KV (generated for them when the
// experiment does not measure sliding_window_kv), query weights random
// (attention_seed) or the checkpoint's, cached per executor.
//
// Every run also stores the rate metrics (add_rate_metrics): the ideal
// entropy-coded rate of those bytes and the Gaussian / reverse water-filling
// bounds at R = bits_per_vector / D, the latter from the stream's covariance
// eigenvalues, computed once per stream per passage (cached in the session).
//
// Weights and hosts are cached per executor (keyed by their JSON), so a
// worker that claims many passages of one experiment builds them once.
// Host kinds: synthetic / hf (host::make_host), and kv-file (captured
// streams read with host::load_kv_file; tensors named "<passage>/<stream>"
// or "<stream>"; no write path).
// Not here: claiming and committing (worker.cpp).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "codec/codec.h"
#include "codec/entropy_stream.h"
#include "common/error.h"
#include "experiment/executor.h"
#include "experiment/passage_attention.h"
#include "experiment/phase_times.h"
#include "host/host.h"
#include "kernels/entropy.h"
#include "model/blas.h"
#include "kernels/metrics.h"
#include "model/config.h"
#include "model/v4_attention.h"
#include "model/v4_kv.h"

namespace kvlab::experiment {

namespace {

// One stream as float32 CPU rows [n, d].
struct StreamData {
  at::Tensor rows;
  std::int64_t n = 0, d = 0;
};

// Streams still being generated in the background, and streams generated on
// this thread when first needed or while it would wait for the background
// ones (see open_passage).
using PendingStreams = std::shared_future<std::map<std::string, StreamData>>;
using DeferredStreams = std::function<std::map<std::string, StreamData>()>;

// Eigenvalues (ascending) of the stream's covariance (X - mu)^T (X - mu) / N
// in double, mu the mean row: the centring of rel_mse's denominator, whose
// sum of squares is N times their sum. Empty when N < D (the water-filling
// bound is then not stored) or when the stream has no variance.
std::vector<double> covariance_eigenvalues(const StreamData& s) {
  if (s.n < s.d) return {};
  const at::Tensor x = s.rows.to(at::kDouble);
  const at::Tensor xc = x - x.mean(0, /*keepdim=*/true);
  const at::Tensor ev = at::linalg_eigvalsh(at::matmul(xc.t(), xc) / double(s.n)).contiguous();
  std::vector<double> out(ev.data_ptr<double>(), ev.data_ptr<double>() + ev.numel());
  if (out.empty() || out.back() <= 0) return {};
  return out;
}

// The rate metrics of one run (common/metric_table.cpp): entropy_bits_per_dim
// from the codec's stored symbols (codes: the n bytes records it wrote),
// range_bits_per_dim = the size of those records range-coded
// (codec/entropy_stream.h; families with symbol columns),
// gauss_bound_rel_mse = 2^(-2R) and, with eigenvalues, rwf_bound_rel_mse at
// R = bits_per_vector / D.
void add_rate_metrics(const codec::Codec& c, const std::uint8_t* codes, const StreamData& s,
                      const std::vector<double>& eig, std::map<std::string, double>& metrics) {
  const double r = c.bits_per_vector() / double(s.d);
  metrics["entropy_bits_per_dim"] = c.stored_entropy(codes, s.n).bits_per_dim();
  if (c.has_symbol_columns() && s.n > 0)
    metrics["range_bits_per_dim"] =
        8.0 * double(codec::range_encode_records(c, codes, s.n).size()) / (double(s.n) * double(s.d));
  metrics["gauss_bound_rel_mse"] = kernels::gauss_bound_rel_mse(r);
  if (!eig.empty()) metrics["rwf_bound_rel_mse"] = kernels::rwf_bound_rel_mse(eig.data(), int64_t(eig.size()), r);
}

class TorchSession : public PassageSession {
 public:
  explicit TorchSession(std::string experiment, std::map<std::string, StreamData> streams,
                        PendingStreams pending = {}, std::vector<std::string> pending_names = {},
                        DeferredStreams deferred = {})
      : experiment_(std::move(experiment)),
        streams_(std::move(streams)),
        pending_(std::move(pending)),
        pending_names_(std::move(pending_names)),
        deferred_(std::move(deferred)) {}

  RunMeasurement measure(const std::string& stream, const std::string& codec_spec) override {
    const StreamData& s = get(stream);
    auto c = codec::make_codec(codec_spec, s.d);
    std::vector<std::uint8_t> codes(static_cast<std::size_t>(s.n) * c->code_size());
    at::Tensor out = at::empty({s.n, s.d}, at::kFloat);
    const float* x = s.rows.data_ptr<float>();
    {
      phase_times::Scope t(experiment_, "codec encode+decode");
      c->encode(x, s.n, codes.data());
      c->decode(codes.data(), s.n, out.data_ptr<float>());
    }
    RunMeasurement m;
    m.bits_per_vector = c->bits_per_vector();
    m.code_bytes = static_cast<std::int64_t>(c->code_size());
    const std::vector<double>& eig = eigenvalues(stream, s);
    {
      phase_times::Scope t(experiment_, "codec metrics");
      add_rate_metrics(*c, codes.data(), s, eig, m.metrics);
      m.rel_mse = kernels::rel_mse(x, out.data_ptr<float>(), s.n, s.d);
      m.cos_sim = kernels::mean_cosine(x, out.data_ptr<float>(), s.n, s.d);
    }
    m.n_vectors = s.n;
    m.dim = s.d;
    if (attention_) attention_->add_metrics(stream, out, m.metrics);
    return m;
  }

  // The attention metrics of every measure() ([metrics] attention = on).
  void set_attention(std::unique_ptr<PassageAttention> a) { attention_ = std::move(a); }
  PassageAttention& attention() { return *attention_; }
  // A stream's rows [n, d] float32 (generated when first needed).
  const at::Tensor& rows_of(const std::string& stream) { return get(stream).rows; }

  AuditMeasurement audit(const std::string& stream) override {
    const StreamData& s = get(stream);
    phase_times::Scope t(experiment_, "audit");
    const auto v = kernels::non_gaussian_audit(s.rows.data_ptr<float>(), s.n, s.d);
    AuditMeasurement a;
    a.stream = stream;
    a.excess_kurtosis_abs = v.excess_kurtosis_abs;
    a.isotropy_variance_ratio = v.isotropy_variance_ratio;
    a.hadamard_post_variance_ratio = v.hadamard_post_variance_ratio;
    a.rms_wasserstein2_over_sigma_per_dim = v.rms_wasserstein2_over_sigma_per_dim;
    a.n_vectors = v.n_vectors;
    a.dim = v.dim;
    return a;
  }

 private:
  // The stream's covariance eigenvalues, computed on first use.
  const std::vector<double>& eigenvalues(const std::string& stream, const StreamData& s) {
    auto it = eigenvalues_.find(stream);
    if (it == eigenvalues_.end()) {
      phase_times::Scope t(experiment_, "eigenvalues");
      it = eigenvalues_.emplace(stream, covariance_eigenvalues(s)).first;
    }
    return it->second;
  }
  const StreamData& get(const std::string& stream) {
    auto it = streams_.find(stream);
    if (it != streams_.end()) return it->second;
    const bool in_pending = pending_.valid() && std::find(pending_names_.begin(), pending_names_.end(), stream) !=
                                                    pending_names_.end();
    // Needed now, or about to wait for the background: generate the deferred
    // streams on this thread first.
    if (deferred_ && (!in_pending || pending_.wait_for(std::chrono::seconds(0)) != std::future_status::ready)) {
      auto fn = std::move(deferred_);
      deferred_ = nullptr;
      phase_times::Scope t(experiment_, "write path");
      take(fn());
    }
    if (in_pending) {
      phase_times::Scope t(experiment_, "write path wait");
      auto more = pending_.get();  // rethrows a generation error
      pending_ = {};
      take(std::move(more));
    }
    it = streams_.find(stream);
    KVLAB_CHECK(it != streams_.end(), "stream '{}' was not generated for this passage", stream);
    return it->second;
  }
  void take(std::map<std::string, StreamData> more) {
    for (auto& [k, v] : more) streams_.emplace(k, std::move(v));
  }
  std::string experiment_;
  std::map<std::string, std::vector<double>> eigenvalues_;
  std::map<std::string, StreamData> streams_;
  PendingStreams pending_;
  std::vector<std::string> pending_names_;
  DeferredStreams deferred_;
  std::unique_ptr<PassageAttention> attention_;
};

StreamData to_rows(const at::Tensor& t, const std::string& what) {
  KVLAB_CHECK(t.dim() >= 2, "{}: stream tensor has rank {}; expected [..., D]", what, t.dim());
  StreamData s;
  s.d = t.size(-1);
  s.rows = t.reshape({-1, s.d}).to(at::kCPU).to(at::kFloat).contiguous();
  s.n = s.rows.size(0);
  KVLAB_CHECK(s.n >= 2, "{}: {} vectors; the metrics need at least 2 (increase seqlen)", what, s.n);
  return s;
}

c10::Device parse_device(const std::string& d) {
  try {
    c10::Device dev(d);
    if (dev.is_cuda()) {
      KVLAB_CHECK(at::hasCUDA(), "device '{}' requested but this LibTorch build has no CUDA support", d);
    }
    return dev;
  } catch (const c10::Error& e) {
    throw Error(fmt::format("device '{}' is not usable: {}", d, e.what_without_backtrace()));
  }
}

class TorchExecutor : public Executor {
 public:
  explicit TorchExecutor(int threads) {
    if (threads > 0) {
      static std::once_flag once;
      std::call_once(once, [threads] { at::set_num_threads(threads); });
    }
    // The write path runs on a background thread beside the measuring one;
    // OpenBLAS's own pool would only contend with it (see model/blas.h).
    static std::once_flag blas_once;
    std::call_once(blas_once, [] { model::limit_openblas_threads(1); });
  }

  std::string name() const override { return "torch"; }

  void fill_provenance(store::Provenance& p, const nlohmann::json& params) const override {
    p.torch_version = model::torch_version();
    p.blas = model::blas_info();
    const std::string dev = params.value("device", "cpu");
    p.device = dev;
    p.stream_dtype = params.value("stream_dtype", "bf16");
    if (params.contains("weights")) p.weights_json = params["weights"].dump();
    // The GEMM of the last passage this executor generated (the worker asks
    // right after open_passage).
    if (!last_gemm_.empty()) p.gemm = last_gemm_;
    if (params.contains("host")) {
      p.host_kind = params["host"].value("kind", "");
      // What the host itself says determines its output (generator, seeds, files).
      auto it = host_description_.find(params["host"].dump());
      p.host_json = it != host_description_.end() ? it->second.dump() : params["host"].dump();
    }
  }

  std::unique_ptr<PassageSession> open_passage(const PassageJob& job) override {
    const auto& pr = job.params;
    KVLAB_CHECK(pr.contains("host") && pr["host"].is_object(), "experiment '{}': params_json has no host object",
                job.experiment);
    const nlohmann::json& hostj = pr["host"];
    const std::string kind = hostj.value("kind", "");
    const std::string dtype_name = pr.value("stream_dtype", "bf16");
    KVLAB_CHECK(dtype_name == "bf16" || dtype_name == "fp32", "stream_dtype '{}'; expected bf16 or fp32", dtype_name);
    const auto dtype = dtype_name == "bf16" ? at::kBFloat16 : at::kFloat;
    const int seqlen = pr.value("seqlen", 2048);
    const c10::Device device = parse_device(pr.value("device", "cpu"));
    const AttentionSettings attention = AttentionSettings::from_params(pr);

    std::map<std::string, StreamData> streams;
    PendingStreams pending;
    std::vector<std::string> pending_names;
    DeferredStreams deferred;
    last_gemm_.clear();
    at::Tensor hidden_kept;                   // for the attention metrics
    model::V4KVWriter* writer_ptr = nullptr;  // idem
    if (kind == "kv-file") {
      KVLAB_CHECK(!attention.on,
                  "experiment '{}': [metrics] attention = on needs hidden states; host kind kv-file has none",
                  job.experiment);
      const std::string path = hostj.at("path").get<std::string>();
      auto& file = kv_file(path);
      for (const auto& st : job.streams) {
        auto it = file.find(job.passage_name + "/" + st);
        if (it == file.end()) it = file.find(st);
        KVLAB_CHECK(it != file.end(), "kv-file {}: no tensor '{}/{}' or '{}'", path, job.passage_name, st, st);
        // The stream dtype applies to captured streams too.
        streams[st] = to_rows(it->second.to(dtype), fmt::format("{} / {}", job.passage_name, st));
      }
    } else {
      const std::string spec = hostj.at("spec").get<std::string>();
      auto& host = host_for(hostj, spec);
      host::PassageInput in;
      in.name = job.passage_name;
      in.text = job.text.value_or("");
      in.seed = job.seed;
      // The host's hidden states are computed on another thread while the
      // writer is built (the first passage: random weights, fused projection),
      // which needs only the config (V4-Flash, as in writer_for).
      const int64_t hidden_size = model::V4Config::flash().hidden_size;
      auto hidden_f = std::async(std::launch::async, [&host, in, seqlen, hidden_size, device, &job] {
        at::init_num_threads();
        phase_times::Scope t(job.experiment, "hidden states (bg)");
        return host.hidden(in, seqlen, hidden_size, device);
      });
      auto& writer = [&]() -> model::V4KVWriter& {
        phase_times::Scope t(job.experiment, "writer (weights)");
        return writer_for(pr.at("weights"), device);
      }();
      const at::Tensor hidden = [&] {
        phase_times::Scope t(job.experiment, "hidden states wait");
        return hidden_f.get();
      }();
      KVLAB_CHECK(hidden.size(-1) == writer.config().hidden_size, "host hidden size {} != the writer's {}",
                  hidden.size(-1), writer.config().hidden_size);
      KVLAB_CHECK(!job.streams.empty(), "passage '{}': no streams to generate", job.passage_name);
      // The attention of a CSA / HCA layer also reads the window KV.
      std::vector<std::string> gen = job.streams;
      if (attention.on && std::find(gen.begin(), gen.end(), model::kStreamSWA) == gen.end()) {
        gen.push_back(model::kStreamSWA);
      }
      // The first stream the worker measures (the claim's runs come stream by
      // stream) is generated now, the second in a background thread while the
      // worker runs the codecs on the first, and the others on this thread
      // when first needed or when it would otherwise wait for the second. On
      // a CPU with AMX the projection GEMM thus overlaps the codecs (on the
      // other hardware thread). The streams' values do not depend on the split
      // (model_gemm_test).
      phase_times::Scope t_write(job.experiment, "write path");
      auto prepared = std::make_shared<const model::PreparedHidden>(writer.prepare(hidden));
      auto generate = [&writer, prepared, dtype, name = job.passage_name](const std::vector<std::string>& which,
                                                                           model::ForwardInfo* info) {
        const auto out = writer.forward_streams(*prepared, which, dtype, info);
        std::map<std::string, StreamData> rows;
        for (const auto& st : which) {
          auto it = out.find(st);
          KVLAB_CHECK(it != out.end(), "the V4 write path produced no stream '{}'", st);
          rows[st] = to_rows(it->second, fmt::format("{} / {}", name, st));
        }
        return rows;
      };
      model::ForwardInfo info;
      streams = generate({gen.front()}, &info);
      last_gemm_ = info.gemm;
      if (gen.size() >= 2) {
        pending_names = {gen[1]};
        pending = std::async(std::launch::async, [generate, pending_names, exp = job.experiment] {
                    at::init_num_threads();  // this thread's OpenMP team size = LibTorch's setting
                    phase_times::Scope t(exp, "write path (bg)");
                    return generate(pending_names, nullptr);
                  }).share();
      }
      if (gen.size() >= 3) {
        const std::vector<std::string> later(gen.begin() + 2, gen.end());
        deferred = [generate, later] { return generate(later, nullptr); };
      }
      hidden_kept = hidden;
      writer_ptr = &writer;
    }
    ++passages_opened_;
    auto session = std::make_unique<TorchSession>(job.experiment, std::move(streams), std::move(pending),
                                                  std::move(pending_names), std::move(deferred));
    if (attention.on) {
      session->set_attention(make_attention(attention, pr.at("weights"), *writer_ptr, hidden_kept, dtype, *session));
      session->attention().set_label(job.experiment);
    }
    return session;
  }

 private:
  host::HiddenSource& host_for(const nlohmann::json& hostj, const std::string& spec) {
    const std::string key = hostj.dump();
    auto it = hosts_.find(key);
    if (it == hosts_.end()) {
      it = hosts_.emplace(key, host::make_host(spec)).first;
      host_description_[key] = it->second->describe();
    }
    return *it->second;
  }

  model::V4KVWriter& writer_for(const nlohmann::json& w, c10::Device device) {
    const std::string key = w.dump() + "|" + device.str();
    auto it = writers_.find(key);
    if (it != writers_.end()) return *it->second;
    auto cfg = model::V4Config::flash();
    cfg.simulate_fp8 = w.value("simulate_fp8", true);
    cfg.write_path = model::parse_write_path(w.value("write_path", std::string("published")), "[weights] write_path");
    const std::string kind = w.value("kind", "");
    model::V4Weights weights;
    if (kind == "random") {
      weights = model::random_weights(cfg, w.value("seed", std::uint64_t{0}), device);
    } else if (kind == "checkpoint") {
      const auto& layers = w.at("layers");
      auto layer = [&](const char* s) {
        KVLAB_CHECK(layers.contains(s), "checkpoint weights: no layer id for stream {}", s);
        return layers.at(s).get<int>();
      };
      // A stream not measured still needs a layer for the fused writer: reuse
      // the published defaults (0 / 2 / 3) for absent ones.
      const int swa = layers.contains(model::kStreamSWA) ? layer(model::kStreamSWA) : 0;
      const int csa = layers.contains(model::kStreamCSA) ? layer(model::kStreamCSA) : 2;
      const int hca = layers.contains(model::kStreamHCA) ? layer(model::kStreamHCA) : 3;
      weights = model::load_weights(w.at("path").get<std::string>(), cfg, swa, csa, hca, device);
    } else {
      throw Error(fmt::format("weights kind '{}'; expected random or checkpoint", kind));
    }
    const auto gemm = model::parse_gemm_mode(w.value("gemm", std::string("auto")), "[weights] gemm");
    it = writers_.emplace(key, std::make_unique<model::V4KVWriter>(cfg, std::move(weights), device, gemm)).first;
    return *it->second;
  }

  // The attention metrics of one passage: probes over the session's streams
  // with this executor's query weights; for checkpoint weights the window
  // KV of a CSA / HCA layer is that layer's own main KV (another writer).
  std::unique_ptr<PassageAttention> make_attention(const AttentionSettings& s, const nlohmann::json& w,
                                                   model::V4KVWriter& writer, const at::Tensor& hidden,
                                                   at::ScalarType dtype, TorchSession& session) {
    const bool checkpoint = w.value("kind", "") == "checkpoint";
    AttentionSources src;
    src.rows = [&session](const std::string& st) { return session.rows_of(st); };
    src.query_weights = [this, w, s, cfg = writer.config(), checkpoint](const std::string& st)
        -> const model::V4QueryWeights& {
      const int layer = checkpoint ? layer_of(w, st) : -1;
      const std::string key = checkpoint ? fmt::format("{}|{}", w.at("path").get<std::string>(), layer)
                                         : fmt::format("random:{}", s.seed);
      auto it = query_weights_.find(key);
      if (it == query_weights_.end()) {
        const model::V4AttentionConfig acfg;
        it = query_weights_
                 .emplace(key, checkpoint ? model::load_query_weights(w.at("path").get<std::string>(), cfg, acfg, layer)
                                          : model::random_query_weights(cfg, acfg, s.seed))
                 .first;
      }
      return it->second;
    };
    src.window_kv = [this, w, checkpoint, &session, &writer, hidden, dtype](const std::string& st) -> at::Tensor {
      if (!checkpoint || layer_of(w, st) == layer_of(w, model::kStreamSWA)) return session.rows_of(model::kStreamSWA);
      nlohmann::json w2 = w;
      w2["layers"][model::kStreamSWA] = layer_of(w, st);
      auto& other = writer_for(w2, writer.device());
      const auto out = other.forward_streams(hidden, {model::kStreamSWA}, dtype);
      return to_rows(out.at(model::kStreamSWA), fmt::format("layer {} main KV", layer_of(w, st))).rows;
    };
    return std::make_unique<PassageAttention>(s, writer.config(), hidden, std::move(src));
  }

  // The checkpoint layer of a stream (the writer's defaults 0 / 2 / 3 for
  // absent ones, as writer_for).
  static int layer_of(const nlohmann::json& w, const std::string& stream) {
    const auto& layers = w.at("layers");
    if (layers.contains(stream)) return layers.at(stream).get<int>();
    return stream == model::kStreamSWA ? 0 : stream == model::kStreamCSA ? 2 : 3;
  }

  std::map<std::string, at::Tensor>& kv_file(const std::string& path) {
    auto it = kv_files_.find(path);
    if (it == kv_files_.end()) it = kv_files_.emplace(path, host::load_kv_file(path)).first;
    return it->second;
  }

  std::map<std::string, std::unique_ptr<host::HiddenSource>> hosts_;
  std::map<std::string, nlohmann::json> host_description_;
  std::map<std::string, std::unique_ptr<model::V4KVWriter>> writers_;
  std::map<std::string, std::map<std::string, at::Tensor>> kv_files_;
  std::string last_gemm_;  // ForwardInfo::gemm of the last generated passage
  std::map<std::string, model::V4QueryWeights> query_weights_;  // "random:seed" | "path|layer"
};

}  // namespace

std::unique_ptr<Executor> make_torch_executor(const std::string& options) {
  int threads = 0;
  std::size_t pos = 0;
  while (pos < options.size()) {
    auto end = options.find(',', pos);
    if (end == std::string::npos) end = options.size();
    const std::string item = options.substr(pos, end - pos);
    pos = end + 1;
    if (item.empty()) continue;
    if (item.rfind("threads=", 0) == 0) {
      try {
        threads = std::stoi(item.substr(8));
      } catch (const std::exception&) {
        threads = -1;
      }
      KVLAB_CHECK(threads >= 1 && threads <= 1024, "torch executor: threads '{}' is not in 1 .. 1024", item.substr(8));
    } else {
      throw Error(fmt::format("torch executor: unknown option '{}'; expected threads=N", item));
    }
  }
  return std::make_unique<TorchExecutor>(threads);
}

}  // namespace kvlab::experiment
