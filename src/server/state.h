// ServerState: everything the server knows, in memory, written through to the Store. Owned by
// the io thread: every method is called there (no locks). It turns ingested commits and worker
// messages into stored facts, replans, and dispatches runs to connected workers.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/log_cap.h"
#include "planner/planner.h"
#include "server/http.h"
#include "server/log_viewers.h"
#include "server/protocol.h"
#include "server/watcher.h"
#include "store/store.h"

namespace testlooper::server {

struct CommitState {
  store::CommitRow row;
  std::vector<store::ObjectRow> objects;
  planner::PlannedCommit planned;  // parsed from row and objects once; `reachable` kept current
};

struct WorkerState {
  std::string id;
  std::shared_ptr<Socket> socket;  // nullptr while disconnected
  int cores = 0;
  int ram_gb = 0;
  std::string host;
  bool shared_disk = false;  // it said it can use the server's repos dir and artifact store
  double last_seen = 0;
  std::map<std::string, std::pair<int, int>> running;  // run id -> (cores, ram)
};

struct StateOptions {
  int default_target_runs = 1;
  double worker_timeout_seconds = 30;
  std::string logs_dir;
  std::string repos_dir;      // given to workers on this machine with each job
  std::string artifacts_dir;  // the artifact store shared with local workers
  // Extra runs per branch under test, spent where the statistics say they teach most
  // (planner::BranchBudget), until a change is localised with extra_confidence.
  int64_t extra_runs = 500;
  double extra_confidence = 0.95;
  int extra_parallel = 8;  // extra runs of one branch in flight at once
  // A run still active this long after it started is recorded as an infrastructure failure and
  // its worker told to cancel it (ServerState::secure_workers).
  double max_run_seconds = 24 * 3600;
  // A run's log keeps this much (`--max-log-mb`): workers are told in each job and cut what
  // their commands write; the server keeps at most kLogSlack more of what a worker sends (the
  // runner's own lines), and ends a log it cut itself with log_cut_line.
  int64_t max_log_bytes = kDefaultMaxLogBytes;
};

class ServerState {
 public:
  ServerState(store::Store& store, StateOptions options);

  // Loads what the store holds. Runs still marked running wait for their worker to come back.
  Status load();
  // Commits already known per repo (for the watcher).
  std::map<std::string, std::set<std::string>> known_commits() const;

  void ingest(RepoBatch batch);
  // Puts a branch under test (its head and `depth` first-parent ancestors get their triggered
  // sets) or takes it off. Error when the branch is unknown.
  Status set_branch_under_test(const std::string& repo, const std::string& branch, bool enabled, int depth);
  Status set_target(const std::string& repo, const std::string& sha, const std::string& name, int runs);
  Status set_commit_set(const std::string& repo, const std::string& sha, const std::string& set, bool enabled);

  // Worker authentication: the worker secret in `token_file` (made at the first start,
  // server/worker_token.h) and the longest a run may last. Error when the token cannot be made
  // or is not private; then no worker is accepted.
  Status secure_workers(const std::string& token_file, double max_run_hours);
  // Whether `token` is the worker secret (constant time; false before secure_workers).
  bool is_worker_token(const std::string& token) const;
  // Whether an upload carrying `upload_token` may store a file of build `hash` (an active build
  // run of that hash was given that token in its job) or the record of run `run_id` (that active
  // run was). Constant-time comparisons.
  bool may_upload_build(const std::string& hash, const std::string& upload_token) const;
  bool may_upload_record(const std::string& run_id, const std::string& upload_token) const;

  // Worker protocol (see docs/api.md "The worker protocol"). A message that is not valid
  // (server/protocol.h), a second hello, or a hello with the id of a worker still connected
  // closes that connection with the reason and changes nothing else. Logs and results count
  // only for active runs the server gave that worker; others are ignored.
  void worker_connected(const std::shared_ptr<Socket>& socket);
  void worker_message(const std::shared_ptr<Socket>& socket, const std::string& text);
  void worker_disconnected(const std::shared_ptr<Socket>& socket);
  // Declares workers silent for too long lost (their runs become infrastructure failures), and
  // ends runs older than the maximum run duration the same way.
  void check_workers(double now);
  // A user's cancel: tells the worker running `run_id` to stop it; the run is recorded cancelled
  // (neither a run nor a failure) when the worker reports back, or at once when its worker is
  // away. Error when the run is not running. The planner then wants a replacement as for any
  // run that taught nothing (docs/web.md "Cancelling a run").
  Status cancel_run(const std::string& run_id);

  // Event streams and live logs.
  void add_event_socket(const std::shared_ptr<Socket>& socket) { event_sockets_.insert(socket); }
  void add_log_socket(const std::string& run_id, const std::shared_ptr<Socket>& socket);
  void remove_socket(const std::shared_ptr<Socket>& socket);
  // Stops streaming live logs (before the io_context goes away).
  void stop_log_viewers() { log_viewers_.stop(); }

