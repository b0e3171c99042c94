// The statements table: every row-writing SQL string of the store that more
// than one writer uses, by name, and the binders and column readers every
// statement of the store goes through (no hand-numbered .bind(i, ...) runs):
//
//   bind_row(st, a, b, ...)       SQLite::bind with Nullable{optional} support;
//                                 parameter i (?, or ?i) gets argument i
//   bind_named(st, Named{":x", v}, ...)
//                                 for SQL built with optional clauses: binds
//                                 the named parameters the statement has
//   prepare(db, sql, a, b, ...)   a statement with its parameters bound
//   exec(db, sql, a, b, ...)      run once, rows changed
//   opt<T>(column)                a column value, nullopt for NULL
//
// The writers in store/writers.h prepare the INSERTs below; queue, commit
// (runs.cpp), imports (import.cpp) and refinement (query.cpp) write
// experiments, passages, runs, results, run_metrics and audits only through
// them. (Shard split/merge copies rows between attached databases with
// INSERT ... SELECT; those statements stay in shard.cpp.)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/VariadicBind.h>

#include "common/error.h"

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
  [[maybe_unused]] int i = 0;
  (detail::bind_one(st, ++i, args), ...);
}

// A named parameter (":name") and its value; a std::optional value binds its
// content or NULL.
template <class T>
struct Named {
  const char* name;
  const T& v;
};
template <class T>
Named(const char*, const T&) -> Named<T>;

namespace detail {
template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

// Binds p when the statement has the parameter; returns whether it had.
template <class T>
bool bind_named_one(SQLite::Statement& st, const Named<T>& p) {
  const int i = st.getIndex(p.name);
  if (i == 0) return false;
  if constexpr (is_optional<T>::value)
    bind_one(st, i, Nullable{p.v});
  else
    bind_one(st, i, p.v);
  return true;
}
}  // namespace detail

// For SQL assembled from optional clauses (" AND r.stream = :stream" only
// when a stream is asked for): binds each named parameter that the
// statement uses and skips the others. Every parameter of the statement must
// be among them (a misspelt name fails here instead of binding NULL).
template <class... T>
void bind_named(SQLite::Statement& st, const Named<T>&... params) {
  const int bound = (0 + ... + int(detail::bind_named_one(st, params)));
  KVLAB_ASSERT(bound == st.getBindParameterCount(), "{} of the {} parameters of \"{}\" bound", bound,
               st.getBindParameterCount(), st.getQuery());
}

// A prepared statement with its parameters bound (bind_row).
template <class... A>
SQLite::Statement prepare(SQLite::Database& db, const std::string& sql, const A&... args) {
  SQLite::Statement st(db, sql);
  bind_row(st, args...);
  return st;
}

// Runs a statement without result rows once; returns the rows changed.
template <class... A>
int exec(SQLite::Database& db, const std::string& sql, const A&... args) {
  auto st = prepare(db, sql, args...);
  return st.exec();
}

// A column's value, or nullopt when it is NULL.
template <class T>
std::optional<T> opt(const SQLite::Column& c) {
  if (c.isNull()) return std::nullopt;
  if constexpr (std::is_same_v<T, int>)
    return c.getInt();
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return c.getInt64();
  else if constexpr (std::is_same_v<T, double>)
    return c.getDouble();
  else {
    static_assert(std::is_same_v<T, std::string>);
    return c.getString();
  }
}

}  // namespace kvlab::store::sql
