// Tests of store/runs.h in one process: queueing (idempotent, replicates,
// changed spec refused), claiming one passage at a time, claim tokens
// (late results rejected), retries up to a limit, reclaim after the grace
// period, release, status counts (the same as list_experiments'), audits in
// passage and stored order, and the query plans of the hot queries.
#include <algorithm>
#include <set>
#include <thread>

#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "experiment/provenance.h"
#include "store/db.h"
#include "store/query.h"
#include "store/runs.h"
#include "testutil/testutil.h"

namespace kvlab::store {
namespace {

ExperimentPlan small_plan(int n_passages = 3) {
  ExperimentPlan p;
  p.name = "unit";
  p.spec_text = "[experiment]\nname = unit\n";
  p.spec_hash = std::string(64, 'a');
  p.params_json = R"({"seqlen":64})";
  for (int i = 0; i < n_passages; ++i)
    p.passages.push_back({i, fmt::format("p{}", i), std::string(64, static_cast<char>('0' + i)),
                          fmt::format("synthetic:seed={}", i), std::nullopt});
  p.streams = {"sliding_window_kv", "hca_pool_kv_ratio128"};
  p.codecs = {{"fp8_per64", std::nullopt}, {"e8:q=10", 10}, {"e8:q=38", 38}};
  return p;
}

struct Fixture : ::testing::Test {
  void SetUp() override {
    dir = testutil::make_temp_dir("store-runs");
    path = dir + "/q.db";
    db = open_database(path, OpenMode::kCreate);
  }
  std::int64_t count(const std::string& sql) { return db->execAndGet(sql).getInt64(); }
  RunResult fake_result(double x) {
    RunResult r;
    r.bits_per_vector = 3296;
    r.code_bytes = 412;
    r.rel_mse = x;
    r.cos_sim = 1 - x;
    r.n_vectors = 64;
    r.dim = 512;
    r.wall_s = 0.001;
    return r;
  }
  // Experiments "unit" (2 passages) and "other" (1); of the first claim
  // (unit's first passage) one run done, one failed, the rest running.
  void queue_two_and_finish_two() {
    queue_experiment(*db, small_plan(2));
    auto other = small_plan(1);
    other.name = "other";
    queue_experiment(*db, other);
    auto c = claim_next(*db, {"w", 60, 3, std::nullopt});
    ASSERT_TRUE(c);
    const auto prov = upsert_provenance(*db, experiment::current_provenance());
    commit_result(*db, *c, c->runs[0], fake_result(0.1), prov);
    fail_run(*db, c->token, c->runs[1].run_id, "bad");
  }
  std::string dir, path;
  std::unique_ptr<SQLite::Database> db;
};

using StoreRuns = Fixture;

TEST_F(StoreRuns, QueueingTwiceAddsNothingAndReplicateAddsAll) {
  const auto plan = small_plan();
  auto a = queue_experiment(*db, plan);
  EXPECT_TRUE(a.experiment_created);
  EXPECT_EQ(a.runs_added, 3 * 2 * 3);
  EXPECT_EQ(a.runs_existing, 0);
  auto b = queue_experiment(*db, plan);
  EXPECT_FALSE(b.experiment_created);
  EXPECT_EQ(b.experiment_id, a.experiment_id);
  EXPECT_EQ(b.runs_added, 0);
  EXPECT_EQ(b.runs_existing, 18);
  auto c = queue_experiment(*db, plan, /*new_replicate=*/true);
  EXPECT_EQ(c.replicate, 1);
  EXPECT_EQ(c.runs_added, 18);
  EXPECT_EQ(count("SELECT count(*) FROM runs"), 36);
  EXPECT_EQ(count("SELECT count(*) FROM passages"), 3);
  EXPECT_EQ(count("SELECT count(*) FROM runs WHERE codec = 'fp8_per64' AND q IS NOT NULL"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM runs WHERE codec = 'e8:q=38' AND q = 38"), 12);
}

TEST_F(StoreRuns, ChangedSpecOrPassageUnderSameNameIsRefused) {
  auto plan = small_plan();
  queue_experiment(*db, plan);
  auto changed = plan;
  changed.spec_hash = std::string(64, 'b');
  try {
    queue_experiment(*db, changed);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("different spec"), std::string::npos) << e.what();
  }
  auto moved = plan;
  moved.passages[1].content_hash = std::string(64, 'f');
  EXPECT_THROW(queue_experiment(*db, moved), Error);
  // Nothing of the failed transactions stayed behind.
  EXPECT_EQ(count("SELECT count(*) FROM runs"), 18);
  EXPECT_EQ(count("SELECT count(*) FROM experiments"), 1);
}

TEST_F(StoreRuns, ClaimTakesAllPendingRunsOfOnePassage) {
  queue_experiment(*db, small_plan());
  std::set<std::int64_t> passages_seen;
  int claims = 0;
  while (auto c = claim_next(*db, {"w1", 60, 3, std::nullopt})) {
    ++claims;
    EXPECT_EQ(c->runs.size(), 6u);  // 2 streams x 3 codecs
    EXPECT_TRUE(passages_seen.insert(c->passage_id).second) << "passage claimed twice";
    EXPECT_EQ(c->experiment_name, "unit");
    EXPECT_EQ(c->params_json, R"({"seqlen":64})");
    EXPECT_EQ(c->passage_name, fmt::format("p{}", c->passage_idx));
    for (const auto& r : c->runs) EXPECT_EQ(r.attempts, 1);
    // Runs come in queue order: stream-major.
    EXPECT_EQ(c->runs[0].stream, "sliding_window_kv");
    EXPECT_EQ(c->runs[5].stream, "hca_pool_kv_ratio128");
    EXPECT_EQ(count(fmt::format("SELECT count(*) FROM runs WHERE claim_token = '{}' AND status = 'running' "
                                "AND worker = 'w1'", c->token)),
              6);
  }
  EXPECT_EQ(claims, 3);
  EXPECT_EQ(count("SELECT count(*) FROM runs WHERE status = 'running'"), 18);
}

TEST_F(StoreRuns, CommitWritesResultAndAuditOnceAndRejectsForeignToken) {
  queue_experiment(*db, small_plan(1));
  auto c = claim_next(*db, {"w1", 60, 3, std::nullopt});
  ASSERT_TRUE(c);
  const auto prov = upsert_provenance(*db, experiment::current_provenance());
  AuditRow audit{"sliding_window_kv", 0.1, 1.2, 1.1, 0.03, 64, 512};
  EXPECT_EQ(commit_result(*db, *c, c->runs[0], fake_result(0.01), prov, &audit), CommitOutcome::kCommitted);
  // Same run again: already done -> rejected, still one result row.
  EXPECT_EQ(commit_result(*db, *c, c->runs[0], fake_result(0.02), prov, &audit), CommitOutcome::kRejected);
  EXPECT_EQ(count("SELECT count(*) FROM results"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM audits"), 1);
  EXPECT_DOUBLE_EQ(db->execAndGet("SELECT rel_mse FROM results").getDouble(), 0.01);
  // A claim with a wrong token cannot commit.
  Claim forged = *c;
  forged.token = new_claim_token();
  EXPECT_EQ(commit_result(*db, forged, c->runs[1], fake_result(0.5), prov), CommitOutcome::kRejected);
  EXPECT_EQ(fail_run(*db, forged.token, c->runs[1].run_id, "x"), CommitOutcome::kRejected);
  EXPECT_EQ(count("SELECT count(*) FROM results"), 1);
  // The audit of the same stream from a second commit is not duplicated.
  EXPECT_EQ(commit_result(*db, *c, c->runs[1], fake_result(0.02), prov, &audit), CommitOutcome::kCommitted);
  EXPECT_EQ(count("SELECT count(*) FROM audits"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM runs WHERE status = 'done' AND finished_at IS NOT NULL"), 2);
}

TEST_F(StoreRuns, FailedRunsKeepErrorAndAreRetriedUpToTheLimit) {
  auto plan = small_plan(1);
  plan.streams = {"sliding_window_kv"};
  plan.codecs = {{"e8:q=38", 38}};
  queue_experiment(*db, plan);
  const int max_attempts = 3;
  for (int attempt = 1; attempt <= max_attempts; ++attempt) {
    auto c = claim_next(*db, {"w", 60, max_attempts, std::nullopt});
    ASSERT_TRUE(c) << "attempt " << attempt;
    ASSERT_EQ(c->runs.size(), 1u);
    EXPECT_EQ(c->runs[0].attempts, attempt);
    EXPECT_EQ(fail_run(*db, c->token, c->runs[0].run_id, fmt::format("boom {}", attempt)), CommitOutcome::kCommitted);
  }
  EXPECT_FALSE(claim_next(*db, {"w", 60, max_attempts, std::nullopt}));
  EXPECT_EQ(db->execAndGet("SELECT error FROM runs").getString(), "boom 3");
  EXPECT_EQ(db->execAndGet("SELECT status FROM runs").getString(), "failed");
  EXPECT_EQ(outstanding(*db, max_attempts).claimable, 0);
  // A later worker with a higher limit retries it.
  EXPECT_EQ(outstanding(*db, 5).claimable, 1);
  auto c = claim_next(*db, {"w", 60, 5, std::nullopt});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->runs[0].attempts, 4);
}

TEST_F(StoreRuns, StaleClaimIsReclaimedAndLateResultRejected) {
  auto plan = small_plan(1);
  queue_experiment(*db, plan);
  auto slow = claim_next(*db, {"slow", 60, 3, std::nullopt});
  ASSERT_TRUE(slow);
  // Within the grace period nobody else gets the passage.
  EXPECT_FALSE(claim_next(*db, {"fast", 60, 3, std::nullopt}));
  // Age the heartbeat past a 0.05 s grace period.
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  auto fast = claim_next(*db, {"fast", 0.05, 3, std::nullopt});
  ASSERT_TRUE(fast);
  EXPECT_EQ(fast->runs.size(), slow->runs.size());
  EXPECT_EQ(fast->runs[0].attempts, 2);
  const auto prov = upsert_provenance(*db, experiment::current_provenance());
  // The stalled worker wakes up: its heartbeat holds nothing, its result is refused.
  EXPECT_EQ(heartbeat(*db, slow->token), 0);
  EXPECT_EQ(commit_result(*db, *slow, slow->runs[0], fake_result(0.9), prov), CommitOutcome::kRejected);
  EXPECT_EQ(heartbeat(*db, fast->token), static_cast<std::int64_t>(fast->runs.size()));
  for (const auto& r : fast->runs) EXPECT_EQ(commit_result(*db, *fast, r, fake_result(0.1), prov), CommitOutcome::kCommitted);
  EXPECT_EQ(count("SELECT count(*) FROM results"), static_cast<std::int64_t>(fast->runs.size()));
  EXPECT_EQ(count("SELECT count(*) FROM results WHERE rel_mse = 0.9"), 0);
  EXPECT_NE(db->execAndGet("SELECT error FROM runs LIMIT 1").getString().find("stopped heartbeating"), std::string::npos);
}

TEST_F(StoreRuns, ReclaimFailsRunsThatExhaustedTheirAttempts) {
  auto plan = small_plan(1);
  plan.streams = {"sliding_window_kv"};
  plan.codecs = {{"fp8_per64", std::nullopt}};
  queue_experiment(*db, plan);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(claim_next(*db, {"dies", 0.01, 2, std::nullopt}));
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  // Second claim died too: with max_attempts 2 the run is failed, not requeued.
  EXPECT_FALSE(claim_next(*db, {"w", 0.01, 2, std::nullopt}));
  EXPECT_EQ(db->execAndGet("SELECT status FROM runs").getString(), "failed");
  EXPECT_EQ(db->execAndGet("SELECT attempts FROM runs").getInt(), 2);
}

TEST_F(StoreRuns, ReleaseRequeuesWithoutCountingTheAttempt) {
  queue_experiment(*db, small_plan(1));
  auto c = claim_next(*db, {"w", 60, 3, std::nullopt});
  ASSERT_TRUE(c);
  const auto prov = upsert_provenance(*db, experiment::current_provenance());
  ASSERT_EQ(commit_result(*db, *c, c->runs[0], fake_result(0.1), prov), CommitOutcome::kCommitted);
  EXPECT_EQ(release_claim(*db, c->token), 5);
  EXPECT_EQ(count("SELECT count(*) FROM runs WHERE status = 'queued' AND attempts = 0 AND claim_token IS NULL"), 5);
  EXPECT_EQ(count("SELECT count(*) FROM runs WHERE status = 'done'"), 1);
  auto again = claim_next(*db, {"w", 60, 3, std::nullopt});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->runs.size(), 5u);
}

TEST_F(StoreRuns, StatusCountsPerExperiment) {
  ASSERT_NO_FATAL_FAILURE(queue_two_and_finish_two());
  auto rows = status_counts(*db);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].experiment, "unit");
  EXPECT_EQ(rows[0].done, 1);
  EXPECT_EQ(rows[0].failed, 1);
  EXPECT_EQ(rows[0].running, 4);
  EXPECT_EQ(rows[0].queued, 6);
  EXPECT_EQ(rows[0].total(), 12);
  EXPECT_EQ(rows[1].experiment, "other");
  EXPECT_EQ(rows[1].queued, 6);
  auto o = outstanding(*db, 3);
  EXPECT_EQ(o.claimable, 6 + 6 + 1);
  EXPECT_EQ(o.running, 4);
  auto only = claim_next(*db, {"w", 60, 3, rows[1].experiment_id});
  ASSERT_TRUE(only);
  EXPECT_EQ(only->experiment_name, "other");
}

TEST_F(StoreRuns, StatusCountsAreListExperimentsCounts) {
  ASSERT_NO_FATAL_FAILURE(queue_two_and_finish_two());
  const auto rows = status_counts(*db);
  const auto exps = list_experiments(*db);
  ASSERT_EQ(rows.size(), exps.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].experiment_id, exps[i].id);
    EXPECT_EQ(rows[i].experiment, exps[i].name);
    EXPECT_EQ(rows[i].queued, exps[i].counts.queued);
    EXPECT_EQ(rows[i].running, exps[i].counts.running);
    EXPECT_EQ(rows[i].done, exps[i].counts.done);
    EXPECT_EQ(rows[i].failed, exps[i].counts.failed);
  }
  EXPECT_EQ(exps[0].passages, 2);
  EXPECT_EQ(exps[0].counts.done, 1);
  EXPECT_EQ(exps[0].counts.failed, 1);
  EXPECT_EQ(exps[0].counts.running, 4);
  EXPECT_EQ(exps[0].counts.queued, 6);
  EXPECT_EQ(exps[1].passages, 1);
  EXPECT_EQ(exps[1].counts.queued, 6);
}

TEST_F(StoreRuns, AuditsInPassageOrderAndInStoredOrder) {
  auto plan = small_plan(3);
  plan.streams = {"sliding_window_kv"};
  plan.codecs = {{"e8:q=38", 38}};
  const auto q = queue_experiment(*db, plan);
  const auto prov = upsert_provenance(*db, experiment::current_provenance());
  // Claims go by passage; commit the passages' audits in the order 2, 0, 1.
  std::vector<Claim> claims;
  for (int i = 0; i < 3; ++i) {
    auto c = claim_next(*db, {"w", 60, 3, std::nullopt});
    ASSERT_TRUE(c);
    claims.push_back(*c);
  }
  for (int k : {2, 0, 1}) {
    const Claim& c = claims[static_cast<std::size_t>(k)];
    AuditRow audit{"sliding_window_kv", 0.1 * (k + 1), 1.2, 1.1, 0.03, 64, 512};
    ASSERT_EQ(commit_result(*db, c, c.runs[0], fake_result(0.01), prov, &audit), CommitOutcome::kCommitted);
  }
  const auto sorted = list_audits(*db, q.experiment_id);
  ASSERT_EQ(sorted.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const auto& a = sorted[static_cast<std::size_t>(i)];
    EXPECT_EQ(a.passage, fmt::format("p{}", i));
    EXPECT_EQ(a.passage_id, claims[static_cast<std::size_t>(i)].passage_id);
    EXPECT_DOUBLE_EQ(a.audit.excess_kurtosis_abs, 0.1 * (i + 1));
    EXPECT_EQ(a.audit.n_vectors, 64);
    EXPECT_EQ(a.audit.dim, 512);
  }
  const auto stored = list_audits(*db, q.experiment_id, AuditOrder::kStored);
  ASSERT_EQ(stored.size(), 3u);
  std::vector<std::string> order;
  for (const auto& a : stored) order.push_back(a.passage);
  // The table's own order; the stats see exactly these rows (load_experiment).
  const auto data = load_experiment(*db, "unit");
  ASSERT_EQ(data.audits.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(data.audits[i].passage_id, stored[i].passage_id);
    EXPECT_EQ(data.audits[i].replicate, stored[i].replicate);
    EXPECT_EQ(data.audits[i].stream, stored[i].audit.stream);
    EXPECT_DOUBLE_EQ(data.audits[i].excess_kurtosis_abs, stored[i].audit.excess_kurtosis_abs);
    EXPECT_EQ(data.audits[i].dim, 512);
  }
  std::vector<std::string> names;
  for (const auto& a : sorted) names.push_back(a.passage);
  std::sort(order.begin(), order.end());
  EXPECT_EQ(order, names);  // the same rows
}

// load_experiment counts the whitespace words of each stored passage text
// (the reports' repetition caveat); a passage without text has none.
TEST_F(StoreRuns, PassagesCarryTheirStoredTextsWordCount) {
  auto plan = small_plan();
  plan.passages[0].text = "  the cat\tsat\n\non the  mat ";
  plan.passages[1].text = "";
  queue_experiment(*db, plan);
  const auto data = load_experiment(*db, "unit");
  ASSERT_EQ(data.passages.size(), 3u);
  EXPECT_EQ(data.passages[0].words, std::optional<std::int64_t>(6));
  EXPECT_EQ(data.passages[1].words, std::optional<std::int64_t>(0));
  EXPECT_FALSE(data.passages[2].words.has_value());
}

TEST_F(StoreRuns, RetriedRunThatSucceedsKeepsItsLastError) {
  auto plan = small_plan(1);
  plan.streams = {"sliding_window_kv"};
  plan.codecs = {{"e8:q=38", 38}};
  queue_experiment(*db, plan);
  auto c = claim_next(*db, {"w", 60, 3, std::nullopt});
  ASSERT_TRUE(c);
  ASSERT_EQ(fail_run(*db, c->token, c->runs[0].run_id, "boom"), CommitOutcome::kCommitted);
  auto again = claim_next(*db, {"w", 60, 3, std::nullopt});
  ASSERT_TRUE(again);
  const auto prov = upsert_provenance(*db, experiment::current_provenance());
  ASSERT_EQ(commit_result(*db, *again, again->runs[0], fake_result(0.01), prov), CommitOutcome::kCommitted);
  EXPECT_EQ(db->execAndGet("SELECT status FROM runs").getString(), "done");
  EXPECT_EQ(db->execAndGet("SELECT error FROM runs").getString(), "boom");
  EXPECT_EQ(count("SELECT attempts FROM runs"), 2);
}

// The hot queries use indexes, not table scans.
std::string plan_of(SQLite::Database& db, const std::string& sql) {
  SQLite::Statement st(db, "EXPLAIN QUERY PLAN " + sql);
  std::string out;
  while (st.executeStep()) out += st.getColumn(3).getString() + "\n";
  return out;
}

TEST_F(StoreRuns, HotQueriesUseIndexes) {
  queue_experiment(*db, small_plan());
  db->exec("ANALYZE");
  struct Case {
    const char* sql;
    const char* expect;
  } cases[] = {
      {"SELECT experiment_id, passage_id, replicate FROM runs WHERE status = 'queued' ORDER BY experiment_id, "
       "passage_id LIMIT 1",
       "USING INDEX runs_status (status=?)"},
      {"UPDATE runs SET heartbeat_at = 1 WHERE status = 'running' AND claim_token = 'x'", "USING INDEX runs_claim"},
      {"SELECT count(*) FROM runs WHERE status = 'running' AND heartbeat_at < 5", "runs_status"},
      // Query layer: one cell (experiment, stream, codec) with its results.
      {"SELECT r.passage_id, s.rel_mse FROM runs r JOIN results s ON s.run_id = r.id WHERE r.experiment_id = 1 "
       "AND r.stream = 'sliding_window_kv' AND r.codec = 'e8:q=38'",
       "USING INDEX runs_cell"},
      {"SELECT * FROM audits WHERE experiment_id = 1", "USING INDEX sqlite_autoindex_audits_1"},
      {"SELECT * FROM passages WHERE experiment_id = 1 ORDER BY idx", "sqlite_autoindex_passages_1"},
  };
  for (const auto& c : cases) {
    const auto plan = plan_of(*db, c.sql);
    EXPECT_NE(plan.find(c.expect), std::string::npos) << c.sql << "\nplan:\n" << plan;
    EXPECT_EQ(plan.find("SCAN runs\n"), std::string::npos) << c.sql << "\nplan:\n" << plan;
    EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << c.sql << "\nplan:\n" << plan;
  }
}

}  // namespace
}  // namespace kvlab::store
