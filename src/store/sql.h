// The statements table: every row-writing SQL string of the store that more
// than one writer uses, by name, and the variadic binder for rows with
// nullable values. The writers in store/writers.h prepare these; queue,
// commit (runs.cpp), imports (import.cpp) and refinement (query.cpp) write
// experiments, passages, runs, results, run_metrics and audits only through
// them. (Shard split/merge copies rows between attached databases with
// INSERT ... SELECT; those statements stay in shard.cpp.)
#pragma once

#include <optional>

#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/VariadicBind.h>

namespace kvlab::store::sql {

inline constexpr const char* kInsertExperiment =
    "INSERT INTO experiments (name, origin, spec_text, spec_hash, params_json, created_at) VALUES (?, ?, ?, ?, ?, ?)";
// A passage, unless one with the same (experiment, idx) or (experiment, name) exists.
inline constexpr const char* kInsertPassage =
    "INSERT INTO passages (experiment_id, idx, name, content_hash, source, text) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT DO NOTHING";
// A run, unless (experiment, passage, stream, codec, replicate) exists.
inline constexpr const char* kInsertRun =
    "INSERT INTO runs (experiment_id, passage_id, stream, codec, q, replicate, status, attempts, worker, queued_at, "
    "claimed_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING "
    "RETURNING id";
inline constexpr const char* kInsertResult =
    "INSERT INTO results (run_id, bits_per_vector, code_bytes, rel_mse, cos_sim, n_vectors, dim, wall_s, "
    "provenance_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING";
inline constexpr const char* kInsertRunMetric =
    "INSERT OR REPLACE INTO run_metrics (run_id, metric, value) VALUES (?, ?, ?)";
// An audit, unless (experiment, passage, stream, replicate) has one.
inline constexpr const char* kInsertAudit =
    "INSERT INTO audits (experiment_id, passage_id, stream, replicate, excess_kurtosis_abs, isotropy_variance_ratio, "
    "hadamard_post_variance_ratio, rms_wasserstein2_over_sigma_per_dim, n_vectors, dim, provenance_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING";
inline constexpr const char* kInsertProvenance =
    "INSERT INTO provenance (kvlab_version, git_commit, git_dirty, torch_version, blas, device, hostname, host_kind, "
    "host_json, weights_json, stream_dtype, slurm_json, gemm, fingerprint) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (fingerprint) DO NOTHING";

// A value or NULL. SQLite::bind (SQLiteCpp/VariadicBind.h) binds each
// argument with Statement::bind, which has no std::optional overload; an
// argument wrapped in Nullable{opt} binds NULL when empty.
template <class T>
struct Nullable {
  const std::optional<T>& v;
};
template <class T>
Nullable(const std::optional<T>&) -> Nullable<T>;

namespace detail {
template <class T>
void bind_one(SQLite::Statement& st, int i, const T& v) {
  st.bind(i, v);
}
template <class T>
void bind_one(SQLite::Statement& st, int i, const Nullable<T>& v) {
  if (v.v)
    st.bind(i, *v.v);
  else
    st.bind(i);
}
}  // namespace detail

// SQLite::bind(st, args...) where some arguments are Nullable: parameters
// 1, 2, ... in order.
template <class... A>
void bind_row(SQLite::Statement& st, const A&... args) {
  int i = 0;
  (detail::bind_one(st, ++i, args), ...);
}

}  // namespace kvlab::store::sql
