// The store: TestLooper's persistent state behind one interface (DESIGN.md "store"). SQLite is
// the embedded backend: one file under the server's data dir, WAL journal, so a `kill -9` of the
// server at any instant loses no committed write.
//
// What it keeps: repos, branches (and which are under test), commits with their resolved
// definitions and objects, the user's settings (target runs, enabled test sets), and every run
// with its individual test results. Runs are keyed by run id and finishing a run is idempotent:
// a worker that resends a result after a reconnect does not double-count it.
//
// Ownership and threads: a Store is used by one thread at a time (the server's state thread, or
// while it loads the thread reading the commits' objects for it);
// each method is one transaction. Errors come back as values naming the operation.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/error.h"

struct sqlite3;

namespace testlooper::store {

struct RepoRow {
  std::string name;
  std::string path;
};

struct BranchRow {
  std::string repo;
  std::string name;
  std::string head;
  bool under_test = false;
  int depth = 0;  // ancestors (first-parent) also under test
};

struct CommitRow {
  std::string repo;
  std::string sha;
  std::vector<std::string> parents;
  std::string subject;
  std::string author;
  int64_t time = 0;  // author time, seconds since the epoch
  // Filled once the definitions are resolved.
  bool resolved = false;
  std::optional<std::string> file;
  std::optional<std::string> error;
  std::string test_sets_json = "{}";   // {set: [names]}
  std::string triggered_json = "[]";   // [set, ...]
};

// One build/test/deployment of a commit; `definition_json` is the resolved object
// (definitions::object_to_json) the worker receives.
struct ObjectRow {
  std::string repo;
  std::string commit;
  std::string name;
  std::string kind;  // "build" | "test" | "deployment"
  std::string hash;
  std::string definition_json;
};

enum class RunState { kRunning, kSucceeded, kFailed, kInfraFailed, kCancelled };
const char* to_string(RunState state);
std::optional<RunState> run_state_from(const std::string& text);

// One run of an object (identified by hash; scheduled on behalf of repo/commit/name).
struct RunRow {
  std::string id;
  std::string hash;
  std::string repo;
  std::string commit;
  std::string name;
  std::string kind;
  std::string worker;
  RunState state = RunState::kRunning;
  int exit_code = 0;
  double started = 0;
  double ended = 0;
  std::string detail;  // infrastructure failure reason, cancellation reason
  // Why it was started: "" = a run users want (target runs, builds); "extra:<repo>/<branch>@<head>" =
  // spent from that branch's extra-run budget (planner::extra_purpose).
  std::string purpose;
  // The SHA-256 (hex) of the upload token its job carried: kept so that its worker may still
  // upload the run's files after a server restart (ServerState::may_upload_record).
  std::string upload_token_hash;
};

// One individual test result of a run (a run may hold a case several times).
struct CaseRow {
  std::string name;
  bool success = false;
  double elapsed = 0;
  std::string message;            // why it failed, capped (core/case_message.h); "" = none
  std::vector<std::string> logs;  // its logs in the run record: "test_logs/<dir>/<file>"
  bool skipped = false;  // reported but not run (JUnit <skipped>): not counted by case_counts
};

// A test set enabled at a commit because a branch was under test (Store::set_branch_set).
struct BranchSetRow {
  std::string repo;
  std::string branch;
  std::string sha;
  std::string set;
};

// Counts over the finished runs of one identity. Infrastructure failures are counted apart and
// never as failures.
struct RunCounts {
  int64_t runs = 0;
  int64_t failures = 0;
  int64_t infra_failures = 0;
  int64_t active = 0;
};

// An API token (docs/configuration.md "Access"): only the SHA-256 of its text is kept, never
// the text. `name` is [A-Za-z0-9._-]{1,64} (auth::is_token_name); `role` an auth role's name.
struct TokenRow {
  std::string name;
  std::string role;      // "viewer", "editor", "admin", "worker"
  std::string hash;      // sha256_hex of the token's text
  double created = 0;    // seconds since the epoch
  double last_used = 0;  // 0 = never; updated at most once a minute
};

// One state-changing request, allowed or refused (docs/api.md "GET /api/audit").
struct AuditRow {
  int64_t id = 0;   // assigned by the store, increasing
  double at = 0;    // seconds since the epoch
  std::string who;  // auth::Principal::name ("token:ci", "open", "anonymous", "cli")
  std::string role;
  std::string via;
  std::string method;  // "POST", or "CLI" for a token command
  std::string path;    // without the query string (it may hold secrets)
  std::string client;  // the client's address; "local" for the CLI
  int status = 0;      // the HTTP status answered
};

// What holds an identity or an environment back (server/state.h "Holds"): its infrastructure
// failures in a row since its last counted run or a user's retry, the time before which it gets
// no new run (back-off, or a build's retry_wait_seconds), and for a build the failures a user's
// retry forgave. Kept so that a restarted server backs off and blocks as before.
struct HoldRow {
  std::string key;         // an identity hash, or "env:<hash of an environment's image>"
  int infra_failures = 0;  // in a row
  double not_before = 0;   // seconds since the epoch
  std::string reason;      // the last infrastructure failure's detail
  int64_t forgiven_failures = 0;
};

// A signed-in browser's session (server/api_session.cc): found by the SHA-256 of its cookie
// (the cookie itself is never stored).
struct SessionRow {
  std::string key_hash;  // sha256_hex of the cookie's value
  std::string login;     // the provider's user name ("alice")
  std::string provider;  // "github" or "gitlab"
  std::string role;      // auth::to_string of the role granted at sign-in
  std::string csrf;      // what a state-changing request must send in X-CSRF-Token
  double expires = 0;    // seconds since the epoch
};

// A deployment (server/state.h "Deployments"): booted by a user, it holds a worker's cores and
// RAM from `starting` until it is stopped. Kept so that a restarted server still lists it
// (stopped: its worker's environment ended with the connection).
struct DeploymentRow {
  std::string id;  // a run id's grammar (core/ids.h)
  std::string repo;
  std::string commit;
  std::string name;
  std::string hash;
  std::string state;  // "waiting" | "starting" | "running" | "stopped"
  std::string worker;
  std::string booted_by;  // the principal's name
  double booted = 0;      // seconds since the epoch
  double started = 0;     // when a worker took it (0 = not yet)
  double stopped = 0;     // 0 = not yet
  std::string detail;     // why it stopped
  // "" for a deployment; else the run whose test (or build) it reproduces: that object's
  // environment and inputs, without its commands (POST /api/runs/{id}/debug).
  std::string debug_run;
};

class Store {
 public:
  virtual ~Store() = default;

