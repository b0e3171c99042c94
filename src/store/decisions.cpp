// The sequential_decisions table; see decisions.h.
#include "store/decisions.h"

#include <SQLiteCpp/Statement.h>

#include "store/db.h"
#include "store/runs.h"
#include "store/sql.h"

namespace kvlab::store {

void record_decisions(SQLite::Database& db, std::int64_t experiment_id, const std::vector<DecisionRow>& rows) {
  with_write_transaction(db, [&] {
    SQLite::Statement ins(db,
                          "INSERT OR REPLACE INTO sequential_decisions (experiment_id, stream, codec, metric, "
                          "threshold, factor, alpha, n_evaluated, ratio_mean, ratio_ci95_hw, p_holm, verdict, "
                          "n_needed, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    const std::string now = iso8601_now();
    for (const auto& r : rows) {
      ins.reset();
      sql::bind_row(ins, experiment_id, r.stream, r.codec, r.metric, r.threshold, r.factor, r.alpha, r.n_evaluated,
                    sql::Nullable{r.ratio_mean}, sql::Nullable{r.ratio_ci95_hw}, sql::Nullable{r.p_holm}, r.verdict,
                    sql::Nullable{r.n_needed}, now);
      ins.exec();
    }
  });
}

std::vector<DecisionRow> load_decisions(SQLite::Database& db, std::int64_t experiment_id) {
  auto st = sql::prepare(db,
                         "SELECT stream, codec, metric, threshold, factor, alpha, n_evaluated, ratio_mean, "
                         "ratio_ci95_hw, p_holm, verdict, n_needed FROM sequential_decisions WHERE experiment_id = ? "
                         "ORDER BY stream, codec, metric, threshold",
                         experiment_id);
  std::vector<DecisionRow> out;
  while (st.executeStep()) {
    DecisionRow r;
    r.stream = st.getColumn(0).getString();
    r.codec = st.getColumn(1).getString();
    r.metric = st.getColumn(2).getString();
    r.threshold = st.getColumn(3).getString();
    r.factor = st.getColumn(4).getDouble();
    r.alpha = st.getColumn(5).getDouble();
    r.n_evaluated = st.getColumn(6).getInt();
    r.ratio_mean = sql::opt<double>(st.getColumn(7));
    r.ratio_ci95_hw = sql::opt<double>(st.getColumn(8));
    r.p_holm = sql::opt<double>(st.getColumn(9));
    r.verdict = st.getColumn(10).getString();
    r.n_needed = sql::opt<int>(st.getColumn(11));
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace kvlab::store
