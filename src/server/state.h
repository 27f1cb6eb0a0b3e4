// ServerState: everything the server knows, in memory, written through to the Store. Owned by
// the io thread: every method is called there (no locks). It turns ingested commits and worker
// messages into stored facts, replans, and dispatches runs to connected workers.
#pragma once

#include <cstdint>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "artifacts/confined_dir.h"
#include "core/log_cap.h"
#include "planner/plan_index.h"
#include "planner/planner.h"
#include "s3store/s3_artifacts.h"
#include "server/fleet_controller.h"
#include "server/http.h"
#include "server/log_viewers.h"
#include "server/protocol.h"
#include "server/stats_cache.h"
#include "server/watcher.h"
#include "store/store.h"

namespace testlooper::server {

// Whether the filesystem of `dir` is (nearly) full: a write that failed there is then an
// infrastructure failure of the server (issue 11 item 8), not a bad upload or a broken test.
bool disk_full(const std::string& dir);

// A commit as the server keeps it: its row and what the planner needs of each object (names,
// kinds and hashes in planned.objects). The objects' definitions stay in the store, fetched on
// demand (ServerState::definition): 500,000 of them held 200 MB (issue 18).
struct CommitState {
  store::CommitRow row;
  planner::PlannedCommit planned;  // parsed from row and objects once; `reachable` kept current
};

struct WorkerState {
  std::string id;
  std::shared_ptr<Socket> socket;  // nullptr while disconnected
  int cores = 0;
  int ram_gb = 0;
  std::string host;
  bool shared_disk = false;  // it said it can use the server's repos dir and artifact store
  std::vector<std::string> platforms = {"linux"};  // what it can run (HelloMessage)
  bool docker = false;
  bool ami = false;
  bool job_acks = false;  // it reads acks in a job's "acks" (HelloMessage)
  std::string image;     // an ami worker's image: a machine of the fleet runs one job only
  int runs_started = 0;  // runs given to it since the server started
  double last_seen = 0;
  std::string token;  // the name of the worker token it connected with
  std::string address;  // the IP address its connection came from (a deployment's ports there)
  std::map<std::string, std::pair<int, int>> running;  // run id -> (cores, ram)
  // The runs it ended most recently (at most kRecentRuns, the newest first), since the server
  // started: for GET /api/workers.
  std::deque<store::RunRow> recent;
};
constexpr size_t kRecentRuns = 5;

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
  // Infrastructure failures in a row of one identity or environment (Holds below) wait
  // infra_backoff_seconds, doubling each time up to infra_backoff_max_seconds; after
  // infra_max_failures in a row it is infra_blocked until a user retries it.
  double infra_backoff_seconds = 10;
  double infra_backoff_max_seconds = 30 * 60;
  int infra_max_failures = 5;
  std::string store_path;  // the database file, named when writing it fails
  // A run's log keeps this much (`--max-log-mb`): workers are told in each job and cut what
  // their commands write; the server keeps at most kLogSlack more of what a worker sends (the
  // runner's own lines), and ends a log it cut itself with log_cut_line.
  int64_t max_log_bytes = kDefaultMaxLogBytes;
  // A deployment with no terminal viewer this long is shut down, and any deployment once it has
  // lived this long (docs/configuration.md `deployment_idle_seconds`, `deployment_max_hours`).
  double deployment_idle_seconds = 3600;
  double deployment_max_seconds = 24 * 3600;
};

// The most of a deployment's terminal output the server keeps for a viewer that attaches late.
inline constexpr size_t kTerminalScrollback = 256 << 10;

// A deployment booted by a user (state_deployments.cc; docs/api.md "Deployments"): waiting for
// its builds, then starting on a worker (its cores and RAM held), running (its environment
// ready, a terminal open), stopped.
struct DeploymentState {
  store::DeploymentRow row;
  int cores = 0;
  int ram_gb = 0;
  std::set<std::shared_ptr<Socket>> viewers;  // terminal WebSockets attached now
  std::string screen;                         // the terminal's last kTerminalScrollback bytes
  double idle_since = 0;                      // when its last viewer left (or it started)
};

class ServerState {
 public:
  ServerState(store::Store& store, StateOptions options);

