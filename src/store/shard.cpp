// Shard databases: writing slices of a sweep, merging them back, progress.
// See shard.h for the contract.
//
// All merging is done in SQL on the main connection with the shard ATTACHed
// as schema `s`, inside one transaction, with TEMP mapping tables from shard
// ids to main ids keyed by natural keys (never by copied ids). Column lists
// of the copied tables (results, audits, provenance) are read from the
// schema, so a later migration that adds a column needs no edit here.
#include "store/shard.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <numeric>

#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/error.h"
#include "store/db.h"
#include "store/runs.h"
#include "store/sql.h"

namespace kvlab::store {

namespace fs = std::filesystem;

namespace {

constexpr const char* kShardTableDdl =
    "CREATE TABLE IF NOT EXISTS {}kvlab_shard ("
    "  id          INTEGER PRIMARY KEY CHECK (id = 1),"
    "  shard_index INTEGER NOT NULL,"
    "  shard_count INTEGER NOT NULL,"
    "  experiment  TEXT NOT NULL,"
    "  spec_hash   TEXT NOT NULL,"
    "  parent_db   TEXT NOT NULL,"
    "  created_at  TEXT NOT NULL)";

std::string abs_path(const std::string& p) {
  std::error_code ec;
  auto a = fs::absolute(p, ec);
  if (ec) return p;
  return a.lexically_normal().string();
}

// Column names of schema.table in declaration order.
std::vector<std::string> table_columns(SQLite::Database& db, const std::string& schema, const std::string& table) {
  auto st = sql::prepare(db, "SELECT name FROM pragma_table_info(?, ?) ORDER BY cid", table, schema);
  std::vector<std::string> cols;
  while (st.executeStep()) cols.push_back(st.getColumn(0).getString());
  return cols;
}

std::string join(const std::vector<std::string>& v, const std::string& sep, const std::string& prefix = "") {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + prefix + v[i];
  return out;
}

std::vector<std::string> without(std::vector<std::string> v, std::initializer_list<const char*> drop) {
  v.erase(std::remove_if(v.begin(), v.end(),
                         [&](const std::string& c) {
                           for (const char* d : drop)
                             if (c == d) return true;
                           return false;
                         }),
          v.end());
  return v;
}

// ATTACHes `path` as `name` for the lifetime of the object.
class Attached {
 public:
  Attached(SQLite::Database& db, const std::string& path, std::string name) : db_(db), name_(std::move(name)) {
    sql::exec(db_, "ATTACH DATABASE ? AS " + name_, path);
  }
  ~Attached() {
    try {
      db_.exec("DETACH DATABASE " + name_);
    } catch (...) {
    }
  }
  Attached(const Attached&) = delete;
  Attached& operator=(const Attached&) = delete;

