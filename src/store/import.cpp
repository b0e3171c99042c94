// Imports of published JSON and CSV results: see import.h. Every statement
// of this file is in the table below.
#include "store/import.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <tuple>

#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/VariadicBind.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/hash.h"
#include "kvlab_version.h"
#include "store/db.h"
#include "store/runs.h"
#include "store/writers.h"

namespace kvlab::store {

namespace {

// ---------------------------------------------------------------- statements
constexpr const char* kFindByHash = "SELECT id, name FROM experiments WHERE spec_hash = ? AND origin = ? ORDER BY id LIMIT 1";
constexpr const char* kFindByName = "SELECT id, origin, spec_hash FROM experiments WHERE name = ?";
constexpr const char* kPassageId = "SELECT id, content_hash FROM passages WHERE experiment_id = ? AND name = ?";
// ---------------------------------------------------------------- bundle

using BPassage = PlannedPassage;
struct BRun {
  std::string passage;
  std::string stream;
  std::string codec;
  std::optional<int> q;
  int replicate = 0;
  double bits = 0, rel_mse = 0, cos_sim = 0;
  std::optional<std::int64_t> n_vectors;
  std::optional<std::int64_t> dim;
};
struct BAudit {
  std::string passage;
  std::string stream;
  double m[4] = {0, 0, 0, 0};
  std::int64_t n_vectors = 0;
  std::int64_t dim = 0;
};
struct Bundle {
  std::string origin;
  std::string name;
  std::string sha;
  std::string spec_text;
  nlohmann::json params;
  std::vector<BPassage> passages;
  std::vector<BRun> runs;
  std::vector<BAudit> audits;
  Provenance prov;
};

std::string default_name(const std::string& path) { return std::filesystem::path(path).stem().string(); }

nlohmann::json layer_mix_json(const LayerMix& lm) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [s, n] : lm) j[s] = n;
  return j;
}

void check_layer_mix(const LayerMix& lm) {
  KVLAB_CHECK(!lm.empty(), "an import needs the model's layer mix (layers per stream)");
  for (const auto& [s, n] : lm)
    KVLAB_CHECK(n >= 0 && std::isfinite(n), "layer mix: stream {} has {} layers; expected a count >= 0", s, n);
}