  virtual Status put_repo(const RepoRow& repo) = 0;
  virtual Result<std::vector<RepoRow>> repos() = 0;
  // Forgets the repo (a repo that is gone): its commits, runs and results stay.
  virtual Status delete_repo(const std::string& name) = 0;

  virtual Status put_branch(const BranchRow& branch) = 0;
  virtual Status delete_branch(const std::string& repo, const std::string& name) = 0;
  virtual Result<std::vector<BranchRow>> branches() = 0;

  // Inserts commits that are new; known shas are left as they are. One transaction.
  virtual Status put_commits(const std::vector<CommitRow>& commits) = 0;
  virtual Result<std::vector<CommitRow>> commits() = 0;
  // Records a commit's resolved definitions and objects (replacing earlier ones).
  virtual Status put_definitions(const CommitRow& commit, const std::vector<ObjectRow>& objects) = 0;
  virtual Result<std::vector<ObjectRow>> objects() = 0;
  // The objects of one commit (by name), and one of them: indexed lookups, for a server that
  // keeps no definition in memory (ServerState::definition).
  virtual Result<std::vector<ObjectRow>> objects_of(const std::string& repo,
                                                    const std::string& commit) = 0;
  virtual Result<std::optional<ObjectRow>> object(const std::string& repo,
                                                  const std::string& commit,
                                                  const std::string& name) = 0;

  virtual Status set_target(const std::string& repo, const std::string& commit,
                            const std::string& name, int runs) = 0;
  // (repo, commit, name) -> target runs
  virtual Result<std::map<std::tuple<std::string, std::string, std::string>, int>> targets() = 0;
  virtual Status set_commit_set(const std::string& repo, const std::string& commit,
                                const std::string& set, bool enabled) = 0;
  // (repo, commit, set) -> enabled
  virtual Result<std::map<std::tuple<std::string, std::string, std::string>, bool>> commit_sets() = 0;
  // Test sets a branch's being under test enabled (its triggers at the commits it covered), apart
  // from those a user set by hand (commit_sets): taking the branch off test disables these.
  // Adds the row, or with `enabled` false deletes it.
  virtual Status set_branch_set(const BranchSetRow& row, bool enabled) = 0;
  virtual Result<std::vector<BranchSetRow>> branch_sets() = 0;

  // Records a run that has started (or re-records it, e.g. a worker resuming after a restart).
  virtual Status start_run(const RunRow& run) = 0;
  // Finishes a running run with its results. Idempotent: returns false (and changes nothing)
  // when the run is already finished or unknown.
  virtual Result<bool> finish_run(const RunRow& run, const std::vector<CaseRow>& cases) = 0;
  // Finishes each of `finished` (as finish_run: whether each changed anything), then records
  // `started` when given (as start_run), in one transaction: nothing is written unless all is
  // (issue 18: a worker's result and the job it is given next share one commit).
  struct FinishedRun {
    RunRow run;
    std::vector<CaseRow> cases;
  };
  virtual Result<std::vector<bool>> record_runs(const std::vector<FinishedRun>& finished,
                                                const RunRow* started) = 0;
  virtual Result<std::vector<RunRow>> runs() = 0;
  // The runs still marked running.
  virtual Result<std::vector<RunRow>> active_runs() = 0;
  // The runs of these identities, newest first.
  virtual Result<std::vector<RunRow>> runs_of(const std::vector<std::string>& hashes) = 0;
  // Per identity, counts over all its runs (one pass in the database; nothing per run in memory).
  virtual Result<std::map<std::string, RunCounts>> run_counts() = 0;
  // Per purpose (RunRow::purpose, "" excluded), the runs that were not infrastructure failures.
  virtual Result<std::map<std::string, int64_t>> purpose_counts() = 0;
  virtual Result<int64_t> run_count() = 0;
  virtual Result<std::optional<RunRow>> run(const std::string& id) = 0;
  virtual Result<std::vector<CaseRow>> cases(const std::string& run_id) = 0;
  // Every case result of every finished, non-infrastructure run of `hash`: name -> (runs, failures).
  virtual Result<std::map<std::string, std::pair<int64_t, int64_t>>> case_counts(
      const std::string& hash) = 0;

