// The run queue's SQL (see runs.h for the contract). Every statement that
// writes runs inside with_write_transaction (BEGIN IMMEDIATE).
#include "store/runs.h"

#include <cmath>

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <fmt/format.h>

#include "common/error.h"
#include "store/query.h"
#include "store/sql.h"
#include "store/writers.h"

namespace kvlab::store {

std::string new_claim_token() {
  static thread_local std::mt19937_64 rng([] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }());
  return fmt::format("{:016x}{:016x}", rng(), rng());
}

// ------------------------------------------------------------------ queueing

QueueOutcome queue_experiment(SQLite::Database& db, const ExperimentPlan& plan, bool new_replicate) {
  KVLAB_CHECK(!plan.name.empty(), "experiment name is empty");
  KVLAB_CHECK(!plan.spec_hash.empty(), "experiment '{}' has no spec hash", plan.name);
  QueueOutcome out;
  with_write_transaction(db, [&] {
    out = QueueOutcome{};
    RowWriter w(db);
    // Experiment row: created, or checked against the stored spec hash.
    if (const auto stored = lookup_experiment(db, plan.name)) {
      out.experiment_id = stored->id;
      if (stored->spec_hash != plan.spec_hash)
        throw Error(fmt::format("experiment '{}' is already queued with a different spec (stored spec hash {}, "
                                "this spec {}); give the changed spec a new name",
                                plan.name, stored->spec_hash.substr(0, 12), plan.spec_hash.substr(0, 12)));
    } else {
      out.experiment_id = w.experiment(plan.name, plan.origin, plan.spec_text, plan.spec_hash, plan.params_json);
      out.experiment_created = true;
    }
    // Replicate.
    if (new_replicate) {
      auto st = sql::prepare(db, "SELECT coalesce(max(replicate) + 1, 0) FROM runs WHERE experiment_id = ?",
                             std::int64_t{out.experiment_id});
      st.executeStep();
      out.replicate = st.getColumn(0).getInt();
    }
    // Passages.
    std::vector<std::int64_t> passage_ids;
    SQLite::Statement psel(db, "SELECT id, name, content_hash FROM passages WHERE experiment_id = ? AND idx = ?");
    for (const auto& p : plan.passages) {
      psel.reset();
      sql::bind_row(psel, std::int64_t{out.experiment_id}, p.idx);
      if (psel.executeStep()) {
        const std::string name = psel.getColumn(1).getString();
        const std::string hash = psel.getColumn(2).getString();
        if (name != p.name || hash != p.content_hash)
          throw Error(fmt::format("experiment '{}', passage {}: stored as '{}' (content {}), the spec now gives '{}' "
                                  "(content {}); a passage's content may not change under the same experiment name",
                                  plan.name, p.idx, name, hash.substr(0, 12), p.name, p.content_hash.substr(0, 12)));
        passage_ids.push_back(psel.getColumn(0).getInt64());
      } else {
        KVLAB_CHECK(w.passage(out.experiment_id, p), "experiment '{}': passage name '{}' is used at another position",
                    plan.name, p.name);
        passage_ids.push_back(db.getLastInsertRowid());
      }
    }
    // Runs: the cross product; existing ones are left alone.
    NewRun row;
    row.experiment_id = out.experiment_id;
    row.replicate = out.replicate;
    row.queued_at = unix_now();
    for (std::size_t i = 0; i < plan.passages.size(); ++i) {
      row.passage_id = passage_ids[i];
      for (const auto& stream : plan.streams) {
        row.stream = stream;
        for (const auto& c : plan.codecs) {
          row.codec = c.codec;
          row.q = c.q;
          if (w.run(row)) ++out.runs_added; else ++out.runs_existing;
        }
      }
    }
  });
  return out;
}

// ------------------------------------------------------------------ claiming

