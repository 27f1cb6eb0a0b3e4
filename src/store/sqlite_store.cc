// The SQLite implementation of Store.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <sstream>

#include "store/sqlite.h"
#include "store/sqlite_open.h"
#include "store/store.h"

namespace testlooper::store {
namespace {

std::string join_words(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

Error failed(const std::string& what, const Statement& s) {
  return Error{"store", what + ": " + s.error()};
}

RunRow read_run(const Statement& s) {
  RunRow r;
  r.id = s.text(0);
  r.hash = s.text(1);
  r.repo = s.text(2);
  r.commit = s.text(3);
  r.name = s.text(4);
  r.kind = s.text(5);
  r.worker = s.text(6);
  r.state = run_state_from(s.text(7)).value_or(RunState::kInfraFailed);
  r.exit_code = static_cast<int>(s.integer(8));
  r.started = s.real(9);
  r.ended = s.real(10);
  r.detail = s.text(11);
  r.purpose = s.text(12);
  r.upload_token_hash = s.text(13);
  return r;
}

constexpr const char* kRunColumns =
    "id, hash, repo, sha, name, kind, worker, state, exit_code, started, ended, detail, purpose, "
    "upload_token";

class SqliteStore : public Store {
 public:
  explicit SqliteStore(std::unique_ptr<Connection> db) : db_(std::move(db)) {}

  Status put_repo(const RepoRow& repo) override {
    Statement s(db_->get(), "INSERT OR REPLACE INTO repos (name, path) VALUES (?, ?)");
    if (!s.bind(1, repo.name).bind(2, repo.path).run()) return failed("put_repo", s);
    return {};
  }

  Result<std::vector<RepoRow>> repos() override {
    Statement s(db_->get(), "SELECT name, path FROM repos ORDER BY name");
    std::vector<RepoRow> out;
    while (s.step()) out.push_back({s.text(0), s.text(1)});
    if (!s.error().empty()) return failed("repos", s);
    return out;
  }

  Status put_hold(const HoldRow& h) override {
    if (h.infra_failures == 0 && h.not_before == 0 && h.reason.empty() &&
        h.forgiven_failures == 0) {
      Statement s(db_->get(), "DELETE FROM holds WHERE key = ?");
      if (!s.bind(1, h.key).run()) return failed("put_hold", s);
      return {};
    }
    Statement s(
        db_->get(),
        "INSERT OR REPLACE INTO holds (key, infra_failures, not_before, reason, forgiven_failures) "
        "VALUES (?, ?, ?, ?, ?)");
    s.bind(1, h.key)
        .bind(2, h.infra_failures)
        .bind(3, h.not_before)
        .bind(4, h.reason)
        .bind(5, h.forgiven_failures);
    if (!s.run()) return failed("put_hold", s);
    return {};
  }

  Result<std::vector<HoldRow>> holds() override {
    Statement s(db_->get(),
                "SELECT key, infra_failures, not_before, reason, forgiven_failures FROM holds");
    std::vector<HoldRow> out;
    while (s.step()) {
      out.push_back(
          {s.text(0), static_cast<int>(s.integer(1)), s.real(2), s.text(3), s.integer(4)});
    }
    if (!s.error().empty()) return failed("holds", s);
    return out;
  }

  Status put_deployment(const DeploymentRow& d) override {
    Statement s(db_->get(),
                "INSERT OR REPLACE INTO deployments (id, repo, sha, name, hash, state, worker, "
                "booted_by, booted, started, stopped, detail, debug_run) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    s.bind(1, d.id)
        .bind(2, d.repo)
        .bind(3, d.commit)
        .bind(4, d.name)
        .bind(5, d.hash)
        .bind(6, d.state)
        .bind(7, d.worker)
        .bind(8, d.booted_by)
        .bind(9, d.booted)
        .bind(10, d.started)
        .bind(11, d.stopped)
        .bind(12, d.detail)
        .bind(13, d.debug_run);
    if (!s.run()) return failed("put_deployment", s);
    return {};
  }

  Result<std::vector<DeploymentRow>> deployments() override {
    Statement s(db_->get(),
                "SELECT id, repo, sha, name, hash, state, worker, booted_by, booted, started, "
                "stopped, detail, debug_run FROM deployments ORDER BY booted, id");
    std::vector<DeploymentRow> out;
    while (s.step()) {
      out.push_back({s.text(0), s.text(1), s.text(2), s.text(3), s.text(4), s.text(5), s.text(6),
                     s.text(7), s.real(8), s.real(9), s.real(10), s.text(11), s.text(12)});
    }
    if (!s.error().empty()) return failed("deployments", s);
    return out;
  }

  Result<bool> add_token(const TokenRow& t, bool replace) override {
    Statement s(db_->get(), std::string(replace ? "INSERT OR REPLACE" : "INSERT OR IGNORE") +
                                " INTO tokens (name, role, hash, created, last_used) "
                                "VALUES (?, ?, ?, ?, ?)");
    s.bind(1, t.name).bind(2, t.role).bind(3, t.hash).bind(4, t.created).bind(5, t.last_used);
    if (!s.run()) return failed("add_token", s);
    ++token_writes_;
    return sqlite3_changes(db_->get()) > 0;
  }

  Result<std::optional<TokenRow>> token_by_hash(const std::string& hash) override {
    Statement s(db_->get(),
                "SELECT name, role, hash, created, last_used FROM tokens WHERE hash = ?");
    s.bind(1, hash);
    std::optional<TokenRow> out;
    if (s.step()) out = TokenRow{s.text(0), s.text(1), s.text(2), s.real(3), s.real(4)};
    if (!s.error().empty()) return failed("token_by_hash", s);
    return out;
  }

  Result<std::vector<TokenRow>> tokens() override {
    Statement s(db_->get(),
                "SELECT name, role, hash, created, last_used FROM tokens ORDER BY name");
    std::vector<TokenRow> out;
    while (s.step()) out.push_back({s.text(0), s.text(1), s.text(2), s.real(3), s.real(4)});
    if (!s.error().empty()) return failed("tokens", s);
    return out;
  }

  Result<bool> revoke_token(const std::string& name) override {
    Statement s(db_->get(), "DELETE FROM tokens WHERE name = ?");
    if (!s.bind(1, name).run()) return failed("revoke_token", s);
    ++token_writes_;
    return sqlite3_changes(db_->get()) > 0;
  }

  Result<std::pair<int64_t, int64_t>> token_generation() override {
    // PRAGMA data_version takes the database's shared lock and reads the WAL index (about 7% of
    // the server's CPU when asked on every worker message): read again at most every 200 ms.
    const auto now = std::chrono::steady_clock::now();
    if (data_version_read_ == std::chrono::steady_clock::time_point{} ||
        now - data_version_read_ >= std::chrono::milliseconds(200)) {
      Statement s(db_->get(), "PRAGMA data_version");
      if (!s.step()) return failed("token_generation", s);
      data_version_ = s.integer(0);
      data_version_read_ = now;
    }
    return std::pair<int64_t, int64_t>{data_version_, token_writes_};
  }

  Status touch_token(const std::string& name, double last_used) override {
    Statement s(db_->get(), "UPDATE tokens SET last_used = ? WHERE name = ?");
    if (!s.bind(1, last_used).bind(2, name).run()) return failed("touch_token", s);
    return {};
  }

  Status add_audit(const AuditRow& a) override {
    Statement s(db_->get(),
                "INSERT INTO audit (at, who, role, via, method, path, client, status) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    s.bind(1, a.at).bind(2, a.who).bind(3, a.role).bind(4, a.via).bind(5, a.method);
    if (!s.bind(6, a.path).bind(7, a.client).bind(8, a.status).run()) return failed("add_audit", s);
    return {};
  }

  Result<std::vector<AuditRow>> audit(int64_t limit, int64_t before) override {
    Statement s(db_->get(),
                "SELECT id, at, who, role, via, method, path, client, status FROM audit "
                "WHERE ? = 0 OR id < ? ORDER BY id DESC LIMIT ?");
    s.bind(1, before).bind(2, before).bind(3, limit);
    std::vector<AuditRow> out;
    while (s.step()) {
      out.push_back({s.integer(0), s.real(1), s.text(2), s.text(3), s.text(4), s.text(5), s.text(6),
                     s.text(7), static_cast<int>(s.integer(8))});
    }
    if (!s.error().empty()) return failed("audit", s);
    return out;
  }

  Status put_session(const SessionRow& r) override {
    Statement s(db_->get(),
                "INSERT OR REPLACE INTO sessions (key_hash, login, provider, role, csrf, expires) "
                "VALUES (?, ?, ?, ?, ?, ?)");
    s.bind(1, r.key_hash).bind(2, r.login).bind(3, r.provider).bind(4, r.role).bind(5, r.csrf);
    if (!s.bind(6, r.expires).run()) return failed("put_session", s);
    return {};
  }

  Result<std::optional<SessionRow>> session(const std::string& key_hash) override {
    Statement s(db_->get(),
                "SELECT key_hash, login, provider, role, csrf, expires FROM sessions "
                "WHERE key_hash = ?");
    s.bind(1, key_hash);
    if (s.step()) {
      return std::optional<SessionRow>(
          SessionRow{s.text(0), s.text(1), s.text(2), s.text(3), s.text(4), s.real(5)});
    }
    if (!s.error().empty()) return failed("session", s);
    return std::optional<SessionRow>();
  }

  Status delete_session(const std::string& key_hash) override {
    Statement s(db_->get(), "DELETE FROM sessions WHERE key_hash = ?");
    if (!s.bind(1, key_hash).run()) return failed("delete_session", s);
    return {};
  }

  Status prune_sessions(double now) override {
    Statement s(db_->get(), "DELETE FROM sessions WHERE expires <= ?");
    if (!s.bind(1, now).run()) return failed("prune_sessions", s);
    return {};
  }

  Status put_branch(const BranchRow& b) override {
    Statement s(db_->get(),
                "INSERT OR REPLACE INTO branches (repo, name, head, under_test, depth) "
                "VALUES (?, ?, ?, ?, ?)");
    s.bind(1, b.repo).bind(2, b.name).bind(3, b.head).bind(4, b.under_test ? 1 : 0).bind(5, b.depth);
    if (!s.run()) return failed("put_branch", s);
    return {};
  }

  Status delete_repo(const std::string& name) override {
    Statement s(db_->get(), "DELETE FROM repos WHERE name = ?");
    if (!s.bind(1, name).run()) return failed("delete_repo", s);
    return {};
  }

  Status delete_branch(const std::string& repo, const std::string& name) override {
    Statement s(db_->get(), "DELETE FROM branches WHERE repo = ? AND name = ?");
    if (!s.bind(1, repo).bind(2, name).run()) return failed("delete_branch", s);
    return {};
  }

  Result<std::vector<BranchRow>> branches() override {
    Statement s(db_->get(), "SELECT repo, name, head, under_test, depth FROM branches ORDER BY repo, name");
    std::vector<BranchRow> out;
    while (s.step()) {
      out.push_back({s.text(0), s.text(1), s.text(2), s.integer(3) != 0, static_cast<int>(s.integer(4))});
    }
    if (!s.error().empty()) return failed("branches", s);
    return out;
  }

  Status put_commits(const std::vector<CommitRow>& commits) override {
    Transaction t(*db_);
    TL_RETURN_IF_ERROR(t.begun());
    for (const auto& c : commits) {
      Statement one(db_->get(),
                    "INSERT OR IGNORE INTO commits (repo, sha, parents, subject, author, time) "
                    "VALUES (?, ?, ?, ?, ?, ?)");
      one.bind(1, c.repo).bind(2, c.sha).bind(3, join_words(c.parents)).bind(4, c.subject);
      one.bind(5, c.author).bind(6, c.time);
      if (!one.run()) return failed("put_commits", one);
    }
    return t.commit();
  }

  Result<std::vector<CommitRow>> commits() override {
    Statement s(db_->get(),
                "SELECT repo, sha, parents, subject, author, time, resolved, file, error, "
                "test_sets, triggered FROM commits");
    std::vector<CommitRow> out;
    while (s.step()) {
      CommitRow c;
      c.repo = s.text(0);
      c.sha = s.text(1);
      c.parents = split_words(s.text(2));
      c.subject = s.text(3);
      c.author = s.text(4);
      c.time = s.integer(5);
      c.resolved = s.integer(6) != 0;
      if (!s.is_null(7)) c.file = s.text(7);
      if (!s.is_null(8)) c.error = s.text(8);
      c.test_sets_json = s.text(9);
      c.triggered_json = s.text(10);
      out.push_back(std::move(c));
    }
    if (!s.error().empty()) return failed("commits", s);
    return out;
  }

  Status put_definitions(const CommitRow& c, const std::vector<ObjectRow>& objects) override {
    Transaction t(*db_);
    TL_RETURN_IF_ERROR(t.begun());
    Statement u(db_->get(),
                "UPDATE commits SET resolved = 1, file = ?, error = ?, test_sets = ?, triggered = ? "
                "WHERE repo = ? AND sha = ?");
    if (c.file) u.bind(1, *c.file);
    if (c.error) u.bind(2, *c.error);
    u.bind(3, c.test_sets_json).bind(4, c.triggered_json).bind(5, c.repo).bind(6, c.sha);
    if (!u.run()) return failed("put_definitions", u);
    Statement d(db_->get(), "DELETE FROM objects WHERE repo = ? AND sha = ?");
    if (!d.bind(1, c.repo).bind(2, c.sha).run()) return failed("put_definitions", d);
    for (const auto& o : objects) {
      Statement i(db_->get(),
                  "INSERT INTO objects (repo, sha, name, kind, hash, definition) VALUES (?, ?, ?, ?, ?, ?)");
      i.bind(1, o.repo).bind(2, o.commit).bind(3, o.name).bind(4, o.kind).bind(5, o.hash);
      if (!i.bind(6, o.definition_json).run()) return failed("put_definitions", i);
    }
    return t.commit();
  }

  Result<std::vector<ObjectRow>> objects() override {
    Statement s(db_->get(), "SELECT repo, sha, name, kind, hash, definition FROM objects");
    std::vector<ObjectRow> out;
    while (s.step()) out.push_back({s.text(0), s.text(1), s.text(2), s.text(3), s.text(4), s.text(5)});
    if (!s.error().empty()) return failed("objects", s);
    return out;
  }

  Result<std::vector<ObjectRow>> objects_of(const std::string& repo,
                                            const std::string& commit) override {
    Statement s(db_->get(),
                "SELECT repo, sha, name, kind, hash, definition FROM objects WHERE repo = ? AND "
                "sha = ? ORDER BY name");
    s.bind(1, repo).bind(2, commit);
    std::vector<ObjectRow> out;
    while (s.step())
      out.push_back({s.text(0), s.text(1), s.text(2), s.text(3), s.text(4), s.text(5)});
    if (!s.error().empty()) return failed("objects_of", s);
    return out;
  }

  Result<std::optional<ObjectRow>> object(const std::string& repo, const std::string& commit,
                                          const std::string& name) override {
    Statement s(db_->get(),
                "SELECT repo, sha, name, kind, hash, definition FROM objects WHERE repo = ? AND "
                "sha = ? AND name = ?");
    s.bind(1, repo).bind(2, commit).bind(3, name);
    std::optional<ObjectRow> out;
    if (s.step()) out = ObjectRow{s.text(0), s.text(1), s.text(2), s.text(3), s.text(4), s.text(5)};
    if (!s.error().empty()) return failed("object", s);
    return out;
  }

  Status set_target(const std::string& repo, const std::string& commit, const std::string& name,
                    int runs) override {
    Statement s(db_->get(), "INSERT OR REPLACE INTO targets (repo, sha, name, runs) VALUES (?, ?, ?, ?)");
    if (!s.bind(1, repo).bind(2, commit).bind(3, name).bind(4, runs).run()) return failed("set_target", s);
    return {};
  }

  Result<std::map<std::tuple<std::string, std::string, std::string>, int>> targets() override {
    Statement s(db_->get(), "SELECT repo, sha, name, runs FROM targets");
    std::map<std::tuple<std::string, std::string, std::string>, int> out;
    while (s.step()) out[{s.text(0), s.text(1), s.text(2)}] = static_cast<int>(s.integer(3));
    if (!s.error().empty()) return failed("targets", s);
    return out;
  }

  Status set_commit_set(const std::string& repo, const std::string& commit, const std::string& set,
                        bool enabled) override {
    Statement s(db_->get(),
                "INSERT OR REPLACE INTO commit_sets (repo, sha, test_set, enabled) VALUES (?, ?, ?, ?)");
    if (!s.bind(1, repo).bind(2, commit).bind(3, set).bind(4, enabled ? 1 : 0).run()) {
      return failed("set_commit_set", s);
    }
    return {};
  }

  Result<std::map<std::tuple<std::string, std::string, std::string>, bool>> commit_sets() override {
    Statement s(db_->get(), "SELECT repo, sha, test_set, enabled FROM commit_sets");
    std::map<std::tuple<std::string, std::string, std::string>, bool> out;
    while (s.step()) out[{s.text(0), s.text(1), s.text(2)}] = s.integer(3) != 0;
    if (!s.error().empty()) return failed("commit_sets", s);
    return out;
  }

  Status set_branch_set(const BranchSetRow& row, bool enabled) override {
    Statement s(db_->get(),
                enabled ? "INSERT OR IGNORE INTO branch_sets (repo, branch, sha, test_set) "
                          "VALUES (?, ?, ?, ?)"
                        : "DELETE FROM branch_sets WHERE repo = ? AND branch = ? AND sha = ? "
                          "AND test_set = ?");
    if (!s.bind(1, row.repo).bind(2, row.branch).bind(3, row.sha).bind(4, row.set).run()) {
      return failed("set_branch_set", s);
    }
    return {};
  }

  Result<std::vector<BranchSetRow>> branch_sets() override {
    Statement s(db_->get(), "SELECT repo, branch, sha, test_set FROM branch_sets");
    std::vector<BranchSetRow> out;
    while (s.step()) out.push_back({s.text(0), s.text(1), s.text(2), s.text(3)});
    if (!s.error().empty()) return failed("branch_sets", s);
    return out;
  }

  Status start_run(const RunRow& r) override { return insert_run(r); }

  Result<bool> finish_run(const RunRow& r, const std::vector<CaseRow>& cases) override {
    Result<std::vector<bool>> finished = record_runs({{r, cases}}, nullptr);
    if (!finished.ok()) return finished.error();
    return static_cast<bool>(finished->front());
  }

  Result<std::vector<bool>> record_runs(const std::vector<FinishedRun>& finished,
                                        const RunRow* started) override {
    Transaction t(*db_);
    TL_RETURN_IF_ERROR(t.begun());
    std::vector<bool> changed;
    for (const auto& f : finished) {
      Result<bool> one = finish_in_transaction(f.run, f.cases);
      if (!one.ok()) return one.error();
      changed.push_back(*one);
    }
    if (started != nullptr) TL_RETURN_IF_ERROR(insert_run(*started));
    TL_RETURN_IF_ERROR(t.commit());
    return changed;
  }

  Result<std::vector<RunRow>> runs() override {
    Statement s(db_->get(), fmt::format("SELECT {} FROM runs ORDER BY started", kRunColumns));
    std::vector<RunRow> out;
    while (s.step()) out.push_back(read_run(s));
    if (!s.error().empty()) return failed("runs", s);
    return out;
  }

  Result<std::vector<RunRow>> active_runs() override {
    // The partial index runs_running (run_tallies.h) holds exactly these.
    Statement s(db_->get(), fmt::format("SELECT {} FROM runs WHERE state = 'running' ORDER BY started", kRunColumns));
    std::vector<RunRow> out;
    while (s.step()) out.push_back(read_run(s));
    if (!s.error().empty()) return failed("active_runs", s);
    return out;
  }

  Result<std::vector<RunRow>> runs_of(const std::vector<std::string>& hashes) override {
    std::vector<RunRow> out;
    for (const auto& hash : hashes) {
      Statement s(db_->get(), fmt::format("SELECT {} FROM runs WHERE hash = ?", kRunColumns));
      s.bind(1, hash);
      while (s.step()) out.push_back(read_run(s));
      if (!s.error().empty()) return failed("runs_of", s);
    }
    std::sort(out.begin(), out.end(), [](const RunRow& a, const RunRow& b) { return a.started > b.started; });
    return out;
  }

  Result<std::map<std::string, RunCounts>> run_counts() override {
    // Kept by triggers (run_tallies.h): a few rows per identity, however many runs.
    Statement s(db_->get(), "SELECT hash, state, runs FROM run_tallies WHERE runs != 0");
    std::map<std::string, RunCounts> out;
    while (s.step()) {
      RunCounts& c = out[s.text(0)];
      const auto state = run_state_from(s.text(1));
      const int64_t n = s.integer(2);
      if (state == RunState::kSucceeded || state == RunState::kFailed) c.runs += n;
      if (state == RunState::kFailed) c.failures += n;
      if (state == RunState::kInfraFailed) c.infra_failures += n;
      if (state == RunState::kRunning) c.active += n;
    }
    if (!s.error().empty()) return failed("run_counts", s);
    return out;
  }

  Result<std::map<std::string, int64_t>> purpose_counts() override {
    Statement s(db_->get(), "SELECT purpose, runs FROM purpose_tallies WHERE runs != 0");
    std::map<std::string, int64_t> out;
    while (s.step()) out[s.text(0)] = s.integer(1);
    if (!s.error().empty()) return failed("purpose_counts", s);
    return out;
  }

  Result<int64_t> run_count() override {
    Statement s(db_->get(), "SELECT COALESCE(SUM(runs), 0) FROM run_tallies");
    if (s.step()) return s.integer(0);
    return failed("run_count", s);
  }

  Result<std::optional<RunRow>> run(const std::string& id) override {
    Statement s(db_->get(), fmt::format("SELECT {} FROM runs WHERE id = ?", kRunColumns));
    s.bind(1, id);
    if (s.step()) return std::optional<RunRow>(read_run(s));
    if (!s.error().empty()) return failed("run", s);
    return std::optional<RunRow>();
  }

  Result<std::vector<CaseRow>> cases(const std::string& run_id) override {
    Statement s(db_->get(),
                "SELECT name, success, elapsed, message, logs, skipped FROM cases WHERE run_id = ? "
                "ORDER BY "
                "seq");
    s.bind(1, run_id);
    std::vector<CaseRow> out;
    while (s.step()) {
      out.push_back({s.text(0), s.integer(1) != 0, s.real(2), s.text(3), split_words(s.text(4)),
                     s.integer(5) != 0});
    }
    if (!s.error().empty()) return failed("cases", s);
    return out;
  }

  Result<std::map<std::string, std::pair<int64_t, int64_t>>> case_counts(const std::string& hash) override {
    // Kept by triggers (run_tallies.h): its runs' rows are not read.
    Statement s(db_->get(),
                "SELECT name, runs, failures FROM case_tallies WHERE hash = ? AND runs > 0");
    s.bind(1, hash);
    std::map<std::string, std::pair<int64_t, int64_t>> out;
    while (s.step()) out[s.text(0)] = {s.integer(1), s.integer(2)};
    if (!s.error().empty()) return failed("case_counts", s);
    return out;
  }

 private:
  static void bind_run(Statement& s, const RunRow& r) {
    s.bind(1, r.id).bind(2, r.hash).bind(3, r.repo).bind(4, r.commit).bind(5, r.name);
    s.bind(6, r.kind).bind(7, r.worker).bind(8, std::string(to_string(r.state)));
    s.bind(9, r.exit_code).bind(10, r.started).bind(11, r.ended).bind(12, r.detail).bind(13, r.purpose);
    s.bind(14, r.upload_token_hash);
  }

  Status insert_run(const RunRow& r) {
    Statement s(
        db_->get(),
        fmt::format(
            "INSERT OR REPLACE INTO runs ({}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            kRunColumns));
    bind_run(s, r);
    if (!s.run()) return failed("start_run", s);
    return {};
  }

  // finish_run's writes, in the caller's transaction: false when the run was not running.
  Result<bool> finish_in_transaction(const RunRow& r, const std::vector<CaseRow>& cases) {
    Statement u(db_->get(),
                "UPDATE runs SET state = ?, exit_code = ?, ended = ?, detail = ?, worker = ? "
                "WHERE id = ? AND state = 'running'");
    u.bind(1, std::string(to_string(r.state))).bind(2, r.exit_code).bind(3, r.ended);
    u.bind(4, r.detail).bind(5, r.worker).bind(6, r.id);
    if (!u.run()) return failed("finish_run", u);
    if (sqlite3_changes(db_->get()) == 0) return false;
    int seq = 0;
    for (const auto& c : cases) {
      Statement i(db_->get(),
                  "INSERT INTO cases (run_id, seq, name, success, elapsed, message, logs, skipped) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
      i.bind(1, r.id).bind(2, seq++).bind(3, c.name).bind(4, c.success ? 1 : 0).bind(5, c.elapsed);
      i.bind(6, c.message).bind(7, join_words(c.logs)).bind(8, c.skipped ? 1 : 0);
      if (!i.run()) return failed("finish_run", i);
    }
    return true;
  }

  std::unique_ptr<Connection> db_;
  int64_t token_writes_ = 0;  // add_token and revoke_token calls on this connection
  int64_t data_version_ = 0;  // PRAGMA data_version, as read at data_version_read_
  std::chrono::steady_clock::time_point data_version_read_;
};

}  // namespace

const char* to_string(RunState state) {
  switch (state) {
    case RunState::kRunning: return "running";
    case RunState::kSucceeded: return "succeeded";
    case RunState::kFailed: return "failed";
    case RunState::kInfraFailed: return "infra_failed";
    case RunState::kCancelled: return "cancelled";
  }
  return "?";
}

std::optional<RunState> run_state_from(const std::string& text) {
  for (auto s : {RunState::kRunning, RunState::kSucceeded, RunState::kFailed, RunState::kInfraFailed,
                 RunState::kCancelled}) {
    if (text == to_string(s)) return s;
  }
  return std::nullopt;
}

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path, StoreCheck check) {
  TL_RETURN_IF_ERROR(check_database_file(path));
  auto db = Connection::open(path);
  if (!db.ok()) return db.error();
  // SQLite opens a damaged file and fails only on the page it cannot read: look at every page
  // (3 s per GB cached, up to 25 s per GB cold: bench/store_check_bench.sh), now or, for
  // `serve`, in the background once it answers (check_sqlite_store). When opening fails, the
  // check says first whether the file is damaged.
  if (check == StoreCheck::kNow) TL_RETURN_IF_ERROR(quick_check((*db)->get(), path, nullptr));
  if (Status made = make_schema(**db); !made.ok()) {
    if (check == StoreCheck::kLater) TL_RETURN_IF_ERROR(quick_check((*db)->get(), path, nullptr));
    return made.error();
  }
  return std::unique_ptr<Store>(new SqliteStore(std::move(*db)));
}

}  // namespace testlooper::store
