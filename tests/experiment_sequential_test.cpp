// `kvlab run --until-resolved` (experiment/sequential.h) with the stub
// executor: a spec of 10 synthetic passages, 2 queued; the sweep adds
// passages until every threshold decision is resolved or the cap is hit.
// Each stored row is checked against an independent re-evaluation of the
// looks n = 2.. on the first n passages (Holm over the open decisions at
// alpha / (cap - 1)); the decisions resolve at different n; the answer does
// not depend on how the passages were queued or whether the sweep resumed.
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "experiment/executor.h"
#include "experiment/sequential.h"
#include "stats/sequential.h"
#include "stats/study.h"
#include "store/db.h"
#include "store/decisions.h"
#include "store/query.h"
#include "store/runs.h"
#include "testutil/testutil.h"

namespace ex = kvlab::experiment;
namespace ks = kvlab::stats;
namespace kst = kvlab::store;

namespace {

// Stub rel-MSE: (1 + 0.2 u) / q^2 for E8, 0.002 (1 + 0.2 u) for FP8 (u a hash
// in [0, 1)): ratios about 5.2 (q=10), 1.07 (q=22), 0.35 (q=38).
std::string write_spec(const std::string& dir, int passages) {
  const std::string path = dir + "/seq.ini";
  std::ofstream(path) << fmt::format(
      "[experiment]\nname = seq\nseqlen = 256\nstreams = sliding_window_kv hca_pool_kv_ratio128\n"
      "[passages]\nsynthetic = 0-{}\n[codecs]\ncodec = fp8_per64\ne8.q = 10 22 38\n",
      passages - 1);
  return path;
}

ex::SequentialOptions options(const std::string& db, const std::string& spec, int cap) {
  ex::SequentialOptions o;
  o.worker.db_path = db;
  o.worker.executor = "stub";
  o.worker.executor_factory = [] { return ex::make_executor("stub"); };
  o.worker.progress = ex::WorkerOptions::Progress::kNone;
  o.spec_path = spec;
  o.max_passages = cap;
  return o;
}

// The looks n = 2..last replayed independently of experiment/sequential.cpp:
// for each decision, the first look that resolves it (with its row), or the
// last look's decision when none does.
struct Replayed {
  int n = 0;
  ks::ThresholdDecision d;
};

std::map<ks::DecisionKey, Replayed> replay(const ks::ExperimentData& all, int last, double level) {
  std::map<ks::DecisionKey, Replayed> out;
  std::set<ks::DecisionKey> settled;
  for (int n = 2; n <= last; ++n) {
    ks::ExperimentData d = all;
    std::set<std::int64_t> keep;
    for (const auto& p : all.passages)
      if (p.idx < n) keep.insert(p.id);
    d.results.clear();
    for (const auto& r : all.results)
      if (keep.count(r.passage_id)) d.results.push_back(r);
    for (const auto& t : ks::threshold_decisions(ks::summarize(d), ks::published_thresholds(), level, settled)) {
      out[t.key()] = {n, t};
      if (t.resolved) settled.insert(t.key());
    }
  }
  return out;
}

}  // namespace

