#include "store/sqlite.h"

#include <map>
#include <mutex>
#include <unordered_map>

namespace testlooper::store {
namespace {

// Free prepared statements per connection, by SQL. A connection may be used from more than one
// thread (one at a time, SQLite serializing): the cache has its own lock.
struct StatementCache {
  std::mutex mutex;
  std::map<sqlite3*, std::unordered_multimap<std::string, sqlite3_stmt*>> free;
};

StatementCache& statement_cache() {
  static StatementCache* cache = new StatementCache;  // never destroyed: used until exit
  return *cache;
}

sqlite3_stmt* take_cached(sqlite3* db, const std::string& sql) {
  StatementCache& cache = statement_cache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  auto of_db = cache.free.find(db);
  if (of_db == cache.free.end()) return nullptr;
  auto it = of_db->second.find(sql);
  if (it == of_db->second.end()) return nullptr;
  sqlite3_stmt* stmt = it->second;
  of_db->second.erase(it);
  return stmt;
}

void give_back(sqlite3* db, std::string sql, sqlite3_stmt* stmt) {
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  StatementCache& cache = statement_cache();
  {
    std::lock_guard<std::mutex> lock(cache.mutex);
    auto& of_db = cache.free[db];
    if (of_db.size() < kStatementCacheSize) {
      of_db.emplace(std::move(sql), stmt);
      return;
    }
  }
  sqlite3_finalize(stmt);
}

void finalize_cached(sqlite3* db) {
  StatementCache& cache = statement_cache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  auto of_db = cache.free.find(db);
  if (of_db == cache.free.end()) return;
  for (auto& [sql, stmt] : of_db->second) sqlite3_finalize(stmt);
  cache.free.erase(of_db);
}

}  // namespace

int close_sqlite(sqlite3* db) {
  finalize_cached(db);
  return sqlite3_close(db);
}

size_t cached_statements(sqlite3* db) {
  StatementCache& cache = statement_cache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  auto of_db = cache.free.find(db);
  return of_db == cache.free.end() ? 0 : of_db->second.size();
}

Statement::Statement(sqlite3* db, const std::string& sql) : db_(db), sql_(sql) {
  stmt_ = take_cached(db, sql);
  if (stmt_ != nullptr) return;
  if (sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &stmt_, nullptr) !=
      SQLITE_OK) {
    error_ = sqlite3_errmsg(db);
    stmt_ = nullptr;
  }
}

Statement::~Statement() {
  if (stmt_ == nullptr) return;
  give_back(db_, std::move(sql_), stmt_);
}

Statement& Statement::bind(int index, const std::string& value) {
  sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Statement& Statement::bind(int index, double value) {
  sqlite3_bind_double(stmt_, index, value);
  return *this;
}

bool Statement::step() {
  if (stmt_ == nullptr) return false;
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) error_ = sqlite3_errmsg(db_);
  return false;
}

bool Statement::run() {
  while (step()) {
  }
  return stmt_ != nullptr && error_.empty();
}

std::string Statement::text(int column) const {
  const auto* p = sqlite3_column_text(stmt_, column);
  return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(stmt_, column)) : "";
}

int64_t Statement::integer(int column) const { return sqlite3_column_int64(stmt_, column); }
double Statement::real(int column) const { return sqlite3_column_double(stmt_, column); }
bool Statement::is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

Result<std::unique_ptr<Connection>> Connection::open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    Error e{path, std::string("cannot open the database: ") + sqlite3_errmsg(db)};
    sqlite3_close(db);
    return e;
  }
  sqlite3_busy_timeout(db, 5000);
  return std::unique_ptr<Connection>(new Connection(db));
}

Connection::~Connection() { close_sqlite(db_); }

Status Connection::exec(const std::string& sql, const std::string& what) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    Error e{"store", what + ": " + (message ? message : "unknown error")};
    sqlite3_free(message);
    return e;
  }
  return {};
}

Status Connection::run(const std::string& sql, const std::string& what) {
  Statement s(db_, sql);
  if (!s.run())
    return Error{"store", what + ": " + (s.error().empty() ? "unknown error" : s.error())};
  return {};
}

Transaction::Transaction(Connection& c) : connection_(c) {
  begun_ = connection_.run("BEGIN IMMEDIATE", "begin");
}

Transaction::~Transaction() {
  // A COMMIT that failed (SQLITE_FULL, an I/O error) may leave the transaction open: without
  // this ROLLBACK every later statement would join it and the next BEGIN would fail. When SQLite
  // rolled back already, this ROLLBACK fails harmlessly.
  if (!done_ && sqlite3_get_autocommit(connection_.get()) == 0) {
    (void)connection_.exec("ROLLBACK", "rollback");
  }
}

Status Transaction::commit() {
  if (!begun_.ok()) return begun_;
  Status s = connection_.run("COMMIT", "commit");
  done_ = s.ok();
  return s;
}

}  // namespace testlooper::store
