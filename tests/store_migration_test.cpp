// Schema migration carries a database forward with nothing lost: the
// published n = 8 results written into a schema-3 database (the layout
// before run_metrics, built from schema/0001..0003 with the rows inserted)
// and migrated by opening it for writing give the same `stats --json`
// output and the same FINDINGS / MAX_USABLE_CR report bytes (but for the
// lines naming the database file) as the same results imported at the
// current schema.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <SQLiteCpp/Database.h>
#include <fmt/format.h>

#include "common/error.h"
#include "common/hash.h"
#include "store/db.h"
#include "testutil/testutil.h"

namespace kvlab::store {
namespace {

namespace fs = std::filesystem;
using testutil::kvlab_binary;
using testutil::run_command;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The text without the lines that name the database (its path or hash):
// everything else must be byte-identical. *dropped: how many lines went.
std::string without_db_lines(const std::string& text, const std::string& db_path, const std::string& db_hash,
                             int* dropped) {
  std::istringstream in(text);
  std::string line, out;
  *dropped = 0;
  while (std::getline(in, line)) {
    if (line.find(db_path) != std::string::npos || line.find(db_hash.substr(0, 12)) != std::string::npos) {
      ++*dropped;
      continue;
    }
    out += line + "\n";
  }
  return out;
}

// The tables of schema 3 (0001_init.sql .. 0003_provenance_gemm.sql).
const char* const kSchema3Tables[] = {"experiments", "passages", "provenance", "runs", "results", "audits"};

// A schema-3 database holding the rows of `from` (a current database).
void write_schema3_copy(const std::string& from, const std::string& to) {
  SQLite::Database db(to, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  for (const char* f : {"schema/0001_init.sql", "schema/0002_claim_index.sql", "schema/0003_provenance_gemm.sql"})
    db.exec(slurp(testutil::source_path(f)));
  db.exec(fmt::format("PRAGMA application_id = {}", kApplicationId));
  db.exec("PRAGMA user_version = 3");
  db.exec(fmt::format("ATTACH DATABASE '{}' AS cur", from));
  for (const char* t : kSchema3Tables) db.exec(fmt::format("INSERT INTO main.{0} SELECT * FROM cur.{0}", t));
  db.exec("DETACH DATABASE cur");
}

std::int64_t count(SQLite::Database& db, const std::string& table) {
  return db.execAndGet("SELECT count(*) FROM " + table).getInt64();
}

TEST(StoreMigration, Schema3DatabaseMigratesToTheSameStatsAndReports) {
  ASSERT_TRUE(fs::exists(kvlab_binary())) << "the kvlab executable is needed: " << kvlab_binary();
  const std::string dir = testutil::make_temp_dir("kvlab-migration");
  const std::string cur = dir + "/current.db", old = dir + "/schema3.db";
  std::string out;
  ASSERT_EQ(run_command(kvlab_binary() + " import published " + testutil::reference_path("stage075_n8.json") +
                            " --db " + cur,
                        &out),
            0)
      << out;
  write_schema3_copy(cur, old);
  {
    SQLite::Database db(old, SQLite::OPEN_READONLY);
    ASSERT_EQ(user_version(db), 3);
    ASSERT_FALSE(db.tableExists("run_metrics"));
    ASSERT_EQ(count(db, "results"), 8 * 3 * 5);
  }
  // Read-only opening refuses the old schema; opening for writing migrates.
  EXPECT_THROW(open_database(old, OpenMode::kReadOnly), Error);
  {
    auto db = open_database(old, OpenMode::kReadWrite);
    EXPECT_EQ(user_version(*db), schema_version());
    EXPECT_TRUE(db->tableExists("run_metrics"));
    auto c = open_database(cur, OpenMode::kReadOnly);
    for (const char* t : kSchema3Tables) EXPECT_EQ(count(*db, t), count(*c, t)) << t;
    EXPECT_EQ(count(*db, "run_metrics"), count(*c, "run_metrics"));
  }

  auto stats = [&](const std::string& db) {
    std::string s;
    EXPECT_EQ(run_command(kvlab_binary() + " stats --db " + db + " --json 2>/dev/null", &s), 0) << s;
    return s;
  };
  const std::string stats_cur = stats(cur);
  EXPECT_NE(stats_cur.find("\"e8:q=38\""), std::string::npos) << stats_cur;
  EXPECT_EQ(stats(old), stats_cur);

  for (const char* kind : {"findings", "max-usable-cr"}) {
    const std::string md = std::string(kind) == "findings" ? "FINDINGS_N8.md" : "MAX_USABLE_CR.md";
    std::string text[2];
    const std::string dbs[2] = {cur, old};
    for (int i = 0; i < 2; ++i) {
      const std::string out_md = fmt::format("{}/{}_{}/{}", dir, kind, i, md);
      ASSERT_EQ(run_command(fmt::format("{} report {} --db {} --experiment stage075_n8 --out {}", kvlab_binary(),
                                        kind, dbs[i], out_md),
                            &out),
                0)
          << out;
      int dropped = 0;
      text[i] = without_db_lines(slurp(out_md), dbs[i], sha256_file(dbs[i]), &dropped);
      EXPECT_LE(dropped, 2) << kind << ": only the provenance lines name the database";
    }
    EXPECT_GT(text[0].size(), 1000u) << kind;
    EXPECT_EQ(text[1], text[0]) << kind;
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace kvlab::store
