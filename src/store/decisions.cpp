// The sequential_decisions table; see decisions.h.
#include "store/decisions.h"

#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/VariadicBind.h>

#include "store/db.h"
#include "store/runs.h"

namespace kvlab::store {

namespace {

template <class T>
void bind_opt(SQLite::Statement& st, int i, const std::optional<T>& v) {
  if (v) st.bind(i, *v);
  else st.bind(i);
}

template <class T>
std::optional<T> get_opt(SQLite::Statement& st, int i) {
  if (st.getColumn(i).isNull()) return std::nullopt;
  if constexpr (std::is_same_v<T, int>) return st.getColumn(i).getInt();
  else return st.getColumn(i).getDouble();
}

}  // namespace

void record_decisions(SQLite::Database& db, std::int64_t experiment_id, const std::vector<DecisionRow>& rows) {
  with_write_transaction(db, [&] {
    SQLite::Statement ins(db,
                          "INSERT OR REPLACE INTO sequential_decisions (experiment_id, stream, codec, metric, "
                          "threshold, factor, alpha, n_evaluated, ratio_mean, ratio_ci95_hw, p_holm, verdict, "
                          "n_needed, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    const std::string now = iso8601_now();
    for (const auto& r : rows) {
      ins.reset();
      SQLite::bind(ins, static_cast<std::int64_t>(experiment_id), r.stream, r.codec, r.metric, r.threshold, r.factor,
                   r.alpha, r.n_evaluated);
      bind_opt(ins, 9, r.ratio_mean);
      bind_opt(ins, 10, r.ratio_ci95_hw);
      bind_opt(ins, 11, r.p_holm);
      ins.bind(12, r.verdict);
      bind_opt(ins, 13, r.n_needed);
      ins.bind(14, now);
      ins.exec();
    }
  });
}

std::vector<DecisionRow> load_decisions(SQLite::Database& db, std::int64_t experiment_id) {
  SQLite::Statement st(db,
                       "SELECT stream, codec, metric, threshold, factor, alpha, n_evaluated, ratio_mean, "
                       "ratio_ci95_hw, p_holm, verdict, n_needed FROM sequential_decisions WHERE experiment_id = ? "
                       "ORDER BY stream, codec, metric, threshold");
  st.bind(1, static_cast<std::int64_t>(experiment_id));
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
    r.ratio_mean = get_opt<double>(st, 7);
    r.ratio_ci95_hw = get_opt<double>(st, 8);
    r.p_holm = get_opt<double>(st, 9);
    r.verdict = st.getColumn(10).getString();
    r.n_needed = get_opt<int>(st, 11);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace kvlab::store
