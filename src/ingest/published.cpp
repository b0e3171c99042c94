// The published JSON files: see published.h.
#include "ingest/published.h"

#include <charconv>
#include <filesystem>
#include <regex>
#include <set>

#include <fmt/format.h>

#include "common/error.h"
#include "common/hash.h"
#include "kvlab_version.h"

namespace kvlab::ingest {

using nlohmann::json;

namespace {

// JSON access with the path in errors.
const json& field(const json& j, const std::string& key, const std::string& where) {
  KVLAB_CHECK(j.is_object() && j.contains(key), "{}: missing field '{}'", where, key);
  return j.at(key);
}
double number(const json& j, const std::string& key, const std::string& where) {
  const auto& v = field(j, key, where);
  KVLAB_CHECK(v.is_number(), "{}.{}: expected a number, got {}", where, key, v.dump());
  return v.get<double>();
}

// Mutable state shared by the readers of one published file.
struct PublishedReader {
  store::ImportBundle& b;
  const ImportOptions& opt;
  std::set<std::string> streams_seen, codecs_seen;
  std::string dtype;
  json params = json::object();
};

// The optional "shape": [batch, n_vectors, dim] of a stream result.
void read_shape(const json& r, const std::string& rw, std::optional<std::int64_t>& n_vectors,
                std::optional<std::int64_t>& dim) {
  if (!r.contains("shape") || !r["shape"].is_array() || r["shape"].size() != 3) return;
  const auto& shape = r["shape"];
  for (std::size_t i = 1; i < 3; ++i)
    KVLAB_CHECK(shape[i].is_number(), "{}.shape[{}]: expected a number, got {}", rw, i, shape[i].dump());
  n_vectors = shape[1].get<std::int64_t>();
  dim = shape[2].get<std::int64_t>();
}

// The audit of one stream result.
store::ImportAudit read_audit(const json& r, const std::string& rw, const std::string& passage,
                              const std::string& stream) {
  const auto& audit = field(r, "audit", rw);
  const std::string aw = rw + ".audit";
  store::ImportAudit a;
  a.passage = passage;
  a.row.stream = stream;
  a.row.excess_kurtosis_abs = number(audit, "excess_kurtosis_abs", aw);
  a.row.isotropy_variance_ratio = number(audit, "isotropy_variance_ratio", aw);
  a.row.hadamard_post_variance_ratio = number(audit, "hadamard_post_variance_ratio", aw);
  a.row.rms_wasserstein2_over_sigma_per_dim = number(audit, "rms_wasserstein2_over_sigma_per_dim", aw);
  a.row.n_vectors = static_cast<std::int64_t>(number(audit, "num_vectors", aw));
  a.row.dim = static_cast<std::int64_t>(number(audit, "D", aw));
  return a;
}

// One codec entry {bits_per_vector, rel_mse, cos_sim} of a stream result.
store::ImportRun read_codec(PublishedReader& rd, const std::string& cname, const json& cv, const std::string& cw) {
  store::ImportRun run;
  run.codec = published_codec_spec(cname);
  const auto colon = run.codec.find(":q=");
  if (colon != std::string::npos) run.q = std::stoi(run.codec.substr(colon + 3));
  if (rd.opt.canonicalize)
    run.codec = rd.opt.canonicalize(colon == std::string::npos ? run.codec : run.codec.substr(0, colon), run.q);
  auto& res = run.result;
  res.bits_per_vector = number(cv, "bits_per_vector", cw);
  res.rel_mse = number(cv, "rel_mse", cw);
  res.cos_sim = number(cv, "cos_sim", cw);
  KVLAB_CHECK(res.bits_per_vector > 0, "{}.bits_per_vector: expected > 0, got {}", cw, res.bits_per_vector);
  KVLAB_CHECK(res.rel_mse >= 0, "{}.rel_mse: expected >= 0, got {}", cw, res.rel_mse);
  return run;
}

// One stream result of one passage ({stream, shape, dtype, audit, codecs}):
// its audit row and one run per codec.
void read_stream_result(PublishedReader& rd, const std::string& passage, const json& r, const std::string& rw) {
  const auto& sj = field(r, "stream", rw);
  KVLAB_CHECK(sj.is_string(), "{}.stream: expected a string", rw);
  const std::string stream = sj.get<std::string>();
  check_stream(rw, stream);
  rd.streams_seen.insert(stream);
  std::optional<std::int64_t> n_vectors, dim;
  read_shape(r, rw, n_vectors, dim);
  if (r.contains("dtype") && r["dtype"].is_string()) rd.dtype = r["dtype"].get<std::string>();
  const store::ImportAudit a = read_audit(r, rw, passage, stream);
  if (!n_vectors) n_vectors = a.row.n_vectors;
  if (!dim) dim = a.row.dim;
  rd.b.audits.push_back(a);
  const auto& codecs = field(r, "codecs", rw);
  KVLAB_CHECK(codecs.is_object(), "{}.codecs: expected an object", rw);
  for (const auto& [cname, cv] : codecs.items()) {
    store::ImportRun run = read_codec(rd, cname, cv, rw + ".codecs." + cname);
    run.passage = passage;
    run.stream = stream;
    run.result.n_vectors = n_vectors;
    run.result.dim = dim;
    rd.codecs_seen.insert(run.codec);
    rd.b.runs.push_back(std::move(run));
  }
}

// {mean, std, ci95_hw, n} of an aggregate file, checked.
json aggregate_summary(const json& j, const std::string& where) {
  json out = json::object();
  out["mean"] = number(j, "mean", where);
  out["n"] = number(j, "n", where);
  for (const char* k : {"std", "ci95_hw"})
    if (j.contains(k) && j[k].is_number()) out[k] = j[k].get<double>();
  return out;
}

// One stream of the aggregate-only shape: {"fp8_per64": {rel_mse, bits},
// "e8:q=Q": {rel_mse, bits}, "audit": {metric: summary}}.
json read_aggregate_stream(PublishedReader& rd, const json& sv, const std::string& sw, const json& bits_by_q,
                           double fp8_bits, const std::string& root) {
  json s = json::object();
  s["fp8_per64"] = {{"rel_mse", aggregate_summary(field(sv, "fp8_rel_mse", sw), sw + ".fp8_rel_mse")},
                    {"bits", fp8_bits}};
  rd.codecs_seen.insert("fp8_per64");
  const auto& by_q = field(sv, "e8_rel_mse_by_q", sw);
  KVLAB_CHECK(by_q.is_object(), "{}.e8_rel_mse_by_q: expected an object", sw);
  for (const auto& [qs, qv] : by_q.items()) {
    const std::string qw = sw + ".e8_rel_mse_by_q." + qs;
    int q = 0;
    const auto [ptr, ec] = std::from_chars(qs.data(), qs.data() + qs.size(), q);
    KVLAB_CHECK(ec == std::errc() && ptr == qs.data() + qs.size() && q >= 1, "{}: Q '{}' is not an integer >= 1", qw,
                qs);
    std::string codec = fmt::format("e8:q={}", q);
    if (rd.opt.canonicalize) codec = rd.opt.canonicalize("e8", q);
    s[codec] = {{"rel_mse", aggregate_summary(qv, qw)}, {"bits", number(bits_by_q, qs, root + ".bits_per_vec_by_q")}};
    rd.codecs_seen.insert(codec);
  }
  if (sv.contains("audit") && sv["audit"].is_object()) {
    json a = json::object();
    for (const auto& [m, mv] : sv["audit"].items()) a[m] = mv.is_object() ? aggregate_summary(mv, sw + ".audit." + m) : mv;
    s["audit"] = a;
  }
  return s;
}

// The aggregate-only shape (stage075_qsweep*_n8.json): per stream the FP8
// rel-MSE and the E8 rel-MSE per Q as {mean, std, ci95_hw, n}, no
// per-passage values. Returned verbatim (checked) for params_json
// "published_aggregate": {stream: read_aggregate_stream}.
json read_aggregate(PublishedReader& rd, const json& j, const json& config, const std::string& root) {
  const auto& agg = field(j, "aggregate_by_stream", root);
  KVLAB_CHECK(agg.is_object() && !agg.empty(), "{}.aggregate_by_stream: expected a non-empty object", root);
  const auto& bits_by_q = field(j, "bits_per_vec_by_q", root);
  const double fp8_bits = number(config, "bits_fp8_per64_baseline", root + ".config");
  json out = json::object();
  for (const auto& [stream, sv] : agg.items()) {
    const std::string sw = root + ".aggregate_by_stream." + stream;
    check_stream(sw, stream);
    rd.streams_seen.insert(stream);
    out[stream] = read_aggregate_stream(rd, sv, sw, bits_by_q, fp8_bits, root);
  }
  return out;
}

std::string config_string(const json& config, const char* key) {
  return config.contains(key) && config[key].is_string() ? config[key].get<std::string>() : "";
}

// The weights description of the config (kind, spec, layers, simulate_fp8).
json config_weights(const json& config) {
  json weights = json::object();
  if (config.contains("dsv4_config")) {
    const auto& dc = config["dsv4_config"];
    weights["kind"] = dc.value("trained_weights", false) ? "trained" : "random";
    if (dc.contains("weight_source")) weights["spec"] = dc["weight_source"];
    if (dc.contains("v4_layers_used")) weights["layers"] = dc["v4_layers_used"];
  } else if (config.contains("dsv4_layers_used")) {
    weights["layers"] = config["dsv4_layers_used"];  // the sweeps name the layers but not the weights
  }
  if (config.contains("simulate_fp8") && config["simulate_fp8"].is_boolean())
    weights["simulate_fp8"] = config["simulate_fp8"];
  return weights;
}

// params_json, spec text and provenance common to every published shape.
void fill_published_metadata(PublishedReader& rd, const json& j, const json& config, const std::string& file,
                             const std::string& format, std::size_t n_passages) {
  store::ImportBundle& b = rd.b;
  const std::string device = config_string(config, "device");
  const std::string host = config_string(config, "host_model");
  const std::string stream_dtype =
      rd.dtype == "torch.bfloat16" ? "bf16" : rd.dtype == "torch.float32" ? "fp32" : rd.dtype;
  const json weights = config_weights(config);
  json& p = rd.params;
  if (config.contains("seqlen")) p["seqlen"] = config["seqlen"];
  p["stream_dtype"] = stream_dtype;
  p["device"] = device;
  p["weights"] = weights;
  p["host"] = {{"kind", "published"}, {"spec", host}};
  p["streams"] = std::vector<std::string>(rd.streams_seen.begin(), rd.streams_seen.end());
  p["codecs"] = std::vector<std::string>(rd.codecs_seen.begin(), rd.codecs_seen.end());
  p["layer_mix"] = layer_mix_json(rd.opt.layer_mix);
  p["import"] = {{"file", file}, {"sha256", b.sha256}, {"format", format}};
  if (j.contains("generated_at")) p["import"]["generated_at"] = j["generated_at"];
  b.spec_text = fmt::format("imported from the {} {} (sha256 {}); {} passages; config: {}", format, file, b.sha256,
                            n_passages, config.dump());
  b.provenance.kvlab_version = fmt::format("published harness (imported by kvlab {})", KVLAB_VERSION);
  b.provenance.git_commit = "unknown";
  b.provenance.git_dirty = -1;
  if (!device.empty()) b.provenance.device = device;
  b.provenance.host_kind = "published";
  b.provenance.host_json = json({{"model", host}, {"file", file}, {"sha256", b.sha256}}).dump();
  b.provenance.weights_json = weights.dump();
  if (!stream_dtype.empty()) b.provenance.stream_dtype = stream_dtype;
}

// The per-passage shape (stage075_n8.json).
void read_per_passage(PublishedReader& rd, const json& j, const json& config, const std::string& file) {
  const std::string& root = file;
  const auto& per_passage = j["per_passage"];
  KVLAB_CHECK(per_passage.is_array() && !per_passage.empty(), "{}.per_passage: expected a non-empty array", root);
  std::vector<std::string> prefixes;
  if (config.contains("passages_sha_first64") && config["passages_sha_first64"].is_array())
    for (const auto& p : config["passages_sha_first64"]) prefixes.push_back(p.is_string() ? p.get<std::string>() : "");
  for (std::size_t i = 0; i < per_passage.size(); ++i) {
    const std::string pw = fmt::format("{}.per_passage[{}]", root, i);
    const auto& pp = per_passage[i];
    const int pidx = static_cast<int>(number(pp, "passage_id", pw));
    store::PlannedPassage p;
    p.idx = pidx;
    p.name = fmt::format("p{}", pidx);
    // Only the first 64 characters of each passage are published: hash those.
    const std::string prefix = pidx >= 0 && static_cast<std::size_t>(pidx) < prefixes.size() ? prefixes[pidx] : "";
    p.content_hash = sha256_hex(prefix.empty() ? fmt::format("published:{}#{}", rd.b.sha256, pidx) : prefix);
    p.source = fmt::format("published:{}#{}", file, pidx);
    rd.b.passages.push_back(p);
    const auto& results = field(pp, "results", pw);
    KVLAB_CHECK(results.is_array(), "{}.results: expected an array", pw);
    for (std::size_t k = 0; k < results.size(); ++k)
      read_stream_result(rd, p.name, results[k], fmt::format("{}.results[{}]", pw, k));
  }
  fill_published_metadata(rd, j, config, file, "published per-passage JSON", per_passage.size());
}

// The single-passage shape (stage075_trained.json): the results of passage 0.
void read_single_passage(PublishedReader& rd, const json& j, const json& config, const std::string& file) {
  const std::string& root = file;
  const auto& results = j["results_by_stream"];
  KVLAB_CHECK(results.is_array() && !results.empty(), "{}.results_by_stream: expected a non-empty array", root);
  store::PlannedPassage p;
  p.idx = 0;
  p.name = "p0";
  p.content_hash = sha256_hex(fmt::format("published:{}#0", rd.b.sha256));
  p.source = fmt::format("published:{}#0", file);
  rd.b.passages.push_back(p);
  for (std::size_t k = 0; k < results.size(); ++k)
    read_stream_result(rd, p.name, results[k], fmt::format("{}.results_by_stream[{}]", root, k));
  fill_published_metadata(rd, j, config, file, "published single-passage JSON", 1);
}

}  // namespace

std::string published_codec_spec(const std::string& name) {
  if (name == "fp8_per64_baseline") return "fp8_per64";
  static const std::regex re(R"(v[0-9]+_(d4|e8)_Q([0-9]{1,6}))");
  std::smatch m;
  KVLAB_CHECK(std::regex_match(name, m, re) && std::stoi(m[2].str()) >= 1,
              "unknown published codec name '{}'; expected v<N>_d4_Q<q>, v<N>_e8_Q<q> or fp8_per64_baseline", name);
  return fmt::format("{}:q={}", m[1].str(), std::stoi(m[2].str()));
}

store::ImportBundle parse_published_text(const std::string& text, const std::string& path,
                                         const ImportOptions& opt) {
  check_layer_mix(opt.layer_mix);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(fmt::format("'{}' is not valid JSON: {}", path, e.what()));
  }
  const std::string file = std::filesystem::path(path).filename().string();
  store::ImportBundle b;
  b.origin = "published";
  b.name = experiment_name(path, opt);
  b.sha256 = sha256_hex(text);
  const auto& config = field(j, "config", file);
  PublishedReader rd{b, opt, {}, {}, {}};
  if (j.contains("per_passage")) {
    read_per_passage(rd, j, config, file);
  } else if (j.contains("results_by_stream")) {
    read_single_passage(rd, j, config, file);
  } else if (j.contains("aggregate_by_stream")) {
    json agg = read_aggregate(rd, j, config, file);
    const std::size_t n = config.contains("n_passages") && config["n_passages"].is_number()
                              ? config["n_passages"].get<std::size_t>()
                              : 0;
    fill_published_metadata(rd, j, config, file, "published aggregate JSON (no per-passage values)", n);
    rd.params["published_aggregate"] = std::move(agg);
  } else {
    throw Error(fmt::format(
        "{}: unknown published shape; expected a field 'per_passage' (per-passage results), 'results_by_stream' "
        "(one passage) or 'aggregate_by_stream' (per-stream summaries)",
        file));
  }
  set_params(b, std::move(rd.params));
  return b;
}

store::ImportBundle parse_published(const std::string& path, const ImportOptions& opt) {
  check_layer_mix(opt.layer_mix);
  return parse_published_text(read_text_file(path), path, opt);
}

store::ImportOutcome import_published(SQLite::Database& db, const std::string& path, const ImportOptions& opt) {
  return store::write_import(db, parse_published(path, opt));
}

}  // namespace kvlab::ingest
