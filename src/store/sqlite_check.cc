// Checking the SQLite store's file (sqlite_open.h, store.h): its header and size before it is
// opened, and every page (PRAGMA quick_check), now or in the background.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "store/sqlite.h"
#include "store/sqlite_open.h"
#include "store/store.h"

namespace testlooper::store {
namespace {

// The error for a damaged database at `path`, saying how to recover.
Error damaged(const std::string& path, const std::string& what) {
  const std::string dir = std::filesystem::path(path).parent_path().string();
  return Error{path, what +
                         ": the database is damaged; move it away (with its -wal and -shm files) "
                         "and run `testlooper rebuild --data " +
                         (dir.empty() ? "." : dir) +
                         " --trust-unknown-runs` to recreate its runs from the artifact store"};
}

}  // namespace

// What SQLite would not say at open: a file that is not a database, or not whole pages (one
// truncated below its first page would otherwise be taken for a new, empty database).
Status check_database_file(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec || size == 0) return {};  // absent or new
  std::ifstream in(path, std::ios::binary);
  std::array<unsigned char, 100> header{};
  in.read(reinterpret_cast<char*>(header.data()), header.size());
  if (in.gcount() < static_cast<std::streamsize>(header.size()) ||
      std::memcmp(header.data(), "SQLite format 3", 16) != 0) {
    return damaged(path,
                   fmt::format("not a SQLite database (no SQLite header in its {} bytes)", size));
  }
  const uintmax_t field = header[16] * 256u + header[17];  // big-endian; 1 stands for 65536
  const uintmax_t page = field == 1 ? 65536 : field;
  if (page < 512 || size < page || size % page != 0) {
    return damaged(
        path, fmt::format("truncated ({} bytes, not a whole number of {}-byte pages)", size, page));
  }
  return {};
}

// PRAGMA quick_check on `db`: every page is read. `stop`, when set, interrupts it.
Status quick_check(sqlite3* db, const std::string& path, const std::atomic<bool>* stop) {
  if (stop != nullptr) {
    sqlite3_progress_handler(
        db, 10000, [](void* flag) { return static_cast<std::atomic<bool>*>(flag)->load() ? 1 : 0; },
        const_cast<std::atomic<bool>*>(stop));
  }
  Statement s(db, "PRAGMA quick_check(1)");
  const bool row = s.step();
  if (stop != nullptr && stop->load()) return Error{path, "the check was stopped"};
  if (!row || s.text(0) != "ok") {
    std::string problem = row ? s.text(0) : s.error();
    std::replace(problem.begin(), problem.end(), '\n', ' ');
    return damaged(path, "PRAGMA quick_check says: " + problem);
  }
  return {};
}

Result<std::unique_ptr<SqliteStoreCheck>> SqliteStoreCheck::open(const std::string& path) {
  // No check_database_file here: the caller has the store open (open_sqlite_store checked the
  // header then), and closing any other descriptor of the file in this process would drop the
  // process's POSIX locks on it, SQLite's included; another process closing its connection
  // would then checkpoint and delete the WAL that the open store goes on writing into, and every
  // later write would be lost.
  sqlite3* db = nullptr;
  const int opened = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  std::unique_ptr<SqliteStoreCheck> check(new SqliteStoreCheck(path, db));
  if (opened != SQLITE_OK) {
    return damaged(path, std::string("cannot open it: ") + sqlite3_errmsg(db));
  }
  sqlite3_busy_timeout(db, 5000);
  {
    Statement first(db, "SELECT count(*) FROM sqlite_master");  // opens the WAL and its index
    (void)first.step();
  }
  return check;
}

SqliteStoreCheck::~SqliteStoreCheck() { close_sqlite(db_); }

Status SqliteStoreCheck::run(const std::atomic<bool>* stop) {
  if (interrupted_) return Error{path_, "the check was stopped"};
  Status checked = quick_check(db_, path_, stop);
  if (interrupted_) return Error{path_, "the check was stopped"};
  return checked;
}

void SqliteStoreCheck::interrupt() {
  interrupted_ = true;
  sqlite3_interrupt(db_);
}

Status check_sqlite_store(const std::string& path, const std::atomic<bool>* stop) {
  auto check = SqliteStoreCheck::open(path);
  if (!check.ok()) return check.error();
  return (*check)->run(stop);
}

}  // namespace testlooper::store