std::int64_t reclaim_stale(SQLite::Database& db, double grace_s, int max_attempts) {
  const double now = unix_now();
  return sql::exec(db,
                   "UPDATE runs SET status = CASE WHEN attempts >= ?1 THEN 'failed' ELSE 'queued' END, "
                   "claim_token = NULL, "
                   "error = 'worker ' || coalesce(worker, '?') || ' stopped heartbeating for ' || "
                   "printf('%.1f', ?2 - heartbeat_at) || ' s (grace ' || printf('%.1f', ?3) || ' s); reclaimed' "
                   "WHERE status = 'running' AND heartbeat_at < ?2 - ?3",
                   max_attempts, now, grace_s);
}

std::optional<Claim> claim_next(SQLite::Database& db, const ClaimOptions& opt) {
  KVLAB_CHECK(opt.max_attempts >= 1, "max attempts must be >= 1, got {}", opt.max_attempts);
  KVLAB_CHECK(opt.grace_s > 0, "grace period must be > 0 s, got {}", opt.grace_s);
  std::optional<Claim> out;
  with_write_transaction(db, [&] {
    out.reset();
    reclaim_stale(db, opt.grace_s, opt.max_attempts);
    const std::string filter = opt.experiment_id ? " AND experiment_id = :experiment" : "";
    std::int64_t exp_id = 0, passage_id = 0;
    int replicate = 0;
    bool found = false;
    for (const char* where : {"status = 'queued'", "status = 'failed' AND attempts < :max_attempts"}) {
      SQLite::Statement pick(db, fmt::format("SELECT experiment_id, passage_id, replicate FROM runs WHERE {}{} "
                                             "ORDER BY experiment_id, passage_id LIMIT 1",
                                             where, filter));
      sql::bind_named(pick, sql::Named{":max_attempts", opt.max_attempts},
                      sql::Named{":experiment", opt.experiment_id});
      if (pick.executeStep()) {
        exp_id = pick.getColumn(0).getInt64();
        passage_id = pick.getColumn(1).getInt64();
        replicate = pick.getColumn(2).getInt();
        found = true;
        break;
      }
    }
    if (!found) return;
    Claim c;
    c.token = new_claim_token();
    c.worker = opt.worker;
    c.experiment_id = exp_id;
    c.passage_id = passage_id;
    c.replicate = replicate;
    const double now = unix_now();
    auto upd = sql::prepare(db,
                            "UPDATE runs SET status = 'running', attempts = attempts + 1, worker = ?1, "
                            "claim_token = ?2, claimed_at = ?3, heartbeat_at = ?3 "
                            "WHERE experiment_id = ?4 AND passage_id = ?5 AND replicate = ?6 AND "
                            "(status = 'queued' OR (status = 'failed' AND attempts < ?7)) "
                            "RETURNING id, stream, codec, q, attempts",
                            opt.worker, c.token, now, exp_id, passage_id, replicate, opt.max_attempts);
    while (upd.executeStep()) {
      ClaimedRun r;
      r.run_id = upd.getColumn(0).getInt64();
      r.stream = upd.getColumn(1).getString();
      r.codec = upd.getColumn(2).getString();
      r.q = sql::opt<int>(upd.getColumn(3));
      r.attempts = upd.getColumn(4).getInt();
      c.runs.push_back(std::move(r));
    }
    KVLAB_ASSERT(!c.runs.empty(), "claim of experiment {} passage {} matched no runs", exp_id, passage_id);
    // RETURNING gives no order guarantee.
    std::sort(c.runs.begin(), c.runs.end(), [](const ClaimedRun& a, const ClaimedRun& b) { return a.run_id < b.run_id; });
    auto info = sql::prepare(db,
                             "SELECT e.name, e.params_json, p.idx, p.name, p.source, p.content_hash, p.text "
                             "FROM experiments e JOIN passages p ON p.experiment_id = e.id "
                             "WHERE e.id = ? AND p.id = ?",
                             exp_id, passage_id);
    KVLAB_ASSERT(info.executeStep(), "run of experiment {} points at missing passage {}", exp_id, passage_id);
    c.experiment_name = info.getColumn(0).getString();
    c.params_json = info.getColumn(1).getString();
    c.passage_idx = info.getColumn(2).getInt();
    c.passage_name = info.getColumn(3).getString();
    c.passage_source = info.getColumn(4).getString();
    c.passage_content_hash = info.getColumn(5).getString();
    c.passage_text = sql::opt<std::string>(info.getColumn(6));
    out = std::move(c);
  });
  return out;
}

