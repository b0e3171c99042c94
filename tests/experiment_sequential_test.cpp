// `kvlab run --until-resolved` (experiment/sequential.h) with the stub
// executor: a spec of 10 synthetic passages, 2 queued; the sweep adds
// passages until every threshold decision is resolved or the cap is hit.
// Each stored n_needed is checked against an independent re-evaluation of
// the first n passages; the decisions resolve at different n.
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

// The decisions on the first n passages only, computed from the stored runs.
std::vector<ks::ThresholdDecision> decisions_at(const ks::ExperimentData& all, int n) {
  ks::ExperimentData d = all;
  std::set<std::int64_t> keep;
  for (const auto& p : all.passages)
    if (p.idx < n) keep.insert(p.id);
  d.results.clear();
  for (const auto& r : all.results)
    if (keep.count(r.passage_id)) d.results.push_back(r);
  return ks::threshold_decisions(ks::summarize(d), ks::published_thresholds(), 0.05);
}

std::string verdict_of(const std::vector<ks::ThresholdDecision>& ds, const kst::DecisionRow& r) {
  for (const auto& d : ds)
    if (d.stream == r.stream && d.codec == r.codec && d.threshold.name == r.threshold) return d.verdict;
  return "missing";
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
  std::set<int> needed;
  for (const auto& r : stored) {
    EXPECT_EQ(r.n_evaluated, out.passages);
    EXPECT_EQ(r.metric, "rel_mse");
    if (r.verdict == "unresolved") {
      EXPECT_FALSE(r.n_needed.has_value());
      continue;
    }
    ASSERT_TRUE(r.n_needed.has_value());
    needed.insert(*r.n_needed);
    // The verdict holds from n_needed to the end and did not hold just before.
    for (int n = *r.n_needed; n <= out.passages; ++n)
      EXPECT_EQ(verdict_of(decisions_at(data, n), r), r.verdict) << r.stream << " " << r.codec << " " << r.threshold
                                                                  << " n=" << n;
    if (*r.n_needed > 2) {
      EXPECT_NE(verdict_of(decisions_at(data, *r.n_needed - 1), r), r.verdict);
    }
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
  auto bad = options(db, spec_path, 3);
  bad.alpha = 0;
  EXPECT_THROW(ex::run_until_resolved(bad), kvlab::Error);
}

TEST(ExperimentSequential, DecisionRowsKeepTheFirstNOfAHeldVerdict) {
  ks::ThresholdDecision d;
  d.stream = "sliding_window_kv";
  d.codec = "e8:q=38";
  d.threshold = ks::parse_threshold("A");
  d.ratio = {5, 0.5, 0.1, 0.05};
  d.p_holm = 0.001;
  d.resolved = true;
  d.verdict = "below";
  auto rows = ex::decision_rows({d}, {}, 5, "rel_mse", 0.05);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(*rows[0].n_needed, 5);
  rows = ex::decision_rows({d}, rows, 6, "rel_mse", 0.05);  // still below: needed 5
  EXPECT_EQ(*rows[0].n_needed, 5);
  EXPECT_EQ(rows[0].n_evaluated, 6);
  auto other_metric = ex::decision_rows({d}, rows, 7, "attn_out_rel", 0.05);  // another metric's row is not carried
  EXPECT_EQ(*other_metric[0].n_needed, 7);
  d.resolved = false;
  d.verdict = "unresolved";
  rows = ex::decision_rows({d}, rows, 7, "rel_mse", 0.05);
  EXPECT_FALSE(rows[0].n_needed.has_value());
  d.resolved = true;
  d.verdict = "below";
  rows = ex::decision_rows({d}, rows, 8, "rel_mse", 0.05);  // reached again: from 8
  EXPECT_EQ(*rows[0].n_needed, 8);
}
