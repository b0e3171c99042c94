// The write side of the run queue: queueing a planned experiment, claiming
// the pending runs of one passage atomically, heartbeats, committing each
// result with its run's state in one transaction, failing, releasing,
// reclaiming runs whose worker died, and per-experiment counts.
//
// Concurrency contract (many processes, one file, WAL mode): every write is
// one BEGIN IMMEDIATE transaction, so writers serialise on the SQLite write
// lock and never see each other's half-done work. A claim sets a random
// claim token on its runs; a result, a failure or a heartbeat only applies
// while the run is still 'running' under that token, so a worker whose
// claim was reclaimed (it stopped heartbeating for longer than the grace
// period) cannot write a late result: commit_result() reports kRejected and
// writes nothing. results.run_id is the primary key, so a run has at most
// one result row by construction.
//
// Not here: opening/migrating the file (db.h), read-side queries for stats
// and reports (query*.h), executing the runs (experiment/).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <SQLiteCpp/Database.h>

#include "store/db.h"

namespace kvlab::store {

// One passage of a planned experiment.
struct PlannedPassage {
  int idx = 0;               // position in the spec, 0-based
  std::string name;          // unique within the experiment
  std::string content_hash;  // sha256 of the text or of the synthetic description
  std::string source;        // 'text:<path>' | 'synthetic:seed=<n>' | ...
  std::optional<std::string> text;
};

// One (codec, Q) column of the plan. codec is the canonical spec
// ('fp8_per64', 'e8:q=38'); q is NULL for codecs without a Q.
struct PlannedCodec {
  std::string codec;
  std::optional<int> q;
};

// Everything `kvlab queue` writes: the experiment row, its passages, and the
// cross product passages x streams x codecs as runs.
struct ExperimentPlan {
  std::string name;
  std::string origin = "sweep";
  std::string spec_text;
  std::string spec_hash;
  std::string params_json;
  std::vector<PlannedPassage> passages;
  std::vector<std::string> streams;
  std::vector<PlannedCodec> codecs;
};

struct QueueOutcome {
  std::int64_t experiment_id = 0;
  bool experiment_created = false;
  int replicate = 0;         // replicate the runs were queued under
  std::int64_t runs_added = 0;
  std::int64_t runs_existing = 0;  // already queued (any state): not added again
};

// Queues the plan in one transaction. An experiment of the same name must
// have the same spec_hash (else kvlab::Error naming both hashes), and each
// passage already stored must have the same name and content hash. Runs
// that exist are left alone (queuing twice adds nothing). With
// new_replicate, all runs are queued again under replicate = max + 1.
QueueOutcome queue_experiment(SQLite::Database& db, const ExperimentPlan& plan, bool new_replicate = false);

// One claimed run.
struct ClaimedRun {
  std::int64_t run_id = 0;
  std::string stream;
  std::string codec;
  std::optional<int> q;
  int attempts = 0;  // including this claim
};

// Every pending run of one (experiment, passage, replicate), claimed at once
// so that the passage's streams are generated once.
struct Claim {
  std::string token;
  std::string worker;
  std::int64_t experiment_id = 0;
  std::string experiment_name;
  std::string params_json;
  std::int64_t passage_id = 0;
  int passage_idx = 0;
  std::string passage_name;
  std::string passage_source;
  std::string passage_content_hash;
  std::optional<std::string> passage_text;
  int replicate = 0;
  std::vector<ClaimedRun> runs;  // ordered by stream, then codec order of queueing (run id)
};

struct ClaimOptions {
  std::string worker;         // '<host>:<pid>[#thread]'
  double grace_s = 60;        // a running run without heartbeat for this long is reclaimed
  int max_attempts = 3;       // a failed run is retried while attempts < max_attempts
  std::optional<std::int64_t> experiment_id;  // restrict to one experiment
};

// Reclaims stale runs (see reclaim_stale), then claims the pending runs
// (status 'queued', or 'failed' with attempts < max_attempts) of the first
// such passage. Returns nullopt when there is nothing to claim.
std::optional<Claim> claim_next(SQLite::Database& db, const ClaimOptions& opt);

// Runs 'running' whose heartbeat is older than grace_s go back to 'queued'
// (their token is cleared, so the old worker's result will be rejected), or
// to 'failed' when they have used max_attempts. Returns how many rows moved.
// Runs inside the caller's transaction if one is open.
std::int64_t reclaim_stale(SQLite::Database& db, double grace_s, int max_attempts);

// Refreshes heartbeat_at of the claim's running runs. Returns how many are
// still held (0: the claim was reclaimed; stop working on it).
std::int64_t heartbeat(SQLite::Database& db, const std::string& token);

struct RunResult {
  double bits_per_vector = 0;
  std::optional<std::int64_t> code_bytes;
  double rel_mse = 0;
  double cos_sim = 0;
  std::optional<std::int64_t> n_vectors;
  std::optional<std::int64_t> dim;
  std::optional<double> wall_s;
  // Metrics beyond rel_mse / cos_sim, by common/metric_table.h name (run_metrics rows).
  std::map<std::string, double> metrics;
};

struct AuditRow {
  std::string stream;
  double excess_kurtosis_abs = 0;
  double isotropy_variance_ratio = 0;
  double hadamard_post_variance_ratio = 0;
  double rms_wasserstein2_over_sigma_per_dim = 0;
  std::int64_t n_vectors = 0;
  std::int64_t dim = 0;
};

enum class CommitOutcome { kCommitted, kRejected };

// Hook for fault-injection tests: called inside the commit transaction after
// the run's row was updated, before COMMIT. nullptr in production.
using CommitHook = void (*)();

// One transaction: the run goes to 'done' under `token`, its result row is
// inserted, and (optionally) the audit of its (experiment, passage, stream,
// replicate) is inserted unless one exists. kRejected when the run is no
// longer 'running' under `token` (nothing written).
CommitOutcome commit_result(SQLite::Database& db, const Claim& claim, const ClaimedRun& run, const RunResult& result,
                            std::int64_t provenance_id, const AuditRow* audit = nullptr,
                            CommitHook before_commit = nullptr);

// The run goes to 'failed' with its error kept (retried later while
// attempts < max_attempts). kRejected when no longer held under `token`.
CommitOutcome fail_run(SQLite::Database& db, const std::string& token, std::int64_t run_id, const std::string& error);

// Puts the claim's still-running runs back to 'queued' without counting the
// attempt (clean stop, e.g. Ctrl-C). Returns how many were released.
std::int64_t release_claim(SQLite::Database& db, const std::string& token);

// Id and spec hash of the experiment with this name (in the main schema of
// `db`), if any.
struct ExperimentKey {
  std::int64_t id = 0;
  std::string spec_hash;
};
std::optional<ExperimentKey> lookup_experiment(SQLite::Database& db, const std::string& name);
// Id of the experiment with this name, if any.
std::optional<std::int64_t> find_experiment(SQLite::Database& db, const std::string& name);

// The audits of one experiment with their passages, ordered by passage idx,
// stream, replicate (kPassage), or in the order the table stores them
// (kStored: what load_experiment hands to kvlab::stats).
struct AuditRecord {
  std::string passage;  // passages.name
  int replicate = 0;
  AuditRow audit;
  std::int64_t passage_id = 0;
};
enum class AuditOrder { kPassage, kStored };
std::vector<AuditRecord> list_audits(SQLite::Database& db, std::int64_t experiment_id,
                                     AuditOrder order = AuditOrder::kPassage);

// Unix times of the first claim and the last finish over all runs (0, 0
// when nothing finished): the span in which workers were busy.
std::pair<double, double> activity_span(SQLite::Database& db);

// Runs per experiment that finished (done or failed) within the last
// window_s seconds: experiment id -> count. For rate / ETA displays.
std::vector<std::pair<std::int64_t, std::int64_t>> recently_finished(SQLite::Database& db, double window_s);

// Per-experiment counts by state.
struct StatusRow {
  std::int64_t experiment_id = 0;
  std::string experiment;
  std::int64_t queued = 0, running = 0, done = 0, failed = 0;
  std::int64_t total() const { return queued + running + done + failed; }
};
std::vector<StatusRow> status_counts(SQLite::Database& db);

// Runs that a worker could still claim now or later: queued, failed with
// attempts < max_attempts, or running (another worker holds them).
struct Outstanding {
  std::int64_t claimable = 0;
  std::int64_t running = 0;
};
Outstanding outstanding(SQLite::Database& db, int max_attempts, std::optional<std::int64_t> experiment_id = {});

// Random claim token (128 bits, hex).
std::string new_claim_token();

}  // namespace kvlab::store