std::int64_t heartbeat(SQLite::Database& db, const std::string& token) {
  std::int64_t n = 0;
  with_write_transaction(db, [&] {
    n = sql::exec(db, "UPDATE runs SET heartbeat_at = ? WHERE status = 'running' AND claim_token = ?", unix_now(),
                  token);
  });
  return n;
}

// ---------------------------------------------------------------- committing

namespace {

// Moves one run out of 'running' under `token`; returns whether it was held.
// The error is kept when given (failed), else the column is left as it was.
bool finish_run(SQLite::Database& db, const std::string& token, std::int64_t run_id, const char* status,
                const std::optional<std::string>& error) {
  return sql::exec(db,
                   "UPDATE runs SET status = ?1, finished_at = ?2, heartbeat_at = ?2, error = coalesce(?5, error) "
                   "WHERE id = ?3 AND claim_token = ?4 AND status = 'running'",
                   status, unix_now(), run_id, token, sql::Nullable{error}) == 1;
}

}  // namespace

CommitOutcome commit_result(SQLite::Database& db, const Claim& claim, const ClaimedRun& run, const RunResult& r,
                            std::int64_t provenance_id, const AuditRow* audit, CommitHook before_commit) {
  CommitOutcome outcome = CommitOutcome::kRejected;
  with_write_transaction(db, [&] {
    outcome = CommitOutcome::kRejected;
    if (!finish_run(db, claim.token, run.run_id, "done", std::nullopt)) return;  // commits nothing
    RowWriter w(db);
    KVLAB_ASSERT(w.result(run.run_id, r, provenance_id), "run {} has a result already", run.run_id);
    if (audit) w.audit(claim.experiment_id, claim.passage_id, claim.replicate, *audit, provenance_id);
    if (before_commit) before_commit();
    outcome = CommitOutcome::kCommitted;
  });
  return outcome;
}

CommitOutcome fail_run(SQLite::Database& db, const std::string& token, std::int64_t run_id, const std::string& error) {
  CommitOutcome outcome = CommitOutcome::kRejected;
  with_write_transaction(db, [&] {
    outcome = finish_run(db, token, run_id, "failed", error) ? CommitOutcome::kCommitted : CommitOutcome::kRejected;
  });
  return outcome;
}

std::int64_t release_claim(SQLite::Database& db, const std::string& token) {
  std::int64_t n = 0;
  with_write_transaction(db, [&] {
    n = sql::exec(db,
                  "UPDATE runs SET status = 'queued', attempts = max(attempts - 1, 0), claim_token = NULL "
                  "WHERE status = 'running' AND claim_token = ?",
                  token);
  });
  return n;
}

// ------------------------------------------------------------------- status

std::optional<ExperimentKey> lookup_experiment(SQLite::Database& db, const std::string& name) {
  auto st = sql::prepare(db, "SELECT id, spec_hash FROM main.experiments WHERE name = ?", name);
  if (!st.executeStep()) return std::nullopt;
  return ExperimentKey{st.getColumn(0).getInt64(), st.getColumn(1).getString()};
}

std::optional<std::int64_t> find_experiment(SQLite::Database& db, const std::string& name) {
  const auto e = lookup_experiment(db, name);
  if (!e) return std::nullopt;
  return e->id;
}