TEST(ExperimentSequential, AddsPassagesUntilResolvedAndRecordsTheNeededN) {
  const std::string dir = kvlab::testutil::make_temp_dir("kvlab-seq");
  const std::string db = dir + "/s.db";
  const std::string spec_path = write_spec(dir, 10);
  const auto spec = ex::load_spec(spec_path);
  {
    auto h = kst::open_database(db, kst::OpenMode::kCreate);
    kst::queue_experiment(*h, ex::plan_first_passages(spec, 2));  // `kvlab queue --passages 2`
  }
  const auto out = ex::run_until_resolved(options(db, spec_path, 10));
  EXPECT_FALSE(out.interrupted);
  EXPECT_EQ(out.runs_failed, 0);
  ASSERT_EQ(out.decisions.size(), 2u * 3u * 3u);  // streams x codecs x thresholds
  EXPECT_TRUE(out.all_resolved || out.cap_reached);
  EXPECT_GE(out.passages, 3);
  if (out.cap_reached) {
    EXPECT_EQ(out.passages, 10);
  }
  auto h = kst::open_database(db, kst::OpenMode::kReadOnly);
  const auto data = kst::load_experiment(*h, "seq");
  EXPECT_EQ(static_cast<int>(data.passages.size()), out.passages);  // one passage queued per step, none beyond
  EXPECT_EQ(data.info.counts.queued, 0);
  const auto stored = kst::load_decisions(*h, data.info.id);
  ASSERT_EQ(stored.size(), out.decisions.size());
  EXPECT_EQ(out.schedule.looks(), 9);  // n = 2..10
  const double level = 0.05 / 9;
  const auto expected = replay(data, out.passages, level);
  ASSERT_EQ(expected.size(), stored.size());
  std::set<int> needed;
  for (const auto& r : stored) {
    const std::string what = r.stream + " " + r.codec + " " + r.threshold;
    EXPECT_EQ(r.metric, "rel_mse");
    EXPECT_DOUBLE_EQ(r.alpha, level) << what;  // the per-look level the verdict used
    const auto it = expected.find({r.stream, r.codec, r.threshold});
    ASSERT_NE(it, expected.end()) << what;
    const auto& [n, d] = it->second;
    EXPECT_EQ(r.verdict, d.verdict) << what;
    EXPECT_EQ(r.n_evaluated, n) << what;
    ASSERT_TRUE(r.p_holm.has_value()) << what;
    EXPECT_DOUBLE_EQ(*r.p_holm, *d.p_holm) << what;
    EXPECT_DOUBLE_EQ(*r.ratio_mean, d.ratio.mean) << what;
    if (r.verdict == "unresolved") {
      EXPECT_FALSE(r.n_needed.has_value()) << what;
      EXPECT_EQ(r.n_evaluated, out.passages) << what;
      EXPECT_GE(*r.p_holm, level) << what;
      continue;
    }
    // Resolved: the row is the resolving look's; its Holm p clears the per-look level (not just 0.05).
    ASSERT_TRUE(r.n_needed.has_value()) << what;
    EXPECT_EQ(*r.n_needed, n) << what;
    EXPECT_LT(*r.p_holm, level) << what;
    needed.insert(*r.n_needed);
  }
  // E8 Q=38 (ratio ~0.35) is decided below every threshold; Q=10 (~5) above; at different n.
  for (const auto& r : stored) {
    if (r.codec == "e8:q=38") {
      EXPECT_EQ(r.verdict, "below") << r.stream << " " << r.threshold;
    }
    if (r.codec == "e8:q=10") {
      EXPECT_EQ(r.verdict, "above") << r.stream << " " << r.threshold;
    }
  }
  EXPECT_GE(needed.size(), 2u) << "every decision resolved at the same n";
}