 private:
  SQLite::Database& db_;
  std::string name_;
};

void remove_sidecars(const std::string& path) {
  std::error_code ec;
  fs::remove(path + "-wal", ec);
  fs::remove(path + "-shm", ec);
  fs::remove(path + "-journal", ec);
}

// Whether schema `schema` of `db` has the kvlab_shard table.
bool has_shard_table(SQLite::Database& db, const std::string& schema) {
  return db.execAndGet(fmt::format("SELECT count(*) FROM {}.sqlite_schema WHERE type = 'table' AND name = 'kvlab_shard'",
                                   schema))
             .getInt() > 0;
}

// Done runs of an existing shard file that the main database (attached to
// `db` as main) does not have done: results that replacing the file would lose.
std::int64_t unmerged_done_runs(SQLite::Database& db, const std::string& shard_file) {
  Attached a(db, shard_file, "old");
  KVLAB_CHECK(has_shard_table(db, "old"), "'{}' exists but is not a kvlab shard; move it away first", shard_file);
  SQLite::Statement st(db,
                       "SELECT count(*) FROM old.runs r "
                       "JOIN old.experiments e ON e.id = r.experiment_id "
                       "JOIN old.passages p ON p.id = r.passage_id "
                       "WHERE r.status = 'done' AND NOT EXISTS ("
                       "  SELECT 1 FROM main.runs mr "
                       "  JOIN main.experiments me ON me.id = mr.experiment_id AND me.name = e.name "
                       "  JOIN main.passages mp ON mp.id = mr.passage_id AND mp.idx = p.idx AND mp.name = p.name "
                       "  WHERE mr.status = 'done' AND mr.stream = r.stream AND mr.codec = r.codec "
                       "    AND mr.replicate = r.replicate)");
  KVLAB_ASSERT(st.executeStep());
  return st.getColumn(0).getInt64();
}

}  // namespace

std::string shard_base(const std::string& db_path) {
  if (db_path.size() > 3 && db_path.compare(db_path.size() - 3, 3, ".db") == 0)
    return db_path.substr(0, db_path.size() - 3);
  return db_path;
}

std::string shard_path(const std::string& db_path, int index) {
  return fmt::format("{}.shard{}.db", shard_base(db_path), index);
}

std::vector<std::vector<std::size_t>> partition_passages(const std::vector<std::int64_t>& runs_per_passage,
                                                         int n_shards) {
  KVLAB_CHECK(n_shards >= 1, "number of shards is {}; expected at least 1", n_shards);
  const std::size_t n = runs_per_passage.size();
  KVLAB_CHECK(n >= static_cast<std::size_t>(n_shards),
              "{} shards requested but only {} passage(s) have pending runs; a shard holds whole passages "
              "(so that each passage's streams are generated once), so use at most {} shards",
              n_shards, n, n);
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return runs_per_passage[a] > runs_per_passage[b]; });
  std::vector<std::vector<std::size_t>> shards(static_cast<std::size_t>(n_shards));
  std::vector<std::int64_t> load(static_cast<std::size_t>(n_shards), 0);
  for (std::size_t p : order) {
    // Shards still empty first (every shard must get a passage), then the least loaded.
    std::size_t best = 0;
    for (std::size_t s = 1; s < shards.size(); ++s) {
      const bool s_empty = shards[s].empty(), b_empty = shards[best].empty();
      if (s_empty != b_empty) {
        if (s_empty) best = s;
      } else if (load[s] < load[best]) {
        best = s;
      }
    }
    shards[best].push_back(p);
    load[best] += runs_per_passage[p];
  }
  for (auto& s : shards) std::sort(s.begin(), s.end());
  return shards;
}

std::optional<ShardMeta> read_shard_meta(SQLite::Database& shard) {
  if (!has_shard_table(shard, "main")) return std::nullopt;
  SQLite::Statement st(shard,
                       "SELECT shard_index, shard_count, experiment, spec_hash, parent_db, created_at "
                       "FROM kvlab_shard WHERE id = 1");
  if (!st.executeStep()) return std::nullopt;
  ShardMeta m;
  m.index = st.getColumn(0).getInt();
  m.count = st.getColumn(1).getInt();
  m.experiment = st.getColumn(2).getString();
  m.spec_hash = st.getColumn(3).getString();
  m.parent_db = st.getColumn(4).getString();
  m.created_at = st.getColumn(5).getString();
  return m;
}

