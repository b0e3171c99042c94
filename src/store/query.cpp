// Read-side queries: see query.h. Every statement of this file is in the
// table below.
#include "store/query.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <set>

#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/streams.h"
#include "store/db.h"
#include "store/runs.h"
#include "store/sql.h"
#include "store/writers.h"

namespace kvlab::store {

namespace {

// Whitespace-separated words of a passage text (what a text host cuts it into).
std::int64_t whitespace_words(const std::string& text) {
  std::int64_t n = 0;
  bool in_word = false;
  for (const char c : text) {
    const bool space = std::isspace(static_cast<unsigned char>(c)) != 0;
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

// ---------------------------------------------------------------- statements
// Also the run counts of status_counts (runs.h).
constexpr const char* kListExperiments = R"sql(
SELECT e.id, e.name, e.origin, e.spec_hash, e.created_at,
       (SELECT COUNT(*) FROM passages p WHERE p.experiment_id = e.id),
       coalesce(sum(r.status = 'queued'), 0), coalesce(sum(r.status = 'running'), 0),
       coalesce(sum(r.status = 'done'), 0), coalesce(sum(r.status = 'failed'), 0)
FROM experiments e LEFT JOIN runs r ON r.experiment_id = e.id
GROUP BY e.id ORDER BY e.id)sql";

constexpr const char* kExperimentInfo =
    "SELECT id, name, origin, spec_hash, created_at, params_json FROM experiments WHERE id = ?";

constexpr const char* kPassages =
    "SELECT id, idx, name, content_hash, source, text FROM passages WHERE experiment_id = ? ORDER BY idx";

constexpr const char* kDoneResults = R"sql(
SELECT r.id, r.passage_id, r.stream, r.codec, r.q, r.replicate,
       s.bits_per_vector, s.rel_mse, s.cos_sim, s.n_vectors, s.dim
FROM runs r JOIN results s ON s.run_id = r.id
WHERE r.experiment_id = ? AND r.status = 'done')sql";

constexpr const char* kRunMetrics = R"sql(
SELECT m.run_id, m.metric, m.value
FROM run_metrics m JOIN runs r ON r.id = m.run_id
WHERE r.experiment_id = ? AND r.status = 'done')sql";

constexpr const char* kRunsBase = R"sql(
SELECT r.id, r.experiment_id, e.name, r.passage_id, p.idx, p.name, p.content_hash, r.stream, r.codec, r.q,
       r.replicate, r.status, r.attempts, r.worker, r.error, r.queued_at, r.finished_at,
       s.bits_per_vector, s.code_bytes, s.rel_mse, s.cos_sim, s.n_vectors, s.dim, s.wall_s, s.provenance_id
FROM runs r
JOIN experiments e ON e.id = r.experiment_id
JOIN passages p ON p.id = r.passage_id
LEFT JOIN results s ON s.run_id = r.id
WHERE 1 = 1)sql";

constexpr const char* kRunsOrder =
    " ORDER BY r.experiment_id, p.idx, r.stream, CASE WHEN r.q IS NULL THEN 0 ELSE 1 END, "
    "substr(r.codec, 1, instr(r.codec || ':', ':') - 1), r.q, r.replicate, r.id";

constexpr const char* kStreams = "SELECT DISTINCT stream FROM runs WHERE experiment_id = ?";
constexpr const char* kCodecs = "SELECT DISTINCT codec FROM runs WHERE experiment_id = ?";
constexpr const char* kProvenance = "SELECT * FROM provenance WHERE id = ?";
constexpr const char* kPassageIds = "SELECT id FROM passages WHERE experiment_id = ? ORDER BY idx";
// (The audits: list_audits in runs.h.)

// ---------------------------------------------------------------- helpers

using sql::opt;

std::string known_list(const std::vector<ExperimentRow>& rows) {
  std::string s;
  for (const auto& r : rows) s += fmt::format("{}{} (id {}, {})", s.empty() ? "" : ", ", r.name, r.id, r.origin);
  return s;
}

using kvlab::stream_rank;

}  // namespace