  // Loads what the store holds. Runs still marked running wait for their worker to come back.
  Status load();
  // Commits already known per repo (for the watcher).
  std::map<std::string, std::set<std::string>> known_commits() const;
  // For the watcher, per repo: the known commits stored with an error (resolved again at its
  // first look, as a commit they pin may have arrived), and the commits that stored
  // definitions name as build dependencies but that are not stored (pinned by sha).
  std::map<std::string, std::set<std::string>> commits_with_errors() const;
  std::map<std::string, std::set<std::string>> unstored_pins() const;

  void ingest(RepoBatch batch);
  // The watcher found exactly the repos `present`: every other repo is forgotten (from
  // /api/repos, its branches from the planner). Its commits, runs, results and branch rows stay
  // in the store; a repo that comes back under the same name is the same repo, its branches
  // under test as they were.
  void forget_missing_repos(const std::set<std::string>& present);
  // Puts a branch under test (its head and `depth` first-parent ancestors get their triggered
  // sets, and so does each new head while it stays under test) or takes it off: the sets its
  // being under test enabled are disabled again, unless a user enabled them by hand or another
  // branch under test enabled them too; then runs nobody wants any more are cancelled (update).
  // Error when the branch is unknown.
  Status set_branch_under_test(const std::string& repo, const std::string& branch, bool enabled, int depth);
  Status set_target(const std::string& repo, const std::string& sha, const std::string& name, int runs);
  Status set_commit_set(const std::string& repo, const std::string& sha, const std::string& set, bool enabled);

  // Worker authentication (state_tokens.cc): the local workers' token in `token_file` (made
  // at the first start, server/worker_token.h), registered in the store as the worker token
  // named "local" (server/tokens.h; at every start when it is missing), and the
  // longest a run may last. Error when the token cannot be made or is not private, or cannot
  // be registered.
  Status secure_workers(const std::string& token_file, double max_run_hours);
  // The API token whose text is `text` (docs/configuration.md "Access"): looked up in the
  // store by its SHA-256 at every call, so a revoke takes effect at the next request, and the
  // hash compared in constant time. Its last_used is written at most once a minute. nullopt
  // when there is none (or the store cannot say).
  std::optional<store::TokenRow> find_token(const std::string& text);
  // Whether `token` is a token of role worker.
  bool is_worker_token(const std::string& token);
  // The first back-off after an infrastructure failure (StateOptions::infra_backoff_seconds).
  void set_infra_backoff(double seconds) { options_.infra_backoff_seconds = seconds; }
  // Whether an upload carrying `upload_token` may store a file of build `hash` (an active build
  // run of that hash was given that token in its job) or the record of run `run_id` (that active
  // run was). Constant-time comparisons.
  bool may_upload_build(const std::string& hash, const std::string& upload_token) const;
  bool may_upload_record(const std::string& run_id, const std::string& upload_token) const;

  // Worker protocol (see docs/api.md "The worker protocol"). A message that is not valid
  // (server/protocol.h), a second hello, or a hello with the id of a worker still connected
  // closes that connection with the reason and changes nothing else. Logs and results count
  // only for active runs the server gave that worker; others are ignored.
  // `token` is the worker token the connection was opened with (find_token): a worker whose
  // token is revoked is disconnected at its next message or dispatch (drop_revoked_workers).
  void worker_connected(const std::shared_ptr<Socket>& socket, const store::TokenRow& token);
  void worker_message(const std::shared_ptr<Socket>& socket, const std::string& text);
  void worker_disconnected(const std::shared_ptr<Socket>& socket);
  // Declares workers silent for too long lost (their runs become infrastructure failures), and
  // ends runs older than the maximum run duration the same way.
  void check_workers(double now);
  // A user's cancel: tells the worker running `run_id` to stop it (stop_run, detail "cancelled
  // by a user"). Error when the run is not running. The planner then wants a replacement as for
  // any run that taught nothing (docs/web.md "Cancelling a run").
  Status cancel_run(const std::string& run_id);
  // A user's retry of object `name` of a commit: forgets its identity's and its environment's
  // infrastructure failures (and back-off), and for a build that failed all its tries, forgives
  // those failures so that it runs again. Error when there is no such commit or object; false
  // when there was nothing to retry.
  Result<bool> retry(const std::string& repo, const std::string& sha, const std::string& name);