ImportOutcome write_bundle(SQLite::Database& db, Bundle& b) {
  ImportOutcome out;
  out.file_sha256 = b.sha;
  // Report codec: the largest-Q e8 (compared with d4 at the same Q), when present.
  {
    int best_q = 0;
    std::set<std::string> codecs;
    for (const auto& r : b.runs) codecs.insert(r.codec);
    for (const auto& r : b.runs)
      if (r.codec.rfind("e8:", 0) == 0 && r.q && *r.q > best_q) best_q = *r.q;
    if (best_q > 0) {
      b.params["report"]["codec"] = fmt::format("e8:q={}", best_q);
      if (codecs.count(fmt::format("d4:q={}", best_q))) b.params["report"]["compare"] = fmt::format("d4:q={}", best_q);
    }
  }
  const std::string params = b.params.dump();
  with_write_transaction(db, [&] {
    out = ImportOutcome{};
    out.file_sha256 = b.sha;
    RowWriter w(db);
    std::int64_t exp_id = 0;
    {
      SQLite::Statement st(db, kFindByHash);
      SQLite::bind(st, b.sha, b.origin);
      if (st.executeStep()) {
        exp_id = st.getColumn(0).getInt64();
        out.experiment = st.getColumn(1).getString();
      }
    }
    if (exp_id == 0) {
      SQLite::Statement st(db, kFindByName);
      st.bind(1, b.name);
      if (st.executeStep())
        throw Error(fmt::format(
            "experiment '{}' already exists (origin {}, spec hash {}) and holds other results than this file "
            "(sha256 {}); choose another name with --experiment",
            b.name, st.getColumn(1).getString(), st.getColumn(2).getString(), b.sha));
      exp_id = w.experiment(b.name, b.origin, b.spec_text, b.sha, params);
      out.experiment = b.name;
      out.experiment_created = true;
    }
    out.experiment_id = exp_id;
    const std::int64_t prov_id = upsert_provenance(db, b.prov);

    std::map<std::string, std::int64_t> passage_ids;
    {
      SQLite::Statement get(db, kPassageId);
      for (const auto& p : b.passages) {
        out.passages_added += w.passage(exp_id, p);
        get.reset();
        SQLite::bind(get, exp_id, p.name);
        KVLAB_CHECK(get.executeStep(),
                    "experiment '{}' already has another passage at position {} (importing passage '{}')",
                    out.experiment, p.idx, p.name);
        KVLAB_CHECK(get.getColumn(1).getString() == p.content_hash,
                    "experiment '{}': passage '{}' is stored with content hash {} but the file gives {}",
                    out.experiment, p.name, get.getColumn(1).getString(), p.content_hash);
        passage_ids[p.name] = get.getColumn(0).getInt64();
      }
    }
    const double now = unix_now();
    NewRun row;
    row.experiment_id = exp_id;
    row.status = "done";
    row.attempts = 1;
    row.worker = "import";
    row.queued_at = now;
    row.claimed_at = now;
    row.finished_at = now;
    for (const auto& r : b.runs) {
      row.passage_id = passage_ids.at(r.passage);
      row.stream = r.stream;
      row.codec = r.codec;
      row.q = r.q;
      row.replicate = r.replicate;
      const auto run_id = w.run(row);
      if (!run_id) {
        ++out.rows_existing;
        continue;  // an existing run keeps its state and result
      }
      ++out.runs_added;
      RunResult res;
      res.bits_per_vector = r.bits;
      res.rel_mse = r.rel_mse;
      res.cos_sim = r.cos_sim;
      res.n_vectors = r.n_vectors;
      res.dim = r.dim;
      out.results_added += w.result(*run_id, res, prov_id);
    }
    for (const auto& a : b.audits) {
      const AuditRow row{a.stream, a.m[0], a.m[1], a.m[2], a.m[3], a.n_vectors, a.dim};
      out.audits_added += w.audit(exp_id, passage_ids.at(a.passage), 0, row, prov_id);
    }
  });
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  KVLAB_CHECK(f.good(), "cannot open '{}' for reading", path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void check_stream(const std::string& where, const std::string& s) {
  const auto& known = published_stream_names();
  for (const auto& k : known)
    if (k == s) return;
  throw Error(fmt::format("{}: unknown stream '{}'; expected one of: {}, {}, {}", where, s, known[0], known[1], known[2]));
}

std::string default_canonical(const std::string& family, std::optional<int> q) {
  KVLAB_CHECK(!family.empty(), "empty codec name");
  for (char c : family)
    KVLAB_CHECK(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_',
                "codec '{}' must be lower-case letters, digits or '_'", family);
  if (family == "fp8_per64") {
    KVLAB_CHECK(!q, "codec fp8_per64 takes no Q (got q={})", q.value_or(0));
    return family;
  }
  KVLAB_CHECK(q && *q >= 1, "codec '{}' needs a Q >= 1", family);
  return fmt::format("{}:q={}", family, *q);
}

// JSON access with the path in errors.
const nlohmann::json& field(const nlohmann::json& j, const std::string& key, const std::string& where) {
  KVLAB_CHECK(j.is_object() && j.contains(key), "{}: missing field '{}'", where, key);
  return j.at(key);
}
double number(const nlohmann::json& j, const std::string& key, const std::string& where) {
  const auto& v = field(j, key, where);
  KVLAB_CHECK(v.is_number(), "{}.{}: expected a number, got {}", where, key, v.dump());
  return v.get<double>();
}

}  // namespace

const std::vector<std::string>& published_stream_names() {
  static const std::vector<std::string> s = {"sliding_window_kv", "csa_pool_kv_ratio4", "hca_pool_kv_ratio128"};
  return s;
}

std::string published_codec_spec(const std::string& name) {
  if (name == "fp8_per64_baseline") return "fp8_per64";
  static const std::regex re(R"(v[0-9]+_(d4|e8)_Q([0-9]{1,6}))");
  std::smatch m;
  KVLAB_CHECK(std::regex_match(name, m, re) && std::stoi(m[2].str()) >= 1,
              "unknown published codec name '{}'; expected v<N>_d4_Q<q>, v<N>_e8_Q<q> or fp8_per64_baseline", name);
  return fmt::format("{}:q={}", m[1].str(), std::stoi(m[2].str()));
}

namespace {

// Mutable state shared by the per-passage readers of one published file.
struct PublishedReader {
  Bundle& b;
  const ImportOptions& opt;
  std::set<std::string> streams_seen, codecs_seen;
  std::string dtype;
};

// One stream result of one passage ({stream, shape, dtype, audit, codecs}):
// its audit row and one run per codec.
void read_stream_result(PublishedReader& rd, const std::string& passage, const nlohmann::json& r,
                        const std::string& rw) {
  const auto& sj = field(r, "stream", rw);
  KVLAB_CHECK(sj.is_string(), "{}.stream: expected a string", rw);
  const std::string stream = sj.get<std::string>();
  check_stream(rw, stream);
  rd.streams_seen.insert(stream);
  std::optional<std::int64_t> n_vectors, dim;
  if (r.contains("shape") && r["shape"].is_array() && r["shape"].size() == 3) {
    n_vectors = r["shape"][1].get<std::int64_t>();
    dim = r["shape"][2].get<std::int64_t>();
  }
  if (r.contains("dtype") && r["dtype"].is_string()) rd.dtype = r["dtype"].get<std::string>();
  const auto& audit = field(r, "audit", rw);
  BAudit a;
  a.passage = passage;
  a.stream = stream;
  const char* metrics[4] = {"excess_kurtosis_abs", "isotropy_variance_ratio", "hadamard_post_variance_ratio",
                            "rms_wasserstein2_over_sigma_per_dim"};
  for (int m = 0; m < 4; ++m) a.m[m] = number(audit, metrics[m], rw + ".audit");
  a.n_vectors = static_cast<std::int64_t>(number(audit, "num_vectors", rw + ".audit"));
  a.dim = static_cast<std::int64_t>(number(audit, "D", rw + ".audit"));
  if (!n_vectors) n_vectors = a.n_vectors;
  if (!dim) dim = a.dim;
  rd.b.audits.push_back(a);
  const auto& codecs = field(r, "codecs", rw);
  KVLAB_CHECK(codecs.is_object(), "{}.codecs: expected an object", rw);
  for (const auto& [cname, cv] : codecs.items()) {
    const std::string cw = rw + ".codecs." + cname;
    BRun run;
    run.passage = passage;
    run.stream = stream;
    run.codec = published_codec_spec(cname);
    const auto colon = run.codec.find(":q=");
    if (colon != std::string::npos) run.q = std::stoi(run.codec.substr(colon + 3));
    if (rd.opt.canonicalize)
      run.codec = rd.opt.canonicalize(colon == std::string::npos ? run.codec : run.codec.substr(0, colon), run.q);
    run.bits = number(cv, "bits_per_vector", cw);
    run.rel_mse = number(cv, "rel_mse", cw);
    run.cos_sim = number(cv, "cos_sim", cw);
    KVLAB_CHECK(run.bits > 0, "{}.bits_per_vector: expected > 0, got {}", cw, run.bits);
    KVLAB_CHECK(run.rel_mse >= 0, "{}.rel_mse: expected >= 0, got {}", cw, run.rel_mse);
    run.n_vectors = n_vectors;
    run.dim = dim;
    rd.codecs_seen.insert(run.codec);
    rd.b.runs.push_back(std::move(run));
  }
}

// {mean, std, ci95_hw, n} of an aggregate file, checked.
nlohmann::json aggregate_summary(const nlohmann::json& j, const std::string& where) {
  nlohmann::json out = nlohmann::json::object();
  out["mean"] = number(j, "mean", where);
  out["n"] = number(j, "n", where);
  for (const char* k : {"std", "ci95_hw"})
    if (j.contains(k) && j[k].is_number()) out[k] = j[k].get<double>();
  return out;
}

// The aggregate-only shape (stage075_qsweep*_n8.json): per stream the FP8
// rel-MSE and the E8 rel-MSE per Q as {mean, std, ci95_hw, n}, no
// per-passage values. Stored verbatim (checked) in params_json
// "published_aggregate": {stream: {"fp8_per64": {rel_mse, bits}, "e8:q=Q":
// {rel_mse, bits}, "audit": {metric: summary}}}; no runs are written.
nlohmann::json read_aggregate(PublishedReader& rd, const nlohmann::json& j, const nlohmann::json& config,
                              const std::string& root) {
  const auto& agg = field(j, "aggregate_by_stream", root);
  KVLAB_CHECK(agg.is_object() && !agg.empty(), "{}.aggregate_by_stream: expected a non-empty object", root);
  const auto& bits_by_q = field(j, "bits_per_vec_by_q", root);
  const double fp8_bits = number(config, "bits_fp8_per64_baseline", root + ".config");
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [stream, sv] : agg.items()) {
    const std::string sw = root + ".aggregate_by_stream." + stream;
    check_stream(sw, stream);
    rd.streams_seen.insert(stream);
    nlohmann::json s = nlohmann::json::object();
    s["fp8_per64"] = {{"rel_mse", aggregate_summary(field(sv, "fp8_rel_mse", sw), sw + ".fp8_rel_mse")},
                      {"bits", fp8_bits}};
    rd.codecs_seen.insert("fp8_per64");
    const auto& by_q = field(sv, "e8_rel_mse_by_q", sw);
    KVLAB_CHECK(by_q.is_object(), "{}.e8_rel_mse_by_q: expected an object", sw);
    for (const auto& [qs, qv] : by_q.items()) {
      const std::string qw = sw + ".e8_rel_mse_by_q." + qs;
      int q = 0;
      const auto [ptr, ec] = std::from_chars(qs.data(), qs.data() + qs.size(), q);
      KVLAB_CHECK(ec == std::errc() && ptr == qs.data() + qs.size() && q >= 1, "{}: Q '{}' is not an integer >= 1",
                  qw, qs);
      std::string codec = fmt::format("e8:q={}", q);
      if (rd.opt.canonicalize) codec = rd.opt.canonicalize("e8", q);
      s[codec] = {{"rel_mse", aggregate_summary(qv, qw)}, {"bits", number(bits_by_q, qs, root + ".bits_per_vec_by_q")}};
      rd.codecs_seen.insert(codec);
    }
    if (sv.contains("audit") && sv["audit"].is_object()) {
      nlohmann::json a = nlohmann::json::object();
      for (const auto& [m, mv] : sv["audit"].items())
        a[m] = mv.is_object() ? aggregate_summary(mv, sw + ".audit." + m) : mv;
      s["audit"] = a;
    }
    out[stream] = s;
  }
  return out;
}

// params_json and provenance common to every published shape.
void fill_published_metadata(PublishedReader& rd, const nlohmann::json& j, const nlohmann::json& config,
                             const std::string& file, const std::string& format, std::size_t n_passages) {
  Bundle& b = rd.b;
  const std::string device = config.contains("device") && config["device"].is_string() ? config["device"].get<std::string>() : "";
  const std::string host = config.contains("host_model") && config["host_model"].is_string() ? config["host_model"].get<std::string>() : "";
  const std::string stream_dtype =
      rd.dtype == "torch.bfloat16" ? "bf16" : rd.dtype == "torch.float32" ? "fp32" : rd.dtype;
  nlohmann::json weights = nlohmann::json::object();
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
  b.params = nlohmann::json::object();
  if (config.contains("seqlen")) b.params["seqlen"] = config["seqlen"];
  b.params["stream_dtype"] = stream_dtype;
  b.params["device"] = device;
  b.params["weights"] = weights;
  b.params["host"] = {{"kind", "published"}, {"spec", host}};
  b.params["streams"] = std::vector<std::string>(rd.streams_seen.begin(), rd.streams_seen.end());
  b.params["codecs"] = std::vector<std::string>(rd.codecs_seen.begin(), rd.codecs_seen.end());
  b.params["layer_mix"] = layer_mix_json(rd.opt.layer_mix);
  b.params["import"] = {{"file", file}, {"sha256", b.sha}, {"format", format}};
  if (j.contains("generated_at")) b.params["import"]["generated_at"] = j["generated_at"];
  b.spec_text = fmt::format("imported from the {} {} (sha256 {}); {} passages; config: {}", format, file, b.sha,
                            n_passages, config.dump());
  b.prov.kvlab_version = fmt::format("published harness (imported by kvlab {})", KVLAB_VERSION);
  b.prov.git_commit = "unknown";
  b.prov.git_dirty = -1;
  if (!device.empty()) b.prov.device = device;
  b.prov.host_kind = "published";
  b.prov.host_json = nlohmann::json({{"model", host}, {"file", file}, {"sha256", b.sha}}).dump();
  b.prov.weights_json = weights.dump();
  if (!stream_dtype.empty()) b.prov.stream_dtype = stream_dtype;
}

}  // namespace