std::vector<ExperimentRow> list_experiments(SQLite::Database& db) {
  std::vector<ExperimentRow> out;
  SQLite::Statement st(db, kListExperiments);
  while (st.executeStep()) {
    ExperimentRow r;
    r.id = st.getColumn(0).getInt64();
    r.name = st.getColumn(1).getString();
    r.origin = st.getColumn(2).getString();
    r.spec_hash = st.getColumn(3).getString();
    r.created_at = st.getColumn(4).getString();
    r.passages = st.getColumn(5).getInt64();
    r.counts.queued = st.getColumn(6).getInt64();
    r.counts.running = st.getColumn(7).getInt64();
    r.counts.done = st.getColumn(8).getInt64();
    r.counts.failed = st.getColumn(9).getInt64();
    out.push_back(std::move(r));
  }
  return out;
}

ExperimentRow resolve_experiment(SQLite::Database& db, const std::string& name_or_id) {
  const auto all = list_experiments(db);
  if (name_or_id.empty()) {
    KVLAB_CHECK(!all.empty(), "the database {} holds no experiment (queue a sweep or import results first)",
                db.getFilename());
    KVLAB_CHECK(all.size() == 1, "the database holds {} experiments; choose one with --experiment: {}", all.size(),
                known_list(all));
    return all.front();
  }
  for (const auto& r : all)
    if (r.name == name_or_id) return r;
  std::int64_t id = 0;
  const auto [ptr, ec] = std::from_chars(name_or_id.data(), name_or_id.data() + name_or_id.size(), id);
  if (ec == std::errc() && ptr == name_or_id.data() + name_or_id.size())
    for (const auto& r : all)
      if (r.id == id) return r;
  throw Error(fmt::format("unknown experiment '{}'; known experiments: {}", name_or_id,
                          all.empty() ? std::string("none") : known_list(all)));
}

void parse_experiment_params(const std::string& params_json, stats::ExperimentInfo& info) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(params_json);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("experiment '{}': params_json is not valid JSON ({})", info.name, e.what()));
  }
  KVLAB_CHECK(j.is_object(), "experiment '{}': params_json must be a JSON object", info.name);
  info.layer_mix.clear();
  if (j.contains("layer_mix") && !j["layer_mix"].is_null()) {
    const auto& lm = j["layer_mix"];
    KVLAB_CHECK(lm.is_object(), "experiment '{}': params_json layer_mix must be an object {{stream: layers}}",
                info.name);
    for (const auto& [k, v] : lm.items()) {
      KVLAB_CHECK(v.is_number() && v.get<double>() >= 0,
                  "experiment '{}': layer_mix['{}'] must be a non-negative number of layers, got {}", info.name, k,
                  v.dump());
      info.layer_mix.emplace_back(k, v.get<double>());
    }
    std::stable_sort(info.layer_mix.begin(), info.layer_mix.end(), [](const auto& a, const auto& b) {
      return stream_rank(a.first) != stream_rank(b.first) ? stream_rank(a.first) < stream_rank(b.first)
                                                          : a.first < b.first;
    });
  }
  if (j.contains("report") && j["report"].is_object()) {
    const auto& r = j["report"];
    if (r.contains("codec") && r["codec"].is_string()) info.report_codec = r["codec"].get<std::string>();
    if (r.contains("compare") && r["compare"].is_string()) info.report_compare = r["compare"].get<std::string>();
  }
  if (j.contains("stream_dtype") && j["stream_dtype"].is_string())
    info.stream_dtype = j["stream_dtype"].get<std::string>();
  if (j.contains("device") && j["device"].is_string()) info.device = j["device"].get<std::string>();
  if (j.contains("baseline") && j["baseline"].is_string()) info.baseline = j["baseline"].get<std::string>();
  if (j.contains("weights") && j["weights"].is_object() && j["weights"].contains("write_path") &&
      j["weights"]["write_path"].is_string())
    info.write_path = j["weights"]["write_path"].get<std::string>();
}

