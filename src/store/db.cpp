// Opening / identifying / migrating the kvlab database, the busy-retry
// policy, and provenance rows.
// See db.h for the contract.
#include "store/db.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <functional>
#include <fstream>
#include <random>
#include <thread>

#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/hash.h"
#include "kvlab_schema_migrations.h"
#include "store/sql.h"

namespace kvlab::store {

namespace fs = std::filesystem;

std::chrono::microseconds busy_backoff(int attempt) {
  return std::chrono::microseconds(200 * std::min(attempt + 1, 50));
}

void retry_busy(const std::function<void()>& fn) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
  for (int attempt = 0;; ++attempt) {
    try {
      fn();
      return;
    } catch (const SQLite::Exception& e) {
      const int rc = e.getErrorCode() & 0xff;
      if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || std::chrono::steady_clock::now() > deadline) throw;
      std::this_thread::sleep_for(busy_backoff(attempt));
    }
  }
}

void with_write_transaction(SQLite::Database& db, const std::function<void()>& fn) {
  retry_busy([&] {
    SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
    fn();
    tx.commit();
  });
}

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> all = [] {
    std::vector<Migration> v;
    for (const auto& m : generated::kMigrations) v.push_back(Migration{m.version, m.name, m.sql});
    for (std::size_t i = 0; i < v.size(); ++i)
      KVLAB_ASSERT(v[i].version == static_cast<int>(i) + 1, "schema/ migrations must be numbered 1, 2, ... without gaps; "
                   "found {} at position {}", v[i].name, i + 1);
    return v;
  }();
  return all;
}

int schema_version() { return static_cast<int>(migrations().size()); }

int user_version(SQLite::Database& db) { return db.execAndGet("PRAGMA user_version").getInt(); }
int application_id(SQLite::Database& db) { return db.execAndGet("PRAGMA application_id").getInt(); }

namespace {

constexpr char kSqliteMagic[] = "SQLite format 3";  // 16 bytes with the NUL

// Throws unless the file is empty or starts with the SQLite header.
void check_sqlite_magic(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) throw Error(fmt::format("cannot read database file '{}': {}", path, ec.message()));
  if (size == 0) return;
  std::ifstream in(path, std::ios::binary);
  std::array<char, 16> head{};
  in.read(head.data(), head.size());
  if (in.gcount() < 16 || std::string_view(head.data(), 16) != std::string_view(kSqliteMagic, 16))
    throw Error(fmt::format("'{}' is not an SQLite database (its first bytes are not \"SQLite format 3\"); "
                            "expected a kvlab result database",
                            path));
}

bool has_tables(SQLite::Database& db) {
  return db.execAndGet("SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'").getInt() > 0;
}

// Classifies (application_id, user_version); throws for foreign or too-new files.
// Returns true when the file is a fresh (empty, unidentified) SQLite file.
bool check_identity(SQLite::Database& db, const std::string& path) {
  const int app = application_id(db);
  const int ver = user_version(db);
  if (app == 0) {
    if (ver == 0 && !has_tables(db)) return true;
    throw Error(fmt::format("'{}' is an SQLite database but not a kvlab one (application_id 0, user_version {}, "
                            "it has tables); expected application_id {:#x} ('KVLB')",
                            path, ver, kApplicationId));
  }
  if (app != kApplicationId)
    throw Error(fmt::format("'{}' belongs to another application (application_id {:#x}); expected a kvlab "
                            "database (application_id {:#x}, 'KVLB')",
                            path, static_cast<unsigned>(app), kApplicationId));
  if (ver > schema_version())
    throw Error(fmt::format("'{}' has schema version {}, newer than the {} this kvlab build supports; "
                            "use a newer kvlab",
                            path, ver, schema_version()),
                ExitCode::kSchemaTooNew);
  if (ver < 1)
    throw Error(fmt::format("'{}' has the kvlab application_id but schema version {}; expected 1..{}", path, ver,
                            schema_version()));
  return false;
}

// Busy handler: short jittered sleeps (50 us .. 1 ms) instead of SQLite's
// default 1..100 ms steps, so that many writers with sub-millisecond
// transactions hand the write lock over quickly. Gives up (SQLITE_BUSY)
// after kBusyTimeoutMs.
int busy_handler(void*, int count) {
  thread_local std::chrono::steady_clock::time_point start;
  thread_local std::minstd_rand rng(std::random_device{}());
  const auto now = std::chrono::steady_clock::now();
  if (count == 0) start = now;
  if (now - start > std::chrono::milliseconds(kBusyTimeoutMs)) return 0;
  const int cap_us = std::min(1000, 50 << std::min(count, 5));
  std::this_thread::sleep_for(std::chrono::microseconds(cap_us / 2 + static_cast<int>(rng() % (cap_us / 2 + 1))));
  return 1;
}

void migrate(SQLite::Database& db, const std::string& path) {
  // Fast path: already at the latest version.
  if (application_id(db) == kApplicationId && user_version(db) == schema_version()) return;
  retry_busy([&] {
    SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
    // Re-read under the write lock: another process may have migrated meanwhile.
    check_identity(db, path);
    const int from = user_version(db);
    for (const auto& m : migrations()) {
      if (m.version <= from) continue;
      try {
        db.exec(std::string(m.sql));
      } catch (const SQLite::Exception& e) {
        throw Error(fmt::format("migration {} of '{}' failed: {} (nothing was changed)", m.name, path, e.what()));
      }
    }
    db.exec(fmt::format("PRAGMA application_id = {}", kApplicationId));
    db.exec(fmt::format("PRAGMA user_version = {}", schema_version()));
    tx.commit();
  });
}

}  // namespace