ImportOutcome import_published(SQLite::Database& db, const std::string& path, const ImportOptions& opt) {
  check_layer_mix(opt.layer_mix);
  const std::string text = read_file(path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("'{}' is not valid JSON: {}", path, e.what()));
  }
  const std::string file = std::filesystem::path(path).filename().string();
  Bundle b;
  b.origin = "published";
  b.name = opt.experiment.empty() ? default_name(path) : opt.experiment;
  b.sha = sha256_hex(text);
  const std::string root = file;
  const auto& config = field(j, "config", root);
  PublishedReader rd{b, opt, {}, {}, {}};
  if (j.contains("per_passage")) {
    const auto& per_passage = j["per_passage"];
    KVLAB_CHECK(per_passage.is_array() && !per_passage.empty(), "{}.per_passage: expected a non-empty array", root);
    std::vector<std::string> prefixes;
    if (config.contains("passages_sha_first64") && config["passages_sha_first64"].is_array())
      for (const auto& p : config["passages_sha_first64"]) prefixes.push_back(p.is_string() ? p.get<std::string>() : "");
    for (std::size_t i = 0; i < per_passage.size(); ++i) {
      const std::string pw = fmt::format("{}.per_passage[{}]", root, i);
      const auto& pp = per_passage[i];
      const int pidx = static_cast<int>(number(pp, "passage_id", pw));
      BPassage p;
      p.idx = pidx;
      p.name = fmt::format("p{}", pidx);
      // Only the first 64 characters of each passage are published: hash those.
      const std::string prefix = pidx >= 0 && static_cast<std::size_t>(pidx) < prefixes.size() ? prefixes[pidx] : "";
      p.content_hash = sha256_hex(prefix.empty() ? fmt::format("published:{}#{}", b.sha, pidx) : prefix);
      p.source = fmt::format("published:{}#{}", file, pidx);
      b.passages.push_back(p);
      const auto& results = field(pp, "results", pw);
      KVLAB_CHECK(results.is_array(), "{}.results: expected an array", pw);
      for (std::size_t k = 0; k < results.size(); ++k)
        read_stream_result(rd, p.name, results[k], fmt::format("{}.results[{}]", pw, k));
    }
    fill_published_metadata(rd, j, config, file, "published per-passage JSON", per_passage.size());
  } else if (j.contains("results_by_stream")) {
    // One passage (stage075_trained.json): the results of passage 0.
    const auto& results = j["results_by_stream"];
    KVLAB_CHECK(results.is_array() && !results.empty(), "{}.results_by_stream: expected a non-empty array", root);
    BPassage p;
    p.idx = 0;
    p.name = "p0";
    p.content_hash = sha256_hex(fmt::format("published:{}#0", b.sha));
    p.source = fmt::format("published:{}#0", file);
    b.passages.push_back(p);
    for (std::size_t k = 0; k < results.size(); ++k)
      read_stream_result(rd, p.name, results[k], fmt::format("{}.results_by_stream[{}]", root, k));
    fill_published_metadata(rd, j, config, file, "published single-passage JSON", 1);
  } else if (j.contains("aggregate_by_stream")) {
    const nlohmann::json agg = read_aggregate(rd, j, config, root);
    const std::size_t n = config.contains("n_passages") && config["n_passages"].is_number()
                              ? config["n_passages"].get<std::size_t>()
                              : 0;
    fill_published_metadata(rd, j, config, file, "published aggregate JSON (no per-passage values)", n);
    b.params["published_aggregate"] = agg;
  } else {
    throw Error(fmt::format(
        "{}: unknown published shape; expected a field 'per_passage' (per-passage results), 'results_by_stream' "
        "(one passage) or 'aggregate_by_stream' (per-stream summaries)",
        root));
  }
  return write_bundle(db, b);
}