namespace {

// A passage of the experiment with runs not done: what a shard gets.
struct PendingPassage {
  std::int64_t id = 0;
  std::string name;
  std::int64_t pending = 0;
};

// The passages of experiment `exp_id` with pending runs (by idx), and how
// many of its runs are done.
std::vector<PendingPassage> pending_passages(SQLite::Database& db, std::int64_t exp_id, std::int64_t& done_runs) {
  std::vector<PendingPassage> out;
  auto st = sql::prepare(db,
                         "SELECT p.id, p.name, count(r.id) FROM passages p "
                         "JOIN runs r ON r.passage_id = p.id AND r.experiment_id = p.experiment_id "
                         "WHERE p.experiment_id = ? AND r.status <> 'done' GROUP BY p.id ORDER BY p.idx",
                         exp_id);
  while (st.executeStep())
    out.push_back(PendingPassage{st.getColumn(0).getInt64(), st.getColumn(1).getString(), st.getColumn(2).getInt64()});
  auto d = sql::prepare(db, "SELECT count(*) FROM runs WHERE experiment_id = ? AND status = 'done'", exp_id);
  KVLAB_ASSERT(d.executeStep());
  done_runs = d.getColumn(0).getInt64();
  return out;
}

// Refuses (kvlab::Error) before anything is written when one of the shard
// files that would be replaced holds finished runs the main database lacks.
void check_old_shards_merged(SQLite::Database& db, const std::string& db_path, int n_shards) {
  for (int i = 0; i < n_shards; ++i) {
    const std::string path = shard_path(db_path, i);
    if (!fs::exists(path)) continue;
    std::int64_t lost = 0;
    try {
      lost = unmerged_done_runs(db, path);
    } catch (const SQLite::Exception& e) {
      throw Error(fmt::format("cannot read the existing shard '{}' ({}); it may hold results: ingest or move it "
                              "before writing new shards",
                              path, e.what()));
    }
    KVLAB_CHECK(lost == 0,
                "'{}' holds {} finished run(s) not yet in '{}'; run `kvlab ingest --db {} {}` first (writing new "
                "shards would replace it)",
                path, lost, db_path, db_path, path);
  }
}

// Fills the fresh database `tmp` (schema only) with the slice: the
// experiment row, the slice's passages, their pending runs reset to
// 'queued', and the kvlab_shard row; one transaction on `db` with tmp
// attached. Throws SQLite::Exception on failure.
void fill_shard(SQLite::Database& db, const std::string& tmp, std::int64_t exp_id,
                const std::vector<std::int64_t>& passage_ids, const ShardMeta& meta, std::int64_t expect_runs) {
  const std::string ids_json = fmt::format("[{}]", fmt::join(passage_ids, ","));
  Attached a(db, tmp, "shard");
  SQLite::Transaction tx(db);
  db.exec(fmt::format(kShardTableDdl, "shard."));
  sql::exec(db, "INSERT INTO shard.experiments SELECT * FROM main.experiments WHERE id = ?", exp_id);
  sql::exec(db,
            "INSERT INTO shard.passages SELECT * FROM main.passages "
            "WHERE experiment_id = ? AND id IN (SELECT value FROM json_each(?))",
            exp_id, ids_json);
  const std::int64_t copied = sql::exec(db,
                                        "INSERT INTO shard.runs SELECT * FROM main.runs WHERE experiment_id = ? AND "
                                        "status <> 'done' AND passage_id IN (SELECT value FROM json_each(?))",
                                        exp_id, ids_json);
  KVLAB_ASSERT(copied == expect_runs, "shard {}: copied {} runs, expected {}", meta.index, copied, expect_runs);
  db.exec(
      "UPDATE shard.runs SET status = 'queued', attempts = 0, worker = NULL, claim_token = NULL, "
      "claimed_at = NULL, heartbeat_at = NULL, finished_at = NULL, error = NULL");
  sql::exec(db,
            "INSERT INTO shard.kvlab_shard (id, shard_index, shard_count, experiment, spec_hash, "
            "parent_db, created_at) VALUES (1, ?, ?, ?, ?, ?, ?)",
            meta.index, meta.count, meta.experiment, meta.spec_hash, meta.parent_db, meta.created_at);
  tx.commit();
}

// Writes shard meta.index at shard_path(db_path, meta.index): built in a
// temporary file, then renamed into place (never half-written).
void write_shard_file(SQLite::Database& db, const std::string& db_path, std::int64_t exp_id,
                      const std::vector<std::int64_t>& passage_ids, const ShardMeta& meta, std::int64_t expect_runs) {
  const std::string final_path = shard_path(db_path, meta.index);
  const std::string tmp = fmt::format("{}.tmp{}", final_path, ::getpid());
  remove_sidecars(tmp);
  std::error_code ec;
  fs::remove(tmp, ec);
  open_database(tmp, OpenMode::kCreate).reset();  // schema, application_id, user_version
  try {
    fill_shard(db, tmp, exp_id, passage_ids, meta, expect_runs);
  } catch (const SQLite::Exception& e) {
    fs::remove(tmp, ec);
    remove_sidecars(tmp);
    throw Error(fmt::format("writing shard '{}' failed: {}", final_path, e.what()));
  }
  // DETACH closed the last connection to tmp, which checkpoints its WAL
  // into the file and deletes it; a WAL left over would hold data.
  KVLAB_CHECK(!fs::exists(tmp + "-wal"), "'{}-wal' was not checkpointed into '{}'; the shard is incomplete", tmp,
              tmp);
  remove_sidecars(tmp);
  // Stale sidecars of an old shard must not be replayed onto the new file.
  remove_sidecars(final_path);
  fs::rename(tmp, final_path, ec);
  KVLAB_CHECK(!ec, "cannot move '{}' to '{}': {}", tmp, final_path, ec.message());
}

}  // namespace

