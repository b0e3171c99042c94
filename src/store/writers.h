// The shared row writers: queue and commit (runs.cpp), the imports
// (import.cpp) and refinement (query.cpp) insert experiments, passages,
// runs, results (with their run_metrics) and audits through one RowWriter,
// which prepares each statement of store/sql.h once and reuses it. Call
// inside with_write_transaction. Duplicates are left alone (the
// functions say whether they inserted); other constraint failures throw.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include "store/runs.h"

namespace kvlab::store {

// One runs row as written: a queued run (status 'queued', attempts 0, only
// queued_at) or an imported finished one.
struct NewRun {
  std::int64_t experiment_id = 0;
  std::int64_t passage_id = 0;
  std::string stream;
  std::string codec;
  std::optional<int> q;
  int replicate = 0;
  std::string status = "queued";
  int attempts = 0;
  std::optional<std::string> worker;
  double queued_at = 0;
  std::optional<double> claimed_at;
  std::optional<double> finished_at;
};

class RowWriter {
 public:
  explicit RowWriter(SQLite::Database& db) : db_(db) {}
  // A new experiment row (created_at = now); returns its id.
  std::int64_t experiment(const std::string& name, const std::string& origin, const std::string& spec_text,
                          const std::string& spec_hash, const std::string& params_json);
  // Whether the passage was inserted (false: its idx or name exists).
  bool passage(std::int64_t experiment_id, const PlannedPassage& p);
  // The new run's id, or nullopt when the run exists.
  std::optional<std::int64_t> run(const NewRun& r);
  // The results row and the run_metrics rows of r.metrics (checked against
  // common/metric_table.h, finite); false when the run has a result already.
  bool result(std::int64_t run_id, const RunResult& r, std::int64_t provenance_id);
  // false when (experiment, passage, stream, replicate) has an audit already.
  bool audit(std::int64_t experiment_id, std::int64_t passage_id, int replicate, const AuditRow& a,
             std::int64_t provenance_id);

 private:
  SQLite::Statement& prepared(int slot, const char* sql);
  SQLite::Database& db_;
  std::array<std::unique_ptr<SQLite::Statement>, 6> st_;
};

}  // namespace kvlab::store
