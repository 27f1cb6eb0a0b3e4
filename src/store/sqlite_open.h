// Inside the store (not for its users): what opening the SQLite store takes besides the Store
// that reads and writes it (sqlite_store.cc): checking its file (sqlite_check.cc) and making or
// migrating its schema (sqlite_schema.cc).
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <string>

#include "core/error.h"
#include "store/sqlite.h"

namespace testlooper::store {

// What SQLite would not say at open: a file that is not a database, or not whole pages (one
// truncated below its first page would otherwise be taken for a new, empty database). An absent
// or empty file is fine (a new store).
Status check_database_file(const std::string& path);

// PRAGMA quick_check on `db` (the store at `path`): every page is read. `stop`, when set,
// interrupts it. A damaged store's error says how to recover.
Status quick_check(sqlite3* db, const std::string& path, const std::atomic<bool>* stop);

// Creates the schema on `db`, or brings an older store's up to date (columns added, run tallies
// filled once).
Status make_schema(Connection& db);

}  // namespace testlooper::store
