// Writing results made elsewhere into the result database: an ImportBundle
// is one experiment's already-parsed rows (the experiment, its passages,
// finished runs with their results, audits, and the provenance they share).
// The parsers that produce bundles (published JSON, CSV, the synthetic
// query benchmark) live in ingest/; this file only speaks SQL.
//
// write_import: the experiment is found by (spec_hash, origin); a name
// already held by another experiment is refused. Every row is INSERT OR
// IGNORE (writers.h), so writing the same bundle twice adds nothing, and
// the whole write is one transaction.
//
// Not here: reading the database (query.h), parsing files (ingest/),
// statistics.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <SQLiteCpp/Database.h>

#include "store/db.h"
#include "store/runs.h"

namespace kvlab::store {

// One finished run: its passage (by PlannedPassage::name in the bundle),
// cell and result.
struct ImportRun {
  std::string passage;
  std::string stream;
  std::string codec;  // canonical spec
  std::optional<int> q;
  int replicate = 0;
  RunResult result;
};

// One audit row (replicate 0) of a passage of the bundle.
struct ImportAudit {
  std::string passage;
  AuditRow row;
};

struct ImportBundle {
  std::string origin;       // experiments.origin: 'published', 'csv', 'sweep'
  std::string name;         // experiment name
  std::string sha256;       // experiments.spec_hash: the source file's sha256
  std::string spec_text;
  std::string params_json;  // written verbatim
  std::vector<PlannedPassage> passages;
  std::vector<ImportRun> runs;
  std::vector<ImportAudit> audits;
  Provenance provenance;  // of every result and audit
};

struct ImportOutcome {
  std::int64_t experiment_id = 0;
  std::string experiment;
  bool experiment_created = false;
  std::string file_sha256;
  std::int64_t passages_added = 0;
  std::int64_t runs_added = 0;
  std::int64_t results_added = 0;
  std::int64_t audits_added = 0;
  std::int64_t rows_existing = 0;  // runs already present (not changed)
};

// Writes the bundle in one transaction (see the top of this file). Throws
// kvlab::Error when the name is taken by an experiment of other content, or
// a passage clashes with a stored one; nothing is written then.
ImportOutcome write_import(SQLite::Database& db, const ImportBundle& bundle);

// Whether an experiment of that name exists.
bool experiment_exists(SQLite::Database& db, const std::string& name);

}  // namespace kvlab::store
