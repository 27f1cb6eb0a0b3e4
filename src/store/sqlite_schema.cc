// The SQLite store's schema (sqlite_open.h): its tables, and the migrations of stores made by
// earlier versions.
#include "store/run_tallies.h"
#include "store/sqlite.h"
#include "store/sqlite_open.h"

namespace testlooper::store {
namespace {

constexpr const char* kSchema = R"sql(
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS repos (name TEXT PRIMARY KEY, path TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS branches (
  repo TEXT NOT NULL, name TEXT NOT NULL, head TEXT NOT NULL, under_test INTEGER NOT NULL,
  depth INTEGER NOT NULL, PRIMARY KEY (repo, name));
CREATE TABLE IF NOT EXISTS commits (
  repo TEXT NOT NULL, sha TEXT NOT NULL, parents TEXT NOT NULL, subject TEXT NOT NULL,
  author TEXT NOT NULL, time INTEGER NOT NULL, resolved INTEGER NOT NULL DEFAULT 0,
  file TEXT, error TEXT, test_sets TEXT NOT NULL DEFAULT '{}', triggered TEXT NOT NULL DEFAULT '[]',
  PRIMARY KEY (repo, sha));
CREATE TABLE IF NOT EXISTS objects (
  repo TEXT NOT NULL, sha TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
  hash TEXT NOT NULL, definition TEXT NOT NULL, PRIMARY KEY (repo, sha, name));
CREATE TABLE IF NOT EXISTS targets (
  repo TEXT NOT NULL, sha TEXT NOT NULL, name TEXT NOT NULL, runs INTEGER NOT NULL,
  PRIMARY KEY (repo, sha, name));
CREATE TABLE IF NOT EXISTS commit_sets (
  repo TEXT NOT NULL, sha TEXT NOT NULL, test_set TEXT NOT NULL, enabled INTEGER NOT NULL,
  PRIMARY KEY (repo, sha, test_set));
CREATE TABLE IF NOT EXISTS branch_sets (
  repo TEXT NOT NULL, branch TEXT NOT NULL, sha TEXT NOT NULL, test_set TEXT NOT NULL,
  PRIMARY KEY (repo, branch, sha, test_set));
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY, hash TEXT NOT NULL, repo TEXT NOT NULL, sha TEXT NOT NULL,
  name TEXT NOT NULL, kind TEXT NOT NULL, worker TEXT NOT NULL, state TEXT NOT NULL,
  exit_code INTEGER NOT NULL, started REAL NOT NULL, ended REAL NOT NULL, detail TEXT NOT NULL,
  purpose TEXT NOT NULL DEFAULT '', upload_token TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS runs_by_hash ON runs (hash);
CREATE TABLE IF NOT EXISTS cases (
  run_id TEXT NOT NULL, seq INTEGER NOT NULL, name TEXT NOT NULL, success INTEGER NOT NULL,
  elapsed REAL NOT NULL, message TEXT NOT NULL DEFAULT '', logs TEXT NOT NULL DEFAULT '',
  skipped INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (run_id, seq));
CREATE TABLE IF NOT EXISTS holds (
  key TEXT PRIMARY KEY, infra_failures INTEGER NOT NULL, not_before REAL NOT NULL,
  reason TEXT NOT NULL, forgiven_failures INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
  name TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, created REAL NOT NULL,
  last_used REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, who TEXT NOT NULL, role TEXT NOT NULL,
  via TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL, client TEXT NOT NULL,
  status INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
  key_hash TEXT PRIMARY KEY, login TEXT NOT NULL, provider TEXT NOT NULL, role TEXT NOT NULL,
  csrf TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS deployments (
  id TEXT PRIMARY KEY, repo TEXT NOT NULL, sha TEXT NOT NULL, name TEXT NOT NULL,
  hash TEXT NOT NULL, state TEXT NOT NULL, worker TEXT NOT NULL, booted_by TEXT NOT NULL,
  booted REAL NOT NULL, started REAL NOT NULL, stopped REAL NOT NULL, detail TEXT NOT NULL,
  debug_run TEXT NOT NULL DEFAULT '');
)sql";

}  // namespace

Status make_schema(Connection& db) {
  TL_RETURN_IF_ERROR(db.exec(kSchema, "creating the schema"));
  // Stores made before runs had a purpose gain the column (their runs were all wanted runs).
  bool has_purpose = false;
  bool has_upload_token = false;
  bool has_case_message = false;
  bool has_case_skipped = false;
  {
    Statement s(db.get(), "SELECT name FROM pragma_table_info('runs')");
    while (s.step()) {
      has_purpose = has_purpose || s.text(0) == "purpose";
      has_upload_token = has_upload_token || s.text(0) == "upload_token";
    }
    Statement c(db.get(), "SELECT name FROM pragma_table_info('cases')");
    while (c.step()) {
      has_case_message = has_case_message || c.text(0) == "message";
      has_case_skipped = has_case_skipped || c.text(0) == "skipped";
    }
  }
  // Stores made before cases kept their messages, logs and skips gain them (empty, not skipped).
  if (!has_case_message) {
    TL_RETURN_IF_ERROR(
        db.exec("ALTER TABLE cases ADD COLUMN message TEXT NOT NULL DEFAULT '';"
                "ALTER TABLE cases ADD COLUMN logs TEXT NOT NULL DEFAULT ''",
                "adding cases.message and cases.logs"));
  }
  if (!has_case_skipped) {
    TL_RETURN_IF_ERROR(db.exec("ALTER TABLE cases ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0",
                               "adding cases.skipped"));
  }
  if (!has_purpose) {
    TL_RETURN_IF_ERROR(db.exec("ALTER TABLE runs ADD COLUMN purpose TEXT NOT NULL DEFAULT ''",
                               "adding runs.purpose"));
  }
  if (!has_upload_token) {
    TL_RETURN_IF_ERROR(db.exec("ALTER TABLE runs ADD COLUMN upload_token TEXT NOT NULL DEFAULT ''",
                               "adding runs.upload_token"));
  }
  return ensure_run_tallies(db);
}

}  // namespace testlooper::store
