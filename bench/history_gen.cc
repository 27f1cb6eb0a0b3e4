// Generates the server data dir of the history-API benchmark (bench/history_bench.sh): one repo
// "app" with a branch "main" under test, a linear history of 1,000 commits x 500 tests, and
// 10,000,000 finished runs. A test's identity changes every 20 commits (staggered), so each
// identity holds 400 runs; 2% of runs fail. Each object's definition is what the watcher stores
// (definitions::object_to_json), naming its commit (its full name, its source's commit), so no
// two commits' texts are equal. Written straight into the store's SQLite schema (the store opens
// the file first, so the schema is the real one), in one transaction.
// Usage: history_gen DATA_DIR [commits] [tests] [runs]
#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "definitions/definitions.h"
#include "definitions/definitions_json.h"
#include "store/store.h"

namespace {

void check(int rc, sqlite3* db, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    std::fprintf(stderr, "history_gen: %s: %s\n", what, sqlite3_errmsg(db));
    std::exit(1);
  }
}

void exec(sqlite3* db, const std::string& sql) {
  check(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), db, sql.c_str());
}

std::string sha_of(int c) {
  char buf[41];
  std::snprintf(buf, sizeof buf, "%040x", c + 1);
  return buf;
}

std::string hash_of(int t, int c) {
  return "t" + std::to_string(t) + "-" + std::to_string((c + t) / 20);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: history_gen DATA_DIR [commits] [tests] [runs]\n");
    return 2;
  }
  const std::string dir = argv[1];
  const int commits = argc > 2 ? std::atoi(argv[2]) : 1000;
  const int tests = argc > 3 ? std::atoi(argv[3]) : 500;
  const long long runs = argc > 4 ? std::atoll(argv[4]) : 10'000'000;
  std::filesystem::create_directories(dir + "/logs");
  const std::string path = dir + "/state.db";
  {
    auto store = testlooper::store::open_sqlite_store(path);  // the real schema
    if (!store.ok()) {
      std::fprintf(stderr, "history_gen: %s\n", store.error().to_string().c_str());
      return 1;
    }
  }
  sqlite3* db = nullptr;
  check(sqlite3_open(path.c_str(), &db), db, "open");
  exec(db, "PRAGMA synchronous = OFF; PRAGMA journal_mode = WAL; BEGIN");
  exec(db, "INSERT INTO repos (name, path) VALUES ('app', '/nonexistent/app')");
  exec(db, "INSERT INTO branches (repo, name, head, under_test, depth) VALUES ('app', 'main', '" +
               sha_of(commits - 1) + "', 1, 0)");
  sqlite3_stmt* commit_stmt = nullptr;
  check(sqlite3_prepare_v2(
            db,
            "INSERT INTO commits (repo, sha, parents, subject, author, time, resolved, file, "
            "test_sets, triggered) VALUES ('app', ?, ?, ?, 'bench <bench@localhost>', ?, 1, "
            "'testlooper.yml', '{}', '[]')",
            -1, &commit_stmt, nullptr),
        db, "prepare commits");
  sqlite3_stmt* object_stmt = nullptr;
  check(sqlite3_prepare_v2(
            db,
            "INSERT INTO objects (repo, sha, name, kind, hash, definition) VALUES ('app', ?, ?, "
            "'test', ?, ?)",
            -1, &object_stmt, nullptr),
        db, "prepare objects");
  for (int c = 0; c < commits; ++c) {
    const std::string sha = sha_of(c);
    const std::string parents = c == 0 ? "" : sha_of(c - 1);
    const std::string subject = "commit " + std::to_string(c);
    sqlite3_bind_text(commit_stmt, 1, sha.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(commit_stmt, 2, parents.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(commit_stmt, 3, subject.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(commit_stmt, 4, 1'700'000'000 + c * 60);
    check(sqlite3_step(commit_stmt), db, "insert commit");
    sqlite3_reset(commit_stmt);
    for (int t = 0; t < tests; ++t) {
      const std::string name =
          "suite" + std::to_string(t / 50) + "/test" + std::to_string(t) + "/linux";
      const std::string hash = hash_of(t, c);
      testlooper::definitions::ResolvedObject o;
      o.name = name;
      o.full_name = "app/" + sha + "/" + name;
      o.hash = hash;
      o.environment.name = "linux";
      o.environment.platform = "linux";
      o.environment.image_kind = "host";
      o.configuration = "linux";
      o.project = name.substr(0, name.find('/'));
      o.dependencies["src"] = {testlooper::definitions::Dependency::Kind::kSource, "app", sha, ""};
      o.stages.push_back({});
      o.stages.back().command = "./run " + name;
      const std::string definition = testlooper::definitions::object_to_json(o);
      sqlite3_bind_text(object_stmt, 1, sha.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(object_stmt, 2, name.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(object_stmt, 3, hash.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(object_stmt, 4, definition.c_str(), -1, SQLITE_TRANSIENT);
      check(sqlite3_step(object_stmt), db, "insert object");
      sqlite3_reset(object_stmt);
    }
  }
  sqlite3_stmt* run_stmt = nullptr;
  check(sqlite3_prepare_v2(
            db,
            "INSERT INTO runs (id, hash, repo, sha, name, kind, worker, state, exit_code, started, "
            "ended, detail, purpose) VALUES (?, ?, 'app', ?, ?, 'test', 'w1', ?, ?, ?, ?, '', '')",
            -1, &run_stmt, nullptr),
        db, "prepare runs");
  // Runs spread evenly over the identities, each recorded at its identity's first commit.
  std::vector<std::pair<int, int>> identities;  // (test, first commit)
  for (int t = 0; t < tests; ++t) {
    for (int c = 0; c < commits; ++c) {
      if (c == 0 || hash_of(t, c) != hash_of(t, c - 1)) identities.emplace_back(t, c);
    }
  }
  long long made = 0;
  char id[32];
  for (size_t i = 0; i < identities.size(); ++i) {
    const auto [t, c] = identities[i];
    const std::string name =
        "suite" + std::to_string(t / 50) + "/test" + std::to_string(t) + "/linux";
    const std::string hash = hash_of(t, c);
    const std::string sha = sha_of(c);
    const long long until =
        runs * static_cast<long long>(i + 1) / static_cast<long long>(identities.size());
    for (; made < until; ++made) {
      std::snprintf(id, sizeof id, "r%015lld", made);
      const bool failed = made % 50 == 0;
      sqlite3_bind_text(run_stmt, 1, id, -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(run_stmt, 2, hash.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(run_stmt, 3, sha.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(run_stmt, 4, name.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(run_stmt, 5, failed ? "failed" : "succeeded", -1, SQLITE_STATIC);
      sqlite3_bind_int(run_stmt, 6, failed ? 1 : 0);
      sqlite3_bind_double(run_stmt, 7, 1'700'000'000.0 + static_cast<double>(made));
      sqlite3_bind_double(run_stmt, 8, 1'700'000'001.0 + static_cast<double>(made));
      check(sqlite3_step(run_stmt), db, "insert run");
      sqlite3_reset(run_stmt);
    }
  }
  sqlite3_finalize(commit_stmt);
  sqlite3_finalize(object_stmt);
  sqlite3_finalize(run_stmt);
  exec(db, "COMMIT");
  sqlite3_close(db);
  std::printf("history_gen: %d commits x %d tests, %lld runs in %s\n", commits, tests, made,
              path.c_str());
  return 0;
}