TEST(ExperimentSequential, TheAnswerDoesNotDependOnQueueingOrResuming) {
  const std::string dir = kvlab::testutil::make_temp_dir("kvlab-seq-path");
  const std::string spec_path = write_spec(dir, 8);
  const auto spec = ex::load_spec(spec_path);
  // A: the sweep from 2 passages. B: all 8 queued up front, then the sweep (nothing to add).
  const std::string a = dir + "/a.db", b = dir + "/b.db";
  const auto out_a = ex::run_until_resolved(options(a, spec_path, 8));
  {
    auto h = kst::open_database(b, kst::OpenMode::kCreate);
    kst::queue_experiment(*h, ex::plan_first_passages(spec, 8));
  }
  const auto out_b = ex::run_until_resolved(options(b, spec_path, 8));
  EXPECT_EQ(out_b.passages, 8);
  EXPECT_EQ(out_b.evaluations, 1);
  EXPECT_DOUBLE_EQ(out_a.schedule.level(), out_b.schedule.level());
  ASSERT_EQ(out_a.decisions.size(), out_b.decisions.size());
  for (std::size_t i = 0; i < out_a.decisions.size(); ++i) {
    const auto &ra = out_a.decisions[i], &rb = out_b.decisions[i];
    ASSERT_EQ(ra.stream + ra.codec + ra.threshold, rb.stream + rb.codec + rb.threshold);
    if (ra.verdict == "unresolved") continue;  // B may resolve it at a look A never took
    EXPECT_EQ(ra.verdict, rb.verdict) << ra.stream << " " << ra.codec << " " << ra.threshold;
    EXPECT_EQ(ra.n_needed, rb.n_needed) << ra.stream << " " << ra.codec << " " << ra.threshold;
    EXPECT_DOUBLE_EQ(*ra.p_holm, *rb.p_holm);
  }
  // Resuming A: the same rows again, no passage added.
  const auto again = ex::run_until_resolved(options(a, spec_path, 8));
  EXPECT_EQ(again.passages, out_a.passages);
  ASSERT_EQ(again.decisions.size(), out_a.decisions.size());
  for (std::size_t i = 0; i < again.decisions.size(); ++i) {
    EXPECT_EQ(again.decisions[i].verdict, out_a.decisions[i].verdict);
    EXPECT_EQ(again.decisions[i].n_needed, out_a.decisions[i].n_needed);
  }
  // Rows stored by an earlier rule (alpha 0.05, another n_needed) are replaced, not carried.
  {
    auto h = kst::open_database(a, kst::OpenMode::kReadWrite);
    const auto id = kst::load_experiment(*h, "seq").info.id;
    auto rows = kst::load_decisions(*h, id);
    for (auto& r : rows) {
      r.alpha = 0.05;
      r.n_needed = 2;
      r.verdict = "below";
    }
    kst::record_decisions(*h, id, rows);
  }
  const auto fresh = ex::run_until_resolved(options(a, spec_path, 8));
  for (std::size_t i = 0; i < fresh.decisions.size(); ++i) {
    EXPECT_EQ(fresh.decisions[i].verdict, out_a.decisions[i].verdict);
    EXPECT_EQ(fresh.decisions[i].n_needed, out_a.decisions[i].n_needed);
    EXPECT_DOUBLE_EQ(fresh.decisions[i].alpha, 0.05 / 7);
  }
}

TEST(ExperimentSequential, CapStopsTheSweepAndBadInputIsNamed) {
  const std::string dir = kvlab::testutil::make_temp_dir("kvlab-seq-cap");
  const std::string db = dir + "/s.db";
  const std::string spec_path = write_spec(dir, 10);
  // Nothing queued yet: the sweep queues the first two passages itself; cap 3.
  const auto out = ex::run_until_resolved(options(db, spec_path, 3));
  EXPECT_LE(out.passages, 3);
  EXPECT_GE(out.passages, 2);
  EXPECT_TRUE(out.all_resolved || (out.cap_reached && out.passages == 3));
  EXPECT_EQ(out.evaluations, out.passages - 1);  // first evaluation at 2 passages, one more per added passage
  const auto spec = ex::load_spec(spec_path);
  EXPECT_THROW(ex::plan_first_passages(spec, 0), kvlab::Error);
  EXPECT_THROW(ex::plan_first_passages(spec, 11), kvlab::Error);
  EXPECT_EQ(ex::plan_first_passages(spec, 4).passages.size(), 4u);
  EXPECT_EQ(ex::plan_first_passages(spec, 4).spec_hash, spec.plan().spec_hash);
  EXPECT_EQ(out.schedule.looks(), 2);  // n = 2, 3
  EXPECT_DOUBLE_EQ(out.schedule.level(), 0.025);
  auto bad = options(db, spec_path, 3);
  bad.alpha = 0;
  EXPECT_THROW(ex::run_until_resolved(bad), kvlab::Error);
  EXPECT_THROW(ex::run_until_resolved(options(dir + "/one.db", spec_path, 1)), kvlab::Error);  // cap 1: no look
}
