// The sequential sweep; see sequential.h.
#include "experiment/sequential.h"

#include <algorithm>
#include <map>
#include <tuple>

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

std::vector<store::DecisionRow> decision_rows(const std::vector<stats::ThresholdDecision>& now,
                                              const std::vector<store::DecisionRow>& before, int n,
                                              const std::string& metric, double alpha) {
  std::map<std::tuple<std::string, std::string, std::string>, const store::DecisionRow*> prev;
  for (const auto& r : before)
    if (r.metric == metric) prev[{r.stream, r.codec, r.threshold}] = &r;
  std::vector<store::DecisionRow> out;
  for (const auto& d : now) {
    store::DecisionRow r;
    r.stream = d.stream;
    r.codec = d.codec;
    r.metric = metric;
    r.threshold = d.threshold.name;
    r.factor = d.threshold.factor;
    r.alpha = alpha;
    r.n_evaluated = n;
    if (d.ratio.n > 0) r.ratio_mean = d.ratio.mean;
    r.ratio_ci95_hw = d.ratio.ci95_hw;
    r.p_holm = d.p_holm;
    r.verdict = d.verdict;
    if (d.resolved) {
      const auto it = prev.find({d.stream, d.codec, d.threshold.name});
      const bool held = it != prev.end() && it->second->verdict == d.verdict && it->second->n_needed;
      r.n_needed = held ? *it->second->n_needed : n;
    }
    out.push_back(std::move(r));
  }
  return out;
}

namespace {

int stored_passages(SQLite::Database& db, const std::string& experiment) {
  for (const auto& e : store::list_experiments(db))
    if (e.name == experiment) return static_cast<int>(e.passages);
  return 0;
}

// Runs what is queued, evaluates and stores the decisions; returns them.
std::vector<store::DecisionRow> evaluate(SQLite::Database& db, const SequentialOptions& o, const std::string& name,
                                         int* n_passages) {
  const auto data = store::load_experiment(db, name);
  stats::SummaryOptions so;
  so.metric = o.metric;
  so.views = {stats::QView::kPairedCiSafe};
  const auto s = stats::summarize(data, so);
  const auto now = stats::threshold_decisions(s, stats::published_thresholds(), o.alpha);
  *n_passages = s.n_passages;
  const auto rows = decision_rows(now, store::load_decisions(db, data.info.id), s.n_passages, s.metric, o.alpha);
  store::record_decisions(db, data.info.id, rows);
  return rows;
}

}  // namespace

SequentialOutcome run_until_resolved(const SequentialOptions& o, const std::atomic<bool>* stop) {
  KVLAB_CHECK(o.max_passages >= 0, "--max-passages {} must be >= 0 (0: every passage of the spec)", o.max_passages);
  KVLAB_CHECK(o.alpha > 0 && o.alpha < 1, "--alpha {} must lie in (0, 1)", o.alpha);
  const SweepSpec spec = load_spec(o.spec_path);
  const int total = static_cast<int>(spec.passages.size());
  const int cap = o.max_passages > 0 ? std::min(o.max_passages, total) : total;
  SequentialOutcome out;
  auto db = store::open_database(o.worker.db_path, store::OpenMode::kCreate);
  int queued = stored_passages(*db, spec.name);
  if (queued < std::min(2, cap)) {
    queued = std::min(2, cap);
    store::queue_experiment(*db, plan_first_passages(spec, queued));
  }
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
    out.decisions = evaluate(*db, o, spec.name, &out.passages);
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
