// Opening, identifying and migrating the kvlab result database (SQLite).
//
// A kvlab database says what it is (DESIGN.md habit 7): PRAGMA
// application_id = kApplicationId ('KVLB') and PRAGMA user_version = the
// schema version. open_database() creates a fresh file, migrates an older
// one inside ONE transaction (the numbered files schema/NNNN_*.sql, embedded
// in the binary at build time), and refuses a newer one (exit code 5, both
// versions named), a foreign SQLite file and a non-SQLite file (exit code 1).
// Every connection runs in WAL mode with a busy timeout and foreign keys on.
//
// Also the provenance row every result points to: what built and ran it
// (collected outside the store: experiment/provenance.h).
//
// Not here: queue/claim/commit of runs (store/runs.h), read-side queries
// for stats and reports (store/query*.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <SQLiteCpp/Database.h>

namespace kvlab::store {

enum class OpenMode {
  kReadOnly,   // file must exist and be at the latest schema version
  kReadWrite,  // file must exist; an older schema is migrated
  kCreate,     // created when missing (or empty); an older schema is migrated
};

inline constexpr int kApplicationId = 0x4B564C42;  // 'KVLB'

// Busy timeout of every connection. Writers hold the lock for well under a
// millisecond per transaction, so this is only reached when a process is
// stopped while holding the write lock.
inline constexpr int kBusyTimeoutMs = 60000;

// One embedded migration: schema/NNNN_<name>.sql.
struct Migration {
  int version;            // NNNN
  std::string name;       // file name
  std::string_view sql;   // contents
};

// All migrations, ordered by version (1, 2, ... with no gaps; checked).
const std::vector<Migration>& migrations();

// Latest schema version this build knows (the highest migration number).
int schema_version();

// Opens `path` as a kvlab database (see the file comment). Throws
// kvlab::Error naming the path and the problem; ExitCode::kSchemaTooNew when
// the file's user_version is newer than schema_version().
std::unique_ptr<SQLite::Database> open_database(const std::string& path, OpenMode mode);

// PRAGMA user_version / application_id of an open connection.
int user_version(SQLite::Database& db);
int application_id(SQLite::Database& db);

// Time helpers used by every writer (UTC).
double unix_now();          // seconds since the epoch, sub-second resolution
std::string iso8601_now();  // e.g. 2026-01-31T12:34:56Z

// What built and ran a result. Columns of the provenance table; optional
// fields map to NULL.
struct Provenance {
  std::string kvlab_version;
  std::string git_commit;
  int git_dirty = -1;  // 0 clean, 1 dirty, -1 unknown
  std::optional<std::string> torch_version;
  std::optional<std::string> blas;
  std::optional<std::string> device;
  std::optional<std::string> hostname;
  std::optional<std::string> host_kind;
  std::optional<std::string> host_json;
  std::optional<std::string> weights_json;
  std::optional<std::string> stream_dtype;
  std::optional<std::string> slurm_json;
  std::optional<std::string> gemm;  // projection GEMM path that ran (schema 3)

  // sha256 over every other field (field names, values, NULLs distinct from "");
  // gemm takes part only when set, so rows written before it keep their fingerprint.
  std::string fingerprint() const;
};

// Inserts the row unless one with the same fingerprint exists; returns its id.
std::int64_t upsert_provenance(SQLite::Database& db, const Provenance& p);

// The one retry policy for SQLITE_BUSY / SQLITE_LOCKED that the busy
// handler does not cover (BEGIN IMMEDIATE, switching the journal mode): fn
// runs again after busy_backoff(attempt) (200 us steps, at most 10 ms) until
// kBusyTimeoutMs have passed, then the error is thrown.
std::chrono::microseconds busy_backoff(int attempt);
void retry_busy(const std::function<void()>& fn);

// Runs fn inside BEGIN IMMEDIATE ... COMMIT under retry_busy (the whole
// transaction again, so fn must be repeatable).
void with_write_transaction(SQLite::Database& db, const std::function<void()>& fn);

}  // namespace kvlab::store
