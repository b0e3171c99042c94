// Tests of store/db.h: creation, identity checks (foreign, non-SQLite, too
// new), migration of a committed v1 dump, WAL / foreign keys, provenance.
#include <filesystem>
#include <fstream>

#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "kvlab_version.h"
#include "experiment/provenance.h"
#include "store/db.h"
#include "testutil/testutil.h"

namespace kvlab::store {
namespace {

namespace fs = std::filesystem;
using testutil::make_temp_dir;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(StoreDb, CreatesFreshDatabaseAtLatestVersion) {
  const auto dir = make_temp_dir("store-db");
  const auto path = dir + "/a.db";
  auto db = open_database(path, OpenMode::kCreate);
  EXPECT_EQ(application_id(*db), kApplicationId);
  EXPECT_EQ(user_version(*db), schema_version());
  EXPECT_GE(schema_version(), 1);
  EXPECT_EQ(db->execAndGet("PRAGMA journal_mode").getString(), "wal");
  EXPECT_EQ(db->execAndGet("PRAGMA foreign_keys").getInt(), 1);
  for (const char* t : {"experiments", "passages", "runs", "results", "audits", "provenance"})
    EXPECT_TRUE(db->tableExists(t)) << t;
  // Reopening read-only and read-write works and changes nothing.
  db.reset();
  auto ro = open_database(path, OpenMode::kReadOnly);
  EXPECT_EQ(user_version(*ro), schema_version());
  auto rw = open_database(path, OpenMode::kReadWrite);
  EXPECT_EQ(user_version(*rw), schema_version());
}

TEST(StoreDb, MigrationsAreNumberedWithoutGaps) {
  const auto& m = migrations();
  ASSERT_FALSE(m.empty());
  for (std::size_t i = 0; i < m.size(); ++i) {
    EXPECT_EQ(m[i].version, static_cast<int>(i) + 1);
    EXPECT_EQ(m[i].name.substr(0, 4), fmt::format("{:04d}", i + 1));
    // The embedded text is the committed file, byte for byte.
    EXPECT_EQ(std::string(m[i].sql), read_file(testutil::source_path("schema/" + m[i].name))) << m[i].name;
  }
}

TEST(StoreDb, MissingFileNeedsCreate) {
  const auto dir = make_temp_dir("store-db");
  try {
    open_database(dir + "/none.db", OpenMode::kReadWrite);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
    EXPECT_EQ(e.code(), ExitCode::kError);
  }
  EXPECT_THROW(open_database(dir + "/none.db", OpenMode::kReadOnly), Error);
  EXPECT_FALSE(fs::exists(dir + "/none.db"));
  EXPECT_THROW(open_database(dir + "/no/such/dir/x.db", OpenMode::kCreate), Error);
}

TEST(StoreDb, RefusesNonSqliteFile) {
  const auto dir = make_temp_dir("store-db");
  const auto path = dir + "/text.db";
  std::ofstream(path) << "this is not a database, just some text that is long enough\n";
  try {
    open_database(path, OpenMode::kCreate);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not an SQLite database"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_EQ(e.code(), ExitCode::kError);
  }
  // The file is untouched.
  EXPECT_EQ(read_file(path), "this is not a database, just some text that is long enough\n");
}

TEST(StoreDb, RefusesForeignApplicationId) {
  const auto dir = make_temp_dir("store-db");
  const auto path = dir + "/foreign.db";
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("PRAGMA application_id = 1234; CREATE TABLE t (x)");
  }
  try {
    open_database(path, OpenMode::kReadWrite);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("another application"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("0x4d2"), std::string::npos) << e.what();
    EXPECT_EQ(e.code(), ExitCode::kError);
  }
}

TEST(StoreDb, RefusesUnidentifiedSqliteFileWithTables) {
  const auto dir = make_temp_dir("store-db");
  const auto path = dir + "/plain.db";
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("CREATE TABLE t (x)");
  }
  try {
    open_database(path, OpenMode::kCreate);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a kvlab one"), std::string::npos) << e.what();
  }
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  EXPECT_EQ(db.execAndGet("PRAGMA user_version").getInt(), 0);
  EXPECT_FALSE(db.tableExists("runs"));
}

TEST(StoreDb, EmptyFileIsInitialised) {
  const auto dir = make_temp_dir("store-db");
  const auto path = dir + "/empty.db";
  std::ofstream(path).close();
  EXPECT_THROW(open_database(path, OpenMode::kReadOnly), Error);
  auto db = open_database(path, OpenMode::kReadWrite);
  EXPECT_EQ(user_version(*db), schema_version());
}