ShardLayout write_shards(SQLite::Database& db, const std::string& db_path, const std::string& experiment,
                         int n_shards) {
  KVLAB_CHECK(n_shards >= 1, "--shards {}: expected at least 1", n_shards);
  const auto exp = lookup_experiment(db, experiment);
  KVLAB_CHECK(exp, "experiment '{}' is not in '{}'", experiment, db_path);

  ShardLayout layout;
  layout.experiment = experiment;
  const auto passages = pending_passages(db, exp->id, layout.done_runs);
  KVLAB_CHECK(!passages.empty(), "experiment '{}' in '{}' has no pending run ({} done); nothing to submit", experiment,
              db_path, layout.done_runs);
  std::vector<std::int64_t> counts;
  for (const auto& p : passages) counts.push_back(p.pending);
  const auto parts = partition_passages(counts, n_shards);
  check_old_shards_merged(db, db_path, n_shards);

  ShardMeta meta{0, n_shards, experiment, exp->spec_hash, abs_path(db_path), iso8601_now()};
  for (int i = 0; i < n_shards; ++i) {
    ShardSlice slice;
    slice.index = meta.index = i;
    slice.path = shard_path(db_path, i);
    std::vector<std::int64_t> ids;
    for (std::size_t k : parts[static_cast<std::size_t>(i)]) {
      ids.push_back(passages[k].id);
      slice.passages.push_back(passages[k].name);
      slice.runs += passages[k].pending;
    }
    write_shard_file(db, db_path, exp->id, ids, meta, slice.runs);
    layout.pending_runs += slice.runs;
    layout.shards.push_back(std::move(slice));
  }
  return layout;
}

// ------------------------------------------------------------------ ingest

