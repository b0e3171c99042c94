// Tests of the binders and column readers of store/sql.h on an in-memory
// database: bind_row with NULLs (Nullable), numbered parameters used twice,
// bind_named skipping the parameters a statement does not use (optional
// clauses) and refusing a statement left with an unbound parameter,
// prepare/exec, and opt<T> for NULL and non-NULL columns.
#include <optional>
#include <string>

#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>

#include "store/sql.h"

namespace kvlab::store::sql {
namespace {

struct StoreSql : ::testing::Test {
  void SetUp() override {
    db.exec("CREATE TABLE t (i INTEGER, x REAL, s TEXT, n INTEGER)");
  }
  SQLite::Database db{":memory:", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE};
};

TEST_F(StoreSql, BindRowWritesValuesAndNulls) {
  const std::optional<std::string> none;
  const std::optional<std::int64_t> seven = 7;
  EXPECT_EQ(exec(db, "INSERT INTO t VALUES (?, ?, ?, ?)", 1, 2.5, Nullable{none}, Nullable{seven}), 1);
  auto st = prepare(db, "SELECT i, x, s, n FROM t WHERE i = ?", 1);
  ASSERT_TRUE(st.executeStep());
  EXPECT_EQ(opt<int>(st.getColumn(0)), 1);
  EXPECT_EQ(opt<double>(st.getColumn(1)), 2.5);
  EXPECT_EQ(opt<std::string>(st.getColumn(2)), std::nullopt);
  EXPECT_EQ(opt<std::int64_t>(st.getColumn(3)), 7);
  EXPECT_FALSE(st.executeStep());
}

TEST_F(StoreSql, NumberedParametersBindOncePerNumber) {
  // ?1 twice, ?2 once: two arguments.
  EXPECT_EQ(exec(db, "INSERT INTO t (i, n, s) VALUES (?1, ?1, ?2)", 4, std::string("a")), 1);
  EXPECT_EQ(db.execAndGet("SELECT i + n FROM t WHERE s = 'a'").getInt(), 8);
}

TEST_F(StoreSql, BindNamedSkipsAbsentParameters) {
  exec(db, "INSERT INTO t (i, s) VALUES (1, 'a'), (2, 'b'), (3, 'b')");
  auto count = [&](const std::optional<std::string>& s, const std::optional<std::int64_t>& min_i) {
    std::string q = "SELECT count(*) FROM t WHERE 1 = 1";
    if (s) q += " AND s = :s";
    if (min_i) q += " AND i >= :min_i";
    SQLite::Statement st(db, q);
    bind_named(st, Named{":s", s}, Named{":min_i", min_i}, Named{":unused", 5});
    EXPECT_TRUE(st.executeStep());
    return st.getColumn(0).getInt();
  };
  EXPECT_EQ(count(std::nullopt, std::nullopt), 3);
  EXPECT_EQ(count(std::string("b"), std::nullopt), 2);
  EXPECT_EQ(count(std::nullopt, std::int64_t{2}), 2);
  EXPECT_EQ(count(std::string("b"), std::int64_t{3}), 1);
}

TEST(StoreSqlDeath, BindNamedRefusesAnUnboundParameter) {
  EXPECT_DEATH(
      {
        SQLite::Database db(":memory:", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
        SQLite::Statement st(db, "SELECT :a + :misspelt");
        bind_named(st, Named{":a", 1}, Named{":mispelt", 2});
      },
      "1 of the 2 parameters");
}

}  // namespace
}  // namespace kvlab::store::sql
