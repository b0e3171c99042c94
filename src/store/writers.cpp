// The shared row writers; see writers.h.
#include "store/writers.h"

#include <cmath>

#include "common/error.h"
#include "common/metric_table.h"
#include "store/db.h"
#include "store/sql.h"

namespace kvlab::store {

namespace {
enum Slot { kExperiment, kPassage, kRun, kResult, kMetric, kAudit };
}  // namespace

SQLite::Statement& RowWriter::prepared(int slot, const char* sql) {
  auto& p = st_[std::size_t(slot)];
  if (!p) p = std::make_unique<SQLite::Statement>(db_, sql);
  p->reset();
  p->clearBindings();
  return *p;
}

std::int64_t RowWriter::experiment(const std::string& name, const std::string& origin, const std::string& spec_text,
                                   const std::string& spec_hash, const std::string& params_json) {
  auto& st = prepared(kExperiment, sql::kInsertExperiment);
  SQLite::bind(st, name, origin, spec_text, spec_hash, params_json, iso8601_now());
  st.exec();
  return db_.getLastInsertRowid();
}

bool RowWriter::passage(std::int64_t experiment_id, const PlannedPassage& p) {
  auto& st = prepared(kPassage, sql::kInsertPassage);
  sql::bind_row(st, experiment_id, p.idx, p.name, p.content_hash, p.source, sql::Nullable{p.text});
  return st.exec() == 1;
}

std::optional<std::int64_t> RowWriter::run(const NewRun& r) {
  auto& st = prepared(kRun, sql::kInsertRun);
  sql::bind_row(st, r.experiment_id, r.passage_id, r.stream, r.codec, sql::Nullable{r.q}, r.replicate, r.status,
                r.attempts, sql::Nullable{r.worker}, r.queued_at, sql::Nullable{r.claimed_at},
                sql::Nullable{r.finished_at});
  if (!st.executeStep()) return std::nullopt;
  const std::int64_t id = st.getColumn(0).getInt64();
  KVLAB_ASSERT(!st.executeStep(), "one run inserted, several ids returned");
  return id;
}

bool RowWriter::result(std::int64_t run_id, const RunResult& r, std::int64_t provenance_id) {
  auto& st = prepared(kResult, sql::kInsertResult);
  sql::bind_row(st, run_id, r.bits_per_vector, sql::Nullable{r.code_bytes}, r.rel_mse, r.cos_sim,
                sql::Nullable{r.n_vectors}, sql::Nullable{r.dim}, sql::Nullable{r.wall_s}, provenance_id);
  if (st.exec() != 1) return false;
  for (const auto& [name, value] : r.metrics) {
    const MetricInfo* m = find_metric(name);
    KVLAB_ASSERT(m && !m->results_column, "metric '{}' is not a run_metrics row of common/metric_table.h", name);
    KVLAB_CHECK(std::isfinite(value), "run {}: metric {} = {} is not finite", run_id, name, value);
    auto& ms = prepared(kMetric, sql::kInsertRunMetric);
    SQLite::bind(ms, run_id, name, value);
    ms.exec();
  }
  return true;
}

bool RowWriter::audit(std::int64_t experiment_id, std::int64_t passage_id, int replicate, const AuditRow& a,
                      std::int64_t provenance_id) {
  auto& st = prepared(kAudit, sql::kInsertAudit);
  SQLite::bind(st, experiment_id, passage_id, a.stream, replicate, a.excess_kurtosis_abs, a.isotropy_variance_ratio,
               a.hadamard_post_variance_ratio, a.rms_wasserstein2_over_sigma_per_dim, a.n_vectors, a.dim,
               provenance_id);
  return st.exec() == 1;
}

}  // namespace kvlab::store