namespace {

struct Refusal : Error {
  using Error::Error;
};

[[noreturn]] void refuse(const std::string& msg) { throw Refusal(msg); }

std::int64_t scalar(SQLite::Database& db, const std::string& sql) { return db.execAndGet(sql).getInt64(); }

void drop_temps(SQLite::Database& db) {
  for (const char* t : {"kvlab_pmap", "kvlab_rmap", "kvlab_provmap"}) db.exec(fmt::format("DROP TABLE IF EXISTS temp.{}", t));
}

// The experiment ids in main (me) and in the shard (se): by name and spec hash.
std::pair<std::int64_t, std::int64_t> match_experiment(SQLite::Database& db, const std::string& db_path,
                                                       const std::string& shard_path, const ShardMeta& meta) {
  const auto main_exp = lookup_experiment(db, meta.experiment);
  if (!main_exp)
    refuse(fmt::format("shard '{}' is from experiment '{}', which '{}' does not contain (another experiment's "
                       "shard?)",
                       shard_path, meta.experiment, db_path));
  if (main_exp->spec_hash != meta.spec_hash)
    refuse(fmt::format("shard '{}' is from experiment '{}' with spec hash {}, but '{}' has that experiment with "
                       "spec hash {} (another experiment of the same name, or the spec changed after submission)",
                       shard_path, meta.experiment, meta.spec_hash, db_path, main_exp->spec_hash));
  if (scalar(db, "SELECT count(*) FROM s.experiments") != 1)
    refuse(fmt::format("shard '{}' holds {} experiments; a shard holds exactly one", shard_path,
                       scalar(db, "SELECT count(*) FROM s.experiments")));
  auto st = sql::prepare(db, "SELECT id FROM s.experiments WHERE name = ? AND spec_hash = ?", meta.experiment,
                         meta.spec_hash);
  if (!st.executeStep())
    refuse(fmt::format("shard '{}': its kvlab_shard row names experiment '{}' but its experiments table does not "
                       "hold it with that spec hash",
                       shard_path, meta.experiment));
  return {main_exp->id, st.getColumn(0).getInt64()};
}

// temp.kvlab_pmap: shard passage -> main passage, by (idx, name, content_hash).
void map_passages(SQLite::Database& db, const std::string& db_path, const std::string& shard_path, std::int64_t me,
                  std::int64_t se) {
  sql::exec(db,
            "CREATE TEMP TABLE kvlab_pmap AS SELECT sp.id AS sid, sp.name AS name, mp.id AS mid "
            "FROM s.passages sp LEFT JOIN main.passages mp ON mp.experiment_id = ? AND mp.idx = sp.idx "
            "AND mp.name = sp.name AND mp.content_hash = sp.content_hash WHERE sp.experiment_id = ?",
            me, se);
  SQLite::Statement bad(db, "SELECT name FROM temp.kvlab_pmap WHERE mid IS NULL LIMIT 1");
  if (bad.executeStep())
    refuse(fmt::format("passage '{}' of shard '{}' is not in '{}' with the same position and content hash",
                       bad.getColumn(0).getString(), shard_path, db_path));
  if (scalar(db, fmt::format("SELECT count(*) FROM s.passages WHERE experiment_id <> {}", se)) > 0)
    refuse(fmt::format("shard '{}' holds passages of another experiment", shard_path));
}

// temp.kvlab_rmap: runs done in the shard (with their result) -> main runs.
void map_runs(SQLite::Database& db, const std::string& db_path, const std::string& shard_path, std::int64_t me,
              std::int64_t se) {
  sql::exec(db,
            "CREATE TEMP TABLE kvlab_rmap AS "
            "SELECT sr.id AS sid, mr.id AS mid, pm.name AS passage, sr.stream AS stream, "
            "  sr.codec AS codec, "
            "  (mr.status = 'done' AND EXISTS (SELECT 1 FROM main.results x WHERE x.run_id = mr.id)) "
            "    AS already "
            "FROM s.runs sr JOIN s.results sres ON sres.run_id = sr.id "
            "JOIN temp.kvlab_pmap pm ON pm.sid = sr.passage_id "
            "LEFT JOIN main.runs mr ON mr.experiment_id = ? AND mr.passage_id = pm.mid "
            "  AND mr.stream = sr.stream AND mr.codec = sr.codec AND mr.replicate = sr.replicate "
            "WHERE sr.experiment_id = ? AND sr.status = 'done'",
            me, se);
  SQLite::Statement bad(db, "SELECT passage, stream, codec FROM temp.kvlab_rmap WHERE mid IS NULL LIMIT 1");
  if (bad.executeStep())
    refuse(fmt::format("run {}/{}/{} of shard '{}' is not queued in '{}'", bad.getColumn(0).getString(),
                       bad.getColumn(1).getString(), bad.getColumn(2).getString(), shard_path, db_path));
  if (scalar(db, "SELECT count(*) - count(DISTINCT mid) FROM temp.kvlab_rmap") != 0)
    refuse(fmt::format("shard '{}' holds the same run twice", shard_path));
}

// Provenance rows used by what is merged, deduplicated by fingerprint; temp.kvlab_provmap maps their ids.
void merge_provenance(SQLite::Database& db) {
  const auto prov_cols = without(table_columns(db, "main", "provenance"), {"id"});
  db.exec(fmt::format(
      "INSERT INTO main.provenance ({0}) SELECT {0} FROM s.provenance WHERE id IN ("
      "  SELECT provenance_id FROM s.results WHERE run_id IN (SELECT sid FROM temp.kvlab_rmap WHERE NOT already) "
      "  UNION SELECT provenance_id FROM s.audits) "
      "ON CONFLICT (fingerprint) DO NOTHING",
      join(prov_cols, ", ")));
  db.exec(
      "CREATE TEMP TABLE kvlab_provmap AS SELECT sp.id AS sid, mp.id AS mid FROM s.provenance sp "
      "JOIN main.provenance mp ON mp.fingerprint = sp.fingerprint");
}

// Runs already done in main: how many, and how many with other values.
void count_already_done(SQLite::Database& db, IngestOutcome& out) {
  const auto res_cols = without(table_columns(db, "main", "results"), {"run_id", "provenance_id", "wall_s"});
  {
    std::vector<std::string> diffs;
    for (const auto& c : res_cols) diffs.push_back(fmt::format("a.{0} IS NOT b.{0}", c));
    out.runs_conflicting = scalar(
        db, fmt::format("SELECT count(*) FROM temp.kvlab_rmap m JOIN s.results a ON a.run_id = m.sid "
                        "JOIN main.results b ON b.run_id = m.mid WHERE m.already AND ({})",
                        join(diffs, " OR ")));
  }
  out.runs_already = scalar(db, "SELECT count(*) FROM temp.kvlab_rmap WHERE already");
}

// Merge: run state, then the result and metric rows (a stale result of a not-done run is replaced).
void merge_results(SQLite::Database& db, IngestOutcome& out) {
  db.exec(
      "UPDATE main.runs SET status = 'done', attempts = sr.attempts, worker = sr.worker, "
      "claim_token = sr.claim_token, claimed_at = sr.claimed_at, heartbeat_at = sr.heartbeat_at, "
      "finished_at = sr.finished_at, error = sr.error "
      "FROM temp.kvlab_rmap m JOIN s.runs sr ON sr.id = m.sid "
      "WHERE main.runs.id = m.mid AND NOT m.already");
  db.exec("DELETE FROM main.results WHERE run_id IN (SELECT mid FROM temp.kvlab_rmap WHERE NOT already)");
  const auto res_copy = without(table_columns(db, "main", "results"), {"run_id", "provenance_id"});
  out.runs_merged = db.exec(fmt::format(
      "INSERT INTO main.results (run_id, provenance_id, {0}) "
      "SELECT m.mid, pv.mid, {1} FROM temp.kvlab_rmap m JOIN s.results sres ON sres.run_id = m.sid "
      "LEFT JOIN temp.kvlab_provmap pv ON pv.sid = sres.provenance_id WHERE NOT m.already",
      join(res_copy, ", "), join(res_copy, ", ", "sres.")));
  db.exec("DELETE FROM main.run_metrics WHERE run_id IN (SELECT mid FROM temp.kvlab_rmap WHERE NOT already)");
  db.exec(
      "INSERT INTO main.run_metrics (run_id, metric, value) "
      "SELECT m.mid, sm.metric, sm.value FROM temp.kvlab_rmap m JOIN s.run_metrics sm ON sm.run_id = m.sid "
      "WHERE NOT m.already");
}

// Audits of the shard's (passage, stream, replicate) not yet in main.
void merge_audits(SQLite::Database& db, std::int64_t me, std::int64_t se, IngestOutcome& out) {
  const auto aud_cols = without(table_columns(db, "main", "audits"), {"experiment_id", "passage_id", "provenance_id"});
  out.audits_merged = sql::exec(db,
                                fmt::format("INSERT INTO main.audits (experiment_id, passage_id, provenance_id, {0}) "
                                            "SELECT ?1, pm.mid, pv.mid, {1} FROM s.audits a "
                                            "JOIN temp.kvlab_pmap pm ON pm.sid = a.passage_id "
                                            "LEFT JOIN temp.kvlab_provmap pv ON pv.sid = a.provenance_id "
                                            "WHERE a.experiment_id = ?2 AND NOT EXISTS (SELECT 1 FROM main.audits x "
                                            "  WHERE x.experiment_id = ?1 AND x.passage_id = pm.mid "
                                            "  AND x.stream = a.stream AND x.replicate = a.replicate)",
                                            join(aud_cols, ", "), join(aud_cols, ", ", "a.")),
                                me, se);
}

// What the shard still lacks (not done, failed, running), with the first failures.
void count_missing(SQLite::Database& db, IngestOutcome& out) {
  SQLite::Statement st(db,
                       "SELECT status, count(*) FROM s.runs WHERE id NOT IN (SELECT sid FROM temp.kvlab_rmap) "
                       "GROUP BY status");
  while (st.executeStep()) {
    const std::string status = st.getColumn(0).getString();
    const std::int64_t n = st.getColumn(1).getInt64();
    out.runs_missing += n;
    if (status == "running") out.missing_running += n;
    else if (status == "failed") out.missing_failed += n;
    else out.missing_queued += n;  // queued, or 'done' without a result row
  }
  SQLite::Statement f(db,
                      "SELECT p.name, r.stream, r.codec, coalesce(r.error, '') FROM s.runs r "
                      "JOIN s.passages p ON p.id = r.passage_id WHERE r.status = 'failed' ORDER BY r.id LIMIT 5");
  while (f.executeStep())
    out.failures.push_back(fmt::format("{}/{}/{}: {}", f.getColumn(0).getString(), f.getColumn(1).getString(),
                                       f.getColumn(2).getString(), f.getColumn(3).getString()));
}

void merge_attached(SQLite::Database& db, const std::string& db_path, const std::string& shard_path, const ShardMeta& meta,
                    IngestOutcome& out) {
  for (const char* t : {"experiments", "passages", "runs", "results", "run_metrics", "audits", "provenance"}) {
    if (table_columns(db, "main", t) != table_columns(db, "s", t))
      refuse(fmt::format("table {} of shard '{}' has other columns than in '{}'", t, shard_path, db_path));
  }
  drop_temps(db);

  const auto [me, se] = match_experiment(db, db_path, shard_path, meta);
  map_passages(db, db_path, shard_path, me, se);
  map_runs(db, db_path, shard_path, me, se);
  merge_provenance(db);
  count_already_done(db, out);
  merge_results(db, out);
  merge_audits(db, me, se, out);
  count_missing(db, out);
  drop_temps(db);
}

}  // namespace