std::vector<AuditRecord> list_audits(SQLite::Database& db, std::int64_t experiment_id, AuditOrder order) {
  // The passage by a scalar subquery, so that kStored scans audits alone, as it always did.
  auto st = sql::prepare(db,
                         std::string("SELECT (SELECT p.name FROM passages p WHERE p.id = a.passage_id), a.replicate, "
                                     "a.stream, a.excess_kurtosis_abs, a.isotropy_variance_ratio, "
                                     "a.hadamard_post_variance_ratio, a.rms_wasserstein2_over_sigma_per_dim, "
                                     "a.n_vectors, a.dim, a.passage_id FROM audits a WHERE a.experiment_id = ?") +
                             (order == AuditOrder::kPassage
                                  ? " ORDER BY (SELECT p.idx FROM passages p WHERE p.id = a.passage_id), a.stream, "
                                    "a.replicate"
                                  : ""),
                         experiment_id);
  std::vector<AuditRecord> out;
  while (st.executeStep()) {
    AuditRecord r;
    r.passage = st.getColumn(0).getString();
    r.replicate = st.getColumn(1).getInt();
    r.audit.stream = st.getColumn(2).getString();
    r.audit.excess_kurtosis_abs = st.getColumn(3).getDouble();
    r.audit.isotropy_variance_ratio = st.getColumn(4).getDouble();
    r.audit.hadamard_post_variance_ratio = st.getColumn(5).getDouble();
    r.audit.rms_wasserstein2_over_sigma_per_dim = st.getColumn(6).getDouble();
    r.audit.n_vectors = st.getColumn(7).getInt64();
    r.audit.dim = st.getColumn(8).getInt64();
    r.passage_id = st.getColumn(9).getInt64();
    out.push_back(std::move(r));
  }
  return out;
}

std::pair<double, double> activity_span(SQLite::Database& db) {
  SQLite::Statement st(db, "SELECT coalesce(min(claimed_at), 0), coalesce(max(finished_at), 0) FROM runs "
                           "WHERE finished_at IS NOT NULL");
  st.executeStep();
  return {st.getColumn(0).getDouble(), st.getColumn(1).getDouble()};
}

std::vector<std::pair<std::int64_t, std::int64_t>> recently_finished(SQLite::Database& db, double window_s) {
  auto st = sql::prepare(db,
                         "SELECT experiment_id, count(*) FROM runs WHERE status IN ('done', 'failed') "
                         "AND finished_at >= ? GROUP BY experiment_id",
                         unix_now() - window_s);
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  while (st.executeStep()) out.emplace_back(st.getColumn(0).getInt64(), st.getColumn(1).getInt64());
  return out;
}

// The counts of list_experiments (query.h), which reads them with the same query.
std::vector<StatusRow> status_counts(SQLite::Database& db) {
  std::vector<StatusRow> rows;
  for (auto& e : list_experiments(db))
    rows.push_back(StatusRow{e.id, std::move(e.name), e.counts.queued, e.counts.running, e.counts.done,
                             e.counts.failed});
  return rows;
}

Outstanding outstanding(SQLite::Database& db, int max_attempts, std::optional<std::int64_t> experiment_id) {
  Outstanding o;
  const std::string filter = experiment_id ? " AND experiment_id = :experiment" : "";
  SQLite::Statement st(db, "SELECT "
                           "(SELECT count(*) FROM runs WHERE status = 'queued'" + filter + ") + "
                           "(SELECT count(*) FROM runs WHERE status = 'failed' AND attempts < :max_attempts" +
                           filter + "), "
                           "(SELECT count(*) FROM runs WHERE status = 'running'" + filter + ")");
  sql::bind_named(st, sql::Named{":max_attempts", max_attempts}, sql::Named{":experiment", experiment_id});
  st.executeStep();
  o.claimable = st.getColumn(0).getInt64();
  o.running = st.getColumn(1).getInt64();
  return o;
}

}  // namespace kvlab::store