namespace {

// RFC 4180 fields of one line (quotes, doubled quotes; no embedded newlines).
std::vector<std::string> split_csv(const std::string& line, const std::string& where) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false, was_quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') {
          cur += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        cur += c;
      }
    } else if (c == '"' && cur.empty() && !was_quoted) {
      quoted = was_quoted = true;
    } else if (c == ',') {
      out.push_back(cur);
      cur.clear();
      was_quoted = false;
    } else {
      cur += c;
    }
  }
  KVLAB_CHECK(!quoted, "{}: unterminated quoted field", where);
  out.push_back(cur);
  for (auto& f : out) {
    while (!f.empty() && std::isspace(static_cast<unsigned char>(f.back()))) f.pop_back();
    std::size_t s = 0;
    while (s < f.size() && std::isspace(static_cast<unsigned char>(f[s]))) ++s;
    f.erase(0, s);
  }
  return out;
}

double parse_double(const std::string& s, const std::string& where) {
  double v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  KVLAB_CHECK(ec == std::errc() && ptr == s.data() + s.size() && !s.empty(), "{}: '{}' is not a number", where, s);
  KVLAB_CHECK(std::isfinite(v), "{}: '{}' is not finite", where, s);
  return v;
}
std::int64_t parse_int(const std::string& s, const std::string& where) {
  std::int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  KVLAB_CHECK(ec == std::errc() && ptr == s.data() + s.size() && !s.empty(), "{}: '{}' is not an integer", where, s);
  return v;
}

}  // namespace