IngestOutcome ingest_shard(SQLite::Database& db, const std::string& db_path, const std::string& shard_path) {
  IngestOutcome out;
  out.shard = shard_path;
  auto fail = [&](const std::string& msg, ExitCode code = ExitCode::kError) {
    out.ok = false;
    out.error = msg;
    out.exit_code = static_cast<int>(code);
    out.runs_merged = out.runs_already = out.runs_conflicting = out.audits_merged = 0;
    return out;
  };
  std::error_code ec;
  if (!fs::exists(shard_path, ec)) return fail(fmt::format("shard '{}' does not exist", shard_path));
  if (fs::equivalent(shard_path, db_path, ec))
    return fail(fmt::format("'{}' is the main database itself, not a shard", shard_path));

  // Open it on its own first: identity and schema checks (a newer schema is
  // refused, an older one migrated), crash recovery of an interrupted
  // commit, and an integrity check.
  try {
    auto shard = open_database(shard_path, OpenMode::kReadWrite);
    const std::string qc = shard->execAndGet("PRAGMA quick_check").getString();
    if (qc != "ok") return fail(fmt::format("shard '{}' is damaged (quick_check: {})", shard_path, qc));
    out.meta = read_shard_meta(*shard);
    if (!out.meta)
      return fail(fmt::format("'{}' is a kvlab database but not a shard written by `kvlab slurm submit` (it has no "
                              "kvlab_shard row)",
                              shard_path));
  } catch (const Error& e) {
    return fail(e.what(), e.code());
  } catch (const SQLite::Exception& e) {
    return fail(fmt::format("shard '{}' cannot be read: {}", shard_path, e.what()));
  }

  try {
    Attached a(db, shard_path, "s");
    SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
    merge_attached(db, db_path, shard_path, *out.meta, out);
    tx.commit();
    out.ok = true;
  } catch (const Refusal& e) {
    try {
      drop_temps(db);
    } catch (...) {
    }
    return fail(e.what());
  } catch (const Error& e) {
    return fail(e.what(), e.code());
  } catch (const SQLite::Exception& e) {
    return fail(fmt::format("merging shard '{}' failed, nothing of it was merged: {}", shard_path, e.what()));
  }
  return out;
}