  // Read access for the API.
  store::Store& store() { return store_; }
  const std::map<std::string, std::string>& repos() const { return repos_; }
  const std::map<std::pair<std::string, std::string>, store::BranchRow>& branches() const { return branches_; }
  const CommitState* commit(const std::string& repo, const std::string& sha) const;
  std::vector<std::string> first_parent_history(const std::string& repo, const std::string& sha, size_t limit) const;
  const planner::Plan& plan() const { return plan_; }
  planner::HashProgress progress(const std::string& hash) const;
  // Per identity, its cases' (runs, failures) over its finished runs (store::Store::case_counts),
  // cached until a run of that identity ends; empty when the store cannot say.
  const planner::CaseCounts& case_counts(const std::string& hash);
  // Why an identity wanting runs cannot run on any connected worker ("" when it can).
  std::string unrunnable_reason(const std::string& hash) const;
  const std::map<std::string, WorkerState>& workers() const { return workers_; }
  const std::map<std::tuple<std::string, std::string, std::string>, int>& targets() const { return targets_; }
  const std::map<std::pair<std::string, std::string>, std::set<std::string>>& enabled_sets() const { return enabled_; }
  // The log file of run `run_id`; "" when `run_id` is not a run id (core/ids.h).
  std::string log_path(const std::string& run_id) const;
  const std::string& logs_dir() const { return options_.logs_dir; }
  const std::string& artifacts_dir() const { return options_.artifacts_dir; }
  int64_t run_counter() const { return run_counter_; }
  // Extra runs spent by a branch under test so far, and its budget.
  int64_t extra_used(const std::string& repo, const std::string& branch) const;
  int64_t extra_budget() const { return options_.extra_runs; }

  // Replans and dispatches; called after every change.
  void update();

 private:
  void add_commit(store::CommitRow row, std::vector<store::ObjectRow> objects);
  void enable_triggered(const std::string& repo, const std::string& sha);
  void recompute_reachable();
  void dispatch();
  void start_run(WorkerState& worker, const planner::Job& job, int cores, int ram);
  void worker_hello(const std::shared_ptr<Socket>& socket, const HelloMessage& hello);
  void refuse_worker(const std::shared_ptr<Socket>& socket, const std::string& reason);
  // Whether `worker` may report on run `run_id`: it is active and was given to that worker.
  bool runs_for(const std::string& worker, const std::string& run_id) const;
  void finish_run(const std::string& worker, const ResultMessage& result);
  void end_overdue_runs(double now);
  void record_result(store::RunRow run, const std::vector<store::CaseRow>& cases);
  void fail_worker_runs(WorkerState& worker, const std::string& why);
  // Records those of `ids` still active as infrastructure failures, with `why` as detail.
  void fail_runs(const std::vector<std::string>& ids, const std::string& why);
  void append_log(const std::string& run_id, const std::string& data);
  // The run is over: its log, if the server cut it, says so in a last line.
  void end_log(const std::string& run_id);
  void broadcast(const std::string& event);

  store::Store& store_;
  StateOptions options_;
  std::map<std::string, std::string> repos_;
  std::map<std::pair<std::string, std::string>, store::BranchRow> branches_;
  std::map<std::pair<std::string, std::string>, CommitState> commits_;
  std::set<std::pair<std::string, std::string>> reachable_;
  // The planner's input, kept up to date rather than rebuilt for each plan (its commits are
  // passed apart, as pointers to commits_' planned).
  planner::PlanInput plan_input_;
  std::map<std::pair<std::string, std::string>, std::set<std::string>>& enabled_ = plan_input_.enabled_sets;
  std::map<std::tuple<std::string, std::string, std::string>, int>& targets_ = plan_input_.targets;
  std::map<std::string, planner::HashProgress>& progress_ = plan_input_.progress;
  std::map<std::string, store::RunRow> active_runs_;
  std::set<std::string> cancel_sent_;  // active runs already told to stop
  std::set<std::string> user_cancels_;  // active runs a user cancelled (cancel_run)
  std::map<std::string, WorkerState> workers_;
  std::map<int, std::string> worker_by_socket_;
  std::set<std::shared_ptr<Socket>> event_sockets_;
  std::set<int> refused_workers_;  // sockets closed for a protocol error, until they are gone
  std::string worker_token_;       // "" = no worker is accepted
  std::map<std::string, std::string> upload_tokens_;  // active run id -> its job's upload_token
  LogViewers log_viewers_;
  std::map<std::string, int64_t> log_dropped_;  // active run id -> bytes of its log not kept
  planner::Plan plan_;
  int64_t run_counter_ = 0;
  std::map<std::string, int64_t> extra_used_;  // purpose -> extra runs spent (not infra failures)
  std::map<std::string, planner::CaseCounts> case_cache_;  // by hash (case_counts)
  std::map<std::string, std::string> unrunnable_;          // by hash, from the last dispatch
};

}  // namespace testlooper::server