  // Holds (HoldRow), replaced by key; a hold whose fields are all zero or empty is deleted.
  virtual Status put_hold(const HoldRow& hold) = 0;
  virtual Result<std::vector<HoldRow>> holds() = 0;

  // API tokens. add_token returns false (and changes nothing) when the name is in use, unless
  // `replace` (then the row replaces it: the server's own "local" worker token at each start).
  virtual Result<bool> add_token(const TokenRow& token, bool replace) = 0;
  // The token whose hash is `hash` (an indexed lookup), or nullopt.
  virtual Result<std::optional<TokenRow>> token_by_hash(const std::string& hash) = 0;
  virtual Result<std::vector<TokenRow>> tokens() = 0;  // by name
  // Deletes the token named `name`; false when there is none.
  virtual Result<bool> revoke_token(const std::string& name) = 0;
  // A value that changes whenever the tokens may have changed: another connection (the
  // `testlooper token` CLI) committed anything (PRAGMA data_version), or this one added or
  // revoked a token. Cheap: no table is read; another connection's commits are seen within
  // 200 ms (the data version is read at most that often).
  virtual Result<std::pair<int64_t, int64_t>> token_generation() = 0;
  virtual Status touch_token(const std::string& name, double last_used) = 0;

  // The audit log: `add_audit` ignores row.id; `audit` returns at most `limit` rows with an id
  // below `before` (0 = no bound), newest first.
  virtual Status add_audit(const AuditRow& row) = 0;
  virtual Result<std::vector<AuditRow>> audit(int64_t limit, int64_t before) = 0;
  // Sessions (SessionRow), replaced by key_hash.
  virtual Status put_session(const SessionRow& session) = 0;
  virtual Result<std::optional<SessionRow>> session(const std::string& key_hash) = 0;
  virtual Status delete_session(const std::string& key_hash) = 0;
  // Deletes the sessions that expired at or before `now`.
  virtual Status prune_sessions(double now) = 0;
  // Deployments (DeploymentRow), replaced by id; listed by boot time.
  virtual Status put_deployment(const DeploymentRow& deployment) = 0;
  virtual Result<std::vector<DeploymentRow>> deployments() = 0;
};

// When open_sqlite_store looks at every page of the database for damage (PRAGMA quick_check,
// seconds per GB): at once, or later by the caller (check_sqlite_store; `serve` answers
// meanwhile). With kLater it still checks at once when opening fails, so that a damaged file
// is reported as such.
enum class StoreCheck { kNow, kLater };

// Opens (creating if needed) the SQLite store at `path`. An Error saying how to recover when the
// file is damaged (not a database, not whole pages, or, with kNow, failing quick_check).
// Counts per identity and purpose are kept in SQL by triggers (store/run_tallies.h): the first
// open of a store made before them tallies its runs once (9 s for 10M runs).
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path,
                                                 StoreCheck check = StoreCheck::kNow);

// PRAGMA quick_check of the database at `path` on a read-only connection of its own (any
// thread; the store may be written meanwhile). The Error open_sqlite_store would give when it
// is damaged; an Error too when `stop` was set before it ended (it stops early).
Status check_sqlite_store(const std::string& path, const std::atomic<bool>* stop = nullptr);

// The same in two steps: the read-only connection opened now, with its files (the database,
// its WAL and shared memory, read once), so that the check, later on another thread, needs no
// descriptor (a server out of descriptors then does not take it for damage).
class SqliteStoreCheck {
 public:
  static Result<std::unique_ptr<SqliteStoreCheck>> open(const std::string& path);
  ~SqliteStoreCheck();
  SqliteStoreCheck(const SqliteStoreCheck&) = delete;
  SqliteStoreCheck& operator=(const SqliteStoreCheck&) = delete;
  // As check_sqlite_store; once.
  Status run(const std::atomic<bool>* stop = nullptr);
  // From any thread: run() ends soon, with an Error as when `stop` was set. `stop` alone is seen
  // between tables only (SQLite 3.40 calls no progress handler inside one table's check: a
  // cold 10M-run store kept `serve` from ending for half a minute); this interrupts inside one.
  // Call it again until run() has ended: one made before run() began its read is not seen.
  void interrupt();

 private:
  SqliteStoreCheck(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}
  std::string path_;
  sqlite3* db_;
  std::atomic<bool> interrupted_{false};
};

}  // namespace testlooper::store