  // Deployments (state_deployments.cc). Boots object `name` (a deployment) of a commit for
  // `booted_by`: waiting until its builds succeeded, then started on a worker that can run its
  // environment. Error (message for a 4xx) when there is no such deployment.
  Result<store::DeploymentRow> boot_deployment(const std::string& repo, const std::string& sha,
                                               const std::string& name,
                                               const std::string& booted_by);
  // "Debug this run": a deployment of run `run_id`'s object (a test or a build), its inputs
  // staged as for the run and its commands not run, for a person to reproduce it by hand. It
  // starts once the object's builds are built (they were, for the run). Error (message for a
  // 404) when there is no such run or its commit or object is no longer known.
  Result<store::DeploymentRow> debug_run(const std::string& run_id, const std::string& booted_by);
  // Stops deployment `id` (its worker told to end it, its cores freed). Error when unknown;
  // false when it was stopped already.
  Result<bool> shutdown_deployment(const std::string& id, const std::string& why);
  const std::map<std::string, DeploymentState>& deployments() const { return deployments_; }
  // Where port `name` (its definition's portExpose) of running deployment `id` answers: its
  // worker's address and the port. Error (message for a 404) otherwise.
  struct PortTarget {
    std::string host;
    int port = 0;
  };
  Result<PortTarget> deployment_port(const std::string& id, const std::string& name) const;
  // Deployment `id` was used through one of its ports (a request, a WebSocket): it is not idle.
  void deployment_used(const std::string& id);
  // The address a worker connection came from (Request::client), kept for its hello.
  void note_worker_address(int socket_id, const std::string& address) {
    worker_addresses_[socket_id] = address;
  }
  // A terminal viewer of deployment `id`: it gets the scroll-back, then every output. Error
  // (the reason to close it with) when the deployment is not starting or running.
  Status add_terminal_viewer(const std::string& id, const std::shared_ptr<Socket>& socket);
  // A viewer's message: `binary` frames are keystrokes, text frames JSON control messages
  // ({"type": "resize", "cols", "rows"}); anything else is ignored.
  void terminal_message(const std::shared_ptr<Socket>& socket, const std::string& data,
                        bool binary);

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
  // The stored definition (definitions::object_to_json, the JSON text a worker receives) of
  // object `name` of a commit; "" when there is none or the store cannot say now. Read from the
  // store on demand and kept in a bounded cache (kCachedDefinitions), dropped for a commit
  // whose definitions are stored again.
  std::string definition(const std::string& repo, const std::string& sha,
                         const std::string& name) const;
  // The object named `name` of a commit as the planner sees it, or nullptr.
  const planner::PlannedObject* object(const std::string& repo, const std::string& sha,
                                       const std::string& name) const;
  std::vector<std::string> first_parent_history(const std::string& repo, const std::string& sha, size_t limit) const;
  const planner::Plan& plan() const { return plan_; }
  planner::HashProgress progress(const std::string& hash) const;
  // Per identity, its cases' (runs, failures) over its finished runs (store::Store::case_counts),
  // cached until a run of that identity ends; empty when the store cannot say.
  const planner::CaseCounts& case_counts(const std::string& hash);
  // The statistics of tests along first-parent windows, kept between requests (stats_cache.h).
  StatsCache& stats_cache() { return stats_cache_; }
  const StatsCache& stats_cache() const { return stats_cache_; }
  // Changes whenever a commit is added or its objects replaced (a commit resolved again): the
  // statistics cache recomputes the windows it kept then.
  uint64_t commits_generation() const { return commits_generation_; }
  // Why an identity wanting runs cannot run on any connected worker ("" when it can).
  std::string unrunnable_reason(const std::string& hash) const;
  const std::map<std::string, WorkerState>& workers() const { return workers_; }
  const std::map<std::tuple<std::string, std::string, std::string>, int>& targets() const { return targets_; }
  const std::map<std::pair<std::string, std::string>, std::set<std::string>>& enabled_sets() const { return enabled_; }
  // The log file of run `run_id`; "" when `run_id` is not a run id (core/ids.h).
  std::string log_path(const std::string& run_id) const;
  const std::string& logs_dir() const { return options_.logs_dir; }
  const std::string& artifacts_dir() const { return options_.artifacts_dir; }
  // Artifacts in S3 (s3store/s3_artifacts.h), or nullptr when they are kept on the local disk
  // only. Not owned; set before load().
  void set_s3(s3store::S3Artifacts* s3) { s3_ = s3; }
  s3store::S3Artifacts* s3() const { return s3_; }
  int64_t run_counter() const { return run_counter_; }
  // Runs ended since the server started, by (state: succeeded, failed, infra_failed, cancelled;
  // kind: build, test), for GET /metrics.
  const std::map<std::pair<std::string, std::string>, int64_t>& runs_ended() const {
    return runs_ended_;
  }
  // Runs active now (started on a worker, not ended).
  size_t active_runs() const { return active_runs_.size(); }
  // Extra runs spent by a branch under test so far, and its budget.
  int64_t extra_used(const std::string& repo, const std::string& branch) const;
  int64_t extra_budget() const { return options_.extra_runs; }
  double extra_confidence() const { return options_.extra_confidence; }
  // The extra runs of a branch's current head running now, and those the plan wants started.
  struct ExtraInFlight {
    int64_t active = 0;
    int64_t queued = 0;
  };
  ExtraInFlight extra_in_flight(const std::string& repo, const std::string& branch) const;
  // Runs the plan wants that have not started, by kind ("build", "test": both always present).
  std::map<std::string, int64_t> queued_runs() const;
  // The active run `id` (nullptr when it is not running).
  const store::RunRow* active_run(const std::string& id) const;

