// Read-side queries of the result database, returning typed structs: the
// experiments, the recorded rows of one experiment for kvlab::stats
// (load_experiment), run listings for `kvlab list/show/export`, and the one
// write the read side needs: queueing the Q values `kvlab refine` suggests.
//
// Experiments are named by name or by numeric id; an empty reference means
// "the only experiment in the database" (an error listing them when there
// are several or none).
//
// Not here: opening/migrating (db.h), the worker's queue (runs.h),
// statistics (stats/), imports (import.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <SQLiteCpp/Database.h>

#include "stats/experiment_data.h"

namespace kvlab::store {

struct ExperimentRow {
  std::int64_t id = 0;
  std::string name;
  std::string origin;
  std::string spec_hash;
  std::string created_at;
  std::int64_t passages = 0;
  stats::RunCounts counts;
};

// Every experiment, ordered by id.
std::vector<ExperimentRow> list_experiments(SQLite::Database& db);

// The experiment named `name_or_id` (its name, or its id in decimal), or the
// only experiment when empty. Throws kvlab::Error listing the known
// experiments when there is no match, none, or several and none was named.
ExperimentRow resolve_experiment(SQLite::Database& db, const std::string& name_or_id);

// Everything stats::summarize() needs: experiment row with its parsed
// params_json (layer mix, report codecs), passages, finished runs joined
// with their results, audits. Throws kvlab::Error when params_json is not
// valid JSON or its layer mix is malformed.
stats::ExperimentData load_experiment(SQLite::Database& db, const std::string& name_or_id);

// The parts of params_json that the read side uses; exposed for tests.
// layer_mix: {"stream": layers, ...} -> canonical stream order, then others.
void parse_experiment_params(const std::string& params_json, stats::ExperimentInfo& info);

// One row of `kvlab list --runs` / `kvlab show --run` / `kvlab export`.
struct RunRow {
  std::int64_t run_id = 0;
  std::int64_t experiment_id = 0;
  std::string experiment;
  std::int64_t passage_id = 0;
  int passage_idx = 0;
  std::string passage;
  std::string passage_hash;
  std::string stream;
  std::string codec;
  std::optional<int> q;
  int replicate = 0;
  std::string status;
  int attempts = 0;
  std::optional<std::string> worker;
  std::optional<std::string> error;
  double queued_at = 0;
  std::optional<double> finished_at;
  // Result columns (present when status = 'done').
  std::optional<double> bits_per_vector;
  std::optional<std::int64_t> code_bytes;
  std::optional<double> rel_mse;
  std::optional<double> cos_sim;
  std::optional<std::int64_t> n_vectors;
  std::optional<int> dim;
  std::optional<double> wall_s;
  std::optional<std::int64_t> provenance_id;
};

struct RunFilter {
  std::optional<std::int64_t> experiment_id;
  std::optional<std::int64_t> run_id;
  std::optional<std::string> stream;
  std::optional<std::string> codec;    // canonical spec, or a family ('e8')
  std::optional<std::string> status;   // queued | running | done | failed
  std::optional<std::string> passage;  // passage name
  std::optional<std::int64_t> limit;
};

// Runs matching the filter, ordered by experiment, passage idx, stream, codec
// family, Q, replicate. Throws kvlab::Error for an unknown status value.
std::vector<RunRow> list_runs(SQLite::Database& db, const RunFilter& filter);

// Distinct streams / codec specs recorded for an experiment (any status),
// for error messages and validation.
std::vector<std::string> experiment_streams(SQLite::Database& db, std::int64_t experiment_id);
std::vector<std::string> experiment_codecs(SQLite::Database& db, std::int64_t experiment_id);

// The provenance row with this id as (column, value) pairs; empty when none.
std::vector<std::pair<std::string, std::string>> provenance_row(SQLite::Database& db, std::int64_t id);

// Queues (codec, q) for every passage x stream of the experiment (streams
// taken from its recorded runs), replicate 0, status 'queued', in one
// transaction. Runs that exist already (any status) are left alone.
// Returns (added, existing).
struct RefineOutcome {
  std::int64_t added = 0;
  std::int64_t existing = 0;
};
RefineOutcome queue_codec_runs(SQLite::Database& db, std::int64_t experiment_id,
                               const std::vector<std::pair<std::string, int>>& codec_q);

}  // namespace kvlab::store