ImportOutcome import_csv(SQLite::Database& db, const std::string& path, const ImportOptions& opt) {
  check_layer_mix(opt.layer_mix);
  const std::string text = read_file(path);
  const std::string file = std::filesystem::path(path).filename().string();
  Bundle b;
  b.origin = "csv";
  b.name = opt.experiment.empty() ? default_name(path) : opt.experiment;
  b.sha = sha256_hex(text);
  const std::vector<std::string> required = {"passage", "stream", "codec", "q", "bits_per_vector", "rel_mse", "cos_sim"};
  // experiment and run_id (written by `kvlab export`) are accepted and ignored.
  const std::vector<std::string> optional_cols = {"n_vectors", "dim", "passage_hash", "replicate", "experiment",
                                                  "run_id"};
  std::map<std::string, std::size_t> col;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  bool header = false;
  std::map<std::string, std::string> passage_hash;  // name -> hash
  std::vector<std::string> passage_order;
  std::set<std::string> streams_seen, codecs_seen;
  std::set<std::tuple<std::string, std::string, std::string, int>> keys;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = fmt::format("{}:{}", file, lineno);
    auto fields = split_csv(line, where);
    if (!header) {
      for (std::size_t i = 0; i < fields.size(); ++i) {
        const auto& h = fields[i];
        const bool known = std::find(required.begin(), required.end(), h) != required.end() ||
                           std::find(optional_cols.begin(), optional_cols.end(), h) != optional_cols.end();
        KVLAB_CHECK(known, "{}: unknown column '{}'; expected passage, stream, codec, q, bits_per_vector, rel_mse, "
                    "cos_sim and optionally n_vectors, dim, passage_hash, replicate (experiment, run_id: ignored)", where, h);
        KVLAB_CHECK(!col.count(h), "{}: column '{}' appears twice", where, h);
        col[h] = i;
      }
      for (const auto& r : required) KVLAB_CHECK(col.count(r), "{}: missing column '{}' in the header", where, r);
      header = true;
      continue;
    }
    KVLAB_CHECK(fields.size() == col.size(), "{}: {} fields, the header has {}", where, fields.size(), col.size());
    const auto get = [&](const std::string& c) -> const std::string& { return fields[col.at(c)]; };
    const auto cw = [&](const std::string& c) { return fmt::format("{} column {}", where, c); };
    BRun r;
    r.passage = get("passage");
    KVLAB_CHECK(!r.passage.empty(), "{}: empty passage name", cw("passage"));
    r.stream = get("stream");
    check_stream(cw("stream"), r.stream);
    std::string codec = get("codec");
    const std::string qs = get("q");
    std::optional<int> q;
    if (!qs.empty()) {
      const std::int64_t qv = parse_int(qs, cw("q"));
      KVLAB_CHECK(qv >= 1 && qv <= 1000000, "{}: Q {} must be >= 1", cw("q"), qv);
      q = static_cast<int>(qv);
    }
    // Either a family with the q column, or a full spec 'e8:q=38' (q column empty or equal).
    const auto colon = codec.find(":q=");
    if (colon != std::string::npos) {
      const std::int64_t sq = parse_int(codec.substr(colon + 3), cw("codec"));
      KVLAB_CHECK(!q || *q == sq, "{}: codec '{}' disagrees with q = {}", where, codec, *q);
      q = static_cast<int>(sq);
      codec = codec.substr(0, colon);
    }
    try {
      r.codec = opt.canonicalize ? opt.canonicalize(codec, q) : default_canonical(codec, q);
    } catch (const Error& e) {
      throw Error(fmt::format("{}: {}", cw("codec"), e.what()));
    }
    r.q = q;
    r.bits = parse_double(get("bits_per_vector"), cw("bits_per_vector"));
    KVLAB_CHECK(r.bits > 0, "{}: bits_per_vector {} must be > 0", cw("bits_per_vector"), r.bits);
    r.rel_mse = parse_double(get("rel_mse"), cw("rel_mse"));
    KVLAB_CHECK(r.rel_mse >= 0, "{}: rel_mse {} must be >= 0", cw("rel_mse"), r.rel_mse);
    r.cos_sim = parse_double(get("cos_sim"), cw("cos_sim"));
    KVLAB_CHECK(r.cos_sim >= -1.0000001 && r.cos_sim <= 1.0000001, "{}: cos_sim {} must be in [-1, 1]", cw("cos_sim"),
                r.cos_sim);
    if (col.count("n_vectors") && !get("n_vectors").empty()) r.n_vectors = parse_int(get("n_vectors"), cw("n_vectors"));
    if (col.count("dim") && !get("dim").empty()) {
      r.dim = parse_int(get("dim"), cw("dim"));
      KVLAB_CHECK(*r.dim > 0, "{}: dim {} must be > 0", cw("dim"), *r.dim);
    }
    if (col.count("replicate") && !get("replicate").empty()) {
      const std::int64_t rep = parse_int(get("replicate"), cw("replicate"));
      KVLAB_CHECK(rep >= 0, "{}: replicate {} must be >= 0", cw("replicate"), rep);
      r.replicate = static_cast<int>(rep);
    }
    std::string hash = col.count("passage_hash") ? get("passage_hash") : "";
    if (hash.empty()) hash = sha256_hex("csv-passage:" + r.passage);
    const auto pit = passage_hash.find(r.passage);
    if (pit == passage_hash.end()) {
      passage_hash[r.passage] = hash;
      passage_order.push_back(r.passage);
    } else {
      KVLAB_CHECK(pit->second == hash, "{}: passage '{}' has two different passage_hash values", where, r.passage);
    }
    KVLAB_CHECK(keys.insert({r.passage, r.stream, r.codec, r.replicate}).second,
                "{}: duplicate row for passage '{}', stream {}, codec {}, replicate {}", where, r.passage, r.stream,
                r.codec, r.replicate);
    streams_seen.insert(r.stream);
    codecs_seen.insert(r.codec);
    b.runs.push_back(std::move(r));
  }
  KVLAB_CHECK(header, "'{}' is empty; expected a header line with passage, stream, codec, q, bits_per_vector, "
              "rel_mse, cos_sim", path);
  KVLAB_CHECK(!b.runs.empty(), "'{}' has a header but no rows", path);
  for (std::size_t i = 0; i < passage_order.size(); ++i)
    b.passages.push_back({static_cast<int>(i), passage_order[i], passage_hash[passage_order[i]],
                          fmt::format("csv:{}#{}", file, passage_order[i]), std::nullopt});
  b.params = nlohmann::json::object();
  b.params["streams"] = std::vector<std::string>(streams_seen.begin(), streams_seen.end());
  b.params["codecs"] = std::vector<std::string>(codecs_seen.begin(), codecs_seen.end());
  b.params["layer_mix"] = layer_mix_json(opt.layer_mix);
  b.params["host"] = {{"kind", "csv"}, {"spec", file}};
  b.params["import"] = {{"file", file}, {"sha256", b.sha}, {"format", "csv"}};
  b.spec_text = fmt::format("imported from CSV {} (sha256 {}); {} rows, {} passages", file, b.sha, b.runs.size(),
                            b.passages.size());
  b.prov.kvlab_version = fmt::format("csv import (kvlab {})", KVLAB_VERSION);
  b.prov.git_commit = "unknown";
  b.prov.git_dirty = -1;
  b.prov.host_kind = "csv";
  b.prov.host_json = nlohmann::json({{"file", file}, {"sha256", b.sha}}).dump();
  return write_bundle(db, b);
}