  // What the fleet needs (state_fleet.cc): the runs the last dispatch left waiting (and those no
  // connected worker can run), grouped by what a machine needs to take them, and every worker.
  FleetSnapshot fleet_snapshot() const;

  // Replans, cancels the active runs nobody wants any more (cancel_unwanted), and dispatches;
  // called after every change.
  void update();
  // While held, update() starts no run: `serve` holds dispatch until the background check of
  // the store (store::check_sqlite_store) found it sound, so that nothing is run on a store that
  // stops the server when the check ends. Reads and results are served meanwhile.
  void hold_dispatch(bool held) { dispatch_held_ = held; }
  // update() once, at the end of this turn of the io loop (posted through `socket`): results
  // that arrive together are replanned and dispatched once, and stored with the first run that
  // starts (pending_results_; each acknowledged once stored) (issue 18).
  void update_soon(const std::shared_ptr<Socket>& socket);

  // Writing the store failed (a full disk, an I/O error: issue 11 item 8) and has not worked
  // since: dispatch is paused and results wait in memory, retried with back-off
  // (retry_unstored). User writes that fail meanwhile are answered 507.
  bool store_writable() const { return store_delay_ == 0; }
  // Results recorded but not yet stored (the store could not write them).
  size_t unstored_results() const { return unstored_.size(); }
  // Stores the results that could not be stored, once the back-off allows; called periodically.
  void retry_unstored(double now);
  // A failed write of `what` under the data dir (database, log, artifact, upload): logs it, once
  // per attempt, and backs off, from 2 s doubling to 5 min.
  void store_failed(const std::string& what, const Error& error);

