// The stub executor: deterministic fake measurements with optional simulated
// work and failure injection, for the run queue's reliability tests and the
// store benchmark. It does no tensor work. Its numbers mean nothing; they
// are a hash of the run's identity so that a rerun reproduces them exactly.
//
// Also PassageJob::from_claim.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "codec/codec.h"
#include "common/error.h"
#include "common/hash.h"
#include "experiment/attention_settings.h"
#include "experiment/executor.h"

namespace kvlab::experiment {

PassageJob PassageJob::from_claim(const store::Claim& c) {
  PassageJob j;
  j.experiment = c.experiment_name;
  try {
    j.params = nlohmann::json::parse(c.params_json);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("experiment '{}': params_json is not valid JSON: {}", c.experiment_name, e.what()));
  }
  KVLAB_CHECK(j.params.is_object(), "experiment '{}': params_json is not a JSON object", c.experiment_name);
  j.passage_idx = c.passage_idx;
  j.passage_name = c.passage_name;
  j.passage_source = c.passage_source;
  j.content_hash = c.passage_content_hash;
  j.text = c.passage_text;
  j.replicate = c.replicate;
  const std::string synth = "synthetic:seed=";
  if (c.passage_source.rfind(synth, 0) == 0) {
    j.seed = std::stoull(c.passage_source.substr(synth.size()));
  } else if (j.params.contains("host") && j.params["host"].contains("seed")) {
    j.seed = j.params["host"]["seed"].get<std::uint64_t>();
  }
  for (const auto& r : c.runs)
    if (std::find(j.streams.begin(), j.streams.end(), r.stream) == j.streams.end()) j.streams.push_back(r.stream);
  return j;
}

namespace {

// Splits "a=1,b=x" into pairs; throws on a malformed item.
std::vector<std::pair<std::string, std::string>> parse_options(const std::string& what, const std::string& opts) {
  std::vector<std::pair<std::string, std::string>> out;
  std::stringstream ss(opts);
  for (std::string item; std::getline(ss, item, ',');) {
    if (item.empty()) continue;
    const auto eq = item.find('=');
    KVLAB_CHECK(eq != std::string::npos && eq > 0, "{} option '{}' is not key=value", what, item);
    out.emplace_back(item.substr(0, eq), item.substr(eq + 1));
  }
  return out;
}

int to_nonneg_int(const std::string& what, const std::string& v) {
  std::size_t used = 0;
  int x = -1;
  try {
    x = std::stoi(v, &used);
  } catch (const std::exception&) {
  }
  KVLAB_CHECK(used == v.size() && x >= 0, "{}: '{}' is not a non-negative integer", what, v);
  return x;
}

// A number in [0, 1) from a hash of the parts.
double unit_hash(const std::string& parts) {
  const std::string h = sha256_hex(parts);
  return static_cast<double>(std::stoull(h.substr(0, 13), nullptr, 16)) / static_cast<double>(1ULL << 52);
}

// The rate metrics, hashed per run but consistent with their definitions:
// entropy_bits_per_dim in [0.6, 0.95] x the stored bits/dim R,
// gauss_bound_rel_mse = 2^(-2R) exactly, rwf_bound_rel_mse in [0.2, 0.8] x
// the Gaussian bound and only for streams with n >= D vectors (as the torch
// executor); range_bits_per_dim in [1.002, 1.012] x the entropy rate for
// the families with an entropy=range coder (range_coded).
void add_stub_rate_metrics(const std::string& key, double bits_per_vector, int64_t dim, int64_t n, bool range_coded,
                           std::map<std::string, double>& metrics) {
  const double r = bits_per_vector / double(dim);
  const double u = unit_hash(key + "|rate");
  metrics["entropy_bits_per_dim"] = r * (0.6 + 0.35 * u);
  if (range_coded) metrics["range_bits_per_dim"] = metrics["entropy_bits_per_dim"] * (1.002 + 0.01 * unit_hash(key + "|range"));
  metrics["gauss_bound_rel_mse"] = std::exp2(-2.0 * r);
  if (n >= dim) metrics["rwf_bound_rel_mse"] = std::exp2(-2.0 * r) * (0.2 + 0.6 * unit_hash(key + "|rwf"));
}

std::int64_t vectors_of(const std::string& stream, int seqlen) {
  if (stream == "csa_pool_kv_ratio4") return seqlen / 4;
  if (stream == "hca_pool_kv_ratio128") return seqlen / 128;
  return seqlen;
}

// [metrics] attention = on: the four attention metrics, hashed per run and
// scaled with its rel-MSE (attn_out_rel ~ rel_mse, kl_p99 > kl_mean), so
// that reports and thresholds over them have something plausible to show.
void add_stub_attention_metrics(const std::string& key, double rel_mse, std::map<std::string, double>& metrics) {
  const double u = unit_hash(key + "|attention");
  metrics["attn_out_rel"] = rel_mse * (0.8 + 0.4 * u);
  metrics["logit_rel_mse"] = rel_mse * (0.3 + 0.2 * u);
  metrics["kl_mean"] = 0.02 * rel_mse * (1.0 + u);
  metrics["kl_p99"] = metrics["kl_mean"] * (4.0 + 2.0 * u);
}

struct StubOptions {
  int sleep_ms = 0;
  int open_ms = 0;
  std::set<std::string> fail_codecs;
  std::set<std::string> fail_passages;
};

class StubSession : public PassageSession {
 public:
  StubSession(const PassageJob& job, const StubOptions& o) : job_(job), o_(o) {
    seqlen_ = job.params.value("seqlen", 2048);
    attention_ = AttentionSettings::from_params(job.params).on;
  }
  RunMeasurement measure(const std::string& stream, const std::string& codec) override {
    if (o_.sleep_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(o_.sleep_ms));
    if (o_.fail_codecs.count(codec)) throw Error(fmt::format("stub: injected failure for codec {}", codec));
    auto c = codec::make_codec(codec, 512);
    const double u = unit_hash(job_.content_hash + "|" + stream + "|" + codec);
    const auto spec = codec::parse_codec_spec(codec);
    RunMeasurement m;
    m.bits_per_vector = c->bits_per_vector();
    m.code_bytes = static_cast<std::int64_t>(c->code_size());
    add_stub_rate_metrics(job_.content_hash + "|" + stream + "|" + codec, m.bits_per_vector, 512,
                          vectors_of(stream, seqlen_), c->has_symbol_columns(), m.metrics);
    m.rel_mse = spec.q() > 0 ? (1.0 + 0.2 * u) / (double(spec.q()) * spec.q()) : 0.002 * (1.0 + 0.2 * u);
    m.cos_sim = 1.0 - 0.5 * m.rel_mse;
    m.n_vectors = vectors_of(stream, seqlen_);
    m.dim = 512;
    if (attention_) add_stub_attention_metrics(job_.content_hash + "|" + stream + "|" + codec, m.rel_mse, m.metrics);
    return m;
  }
  AuditMeasurement audit(const std::string& stream) override {
    AuditMeasurement a;
    const double u = unit_hash(job_.content_hash + "|" + stream + "|audit");
    a.stream = stream;
    a.excess_kurtosis_abs = 0.1 + u;
    a.isotropy_variance_ratio = 1.0 + u;
    a.hadamard_post_variance_ratio = 1.0 + 0.5 * u;
    a.rms_wasserstein2_over_sigma_per_dim = 0.01 + 0.05 * u;
    a.n_vectors = vectors_of(stream, seqlen_);
    a.dim = 512;
    return a;
  }