stats::ExperimentData load_experiment(SQLite::Database& db, const std::string& name_or_id) {
  const ExperimentRow row = resolve_experiment(db, name_or_id);
  stats::ExperimentData d;
  {
    auto st = sql::prepare(db, kExperimentInfo, row.id);
    KVLAB_ASSERT(st.executeStep(), "experiment {} vanished", row.id);
    d.info.id = st.getColumn(0).getInt64();
    d.info.name = st.getColumn(1).getString();
    d.info.origin = st.getColumn(2).getString();
    d.info.spec_hash = st.getColumn(3).getString();
    d.info.created_at = st.getColumn(4).getString();
    d.info.params_json = st.getColumn(5).getString();
  }
  d.info.counts = row.counts;
  parse_experiment_params(d.info.params_json, d.info);
  {
    auto st = sql::prepare(db, kPassages, row.id);
    while (st.executeStep()) {
      stats::PassageInfo p;
      p.id = st.getColumn(0).getInt64();
      p.idx = st.getColumn(1).getInt();
      p.name = st.getColumn(2).getString();
      p.content_hash = st.getColumn(3).getString();
      p.source = st.getColumn(4).getString();
      if (!st.getColumn(5).isNull()) p.words = whitespace_words(st.getColumn(5).getString());
      d.passages.push_back(std::move(p));
    }
  }
  {
    auto st = sql::prepare(db, kDoneResults, row.id);
    d.results.reserve(static_cast<std::size_t>(row.counts.done));
    while (st.executeStep()) {
      stats::RunResult r;
      r.run_id = st.getColumn(0).getInt64();
      r.passage_id = st.getColumn(1).getInt64();
      r.stream = st.getColumn(2).getString();
      r.codec = st.getColumn(3).getString();
      r.q = opt<int>(st.getColumn(4));
      r.replicate = st.getColumn(5).getInt();
      r.bits_per_vector = st.getColumn(6).getDouble();
      r.rel_mse = st.getColumn(7).getDouble();
      r.cos_sim = st.getColumn(8).getDouble();
      r.n_vectors = opt<std::int64_t>(st.getColumn(9));
      r.dim = opt<int>(st.getColumn(10));
      d.results.push_back(std::move(r));
    }
  }
  {
    std::map<std::int64_t, std::size_t> at;
    for (std::size_t i = 0; i < d.results.size(); ++i) at[d.results[i].run_id] = i;
    auto st = sql::prepare(db, kRunMetrics, row.id);
    while (st.executeStep()) {
      const auto it = at.find(st.getColumn(0).getInt64());
      if (it == at.end()) continue;
      d.results[it->second].metrics[st.getColumn(1).getString()] = st.getColumn(2).getDouble();
    }
  }
  for (auto& r : list_audits(db, row.id, AuditOrder::kStored)) {
    stats::AuditResult a;
    a.passage_id = r.passage_id;
    a.stream = std::move(r.audit.stream);
    a.replicate = r.replicate;
    a.excess_kurtosis_abs = r.audit.excess_kurtosis_abs;
    a.isotropy_variance_ratio = r.audit.isotropy_variance_ratio;
    a.hadamard_post_variance_ratio = r.audit.hadamard_post_variance_ratio;
    a.rms_wasserstein2_over_sigma_per_dim = r.audit.rms_wasserstein2_over_sigma_per_dim;
    a.n_vectors = r.audit.n_vectors;
    a.dim = static_cast<int>(r.audit.dim);
    d.audits.push_back(std::move(a));
  }
  return d;
}

