// Writing an already-parsed import bundle: see import.h. The statements are
// those of the table below and of store/sql.h (through RowWriter).
#include "store/import.h"

#include <map>

#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/VariadicBind.h>
#include <fmt/format.h>

#include "common/error.h"
#include "store/writers.h"

namespace kvlab::store {

namespace {

// ---------------------------------------------------------------- statements
constexpr const char* kFindByHash = "SELECT id, name FROM experiments WHERE spec_hash = ? AND origin = ? ORDER BY id LIMIT 1";
constexpr const char* kFindByName = "SELECT id, origin, spec_hash FROM experiments WHERE name = ?";
constexpr const char* kPassageId = "SELECT id, content_hash FROM passages WHERE experiment_id = ? AND name = ?";

// The experiment holding this bundle's file (by hash), or a new one; a name
// taken by other content is refused.
std::int64_t find_or_create_experiment(SQLite::Database& db, RowWriter& w, const ImportBundle& b,
                                       ImportOutcome& out) {
  {
    SQLite::Statement st(db, kFindByHash);
    SQLite::bind(st, b.sha256, b.origin);
    if (st.executeStep()) {
      out.experiment = st.getColumn(1).getString();
      return st.getColumn(0).getInt64();
    }
  }
  SQLite::Statement st(db, kFindByName);
  SQLite::bind(st, b.name);
  if (st.executeStep())
    throw Error(fmt::format(
        "experiment '{}' already exists (origin {}, spec hash {}) and holds other results than this file "
        "(sha256 {}); choose another name with --experiment",
        b.name, st.getColumn(1).getString(), st.getColumn(2).getString(), b.sha256));
  const std::int64_t id = w.experiment(b.name, b.origin, b.spec_text, b.sha256, b.params_json);
  out.experiment = b.name;
  out.experiment_created = true;
  return id;
}

// Inserts the bundle's passages (unless present) and returns name -> id;
// a stored passage of the same name must have the same content hash.
std::map<std::string, std::int64_t> write_passages(SQLite::Database& db, RowWriter& w, const ImportBundle& b,
                                                   std::int64_t exp_id, ImportOutcome& out) {
  std::map<std::string, std::int64_t> ids;
  SQLite::Statement get(db, kPassageId);
  for (const auto& p : b.passages) {
    out.passages_added += w.passage(exp_id, p);
    get.reset();
    SQLite::bind(get, exp_id, p.name);
    KVLAB_CHECK(get.executeStep(),
                "experiment '{}' already has another passage at position {} (importing passage '{}')",
                out.experiment, p.idx, p.name);
    KVLAB_CHECK(get.getColumn(1).getString() == p.content_hash,
                "experiment '{}': passage '{}' is stored with content hash {} but the file gives {}", out.experiment,
                p.name, get.getColumn(1).getString(), p.content_hash);
    ids[p.name] = get.getColumn(0).getInt64();
  }
  return ids;
}

std::int64_t passage_of(const std::map<std::string, std::int64_t>& ids, const std::string& name) {
  const auto it = ids.find(name);
  KVLAB_CHECK(it != ids.end(), "import: a row names passage '{}', which the import does not list", name);
  return it->second;
}

void write_runs(RowWriter& w, const ImportBundle& b, std::int64_t exp_id,
                const std::map<std::string, std::int64_t>& passage_ids, std::int64_t prov_id, ImportOutcome& out) {
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
    row.passage_id = passage_of(passage_ids, r.passage);
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
    out.results_added += w.result(*run_id, r.result, prov_id);
  }
}

}  // namespace

ImportOutcome write_import(SQLite::Database& db, const ImportBundle& b) {
  ImportOutcome out;
  with_write_transaction(db, [&] {
    out = ImportOutcome{};  // a retried transaction starts over
    out.file_sha256 = b.sha256;
    RowWriter w(db);
    const std::int64_t exp_id = find_or_create_experiment(db, w, b, out);
    out.experiment_id = exp_id;
    const std::int64_t prov_id = upsert_provenance(db, b.provenance);
    const auto passage_ids = write_passages(db, w, b, exp_id, out);
    write_runs(w, b, exp_id, passage_ids, prov_id, out);
    for (const auto& a : b.audits)
      out.audits_added += w.audit(exp_id, passage_of(passage_ids, a.passage), 0, a.row, prov_id);
  });
  return out;
}

bool experiment_exists(SQLite::Database& db, const std::string& name) {
  SQLite::Statement st(db, kFindByName);
  SQLite::bind(st, name);
  return st.executeStep();
}

}  // namespace kvlab::store
