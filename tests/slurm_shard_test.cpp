// Tests of store/shard.h without Slurm: partitioning whole passages,
// writing shard databases, merging them back (equal to one machine running
// everything, idempotent, atomic per shard), refusals (another experiment, a
// changed spec, a newer schema, not a shard, a damaged file), a shard whose
// worker was killed inside a commit, and resuming a killed shard (the
// submission manifest: slurm_manifest_test.cpp). Workers are simulated with the store's queue API
// (claim_next / commit_result) and deterministic fake results.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "common/hash.h"
#include "experiment/provenance.h"
#include "store/db.h"
#include "store/runs.h"
#include "store/shard.h"
#include "testutil/testutil.h"

namespace kvlab::store {
namespace {

namespace fs = std::filesystem;

ExperimentPlan plan_of(const std::string& name, int n_passages, const std::string& spec_extra = "") {
  ExperimentPlan p;
  p.name = name;
  p.spec_text = "[experiment]\nname = " + name + "\n" + spec_extra;
  p.spec_hash = sha256_hex(p.spec_text);
  p.params_json = R"({"seqlen":256})";
  for (int i = 0; i < n_passages; ++i)
    p.passages.push_back({i, fmt::format("p{}", i), sha256_hex(fmt::format("passage {}", i)),
                          fmt::format("synthetic:seed={}", 1000 + i), std::nullopt});
  p.streams = {"sliding_window_kv", "csa_pool_kv_ratio4", "hca_pool_kv_ratio128"};
  p.codecs = {{"fp8_per64", std::nullopt}, {"e8:q=10", 10}};
  return p;
}

// A deterministic function of the run's identity, like a real codec run.
double fake_value(const std::string& passage, const std::string& stream, const std::string& codec, int salt) {
  const std::string h = sha256_hex(fmt::format("{}|{}|{}|{}", passage, stream, codec, salt));
  return static_cast<double>(std::stoull(h.substr(0, 12), nullptr, 16)) / static_cast<double>(1ULL << 48);
}

RunResult fake_result(const Claim& c, const ClaimedRun& r) {
  RunResult x;
  x.bits_per_vector = r.codec == "fp8_per64" ? 4224 : 2336;
  x.code_bytes = r.codec == "fp8_per64" ? 528 : 292;
  x.rel_mse = fake_value(c.passage_name, r.stream, r.codec, 1);
  x.cos_sim = 1 - fake_value(c.passage_name, r.stream, r.codec, 2) / 100;
  x.n_vectors = 256;
  x.dim = 512;
  x.wall_s = 0.001 * getpid();  // differs between processes: must be ignored
  return x;
}

AuditRow fake_audit(const Claim& c, const std::string& stream) {
  AuditRow a;
  a.stream = stream;
  a.excess_kurtosis_abs = fake_value(c.passage_name, stream, "audit", 1);
  a.isotropy_variance_ratio = 1 + fake_value(c.passage_name, stream, "audit", 2);
  a.hadamard_post_variance_ratio = 1 + fake_value(c.passage_name, stream, "audit", 3);
  a.rms_wasserstein2_over_sigma_per_dim = fake_value(c.passage_name, stream, "audit", 4);
  a.n_vectors = 256;
  a.dim = 512;
  return a;
}

// Runs every claimable run of `path` (optionally at most `max_passages`
// passages) like `kvlab run` would. Returns the number of runs committed.
int run_worker(const std::string& path, int max_passages = 1 << 30, const std::string& worker = "unit:1") {
  auto db = open_database(path, OpenMode::kReadWrite);
  Provenance prov = experiment::current_provenance();
  prov.hostname = worker;  // a different "machine" per worker
  const auto prov_id = upsert_provenance(*db, prov);
  ClaimOptions opt;
  opt.worker = worker;
  int committed = 0;
  for (int n = 0; n < max_passages; ++n) {
    auto c = claim_next(*db, opt);
    if (!c) break;
    std::set<std::string> audited;
    for (const auto& r : c->runs) {
      const AuditRow a = fake_audit(*c, r.stream);
      const bool first = audited.insert(r.stream).second;
      if (commit_result(*db, *c, r, fake_result(*c, r), prov_id, first ? &a : nullptr) == CommitOutcome::kCommitted)
        ++committed;
    }
  }
  return committed;
}

struct SlurmShard : ::testing::Test {
  void SetUp() override {
    dir = testutil::make_temp_dir("slurm-shard");
    main_path = dir + "/sweep.db";
    db = open_database(main_path, OpenMode::kCreate);
    queue_experiment(*db, plan_of("exp", 5));
  }
  void TearDown() override {
    db.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::int64_t count(const std::string& sql) { return db->execAndGet(sql).getInt64(); }
  // A single-machine run of the same plan, for comparison.
  std::vector<std::string> reference_outcome(const ExperimentPlan& plan) {
    const std::string ref = dir + "/reference.db";
    {
      auto r = open_database(ref, OpenMode::kCreate);
      queue_experiment(*r, plan);
    }
    run_worker(ref);
    auto r = open_database(ref, OpenMode::kReadOnly);
    return outcome_rows(*r, plan.name);
  }
  std::string dir, main_path;
  std::unique_ptr<SQLite::Database> db;
};

TEST(SlurmShardNames, BaseAndShardPaths) {
  EXPECT_EQ(shard_base("out/sweep.db"), "out/sweep");
  EXPECT_EQ(shard_path("out/sweep.db", 3), "out/sweep.shard3.db");
  EXPECT_EQ(shard_path("sweep", 0), "sweep.shard0.db");
  EXPECT_EQ(shard_base(".db"), ".db");
}

TEST(SlurmShardPartition, WholePassagesBalancedAndDeterministic) {
  // LPT by hand: 9 -> s0, 7 -> s1, 5 -> s2, 4 -> s2 (5 < 7, 9), 3 -> s1 (7 < 9), 1 -> s0? no: loads 9,10,9 -> s0.
  const std::vector<std::int64_t> runs = {5, 9, 1, 7, 3, 4};
  const auto parts = partition_passages(runs, 3);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0], (std::vector<std::size_t>{1, 2}));  // 9 + 1
  EXPECT_EQ(parts[1], (std::vector<std::size_t>{3, 4}));  // 7 + 3
  EXPECT_EQ(parts[2], (std::vector<std::size_t>{0, 5}));  // 5 + 4
  std::set<std::size_t> all;
  for (const auto& p : parts)
    for (auto i : p) EXPECT_TRUE(all.insert(i).second) << "passage " << i << " in two shards";
  EXPECT_EQ(all.size(), runs.size());
  EXPECT_EQ(partition_passages(runs, 3), parts);
  // One shard per passage, and one shard for everything.
  const auto each = partition_passages(runs, 6);
  for (std::size_t s = 0; s < 6; ++s) EXPECT_EQ(each[s].size(), 1u);
  EXPECT_EQ(partition_passages(runs, 1)[0].size(), 6u);
  // Equal sizes: every shard gets a passage even when the loads tie.
  const auto tie = partition_passages({3, 3, 3, 3}, 4);
  for (const auto& p : tie) EXPECT_EQ(p.size(), 1u);
}

TEST(SlurmShardPartition, MoreShardsThanPassagesOrNoShardIsAnError) {
  try {
    partition_passages({4, 4, 4}, 4);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("4 shards requested but only 3 passage(s)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(partition_passages({4}, 0), Error);
}

TEST_F(SlurmShard, WriteShardsCopiesPendingRunsOfWholePassages) {
  // Passage p0 is already done on this machine: it must not be sharded.
  run_worker(main_path, 1);
  ASSERT_EQ(count("SELECT count(*) FROM runs WHERE status = 'done'"), 6);
  const auto layout = write_shards(*db, main_path, "exp", 2);
  EXPECT_EQ(layout.done_runs, 6);
  EXPECT_EQ(layout.pending_runs, 24);
  ASSERT_EQ(layout.shards.size(), 2u);
  std::set<std::string> names;
  std::int64_t total = 0;
  for (const auto& s : layout.shards) {
    EXPECT_EQ(s.path, shard_path(main_path, s.index));
    EXPECT_EQ(s.passages.size(), 2u);
    ASSERT_TRUE(fs::exists(s.path));
    EXPECT_FALSE(fs::exists(s.path + "-wal"));
    auto sh = open_database(s.path, OpenMode::kReadOnly);
    const auto meta = read_shard_meta(*sh);
    ASSERT_TRUE(meta);
    EXPECT_EQ(meta->index, s.index);
    EXPECT_EQ(meta->count, 2);
    EXPECT_EQ(meta->experiment, "exp");
    EXPECT_EQ(meta->spec_hash, plan_of("exp", 5).spec_hash);
    EXPECT_EQ(meta->parent_db, fs::absolute(main_path).lexically_normal().string());
    EXPECT_EQ(sh->execAndGet("SELECT count(*) FROM runs").getInt64(), s.runs);
    EXPECT_EQ(sh->execAndGet("SELECT count(*) FROM runs WHERE status = 'queued' AND attempts = 0 AND "
                             "claim_token IS NULL").getInt64(),
              s.runs);
    EXPECT_EQ(sh->execAndGet("SELECT count(*) FROM results").getInt64(), 0);
    // Whole passages: each passage of the shard has all its 6 runs.
    EXPECT_EQ(sh->execAndGet("SELECT count(*) FROM (SELECT passage_id FROM runs GROUP BY passage_id "
                             "HAVING count(*) <> 6)").getInt64(), 0);
    SQLite::Statement st(*sh, "SELECT name FROM passages ORDER BY idx");
    while (st.executeStep()) EXPECT_TRUE(names.insert(st.getColumn(0).getString()).second);
    total += s.runs;
  }
  EXPECT_EQ(total, 24);
  EXPECT_EQ(names, (std::set<std::string>{"p1", "p2", "p3", "p4"}));
  // The main database was only read.
  EXPECT_EQ(count("SELECT count(*) FROM runs WHERE status = 'queued'"), 24);
}

TEST_F(SlurmShard, WriteShardsErrors) {
  EXPECT_THROW(write_shards(*db, main_path, "nope", 2), Error);
  try {
    write_shards(*db, main_path, "exp", 6);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("6 shards requested but only 5"), std::string::npos) << e.what();
  }
  run_worker(main_path);
  try {
    write_shards(*db, main_path, "exp", 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no pending run (30 done)"), std::string::npos) << e.what();
  }
}

TEST_F(SlurmShard, IngestEqualsOneMachineAndIsIdempotent) {
  const auto layout = write_shards(*db, main_path, "exp", 3);
  for (const auto& s : layout.shards) EXPECT_GT(run_worker(s.path, 1 << 30, fmt::format("node{}:1", s.index)), 0);
  for (const auto& s : layout.shards) {
    const auto o = ingest_shard(*db, main_path, s.path);
    EXPECT_TRUE(o.ok) << o.error;
    EXPECT_EQ(o.runs_merged, s.runs);
    EXPECT_EQ(o.runs_already, 0);
    EXPECT_EQ(o.runs_missing, 0);
    EXPECT_EQ(o.audits_merged, static_cast<std::int64_t>(s.passages.size()) * 3);
  }
  EXPECT_EQ(count("SELECT count(*) FROM runs WHERE status = 'done'"), 30);
  EXPECT_EQ(count("SELECT count(*) FROM results"), 30);
  EXPECT_EQ(count("SELECT count(*) FROM audits"), 15);
  // Provenance came along: each result points at its worker's row.
  EXPECT_EQ(count("SELECT count(*) FROM results r JOIN provenance p ON p.id = r.provenance_id "
                  "WHERE p.hostname LIKE 'node%'"),
            30);
  EXPECT_EQ(count("SELECT count(DISTINCT provenance_id) FROM results"), 3);
  EXPECT_EQ(count("SELECT count(*) FROM runs WHERE worker NOT LIKE 'node%'"), 0);

  const auto merged = outcome_rows(*db, "exp");
  EXPECT_EQ(merged, reference_outcome(plan_of("exp", 5)));
  EXPECT_EQ(merged.size(), 1u + 5 + 30 + 15);

  // Twice: nothing added, nothing changed.
  const auto prov_before = count("SELECT count(*) FROM provenance");
  for (const auto& s : layout.shards) {
    const auto o = ingest_shard(*db, main_path, s.path);
    EXPECT_TRUE(o.ok) << o.error;
    EXPECT_EQ(o.runs_merged, 0);
    EXPECT_EQ(o.runs_already, s.runs);
    EXPECT_EQ(o.runs_conflicting, 0);
    EXPECT_EQ(o.audits_merged, 0);
  }
  EXPECT_EQ(outcome_rows(*db, "exp"), merged);
  EXPECT_EQ(count("SELECT count(*) FROM provenance"), prov_before);
  EXPECT_EQ(count("SELECT count(*) FROM results"), 30);
  const auto p = experiment_progress(*db, "exp");
  EXPECT_EQ(p.done, 30);
  EXPECT_EQ(p.total, 30);
}

TEST_F(SlurmShard, ConflictingValuesAreCountedAndMainIsKept) {
  const auto layout = write_shards(*db, main_path, "exp", 1);
  run_worker(layout.shards[0].path);
  ASSERT_TRUE(ingest_shard(*db, main_path, layout.shards[0].path).ok);
  {
    auto sh = open_database(layout.shards[0].path, OpenMode::kReadWrite);
    sh->exec("UPDATE results SET rel_mse = rel_mse + 1 WHERE run_id IN (SELECT id FROM runs LIMIT 2)");
  }
  const auto before = outcome_rows(*db, "exp");
  const auto o = ingest_shard(*db, main_path, layout.shards[0].path);
  EXPECT_TRUE(o.ok) << o.error;
  EXPECT_EQ(o.runs_merged, 0);
  EXPECT_EQ(o.runs_already, 30);
  EXPECT_EQ(o.runs_conflicting, 2);
  EXPECT_EQ(outcome_rows(*db, "exp"), before);
}

TEST_F(SlurmShard, PartialShardMergesWhatIsDoneAndResumes) {
  const auto layout = write_shards(*db, main_path, "exp", 1);
  const std::string sp = layout.shards[0].path;
  // A task that finished 2 passages, then one run failed for good and the
  // task was killed holding a claim.
  run_worker(sp, 2);
  {
    auto sh = open_database(sp, OpenMode::kReadWrite);
    ClaimOptions opt;
    opt.worker = "dead:1";
    opt.max_attempts = 1;
    auto c = claim_next(*sh, opt);
    ASSERT_TRUE(c);
    ASSERT_EQ(fail_run(*sh, c->token, c->runs[0].run_id, "codec exploded"), CommitOutcome::kCommitted);
    // The rest of the claim stays 'running' (the process dies here).
  }
  const auto o = ingest_shard(*db, main_path, sp);
  ASSERT_TRUE(o.ok) << o.error;
  EXPECT_EQ(o.runs_merged, 12);
  EXPECT_EQ(o.runs_missing, 18);
  EXPECT_EQ(o.missing_failed, 1);
  EXPECT_EQ(o.missing_running, 5);
  EXPECT_EQ(o.missing_queued, 12);
  ASSERT_EQ(o.failures.size(), 1u);
  EXPECT_NE(o.failures[0].find("codec exploded"), std::string::npos);
  EXPECT_EQ(count("SELECT count(*) FROM runs WHERE status = 'done'"), 12);
  EXPECT_EQ(count("SELECT count(*) FROM runs WHERE status <> 'done' AND status <> 'queued'"), 0);

  // The resubmitted task: reclaim the dead claim, finish, ingest again.
  const auto progress = read_shard_progress(sp, 0);
  EXPECT_EQ(progress.running, 5);
  EXPECT_FALSE(progress.complete());
  {
    auto sh = open_database(sp, OpenMode::kReadWrite);
    EXPECT_EQ(reclaim_shard(*sh, 3), 5);
  }
  run_worker(sp, 1 << 30, "unit:2");
  EXPECT_TRUE(read_shard_progress(sp, 0).complete());
  const auto o2 = ingest_shard(*db, main_path, sp);
  ASSERT_TRUE(o2.ok) << o2.error;
  EXPECT_EQ(o2.runs_merged, 18);
  EXPECT_EQ(o2.runs_already, 12);
  EXPECT_EQ(o2.runs_missing, 0);
  EXPECT_EQ(count("SELECT count(*) FROM results"), 30);
  EXPECT_EQ(outcome_rows(*db, "exp"), reference_outcome(plan_of("exp", 5)));
}

// A worker killed (SIGKILL) inside a commit transaction: the shard is opened
// after the crash, SQLite rolls the interrupted commit back, and ingest
// merges exactly the committed runs.
TEST_F(SlurmShard, WorkerKilledInsideACommit) {
  const auto layout = write_shards(*db, main_path, "exp", 1);
  const std::string sp = layout.shards[0].path;
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto sh = open_database(sp, OpenMode::kReadWrite);
    const auto prov_id = upsert_provenance(*sh, experiment::current_provenance());
    ClaimOptions opt;
    opt.worker = "child:1";
    auto c = claim_next(*sh, opt);
    if (!c) _exit(3);
    commit_result(*sh, *c, c->runs[0], fake_result(*c, c->runs[0]), prov_id);
    commit_result(*sh, *c, c->runs[1], fake_result(*c, c->runs[1]), prov_id, nullptr,
                  [] { ::kill(::getpid(), SIGKILL); });
    _exit(4);  // not reached
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child status " << status;
  EXPECT_TRUE(fs::exists(sp + "-wal"));  // the crash left the log behind

  const auto o = ingest_shard(*db, main_path, sp);
  ASSERT_TRUE(o.ok) << o.error;
  EXPECT_EQ(o.runs_merged, 1);
  EXPECT_EQ(o.runs_missing, 29);
  EXPECT_EQ(o.missing_running, 5);
  EXPECT_EQ(count("SELECT count(*) FROM results"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM runs WHERE status = 'done'"), 1);
}

TEST_F(SlurmShard, RefusesForeignNewerAndBrokenShardsAndMergesNothing) {
  const auto layout = write_shards(*db, main_path, "exp", 1);
  const std::string good = layout.shards[0].path;
  run_worker(good);
  const auto before = outcome_rows(*db, "exp");
  auto refused = [&](const std::string& path, const std::string& needle, int code = 1) {
    const auto o = ingest_shard(*db, main_path, path);
    EXPECT_FALSE(o.ok) << path;
    EXPECT_EQ(o.exit_code, code) << o.error;
    EXPECT_NE(o.error.find(needle), std::string::npos) << "error '" << o.error << "' lacks '" << needle << "'";
    EXPECT_EQ(o.runs_merged, 0);
    EXPECT_EQ(outcome_rows(*db, "exp"), before);
  };

  // Another experiment's shard.
  {
    const std::string other_main = dir + "/other.db";
    auto o = open_database(other_main, OpenMode::kCreate);
    queue_experiment(*o, plan_of("other", 2));
    const auto l = write_shards(*o, other_main, "other", 1);
    run_worker(l.shards[0].path);
    refused(l.shards[0].path, "experiment 'other', which");
  }
  // Same name, different spec (hash).
  {
    const std::string other_main = dir + "/changed.db";
    auto o = open_database(other_main, OpenMode::kCreate);
    queue_experiment(*o, plan_of("exp", 5, "seqlen = 512\n"));
    const auto l = write_shards(*o, other_main, "exp", 1);
    run_worker(l.shards[0].path);
    refused(l.shards[0].path, "spec hash");
  }
  // A newer schema.
  {
    const std::string newer = dir + "/newer.shard0.db";
    fs::copy_file(good, newer);
    {
      SQLite::Database raw(newer, SQLite::OPEN_READWRITE);
      raw.exec(fmt::format("PRAGMA user_version = {}", schema_version() + 1));
    }
    refused(newer, fmt::format("schema version {}", schema_version() + 1), 5);
  }
  // A kvlab database that is not a shard.
  {
    const std::string plain = dir + "/plain.db";
    auto o = open_database(plain, OpenMode::kCreate);
    queue_experiment(*o, plan_of("exp", 5));
    o.reset();
    run_worker(plain);
    refused(plain, "not a shard");
  }
  // Not SQLite at all; a truncated copy (a transfer cut short); missing; main itself.
  {
    const std::string junk = dir + "/junk.db";
    std::ofstream(junk) << "this is not a database, just some text that is long enough";
    refused(junk, "not an SQLite database");
    const std::string cut = dir + "/cut.shard0.db";
    fs::copy_file(good, cut);
    fs::resize_file(cut, fs::file_size(cut) / 2);
    const auto o = ingest_shard(*db, main_path, cut);
    EXPECT_FALSE(o.ok);
    EXPECT_EQ(o.runs_merged, 0);
    EXPECT_EQ(outcome_rows(*db, "exp"), before);
    refused(dir + "/missing.shard0.db", "does not exist");
    refused(main_path, "main database itself");
  }
  // The good one still merges after all of that.
  const auto ok = ingest_shard(*db, main_path, good);
  EXPECT_TRUE(ok.ok) << ok.error;
  EXPECT_EQ(ok.runs_merged, 30);
}

TEST_F(SlurmShard, RewritingShardsNeverLosesUnmergedResults) {
  auto layout = write_shards(*db, main_path, "exp", 2);
  run_worker(layout.shards[1].path, 1);
  try {
    write_shards(*db, main_path, "exp", 2);
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("finished run(s) not yet in"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("kvlab ingest"), std::string::npos) << e.what();
  }
  auto sh = read_shard_progress(layout.shards[1].path, 1);
  EXPECT_EQ(sh.done, 6);  // untouched
  ASSERT_TRUE(ingest_shard(*db, main_path, layout.shards[1].path).ok);
  // Now safe: the new shards hold only what is still pending.
  layout = write_shards(*db, main_path, "exp", 2);
  EXPECT_EQ(layout.pending_runs, 24);
  EXPECT_EQ(layout.done_runs, 6);
  EXPECT_EQ(read_shard_progress(layout.shards[1].path, 1).done, 0);
}

TEST_F(SlurmShard, ProgressOfMissingAndDamagedShards) {
  const auto missing = read_shard_progress(dir + "/nope.db", 4);
  EXPECT_FALSE(missing.exists);
  EXPECT_FALSE(missing.complete());
  const std::string junk = dir + "/junk.db";
  std::ofstream(junk) << "not sqlite, not sqlite, not sqlite";
  const auto bad = read_shard_progress(junk, 0);
  EXPECT_TRUE(bad.exists);
  EXPECT_FALSE(bad.error.empty());
  EXPECT_FALSE(bad.complete());
  const auto layout = write_shards(*db, main_path, "exp", 1);
  const auto fresh = read_shard_progress(layout.shards[0].path, 0);
  EXPECT_EQ(fresh.queued, 30);
  EXPECT_EQ(fresh.passages, 5);
  EXPECT_FALSE(fresh.last_activity);
  run_worker(layout.shards[0].path, 1);
  const auto some = read_shard_progress(layout.shards[0].path, 0);
  EXPECT_EQ(some.done, 6);
  EXPECT_EQ(some.queued, 24);
  EXPECT_TRUE(some.last_activity);
}

}  // namespace
}  // namespace kvlab::store