std::vector<RunRow> list_runs(SQLite::Database& db, const RunFilter& f) {
  static const std::set<std::string> kStatuses = {"queued", "running", "done", "failed"};
  if (f.status)
    KVLAB_CHECK(kStatuses.count(*f.status), "unknown run status '{}'; expected queued, running, done or failed",
                *f.status);
  std::string sql = kRunsBase;
  if (f.experiment_id) sql += " AND r.experiment_id = :exp";
  if (f.run_id) sql += " AND r.id = :run";
  if (f.stream) sql += " AND r.stream = :stream";
  if (f.codec) sql += " AND (r.codec = :codec OR r.codec LIKE :codec_family)";
  if (f.status) sql += " AND r.status = :status";
  if (f.passage) sql += " AND p.name = :passage";
  sql += kRunsOrder;
  if (f.limit) sql += " LIMIT :limit";
  SQLite::Statement st(db, sql);
  // A family pattern matches every spec of the family: e8:q=..., int:bits=...
  const std::optional<std::string> codec_family = f.codec ? std::optional(*f.codec + ":%") : std::nullopt;
  sql::bind_named(st, sql::Named{":exp", f.experiment_id}, sql::Named{":run", f.run_id},
                  sql::Named{":stream", f.stream}, sql::Named{":codec", f.codec},
                  sql::Named{":codec_family", codec_family}, sql::Named{":status", f.status},
                  sql::Named{":passage", f.passage}, sql::Named{":limit", f.limit});
  std::vector<RunRow> out;
  while (st.executeStep()) {
    RunRow r;
    r.run_id = st.getColumn(0).getInt64();
    r.experiment_id = st.getColumn(1).getInt64();
    r.experiment = st.getColumn(2).getString();
    r.passage_id = st.getColumn(3).getInt64();
    r.passage_idx = st.getColumn(4).getInt();
    r.passage = st.getColumn(5).getString();
    r.passage_hash = st.getColumn(6).getString();
    r.stream = st.getColumn(7).getString();
    r.codec = st.getColumn(8).getString();
    r.q = opt<int>(st.getColumn(9));
    r.replicate = st.getColumn(10).getInt();
    r.status = st.getColumn(11).getString();
    r.attempts = st.getColumn(12).getInt();
    r.worker = opt<std::string>(st.getColumn(13));
    r.error = opt<std::string>(st.getColumn(14));
    r.queued_at = st.getColumn(15).getDouble();
    r.finished_at = opt<double>(st.getColumn(16));
    r.bits_per_vector = opt<double>(st.getColumn(17));
    r.code_bytes = opt<std::int64_t>(st.getColumn(18));
    r.rel_mse = opt<double>(st.getColumn(19));
    r.cos_sim = opt<double>(st.getColumn(20));
    r.n_vectors = opt<std::int64_t>(st.getColumn(21));
    r.dim = opt<int>(st.getColumn(22));
    r.wall_s = opt<double>(st.getColumn(23));
    r.provenance_id = opt<std::int64_t>(st.getColumn(24));
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<std::string> experiment_streams(SQLite::Database& db, std::int64_t experiment_id) {
  std::vector<std::string> out;
  auto st = sql::prepare(db, kStreams, experiment_id);
  while (st.executeStep()) out.push_back(st.getColumn(0).getString());
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
    return stream_rank(a) != stream_rank(b) ? stream_rank(a) < stream_rank(b) : a < b;
  });
  return out;
}

std::vector<std::string> experiment_codecs(SQLite::Database& db, std::int64_t experiment_id) {
  std::vector<std::pair<std::pair<std::string, int>, std::string>> keyed;
  auto st = sql::prepare(db, kCodecs, experiment_id);
  while (st.executeStep()) {
    const std::string c = st.getColumn(0).getString();
    const auto colon = c.find(':');
    int q = 0;
    if (colon != std::string::npos && c.size() > colon + 3)
      std::from_chars(c.data() + colon + 3, c.data() + c.size(), q);
    keyed.push_back({{colon == std::string::npos ? "" : c.substr(0, colon), q}, c});
  }
  std::sort(keyed.begin(), keyed.end());
  std::vector<std::string> out;
  for (auto& k : keyed) out.push_back(std::move(k.second));
  return out;
}

std::vector<std::pair<std::string, std::string>> provenance_row(SQLite::Database& db, std::int64_t id) {
  std::vector<std::pair<std::string, std::string>> out;
  auto st = sql::prepare(db, kProvenance, id);
  if (!st.executeStep()) return out;
  for (int i = 0; i < st.getColumnCount(); ++i) {
    const auto c = st.getColumn(i);
    out.emplace_back(st.getColumnName(i), c.isNull() ? std::string("NULL") : c.getString());
  }
  return out;
}

RefineOutcome queue_codec_runs(SQLite::Database& db, std::int64_t experiment_id,
                               const std::vector<std::pair<std::string, int>>& codec_q) {
  RefineOutcome out;
  const auto streams = experiment_streams(db, experiment_id);
  KVLAB_CHECK(!streams.empty(), "experiment {} has no runs: nothing tells which streams to queue", experiment_id);
  std::vector<std::int64_t> passages;
  {
    auto st = sql::prepare(db, kPassageIds, experiment_id);
    while (st.executeStep()) passages.push_back(st.getColumn(0).getInt64());
  }
  with_write_transaction(db, [&] {
    out = RefineOutcome{};
    RowWriter w(db);
    NewRun row;
    row.experiment_id = experiment_id;
    row.queued_at = unix_now();
    for (const auto& [codec, q] : codec_q)
      for (std::int64_t pid : passages)
        for (const auto& s : streams) {
          row.passage_id = pid;
          row.stream = s;
          row.codec = codec;
          row.q = q;
          if (w.run(row))
            ++out.added;
          else
            ++out.existing;
        }
  });
  return out;
}

}  // namespace kvlab::store