ImportOutcome generate_benchmark(SQLite::Database& db, const BenchmarkSpec& spec) {
  check_layer_mix(spec.layer_mix);
  KVLAB_CHECK(spec.passages >= 1 && spec.qmax >= 1, "benchmark: passages ({}) and qmax ({}) must be >= 1",
              spec.passages, spec.qmax);
  KVLAB_CHECK(static_cast<bool>(spec.bits_of), "benchmark: a bit formula is required");
  Bundle b;
  b.origin = "sweep";
  b.name = spec.experiment;
  b.spec_text = fmt::format("synthetic query benchmark: {} passages, families {}, Q = 1..{}, D = {}, seed {}",
                            spec.passages, fmt::join(spec.families, ","), spec.qmax, spec.dim, spec.seed);
  b.sha = sha256_hex(b.spec_text);
  // splitmix64: a deterministic, portable noise source.
  std::uint64_t state = spec.seed;
  const auto uniform = [&state]() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-53;
  };
  const auto& streams = published_stream_names();
  const double stream_scale[3] = {1.0, 1.15, 1.6};
  const double fp8_bits = 8.0 * spec.dim + 16.0 * (spec.dim / 64);
  for (int p = 0; p < spec.passages; ++p) {
    const std::string name = fmt::format("bench{}", p);
    b.passages.push_back({p, name, sha256_hex("bench-passage:" + name), fmt::format("synthetic:seed={}", p),
                          std::nullopt});
    const double passage_scale = 1.0 + 0.05 * (uniform() - 0.5);
    for (int s = 0; s < 3; ++s) {
      const double base = 1.0e-3 * stream_scale[s] * passage_scale;
      const auto add = [&](const std::string& codec, std::optional<int> q, double bits, double rel) {
        BRun r;
        r.passage = name;
        r.stream = streams[s];
        r.codec = codec;
        r.q = q;
        r.bits = bits;
        r.rel_mse = rel;
        r.cos_sim = 1.0 - rel / 2;
        r.n_vectors = s == 0 ? 2048 : s == 1 ? 512 : 16;
        r.dim = spec.dim;
        b.runs.push_back(std::move(r));
      };
      add("fp8_per64", std::nullopt, fp8_bits, base * (1.0 + 0.02 * (uniform() - 0.5)));
      for (std::size_t f = 0; f < spec.families.size(); ++f)
        for (int q = 1; q <= spec.qmax; ++q) {
          const double fam = 1.0 + 0.5 * static_cast<double>(f);
          const double rel = base * 1200.0 / fam / ((2.0 * q + 1) * (2.0 * q + 1)) * (1.0 + 0.04 * (uniform() - 0.5));
          add(fmt::format("{}:q={}", spec.families[f], q), q, spec.bits_of(spec.families[f], q, spec.dim), rel);
        }
      BAudit a;
      a.passage = name;
      a.stream = streams[s];
      for (double& m : a.m) m = uniform();
      a.n_vectors = s == 0 ? 2048 : s == 1 ? 512 : 16;
      a.dim = spec.dim;
      b.audits.push_back(a);
    }
  }
  b.params = nlohmann::json::object();
  b.params["seqlen"] = 2048;
  b.params["stream_dtype"] = "bf16";
  b.params["device"] = "synthetic";
  b.params["host"] = {{"kind", "synthetic"}, {"spec", "query benchmark"}};
  b.params["streams"] = streams;
  b.params["layer_mix"] = layer_mix_json(spec.layer_mix);
  b.prov.kvlab_version = KVLAB_VERSION;
  b.prov.git_commit = spec.git_commit;
  b.prov.host_kind = "synthetic";
  {
    SQLite::Statement st(db, kFindByName);
    st.bind(1, b.name);
    KVLAB_CHECK(!st.executeStep(), "benchmark: experiment '{}' exists already in {}", b.name, db.getFilename());
  }
  return write_bundle(db, b);
}

}  // namespace kvlab::store
