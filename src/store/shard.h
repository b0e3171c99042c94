// Shard databases for running one sweep on many machines (Slurm job arrays)
// without ever sharing one SQLite file between hosts (WAL mode needs all
// processes on one host).
//
// A shard is an ordinary kvlab database (same schema, same application_id)
// holding one experiment row, a subset of its passages (whole passages, so
// each passage's streams are still generated once) and those passages'
// pending runs, reset to 'queued'; plus one row in the table kvlab_shard
// saying which experiment (name and spec hash) and which slice
// (index / count) it is. Ids of experiments, passages and runs are copied
// from the main database, but merging back never relies on them: ingest
// matches experiments by (name, spec_hash), passages by (idx, name,
// content_hash) and runs by (passage, stream, codec, replicate).
//
// ingest_shard() merges the finished runs of one shard (results, audits,
// provenance) into the main database in ONE transaction: a shard is merged
// completely or not at all; a run already done in the main database is never
// written again (ingest is idempotent). A shard whose task was killed is
// fine: SQLite rolls an interrupted commit back when the shard is opened;
// runs it left 'running' or 'queued' are reported as missing.
//
// Also here: per-shard progress for `kvlab slurm status`.
//
// Not here: planning (experiment/), running the queue (store/runs.h,
// experiment/), the submission manifest `<base>.slurm.json`
// (experiment/slurm_manifest.h), talking to Slurm (cli/cmd_slurm.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <SQLiteCpp/Database.h>

namespace kvlab::store {

// "<db_path without a trailing .db>"; e.g. "out/sweep.db" -> "out/sweep".
std::string shard_base(const std::string& db_path);
// "<base>.shard<index>.db".
std::string shard_path(const std::string& db_path, int index);

// Assigns passages to n_shards shards, whole passages only, balancing the
// number of runs: passages in decreasing run count (ties: input order) go to
// the shard with the fewest runs so far (ties: lowest index) — the LPT rule
// (Graham 1969). Each shard's passages are returned in input order.
// Throws kvlab::Error when n_shards < 1, or when there are fewer passages
// than shards (a shard would be empty).
std::vector<std::vector<std::size_t>> partition_passages(const std::vector<std::int64_t>& runs_per_passage,
                                                         int n_shards);

// Identity of a shard, stored in its kvlab_shard table.
struct ShardMeta {
  int index = 0;
  int count = 0;
  std::string experiment;  // experiments.name
  std::string spec_hash;   // experiments.spec_hash
  std::string parent_db;   // absolute path of the main database at submission
  std::string created_at;  // ISO-8601 UTC
};

struct ShardSlice {
  int index = 0;
  std::string path;
  std::vector<std::string> passages;  // passage names
  std::int64_t runs = 0;
};

struct ShardLayout {
  std::string experiment;
  std::int64_t pending_runs = 0;   // runs written to shards
  std::int64_t done_runs = 0;      // runs already done in the main database (not sharded)
  std::vector<ShardSlice> shards;
};

// Writes `n_shards` shard databases next to `db_path` (shard_path(db_path, i))
// with the pending runs (status other than 'done') of `experiment`, whole
// passages per shard (partition_passages). `db` is a read-write connection to
// db_path. Each shard is built in a temporary file and renamed into place,
// so a shard file is never half-written.
//
// An existing shard file is replaced only when it holds no finished run that
// the main database lacks (else kvlab::Error: ingest it first), so writing
// shards never loses results.
// Throws kvlab::Error when the experiment does not exist, has no pending run,
// or has fewer passages with pending runs than n_shards.
ShardLayout write_shards(SQLite::Database& db, const std::string& db_path, const std::string& experiment,
                         int n_shards);

// Reads the kvlab_shard row of an open shard; nullopt when the database is
// not a shard (no kvlab_shard table or no row).
std::optional<ShardMeta> read_shard_meta(SQLite::Database& shard);

// What ingest_shard did with one shard.
struct IngestOutcome {
  std::string shard;           // path as given
  std::optional<ShardMeta> meta;
  bool ok = false;             // false: nothing from this shard was merged
  std::string error;           // why not (when !ok)
  int exit_code = 0;           // kvlab::ExitCode of the error (when !ok)
  std::int64_t runs_merged = 0;     // done in the shard, newly done in main
  std::int64_t runs_already = 0;    // done in the shard and already done in main
  std::int64_t runs_conflicting = 0;  // of runs_already: main holds different result values
  std::int64_t audits_merged = 0;
  std::int64_t runs_missing = 0;    // not done in the shard (queued / running / failed)
  std::int64_t missing_queued = 0, missing_running = 0, missing_failed = 0;
  std::vector<std::string> failures;  // "<passage>/<stream>/<codec>: <error>" of failed runs (first 5)
};

// Merges the finished runs of `shard_path` into the main database `db`
// (a read-write connection to db_path) in one transaction (see the file
// comment). Never throws for a bad shard: refusals (not a kvlab database, a
// newer schema, not a shard, another experiment or a changed spec, a passage
// or run that the main database does not have, a corrupt file) come back as
// ok = false with the reason, and nothing from that shard is merged.
IngestOutcome ingest_shard(SQLite::Database& db, const std::string& db_path, const std::string& shard_path);

// Progress of one shard, read without writing to it.
struct ShardProgress {
  int index = -1;
  std::string path;
  bool exists = false;
  std::string error;  // unreadable shard: why
  std::optional<ShardMeta> meta;
  std::int64_t passages = 0;
  std::int64_t queued = 0, running = 0, done = 0, failed = 0;
  std::optional<double> last_activity;  // max(heartbeat_at, finished_at), unix seconds
  std::vector<std::string> running_workers;  // distinct runs.worker of 'running' runs ('<host>:<pid>')
  std::int64_t total() const { return queued + running + done + failed; }
  bool complete() const { return exists && error.empty() && total() > 0 && done == total(); }
};
ShardProgress read_shard_progress(const std::string& shard_path, int index);

// Runs of `experiment` (name) in the main database that are done / not done.
struct ExperimentProgress {
  std::int64_t done = 0;
  std::int64_t total = 0;
};
ExperimentProgress experiment_progress(SQLite::Database& db, const std::string& experiment);

// The outcome of experiment `experiment` as sorted text rows, ignoring when,
// where and by whom it ran (ids, timestamps, attempts, workers, wall time,
// provenance): the experiment's name, spec hash and parameters, its
// passages, each run's identity, status and result values (doubles with 17
// significant digits), and its audits. Two databases that ran the same spec
// deterministically give equal rows, however the work was split.
std::vector<std::string> outcome_rows(SQLite::Database& db, const std::string& experiment);

// Before a task of an array index starts on its shard, runs its killed
// predecessor left 'running' go back to 'queued' (or 'failed' after
// max_attempts). Only correct because one shard has one worker at a time:
// the caller (the sbatch script) guarantees no other task uses the shard.
std::int64_t reclaim_shard(SQLite::Database& shard, int max_attempts);

}  // namespace kvlab::store