 private:
  // The planner's view of definitions parsed already (load() parses each distinct definition
  // once: commits share most of their objects' identities). A stored definition names its
  // commit (its full name, its sources' commit, its builds' full names), so each is keyed by its
  // text with its commit's sha taken out, and its builds' names given the sha back.
  struct ParsedDefinitions {
    struct Entry {
      planner::PlannedObject object;  // no name, kind or hash; the sha marked in builds' names
      bool names_commit = false;      // the sha is elsewhere too (an image): not reused
    };
    std::unordered_map<std::string, Entry> by_text;
    std::string key;  // the last text looked up, as its key
  };
  void add_commit(store::CommitRow row, const std::vector<store::ObjectRow>& objects,
                  ParsedDefinitions* parsed = nullptr);
  // Deployments (state_deployments.cc).
  Status load_deployments();
  // Stores and adds a waiting deployment of `object` (of `repo`'s commit `sha`).
  Result<store::DeploymentRow> add_deployment(const std::string& repo, const std::string& sha,
                                              const planner::PlannedObject& object,
                                              const std::string& booted_by,
                                              const std::string& debug_run);
  // The jobs of the waiting deployments whose builds are done (each one run, purpose = its id);
  // stops those whose builds failed.
  std::vector<planner::Job> deployment_jobs();
  void start_deployment(WorkerState& worker, const planner::Job& job, int cores, int ram);
  // No connected worker can run waiting deployment `id`: its detail says why (not stored).
  void deployment_unrunnable(const std::string& id, const std::string& reason);
  void deployment_message(const WorkerState& worker, const DeploymentMessage& m);
  void terminal_output(const WorkerState& worker, const TerminalMessage& m);
  // Marks `d` stopped with `why`; its worker, when `tell_worker` and connected, told to end it.
  void stop_deployment(DeploymentState& d, const std::string& why, bool tell_worker);
  void stop_worker_deployments(const std::string& worker, const std::string& why);
  void check_deployments(double now);
  void remove_terminal_viewer(const std::shared_ptr<Socket>& socket);
  // Adds to a job message what a worker needs to reach its files: the server's directories
  // when it shares the server's disk, else the S3 bucket when artifacts are kept there.
  void add_file_access(nlohmann::json& message, const WorkerState& worker) const;
  // Enables the sets `sha`'s triggers select, on behalf of branch `branch` under test.
  // Deletes the branches of `repo` whose names are not in `keep`: from branches_ and the store.
  void delete_branches(const std::string& repo, const std::set<std::string>& keep);
  void enable_triggered(const std::string& repo, const std::string& sha, const std::string& branch);
  // Disables the sets branch `branch` enabled, but those a user enabled by hand or another
  // branch enabled too.
  void disable_branch_sets(const std::string& repo, const std::string& branch);
  // Whether set `set` of `key` stays enabled: a user or some branch enabled it.
  void refresh_enabled(const std::pair<std::string, std::string>& key, const std::string& set);
  void recompute_reachable();
  // Stops the active runs nobody wants any more (the seed: "cancel running tests or builds if
  // their priority goes to zero"): runs users want beyond the plan's `keep` for their identity
  // (the newest first), and extra runs of a branch no longer under test.
  void cancel_unwanted();
  // Stops active run `run_id`, recorded cancelled with `why` as detail: its worker is sent
  // `cancel` and the run is recorded when it reports back, or at once when the worker is away
  // (it is told again when it says hello).
  void stop_run(const std::string& run_id, const std::string& why);
  void dispatch();
  // update()'s plan and dispatch (a result stored after its plan asks for a second one).
  void plan_and_dispatch();
  // The plan of what is known now (plan_): nothing is started, stopped or stored.
  void replan();
  void start_run(WorkerState& worker, const planner::Job& job, int cores, int ram);
  void worker_hello(const std::shared_ptr<Socket>& socket, const HelloMessage& hello);
  // Closes the worker connections whose token was revoked (a worker token no more): they get
  // no new job, and their runs end as for any worker lost.
  void drop_revoked_workers();
  void refuse_worker(const std::shared_ptr<Socket>& socket, const std::string& reason);
  // Whether `worker` may report on run `run_id`: it is active and was given to that worker.
  bool runs_for(const std::string& worker, const std::string& run_id) const;
  void finish_run(const std::string& worker, const ResultMessage& result);
  void end_overdue_runs(double now);
  // Ends an active run. False when the store cannot write it now: the run then waits in
  // unstored_ (still counted active by the planner, its worker not acknowledged, so that a
  // restart loses nothing) until retry_unstored stores it.
  // `s3_keys`: the objects its worker says it put in S3 itself (checked by is_run_key and
  // is_build_key already); they are verified, and the record fetched from S3, before the result
  // is stored (a run whose objects fail that is recorded as an infrastructure failure).
  // `with_next_write`: a worker's result, which may wait for the next write (pending_results_).
  bool record_result(store::RunRow run, const std::vector<store::CaseRow>& cases,
                     bool environment_failed = false,
                     std::optional<std::vector<s3store::PutKey>> s3_keys = std::nullopt,
                     bool with_next_write = false);
  // Whether storing `run` may hold its identity or environment back (update_holds): an
  // infrastructure failure, a failed build. Such a result is stored before any plan.
  static bool may_set_hold(const store::RunRow& run);
  // What follows a stored result: counts, holds (update_holds), events, live log viewers.
  void result_stored(const store::RunRow& run, bool counted, bool environment_failed);
  void store_worked();
  // Holds: after a recorded run, counts or clears its infrastructure failures and sets when the
  // next run of its identity may start (back-off, a failed build's retry_wait_seconds).
  void update_holds(const store::RunRow& run, bool environment_failed);
  void put_hold(const store::HoldRow& hold);
  // The holds as the planner sees them now; sets next_wake_.
  void plan_holds(double now);
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
  // Branches of repos that are gone (forget_missing_repos), by (repo, branch), until it is back.
  std::map<std::pair<std::string, std::string>, store::BranchRow> forgotten_branches_;
  std::map<std::pair<std::string, std::string>, CommitState> commits_;
  std::set<std::pair<std::string, std::string>> reachable_;
  // The planner's input, kept up to date rather than rebuilt for each plan (its commits are
  // passed apart, as pointers to commits_' planned).
  planner::PlanInput plan_input_;
  // The planner's index of commits_' planned commits, updated as commits are added (add_commit),
  // so that a replan does not pass over every object of every commit (issue 18).
  planner::PlanIndex plan_index_;
  std::map<std::pair<std::string, std::string>, std::set<std::string>>& enabled_ = plan_input_.enabled_sets;
  std::map<std::tuple<std::string, std::string, std::string>, int>& targets_ = plan_input_.targets;
  planner::ProgressMap& progress_ = plan_input_.progress;
  std::map<std::string, store::RunRow> active_runs_;
  // Active runs being stopped (stop_run) -> the detail they are recorded with when cancelled.
  std::map<std::string, std::string> cancels_;
  // Who enabled each enabled set: (repo, sha) -> set -> branches under test that enabled it,
  // and the (repo, sha, set) a user enabled by hand. enabled_ is their union.
  std::map<std::pair<std::string, std::string>, std::map<std::string, std::set<std::string>>>
      branch_sets_;
  std::set<std::tuple<std::string, std::string, std::string>> hand_sets_;
  std::map<std::string, WorkerState> workers_;
  std::map<int, std::string> worker_by_socket_;
  std::set<std::shared_ptr<Socket>> event_sockets_;
  std::set<int> refused_workers_;  // sockets closed for a protocol error, until they are gone
  // Open worker connections -> the token each was opened with (worker_connected).
  std::map<int, std::pair<std::shared_ptr<Socket>, store::TokenRow>> worker_tokens_;
  // The store's token_generation when every connected worker's token was last found valid:
  // drop_revoked_workers reads the tokens again only when it changed (it runs on every worker
  // message and dispatch).
  std::optional<std::pair<int64_t, int64_t>> tokens_checked_;
  std::map<std::string, std::string> upload_tokens_;  // active run id -> its upload token's hash
  LogViewers log_viewers_;
  std::map<std::string, int64_t> log_dropped_;  // active run id -> bytes of its log not kept
  // Active run id -> its log file, kept open for appending (at most kOpenLogs at once; the others
  // are opened per message): an open, a stat and a close per log message cost serve CPU per run.
  struct OpenLog {
    artifacts::Fd fd;
    int64_t size = 0;
  };
  std::map<std::string, OpenLog> open_logs_;
  static constexpr size_t kOpenLogs = 256;
  planner::Plan plan_;
  int64_t run_counter_ = 0;
  std::map<std::pair<std::string, std::string>, int64_t> runs_ended_;  // runs_ended()
  std::map<std::string, int64_t> extra_used_;  // purpose -> extra runs spent (not infra failures)
  std::map<std::string, planner::CaseCounts> case_cache_;  // by hash (case_counts)
  // Definitions read from the store by (repo, sha, name) (definition()): a cache, so mutable;
  // cleared when it reaches kCachedDefinitions.
  mutable std::map<std::tuple<std::string, std::string, std::string>, std::string> definitions_;
  static constexpr size_t kCachedDefinitions = 10'000;
  bool dispatch_held_ = false;                             // hold_dispatch
  StatsCache stats_cache_;
  uint64_t commits_generation_ = 0;
  std::map<std::string, std::string> unrunnable_;          // by hash, from the last dispatch
  // The jobs of the deployments ready to start that the last dispatch left waiting (the fleet
  // boots machines for them: fleet_snapshot).
  std::vector<planner::Job> waiting_deployments_;
  // Holds (store::HoldRow) by key: loaded at start, written through on every change.
  std::map<std::string, store::HoldRow> holds_;
  double next_wake_ = 0;  // when a back-off ends and the plan changes (0 = none pending)
  bool update_posted_ = false;  // update_soon posted an update() that has not run yet
  // Results the store could not write yet, by run id (record_result).
  struct Unstored {
    store::RunRow run;
    std::vector<store::CaseRow> cases;
    bool environment_failed = false;
    bool ack = false;  // its worker reported it and waits for the ack
    // Its worker put its files in S3 itself, verified: only the log is left to put.
    bool record_in_s3 = false;
  };
  std::map<std::string, Unstored> unstored_;
  // Workers' results that wait for the next write, by run id (issue 18): stored with the next new
  // run in one commit (start_run), else at the end of update(); acknowledged once stored. Until
  // then the planner counts them active, as it does unstored_. Only results that hold nothing
  // back wait so (record_result): an infrastructure failure or a failed build is stored at once,
  // before a plan could give its identity out again.
  std::map<std::string, Unstored> pending_results_;
  bool results_stored_late_ = false;  // pending results were stored after the plan was made
  // Stores pending_results_ and then `started` (when given) in one transaction. On failure the
  // results wait in unstored_ (stored_or_waiting) and the error is returned. With `job_acks`,
  // the acks due to `started`'s worker are added there (for its job) rather than sent.
  Status store_pending(const store::RunRow* started, std::vector<std::string>* job_acks = nullptr);
  // The result of run `id` waiting to be stored (pending, unstored or in S3), or null.
  Unstored* waiting_result(const std::string& id);
  // Puts the run's files in S3 (when it is on), then stores its result: a result is never
  // acknowledged before its files are in S3.
  Result<bool> store_result(const store::RunRow& run, const std::vector<store::CaseRow>& cases,
                            bool record_in_s3);
  // The end of storing `u`: `recorded` is the store's answer. Failed: `u` waits in unstored_
  // (the failure logged, with back-off). Stored: counts, events, and its ack when `u.ack`.
  bool stored_or_waiting(const Unstored& u, const Result<bool>& recorded);
  // Sends `u`'s worker its ack, when it waits for one (`u.ack`).
  void acknowledge(const Unstored& u);
  // Sends worker `worker`, when connected, the ack of run `run_id` (its result is stored).
  void send_ack(const std::string& worker, const std::string& run_id);
  // Stores the results whose files another thread finished putting in S3 (s3_puts_).
  void collect_s3_puts();
  s3store::S3Artifacts* s3_ = nullptr;
  std::map<std::string, DeploymentState> deployments_;
  std::map<int, std::string> terminal_of_socket_;  // viewer socket id -> deployment id
  std::map<int, std::string> worker_addresses_;    // worker socket id -> its client address
  // Runs whose files are being put in S3 by another thread (a large build takes seconds: not on
  // the io thread), by run id; their results are stored once that is done (collect_s3_puts).
  struct S3PutOutcome {
    Status put;       // the puts (an S3 failure of the server's: the result waits)
    Status verified;  // the objects the worker put itself (a failure: the run's, infra)
  };
  struct S3Put {
    Unstored unstored;
    std::future<S3PutOutcome> done;
  };
  std::map<std::string, S3Put> s3_puts_;
  double store_delay_ = 0;      // the current back-off of store writes; 0 = writable
  double store_retry_at_ = 0;   // no store write (nor dispatch) before this
  double store_failed_at_ = 0;  // the last failed write; a run started later and stored resets
};

}  // namespace testlooper::server
