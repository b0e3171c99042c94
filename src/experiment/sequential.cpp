// The sequential sweep; see sequential.h.
#include "experiment/sequential.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "common/error.h"
#include "stats/study.h"
#include "store/db.h"
#include "store/query.h"
#include "store/runs.h"

namespace kvlab::experiment {

store::ExperimentPlan plan_first_passages(const SweepSpec& spec, int n) {
  KVLAB_CHECK(n >= 1 && n <= static_cast<int>(spec.passages.size()),
              "--passages {}: spec '{}' lists {} passages (expected 1 <= N <= {})", n, spec.name,
              spec.passages.size(), spec.passages.size());
  store::ExperimentPlan p = spec.plan();
  p.passages.resize(static_cast<std::size_t>(n));
  return p;
}

stats::ExperimentData first_passages(const stats::ExperimentData& data, int n) {
  stats::ExperimentData d;
  d.info = data.info;
  std::set<std::int64_t> keep;
  for (const auto& p : data.passages) {
    if (p.idx >= n) continue;
    keep.insert(p.id);
    d.passages.push_back(p);
  }
  for (const auto& r : data.results)
    if (keep.count(r.passage_id)) d.results.push_back(r);
  for (const auto& a : data.audits)
    if (keep.count(a.passage_id)) d.audits.push_back(a);
  return d;
}

namespace {

store::DecisionRow row_of(const stats::ThresholdDecision& d, int n, const std::string& metric, double level) {
  store::DecisionRow r;
  r.stream = d.stream;
  r.codec = d.codec;
  r.metric = metric;
  r.threshold = d.threshold.name;
  r.factor = d.threshold.factor;
  r.alpha = level;
  r.n_evaluated = n;
  if (d.ratio.n > 0) r.ratio_mean = d.ratio.mean;
  r.ratio_ci95_hw = d.ratio.ci95_hw;
  r.p_holm = d.p_holm;
  r.verdict = d.verdict;
  if (d.resolved) r.n_needed = n;
  return r;
}

}  // namespace

std::vector<store::DecisionRow> replay_decisions(const stats::ExperimentData& data, const stats::LookSchedule& schedule,
                                                 const std::string& metric) {
  int stored = 0;
  for (const auto& p : data.passages) stored = std::max(stored, p.idx + 1);
  const int last = std::min(stored, schedule.cap);
  stats::SummaryOptions so;
  so.metric = metric;
  so.views = {stats::QView::kPairedCiSafe};
  std::set<stats::DecisionKey> settled;
  std::map<stats::DecisionKey, store::DecisionRow> rows;
  for (int n = schedule.first(); n <= last; ++n) {
    const auto s = stats::summarize(first_passages(data, n), so);
    for (const auto& d : stats::threshold_decisions(s, stats::published_thresholds(), schedule.level(), settled)) {
      if (d.resolved) settled.insert(d.key());
      rows[d.key()] = row_of(d, s.n_passages, s.metric, schedule.level());
    }
  }
  std::vector<store::DecisionRow> out;
  for (auto& [k, r] : rows) out.push_back(std::move(r));
  return out;
}

namespace {

int stored_passages(SQLite::Database& db, const std::string& experiment) {
  for (const auto& e : store::list_experiments(db))
    if (e.name == experiment) return static_cast<int>(e.passages);
  return 0;
}

// Replays the decisions on the stored runs and stores them; returns them.
std::vector<store::DecisionRow> evaluate(SQLite::Database& db, const SequentialOptions& o,
                                         const stats::LookSchedule& schedule, const std::string& name,
                                         int* n_passages) {
  const auto data = store::load_experiment(db, name);
  *n_passages = std::min(static_cast<int>(data.passages.size()), schedule.cap);
  const auto rows = replay_decisions(data, schedule, o.metric);
  store::record_decisions(db, data.info.id, rows);
  return rows;
}

}  // namespace

SequentialOutcome run_until_resolved(const SequentialOptions& o, const std::atomic<bool>* stop) {
  KVLAB_CHECK(o.max_passages >= 0, "--max-passages {} must be >= 0 (0: every passage of the spec)", o.max_passages);
  KVLAB_CHECK(o.alpha > 0 && o.alpha < 1, "--alpha {} must lie in (0, 1)", o.alpha);
  const SweepSpec spec = load_spec(o.spec_path);
  const int total = static_cast<int>(spec.passages.size());
  const int asked = o.max_passages > 0 ? std::min(o.max_passages, total) : total;
  KVLAB_CHECK(asked >= 2, "--max-passages {}: spec '{}' ({} passages) gives a cap of {}; a sequential sweep needs "
              "at least 2 passages", o.max_passages, spec.name, total, asked);
  SequentialOutcome out;
  auto db = store::open_database(o.worker.db_path, store::OpenMode::kCreate);
  int queued = stored_passages(*db, spec.name);
  // Passages queued beyond the cap count as looks too: the cap covers them.
  const int cap = std::max(asked, queued);
  out.schedule = stats::look_schedule(o.alpha, cap);
  if (queued < 2) {
    queued = 2;
    store::queue_experiment(*db, plan_first_passages(spec, queued));
  }
  if (o.log)
    o.log(fmt::format("kvlab run --until-resolved: looks at n = 2..{} passages ({} looks), each running Holm over "
                      "every open decision at family-wise level {:g}/{} = {:.3g} (overall level {:g}: union bound "
                      "over the looks)",
                      cap, out.schedule.looks(), o.alpha, out.schedule.looks(), out.schedule.level(), o.alpha));
  WorkerOptions w = o.worker;
  w.experiment = spec.name;
  for (;;) {
    const auto st = run_workers(w, stop);
    out.runs_done += st.runs_done;
    out.runs_failed += st.runs_failed;
    if (st.interrupted) {
      out.interrupted = true;
      return out;
    }
    out.decisions = evaluate(*db, o, out.schedule, spec.name, &out.passages);
    ++out.evaluations;
    const auto unresolved = std::count_if(out.decisions.begin(), out.decisions.end(),
                                          [](const store::DecisionRow& r) { return r.verdict == "unresolved"; });
    if (o.log)
      o.log(fmt::format("kvlab run --until-resolved: {} passages: {} of {} decisions resolved", out.passages,
                        out.decisions.size() - static_cast<std::size_t>(unresolved), out.decisions.size()));
    if (unresolved == 0) {
      out.all_resolved = true;
      return out;
    }
    if (queued >= cap) {
      out.cap_reached = true;
      return out;
    }
    ++queued;
    store::queue_experiment(*db, plan_first_passages(spec, queued));
  }
}

}  // namespace kvlab::experiment
