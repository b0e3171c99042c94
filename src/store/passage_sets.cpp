// Passage texts and passage sets; see passage_sets.h.
#include "store/passage_sets.h"

#include <SQLiteCpp/Statement.h>

#include "stats/experiment_data.h"
#include "store/query.h"
#include "store/sql.h"

namespace kvlab::store {

std::vector<PassageText> load_passage_texts(SQLite::Database& db, std::int64_t experiment_id) {
  SQLite::Statement st(db,
                       "SELECT id, idx, name, content_hash, source, text FROM passages WHERE experiment_id = ? "
                       "ORDER BY idx");
  sql::bind_row(st, static_cast<std::int64_t>(experiment_id));
  std::vector<PassageText> out;
  while (st.executeStep()) {
    PassageText p;
    p.id = st.getColumn(0).getInt64();
    p.idx = st.getColumn(1).getInt();
    p.name = st.getColumn(2).getString();
    p.content_hash = st.getColumn(3).getString();
    p.source = st.getColumn(4).getString();
    if (!st.getColumn(5).isNull()) p.text = st.getColumn(5).getString();
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<ExperimentPassageSet> load_passage_sets(SQLite::Database& db) {
  std::vector<ExperimentPassageSet> out;
  {
    SQLite::Statement st(db, "SELECT id, name, origin, params_json FROM experiments ORDER BY id");
    while (st.executeStep()) {
      ExperimentPassageSet e;
      e.id = st.getColumn(0).getInt64();
      e.name = st.getColumn(1).getString();
      e.origin = st.getColumn(2).getString();
      stats::ExperimentInfo info;
      try {
        parse_experiment_params(st.getColumn(3).getString(), info);
      } catch (const std::exception&) {
        // A malformed params_json leaves write path and baseline unknown; load_experiment reports it.
      }
      e.write_path = info.write_path;
      e.baseline = info.baseline;
      out.push_back(std::move(e));
    }
  }
  SQLite::Statement st(db, "SELECT name, content_hash FROM passages WHERE experiment_id = ? ORDER BY idx");
  for (auto& e : out) {
    st.reset();
    sql::bind_row(st, static_cast<std::int64_t>(e.id));
    while (st.executeStep()) {
      e.passage_names.push_back(st.getColumn(0).getString());
      e.passage_hashes.push_back(st.getColumn(1).getString());
    }
  }
  return out;
}

}  // namespace kvlab::store