TEST(StoreDb, RefusesNewerSchemaNamingBothVersions) {
  const auto dir = make_temp_dir("store-db");
  const auto path = dir + "/new.db";
  {
    auto db = open_database(path, OpenMode::kCreate);
    db->exec(fmt::format("PRAGMA user_version = {}", schema_version() + 7));
  }
  for (OpenMode mode : {OpenMode::kReadOnly, OpenMode::kReadWrite, OpenMode::kCreate}) {
    try {
      open_database(path, mode);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kSchemaTooNew);
      const std::string msg = e.what();
      EXPECT_NE(msg.find(fmt::format("schema version {}", schema_version() + 7)), std::string::npos) << msg;
      EXPECT_NE(msg.find(fmt::format("the {} this kvlab", schema_version())), std::string::npos) << msg;
    }
  }
}

// Loads a committed text dump of an older schema (made with `sqlite3 .dump`)
// and checks that opening it migrates to the latest version in place,
// keeping every row.
void check_migrates_dump(const std::string& dump_rel, int dump_version) {
  const auto dir = make_temp_dir("store-db");
  const auto path = dir + "/old.db";
  const std::string dump = read_file(testutil::source_path(dump_rel));
  ASSERT_FALSE(dump.empty()) << dump_rel;
  std::int64_t runs_before = 0, results_before = 0;
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec(dump);
    ASSERT_EQ(db.execAndGet("PRAGMA user_version").getInt(), dump_version);
    ASSERT_EQ(db.execAndGet("PRAGMA application_id").getInt(), kApplicationId);
    runs_before = db.execAndGet("SELECT count(*) FROM runs").getInt64();
    results_before = db.execAndGet("SELECT count(*) FROM results").getInt64();
    ASSERT_GT(runs_before, 0);
  }
  // Read-only refuses an older file (unless it is already the latest).
  if (dump_version < schema_version()) {
    try {
      open_database(path, OpenMode::kReadOnly);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("older"), std::string::npos) << e.what();
    }
  }
  auto db = open_database(path, OpenMode::kReadWrite);
  EXPECT_EQ(user_version(*db), schema_version());
  EXPECT_EQ(db->execAndGet("SELECT count(*) FROM runs").getInt64(), runs_before);
  EXPECT_EQ(db->execAndGet("SELECT count(*) FROM results").getInt64(), results_before);
  EXPECT_EQ(db->execAndGet("PRAGMA integrity_check").getString(), "ok");
  EXPECT_EQ(db->execAndGet("SELECT count(*) FROM pragma_foreign_key_check").getInt(), 0);
  // Objects added by later migrations exist.
  if (schema_version() >= 2) {
    EXPECT_EQ(db->execAndGet("SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = 'runs_claim'").getInt(),
              1);
  }
  std::printf("migrated %s (schema %d -> %d): %lld runs, %lld results kept\n", dump_rel.c_str(), dump_version,
              schema_version(), static_cast<long long>(runs_before), static_cast<long long>(results_before));
}

TEST(StoreDb, MigratesCommittedV1Dump) { check_migrates_dump("tests/golden/schema_v1_dump.sql", 1); }

TEST(StoreDb, KvlabIdWithoutVersionIsRefusedNotHalfInitialised) {
  const auto dir = make_temp_dir("store-db");
  const auto path = dir + "/half.db";
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec(fmt::format("PRAGMA application_id = {}", kApplicationId));
  }
  try {
    open_database(path, OpenMode::kReadWrite);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("schema version 0"), std::string::npos) << e.what();
  }
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  EXPECT_FALSE(db.tableExists("runs"));
}

TEST(StoreDb, ProvenanceDedupesByFingerprint) {
  const auto dir = make_temp_dir("store-db");
  auto db = open_database(dir + "/p.db", OpenMode::kCreate);
  Provenance p = experiment::current_provenance();
  EXPECT_EQ(p.kvlab_version, KVLAB_VERSION);
  EXPECT_FALSE(p.git_commit.empty());
  EXPECT_TRUE(p.git_dirty == -1 || p.git_dirty == 0 || p.git_dirty == 1);
  p.torch_version = "1.13.1";
  p.device = "cpu";
  const auto a = upsert_provenance(*db, p);
  const auto b = upsert_provenance(*db, p);
  EXPECT_EQ(a, b);
  Provenance q = p;
  q.device = "cuda:0";
  const auto c = upsert_provenance(*db, q);
  EXPECT_NE(a, c);
  // NULL and "" are different provenance.
  Provenance r = p;
  r.blas = std::string();
  Provenance s = p;
  s.blas.reset();
  EXPECT_NE(r.fingerprint(), s.fingerprint());
  EXPECT_EQ(db->execAndGet("SELECT count(*) FROM provenance").getInt(), 2);
  SQLite::Statement st(*db, "SELECT device, torch_version, blas FROM provenance WHERE id = ?");
  st.bind(1, c);
  ASSERT_TRUE(st.executeStep());
  EXPECT_EQ(st.getColumn(0).getString(), "cuda:0");
  EXPECT_EQ(st.getColumn(1).getString(), "1.13.1");
  EXPECT_TRUE(st.getColumn(2).isNull());
}

}  // namespace
}  // namespace kvlab::store