// ---------------------------------------------------------------- progress

ShardProgress read_shard_progress(const std::string& path, int index) {
  ShardProgress p;
  p.index = index;
  p.path = path;
  std::error_code ec;
  p.exists = fs::exists(path, ec);
  if (!p.exists) return p;
  try {
    auto db = open_database(path, OpenMode::kReadOnly);
    p.meta = read_shard_meta(*db);
    p.passages = db->execAndGet("SELECT count(*) FROM passages").getInt64();
    SQLite::Statement st(*db, "SELECT status, count(*) FROM runs GROUP BY status");
    while (st.executeStep()) {
      const std::string s = st.getColumn(0).getString();
      const std::int64_t n = st.getColumn(1).getInt64();
      if (s == "queued") p.queued = n;
      else if (s == "running") p.running = n;
      else if (s == "done") p.done = n;
      else if (s == "failed") p.failed = n;
    }
    auto last = db->execAndGet("SELECT max(max(coalesce(heartbeat_at, 0), coalesce(finished_at, 0))) FROM runs");
    if (!last.isNull() && last.getDouble() > 0) p.last_activity = last.getDouble();
    SQLite::Statement w(*db, "SELECT DISTINCT worker FROM runs WHERE status = 'running' AND worker IS NOT NULL "
                             "ORDER BY worker");
    while (w.executeStep()) p.running_workers.push_back(w.getColumn(0).getString());
  } catch (const std::exception& e) {
    p.error = e.what();
  }
  return p;
}