 private:
  PassageJob job_;
  StubOptions o_;
  int seqlen_ = 2048;
  bool attention_ = false;  // [metrics] attention = on
};

class StubExecutor : public Executor {
 public:
  explicit StubExecutor(StubOptions o) : o_(std::move(o)) {}
  std::string name() const override { return "stub"; }
  void fill_provenance(store::Provenance& p, const nlohmann::json& params) const override {
    p.device = "stub";
    if (params.contains("host")) {
      p.host_kind = params["host"].value("kind", "");
      p.host_json = params["host"].dump();
    }
    if (params.contains("weights")) p.weights_json = params["weights"].dump();
    if (params.contains("stream_dtype")) p.stream_dtype = params["stream_dtype"].get<std::string>();
  }
  std::unique_ptr<PassageSession> open_passage(const PassageJob& job) override {
    if (o_.open_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(o_.open_ms));
    if (o_.fail_passages.count(job.passage_name))
      throw Error(fmt::format("stub: injected failure opening passage {}", job.passage_name));
    ++passages_opened_;
    return std::make_unique<StubSession>(job, o_);
  }

 private:
  StubOptions o_;
};

}  // namespace

std::unique_ptr<Executor> make_stub_executor(const std::string& options) {
  StubOptions o;
  for (const auto& [k, v] : parse_options("stub executor", options)) {
    if (k == "sleep_ms") {
      o.sleep_ms = to_nonneg_int("stub sleep_ms", v);
    } else if (k == "open_ms") {
      o.open_ms = to_nonneg_int("stub open_ms", v);
    } else if (k == "fail" || k == "fail_passage") {
      std::stringstream ss(v);
      for (std::string x; std::getline(ss, x, ';');) {
        if (k == "fail") o.fail_codecs.insert(codec::parse_codec_spec(x).canonical);
        else o.fail_passages.insert(x);
      }
    } else {
      throw Error(fmt::format("stub executor: unknown option '{}'; expected sleep_ms, open_ms, fail, fail_passage", k));
    }
  }
  return std::make_unique<StubExecutor>(std::move(o));
}

}  // namespace kvlab::experiment