std::unique_ptr<SQLite::Database> open_database(const std::string& path, OpenMode mode) {
  KVLAB_CHECK(!path.empty(), "database path is empty; expected a file name (--db FILE)");
  std::error_code ec;
  const bool exists = fs::exists(path, ec);
  if (exists) {
    KVLAB_CHECK(fs::is_regular_file(path, ec), "database path '{}' is not a regular file", path);
    check_sqlite_magic(path);
  } else if (mode != OpenMode::kCreate) {
    throw Error(fmt::format("database '{}' does not exist; create it with `kvlab queue SPEC --db {}`", path, path));
  } else {
    const fs::path parent = fs::path(path).parent_path();
    KVLAB_CHECK(parent.empty() || fs::is_directory(parent, ec), "cannot create database '{}': folder '{}' does not exist",
                path, parent.string());
  }

  int flags = SQLite::OPEN_READONLY;
  if (mode == OpenMode::kReadWrite) flags = SQLite::OPEN_READWRITE;
  if (mode == OpenMode::kCreate) flags = SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE;
  std::unique_ptr<SQLite::Database> db;
  try {
    db = std::make_unique<SQLite::Database>(path, flags, kBusyTimeoutMs);
  } catch (const SQLite::Exception& e) {
    throw Error(fmt::format("cannot open database '{}': {}", path, e.what()));
  }

  sqlite3_busy_handler(db->getHandle(), &busy_handler, nullptr);
  try {
    retry_busy([&] { check_identity(*db, path); });
  } catch (const SQLite::Exception& e) {
    // SQLITE_NOTADB and friends surface on the first read.
    throw Error(fmt::format("'{}' cannot be read as an SQLite database: {}", path, e.what()));
  }

  if (mode == OpenMode::kReadOnly) {
    const int ver = user_version(*db);
    if (ver == 0) throw Error(fmt::format("'{}' is an empty SQLite file, not a kvlab database", path));
    if (ver < schema_version())
      throw Error(fmt::format("'{}' has schema version {}, older than this kvlab's {}; open it once for writing "
                              "(e.g. `kvlab queue` or `kvlab run`) to migrate it",
                              path, ver, schema_version()));
  } else {
    // WAL lets readers (status, reports) run while workers write. The mode is
    // persistent; switch only when needed (it takes an exclusive lock).
    retry_busy([&] {
      std::string jm = db->execAndGet("PRAGMA journal_mode").getString();
      if (jm != "wal") {
        jm = db->execAndGet("PRAGMA journal_mode = WAL").getString();
        KVLAB_CHECK(jm == "wal", "cannot switch '{}' to WAL mode (journal_mode is '{}'); is it on a network "
                    "file system?", path, jm);
      }
    });
    // NORMAL is durable against process crashes in WAL mode (a power loss may
    // drop the last transactions, never corrupt the file).
    db->exec("PRAGMA synchronous = NORMAL");
    migrate(*db, path);
  }
  db->exec("PRAGMA foreign_keys = ON");
  return db;
}

double unix_now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::string iso8601_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 32> buf{};
  std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf.data();
}

// ---------------------------------------------------------------- provenance

std::string Provenance::fingerprint() const {
  auto opt = [](const std::optional<std::string>& s) -> nlohmann::json {
    return s ? nlohmann::json(*s) : nlohmann::json(nullptr);
  };
  // An ordered array (not an object) so the serialisation is canonical.
  nlohmann::json j = nlohmann::json::array({
      nlohmann::json::array({"kvlab_version", kvlab_version}),
      nlohmann::json::array({"git_commit", git_commit}),
      nlohmann::json::array({"git_dirty", git_dirty}),
      nlohmann::json::array({"torch_version", opt(torch_version)}),
      nlohmann::json::array({"blas", opt(blas)}),
      nlohmann::json::array({"device", opt(device)}),
      nlohmann::json::array({"hostname", opt(hostname)}),
      nlohmann::json::array({"host_kind", opt(host_kind)}),
      nlohmann::json::array({"host_json", opt(host_json)}),
      nlohmann::json::array({"weights_json", opt(weights_json)}),
      nlohmann::json::array({"stream_dtype", opt(stream_dtype)}),
      nlohmann::json::array({"slurm_json", opt(slurm_json)}),
  });
  if (gemm) j.push_back(nlohmann::json::array({"gemm", *gemm}));
  return sha256_hex(j.dump());
}

std::int64_t upsert_provenance(SQLite::Database& db, const Provenance& p) {
  const std::string fp = p.fingerprint();
  SQLite::Statement ins(db, sql::kInsertProvenance);
  sql::bind_row(ins, p.kvlab_version, p.git_commit, p.git_dirty, sql::Nullable{p.torch_version},
                sql::Nullable{p.blas}, sql::Nullable{p.device}, sql::Nullable{p.hostname}, sql::Nullable{p.host_kind},
                sql::Nullable{p.host_json}, sql::Nullable{p.weights_json}, sql::Nullable{p.stream_dtype},
                sql::Nullable{p.slurm_json}, sql::Nullable{p.gemm}, fp);
  ins.exec();
  SQLite::Statement sel(db, "SELECT id FROM provenance WHERE fingerprint = ?");
  sql::bind_row(sel, fp);
  KVLAB_ASSERT(sel.executeStep(), "provenance row vanished after insert");
  return sel.getColumn(0).getInt64();
}

}  // namespace kvlab::store