ExperimentProgress experiment_progress(SQLite::Database& db, const std::string& experiment) {
  auto st = sql::prepare(db,
                         "SELECT count(*), coalesce(sum(r.status = 'done'), 0) FROM runs r "
                         "JOIN experiments e ON e.id = r.experiment_id WHERE e.name = ?",
                         experiment);
  KVLAB_ASSERT(st.executeStep());
  return ExperimentProgress{st.getColumn(1).getInt64(), st.getColumn(0).getInt64()};
}

std::int64_t reclaim_shard(SQLite::Database& shard, int max_attempts) {
  // grace 0: every 'running' run is stale, however recent its heartbeat.
  return reclaim_stale(shard, 0.0, max_attempts);
}

std::vector<std::string> outcome_rows(SQLite::Database& db, const std::string& experiment) {
  std::vector<std::string> rows;
  auto value = [](const SQLite::Column& c) -> std::string {
    if (c.isNull()) return "NULL";
    if (c.isInteger()) return std::to_string(c.getInt64());
    if (c.isFloat()) return fmt::format("{:.17g}", c.getDouble());
    return "'" + c.getString() + "'";
  };
  auto collect = [&](const std::string& tag, SQLite::Statement& st) {
    while (st.executeStep()) {
      std::string r = tag;
      for (int i = 0; i < st.getColumnCount(); ++i) {
        r += ' ';
        r += value(st.getColumn(i));
      }
      rows.push_back(std::move(r));
    }
  };
  std::int64_t exp_id = 0;
  {
    auto st = sql::prepare(db, "SELECT id, name, origin, spec_hash, params_json FROM experiments WHERE name = ?",
                           experiment);
    KVLAB_CHECK(st.executeStep(), "experiment '{}' is not in the database", experiment);
    exp_id = st.getColumn(0).getInt64();
    rows.push_back(fmt::format("experiment {} {} {} {}", value(st.getColumn(1)), value(st.getColumn(2)),
                               value(st.getColumn(3)), value(st.getColumn(4))));
  }
  {
    auto st = sql::prepare(db, "SELECT idx, name, content_hash, source FROM passages WHERE experiment_id = ?", exp_id);
    collect("passage", st);
  }
  {
    const auto cols = without(table_columns(db, "main", "results"), {"run_id", "provenance_id", "wall_s"});
    auto st = sql::prepare(db,
                           fmt::format("SELECT p.name, r.stream, r.codec, r.q, r.replicate, r.status, {} "
                                       "FROM runs r JOIN passages p ON p.id = r.passage_id "
                                       "LEFT JOIN results x ON x.run_id = r.id WHERE r.experiment_id = ?",
                                       join(cols, ", ", "x.")),
                           exp_id);
    collect("run", st);
  }
  {
    const auto cols = without(table_columns(db, "main", "audits"), {"experiment_id", "passage_id", "provenance_id"});
    auto st = sql::prepare(db,
                           fmt::format("SELECT p.name, {} FROM audits a JOIN passages p ON p.id = a.passage_id "
                                       "WHERE a.experiment_id = ?",
                                       join(cols, ", ", "a.")),
                           exp_id);
    collect("audit", st);
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

}  // namespace kvlab::store
