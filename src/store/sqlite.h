// A minimal RAII layer over the SQLite C API for the store: a connection and prepared
// statements with positional binds. Internal to src/store.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>

#include "core/error.h"

namespace testlooper::store {

// A prepared statement. Statements are cached per connection (issue 18: preparing was 15% of
// the server's CPU per run): the constructor takes a prepared copy of `sql` from the cache when
// one is free (else prepares one), and the destructor resets it, clears its binds and gives it
// back (at most kStatementCacheSize per connection; the others are finalized). Using the same
// SQL twice at once, nested, gets two statements.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql);
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  bool ok() const { return stmt_ != nullptr; }
  Statement& bind(int index, const std::string& value);
  Statement& bind(int index, int64_t value);
  Statement& bind(int index, int value) { return bind(index, static_cast<int64_t>(value)); }
  Statement& bind(int index, double value);
  // Advances to the next row: true while there is one. `error` is set on failure.
  bool step();
  // Runs to completion; false on failure.
  bool run();
  std::string text(int column) const;
  int64_t integer(int column) const;
  double real(int column) const;
  bool is_null(int column) const;
  const std::string& error() const { return error_; }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  std::string sql_;
  std::string error_;
};

// The most statements cached per connection.
inline constexpr size_t kStatementCacheSize = 128;
// Closes `db` after finalizing the statements cached for it: every connection a Statement was
// used on is closed so (a plain sqlite3_close would fail with them cached, leaving the connection
// open: it would hold its locks, and keep the last connection from checkpointing the WAL).
int close_sqlite(sqlite3* db);
// Statements cached for `db` now (for tests).
size_t cached_statements(sqlite3* db);

class Connection {
 public:
  static Result<std::unique_ptr<Connection>> open(const std::string& path);
  ~Connection();  // finalizes the connection's cached statements, then closes it
  sqlite3* get() const { return db_; }
  // Executes statements with no results; an Error names `what`.
  Status exec(const std::string& sql, const std::string& what);
  // Runs one statement with no results through the statement cache (no parsing each time: a
  // transaction's BEGIN and COMMIT, issue 18); an Error names `what`.
  Status run(const std::string& sql, const std::string& what);

 private:
  explicit Connection(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

// Begins a transaction; commits on commit(), rolls back on destruction otherwise (also after a
// COMMIT that failed, e.g. on a full disk). commit() fails when BEGIN failed.
class Transaction {
 public:
  explicit Transaction(Connection& c);
  ~Transaction();
  // Whether BEGIN worked; a caller writes nothing otherwise (it would not be atomic).
  const Status& begun() const { return begun_; }
  Status commit();

 private:
  Connection& connection_;
  Status begun_;
  bool done_ = false;
};

}  // namespace testlooper::store
