// The store's prepared-statement cache (issue 18): a statement given back is reset and its binds
// cleared, the same SQL used nested gets two statements, one left mid-rows does not hold its
// read open, and a connection closes with statements cached.
#include <gtest/gtest.h>

#include "git/git_fixture.h"
#include "store/sqlite.h"

namespace testlooper::store {
namespace {

std::unique_ptr<Connection> open_db(const std::string& path) {
  auto c = Connection::open(path);
  EXPECT_TRUE(c.ok());
  return std::move(c).value();
}

TEST(StatementCacheTest, Store_CachedStatementsAreResetAndNestedUsesGetTheirOwn) {
  fixtures::TempDir dir;
  auto db = open_db(dir.path() + "/t.db");
  ASSERT_TRUE(
      db->exec("PRAGMA journal_mode = WAL; CREATE TABLE t (k INTEGER, v TEXT)", "create").ok());
  const std::string insert = "INSERT INTO t (k, v) VALUES (?, ?)";
  for (int k = 0; k < 5; ++k) {
    Statement s(db->get(), insert);
    ASSERT_TRUE(s.bind(1, k).bind(2, "v" + std::to_string(k)).run()) << s.error();
  }
  EXPECT_EQ(cached_statements(db->get()), 1u);
  {
    // Binds of the last use are cleared: an unbound parameter is NULL.
    Statement s(db->get(), insert);
    ASSERT_TRUE(s.bind(1, 9).run()) << s.error();
  }
  {
    Statement nulls(db->get(), "SELECT count(*) FROM t WHERE v IS NULL");
    ASSERT_TRUE(nulls.step());
    EXPECT_EQ(nulls.integer(0), 1);
  }

  const std::string select = "SELECT k FROM t WHERE k >= ? ORDER BY k";
  {
    Statement outer(db->get(), select);
    outer.bind(1, 0);
    ASSERT_TRUE(outer.step());
    EXPECT_EQ(outer.integer(0), 0);
    {
      // The same SQL while the first is mid-rows: a statement of its own.
      Statement inner(db->get(), select);
      inner.bind(1, 3);
      ASSERT_TRUE(inner.step());
      EXPECT_EQ(inner.integer(0), 3);
    }
    ASSERT_TRUE(outer.step());
    EXPECT_EQ(outer.integer(0), 1);  // the outer one's place was kept
  }
  {
    // Given back mid-rows, then taken again: it starts over, with the new binds.
    Statement again(db->get(), select);
    again.bind(1, 4);
    ASSERT_TRUE(again.step());
    EXPECT_EQ(again.integer(0), 4);
  }
  // Nothing holds a read open: another connection can write and this one sees it.
  auto other = open_db(dir.path() + "/t.db");
  ASSERT_TRUE(other->exec("BEGIN IMMEDIATE; DELETE FROM t; COMMIT", "delete").ok());
  Statement count(db->get(), "SELECT count(*) FROM t");
  ASSERT_TRUE(count.step());
  EXPECT_EQ(count.integer(0), 0);
}

TEST(StatementCacheTest, Store_TheCacheIsBoundedAndAConnectionClosesWithStatementsCached) {
  fixtures::TempDir dir;
  auto db = open_db(dir.path() + "/t.db");
  for (size_t i = 0; i < kStatementCacheSize + 20; ++i) {
    Statement s(db->get(), "SELECT " + std::to_string(i));
    ASSERT_TRUE(s.step());
    EXPECT_EQ(s.integer(0), static_cast<int64_t>(i));
  }
  EXPECT_EQ(cached_statements(db->get()), kStatementCacheSize);
  sqlite3* raw = db->get();
  db.reset();  // finalizes the cached statements: sqlite3_close would fail otherwise
  EXPECT_EQ(cached_statements(raw), 0u);
  Statement bad(open_db(dir.path() + "/t.db")->get(), "SELEC nothing");
  EXPECT_FALSE(bad.ok());
}

}  // namespace
}  // namespace testlooper::store
