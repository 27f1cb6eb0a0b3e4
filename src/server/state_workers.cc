// ServerState: the worker protocol, dispatch, results and live streams.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "artifacts/artifacts.h"
#include "artifacts/transfer.h"
#include "core/hash.h"
#include "core/ids.h"
#include "core/token.h"
#include "core/write_all.h"
#include "dispatch/dispatch.h"
#include "server/event_log.h"
#include "server/http.h"
#include "server/protocol.h"
#include "server/state.h"
#include "server/worker_token.h"

namespace testlooper::server {
namespace {

using nlohmann::json;

// What a worker may send of a log beyond --max-log-mb: the runner's own lines after the cut.
constexpr int64_t kLogSlack = 64 << 10;

// A run id (core/ids.h): 8 bytes from the CSPRNG.
std::string new_run_id() { return random_hex(8); }

// Puts run `run`'s files in S3: a succeeded build's files, then its record and log `log` (only
// the log when `record_in_s3`: its worker put the rest).
Status put_run_files(s3store::S3Artifacts& s3, const std::string& artifacts_dir,
                     const store::RunRow& run, const std::string& log, bool record_in_s3) {
  const artifacts::Store local(artifacts_dir);
  if (run.kind == "build" && run.state == store::RunState::kSucceeded) {
    TL_RETURN_IF_ERROR(s3.put_build(local, run.hash));
  }
  if (record_in_s3) return s3.put_log(run.id, log);
  return s3.put_run(run.id, local.run_dir(run.id), log);
}

// Checks what the worker of `run` says it put in S3 (`keys`, named within its run already): each
// object is there with its size and ETag, the record is no larger than an upload may be
// (kMaxFileBodyBytes), a succeeded build is complete in S3; then fetches the run's record into
// the local store, as if it had been uploaded.
Status verify_worker_keys(s3store::S3Artifacts& s3, const std::string& artifacts_dir,
                          const store::RunRow& run, const std::vector<s3store::PutKey>& keys) {
  TL_RETURN_IF_ERROR(s3.verify(keys));
  // The record comes to the server's disk: no larger than an upload of it may be.
  uint64_t record_bytes = 0;
  for (const s3store::PutKey& k : keys) {
    if (k.key.rfind("runs/", 0) == 0) record_bytes += k.size;
  }
  if (record_bytes > kMaxFileBodyBytes) {
    return Error{"runs/" + run.id + "/", fmt::format("holds {} bytes, more than an upload may ({})",
                                                     record_bytes, kMaxFileBodyBytes)};
  }
  if (run.kind == "build" && run.state == store::RunState::kSucceeded) {
    const std::string complete = "builds/" + run.hash + "/" + artifacts::kCompleteFile;
    Result<bool> there = s3.has(complete);
    if (!there.ok()) return there.error();
    if (!*there) return Error{complete, "is not in the bucket: the build is not complete there"};
  }
  return s3.fetch_run(artifacts::Store(artifacts_dir), run.id, keys);
}

// What a worker sent, fit for a log line: printable, at most 200 bytes.
std::string printable(const std::string& text) {
  std::string out = text.substr(0, 200);
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

// Why the keys a worker named for `run` are refused ("" = they are not): each must be a file of
// the run's record (runs/<run id>/...) or, for a build, of that build (builds/<hash>/...).
std::string refused_keys(bool in_s3, const store::RunRow& run,
                         const std::vector<s3store::PutKey>& keys) {
  if (!in_s3) return "this server does not keep artifacts in S3";
  for (const s3store::PutKey& k : keys) {
    if (s3store::is_run_key(run.id, k.key)) continue;
    if (run.kind == "build" && s3store::is_build_key(run.hash, k.key)) continue;
    return "'" + printable(k.key) + "' is not under runs/" + run.id + "/" +
           (run.kind == "build" ? " nor builds/" + run.hash + "/" : "");
  }
  return "";
}

}  // namespace

bool disk_full(const std::string& dir) {
  std::error_code ec;
  const std::filesystem::space_info space = std::filesystem::space(dir, ec);
  return !ec && space.available < (1u << 20);
}

std::string ServerState::log_path(const std::string& run_id) const {
  if (!is_run_id(run_id)) return "";
  return options_.logs_dir + "/" + run_id + ".log";
}

bool ServerState::may_upload_build(const std::string& hash, const std::string& upload_token) const {
  bool allowed = false;
  for (const auto& [run_id, run] : active_runs_) {
    if (run.kind != "build" || run.hash != hash) continue;
    auto token = upload_tokens_.find(run_id);
    if (token != upload_tokens_.end() && same_secret(token->second, sha256_hex(upload_token))) {
      allowed = true;
    }
  }
  return allowed;
}

bool ServerState::may_upload_record(const std::string& run_id,
                                    const std::string& upload_token) const {
  auto token = upload_tokens_.find(run_id);
  return active_runs_.count(run_id) && token != upload_tokens_.end() &&
         same_secret(token->second, sha256_hex(upload_token));
}

bool ServerState::runs_for(const std::string& worker, const std::string& run_id) const {
  auto run = active_runs_.find(run_id);
  return run != active_runs_.end() && run->second.worker == worker;
}

void ServerState::refuse_worker(const std::shared_ptr<Socket>& socket, const std::string& reason) {
  worker_disconnected(socket);
  refused_workers_.insert(socket->id());
  socket->close(reason);
}

void ServerState::worker_message(const std::shared_ptr<Socket>& socket, const std::string& text) {
  // Messages already on their way when the connection was refused.
  if (refused_workers_.count(socket->id())) return;
  drop_revoked_workers();
  if (refused_workers_.count(socket->id())) return;
  Result<WorkerMessage> parsed = parse_worker_message(text);
  if (!parsed.ok()) return refuse_worker(socket, "invalid message: " + parsed.error().to_string());
  if (const auto* hello = std::get_if<HelloMessage>(&*parsed)) return worker_hello(socket, *hello);
  auto known = worker_by_socket_.find(socket->id());
  if (known == worker_by_socket_.end())
    return refuse_worker(socket, "the first message must be a hello");
  WorkerState& w = workers_[known->second];
  w.last_seen = now_seconds();
  if (const auto* log = std::get_if<LogMessage>(&*parsed)) {
    if (runs_for(w.id, log->run_id)) append_log(log->run_id, log->data);
  } else if (const auto* result = std::get_if<ResultMessage>(&*parsed)) {
    finish_run(w.id, *result);
    update_soon(socket);
  } else if (const auto* deployment = std::get_if<DeploymentMessage>(&*parsed)) {
    deployment_message(w, *deployment);
  } else if (const auto* terminal = std::get_if<TerminalMessage>(&*parsed)) {
    terminal_output(w, *terminal);
  }
}

void ServerState::update_soon(const std::shared_ptr<Socket>& socket) {
  if (update_posted_) return;
  update_posted_ = true;
  socket->post([this] {
    update_posted_ = false;
    update();
  });
}

void ServerState::worker_hello(const std::shared_ptr<Socket>& socket, const HelloMessage& m) {
  if (worker_by_socket_.count(socket->id())) return refuse_worker(socket, "hello was said already");
  const double now = now_seconds();
  if (auto existing = workers_.find(m.worker);
      existing != workers_.end() && existing->second.socket) {
    // A connection that went silent is the same worker's, lost without a close: replaced. A live
    // one is never taken over.
    if (now - existing->second.last_seen < options_.worker_timeout_seconds) {
      return refuse_worker(socket, "a worker with id '" + m.worker + "' is already connected");
    }
    const std::shared_ptr<Socket> old = existing->second.socket;
    worker_disconnected(old);
    refused_workers_.insert(old->id());
    old->close("replaced by a new connection of the same worker");
  }
  const std::string& id = m.worker;
  WorkerState& w = workers_[id];
  w.id = id;
  w.socket = socket;
  w.cores = m.cores;
  w.ram_gb = m.ram_gb;
  w.host = m.host;
  w.shared_disk = m.shared_disk;
  w.platforms = m.platforms;
  w.docker = m.docker;
  w.ami = m.ami;
  w.image = m.ami ? m.image : "";
  w.last_seen = now;
  if (auto t = worker_tokens_.find(socket->id()); t != worker_tokens_.end()) {
    w.token = t->second.second.name;
  }
  if (auto a = worker_addresses_.find(socket->id()); a != worker_addresses_.end()) {
    w.address = a->second;
  }
  worker_by_socket_[socket->id()] = id;
  log_event("info", "worker_connected",
            {{"worker", id},
             {"host", m.host},
             {"cores", std::to_string(m.cores)},
             {"ram_gb", std::to_string(m.ram_gb)}});
  for (const auto& r : m.finished) finish_run(id, r);
  // Runs the server thinks this worker has but it does not report are lost.
  const std::set<std::string> still(m.running.begin(), m.running.end());
  std::vector<std::string> lost;
  for (const auto& [run_id, res] : w.running) {
    if (!still.count(run_id)) lost.push_back(run_id);
  }
  fail_runs(lost, "the worker restarted without this run");
  // A machine booted for an AMI that had a run (before a restart of the server) had its one job.
  if (w.ami && (!m.running.empty() || !m.finished.empty()))
    w.runs_started = std::max(w.runs_started, 1);
  // Runs it still has that are over here (cancelled while it was away, or given up on) or that
  // are being stopped (stop_run: a user's cancel, or no longer wanted) are stopped; another
  // worker's active runs are none of its business.
  for (const auto& run_id : still) {
    const bool active = active_runs_.count(run_id) > 0;
    if (active && (!runs_for(id, run_id) || !cancels_.count(run_id))) continue;
    socket->send(json{{"type", "cancel"}, {"run_id", run_id}}.dump());
  }
  broadcast(json{{"type", "workers"}}.dump());
  update();
}

void ServerState::worker_disconnected(const std::shared_ptr<Socket>& socket) {
  refused_workers_.erase(socket->id());
  worker_tokens_.erase(socket->id());
  worker_addresses_.erase(socket->id());
  auto it = worker_by_socket_.find(socket->id());
  if (it == worker_by_socket_.end()) return;
  auto w = workers_.find(it->second);
  if (w != workers_.end() && w->second.socket == socket) {
    w->second.socket.reset();  // cancels it may not have received are sent again at its hello
    // A worker ends its deployments when its connection does (their terminals went with it).
    stop_worker_deployments(w->first, "the worker's connection ended");
    log_event("info", "worker_disconnected",
              {{"worker", w->first}, {"running", std::to_string(w->second.running.size())}});
  }
  worker_by_socket_.erase(it);
  broadcast(json{{"type", "workers"}}.dump());
}

void ServerState::check_workers(double now) {
  collect_s3_puts();
  retry_unstored(now);
  end_overdue_runs(now);
  check_deployments(now);
  drop_revoked_workers();
  // A back-off or a build's retry wait ended: its object wants runs again.
  if (next_wake_ > 0 && now >= next_wake_) update();
  std::vector<std::string> gone;
  for (auto& [id, w] : workers_) {
    if (w.socket || now - w.last_seen < options_.worker_timeout_seconds) continue;
    log_event("warn", "worker_lost",
              {{"worker", id}, {"running", std::to_string(w.running.size())}});
    fail_worker_runs(w, "the worker was lost");
    gone.push_back(id);
  }
  for (const auto& id : gone) workers_.erase(id);
  if (!gone.empty()) {
    broadcast(json{{"type", "workers"}}.dump());
    update();
  }
}

void ServerState::end_overdue_runs(double now) {
  std::vector<std::string> overdue;
  for (const auto& [run_id, run] : active_runs_) {
    if (now - run.started > options_.max_run_seconds) overdue.push_back(run_id);
  }
  for (const auto& run_id : overdue) {
    auto w = workers_.find(active_runs_.at(run_id).worker);
    if (w != workers_.end() && w->second.socket) {
      w->second.socket->send(json{{"type", "cancel"}, {"run_id", run_id}}.dump());
    }
  }
  fail_runs(overdue, fmt::format("the run exceeded the maximum run duration ({} hours)",
                                 options_.max_run_seconds / 3600));
  if (!overdue.empty()) update();
}

std::string ServerState::unrunnable_reason(const std::string& hash) const {
  auto it = unrunnable_.find(hash);
  return it == unrunnable_.end() ? "" : it->second;
}

Status ServerState::cancel_run(const std::string& run_id) {
  if (!active_runs_.count(run_id)) return Error{run_id, "run " + run_id + " is not running"};
  stop_run(run_id, "cancelled by a user");
  update();
  return {};
}

void ServerState::stop_run(const std::string& run_id, const std::string& why) {
  auto run = active_runs_.find(run_id);
  if (run == active_runs_.end()) return;
  cancels_[run_id] = why;
  auto w = workers_.find(run->second.worker);
  if (w != workers_.end() && w->second.socket) {
    // Recorded when the worker reports the run (cancelled, or its result if it ended first).
    w->second.socket->send(json{{"type", "cancel"}, {"run_id", run_id}}.dump());
    return;
  }
  // Its worker is away: the run ends now, and the worker is told to stop it when it is back.
  store::RunRow r = run->second;
  r.state = store::RunState::kCancelled;
  r.ended = now_seconds();
  record_result(r, {});
}

void ServerState::fail_worker_runs(WorkerState& worker, const std::string& why) {
  std::vector<std::string> ids;
  for (const auto& [run_id, res] : worker.running) ids.push_back(run_id);
  fail_runs(ids, why);
}

void ServerState::fail_runs(const std::vector<std::string>& ids, const std::string& why) {
  for (const auto& run_id : ids) {
    auto run = active_runs_.find(run_id);
    if (run == active_runs_.end()) continue;
    store::RunRow r = run->second;
    r.state = store::RunState::kInfraFailed;
    r.ended = now_seconds();
    r.detail = why;
    record_result(r, {});
  }
}

void ServerState::dispatch() {
  drop_revoked_workers();
  std::vector<dispatch::WorkerCapacity> capacity;
  for (const auto& [id, w] : workers_) {
    if (!w.socket) continue;
    if (w.ami && w.runs_started > 0) continue;  // a machine booted for an AMI runs one job
    int cores = w.cores;
    int ram = w.ram_gb;
    for (const auto& [run_id, res] : w.running) {
      cores -= res.first;
      ram -= res.second;
    }
    for (const auto& [dep_id, d] : deployments_) {
      if (d.row.worker != id || d.row.state == "waiting" || d.row.state == "stopped") continue;
      cores -= d.cores;  // a deployment holds its cores and RAM while it lives
      ram -= d.ram_gb;
    }
    capacity.push_back({id, cores, ram, w.cores, w.ram_gb, w.platforms, w.docker, w.ami, w.image});
  }
  // No new runs while the store cannot write: they could not be recorded (issue 11 item 8).
  if (!unstored_.empty() || now_seconds() < store_retry_at_) return;
  unrunnable_.clear();
  // Deployments first: a person is waiting for them.
  std::vector<planner::Job> deploying = deployment_jobs();
  waiting_deployments_ = deploying;
  if (capacity.empty()) return;
  const bool with_deployments = !deploying.empty();
  if (with_deployments) deploying.insert(deploying.end(), plan_.jobs.begin(), plan_.jobs.end());
  const auto result = dispatch::assign(with_deployments ? deploying : plan_.jobs, capacity);
  for (const auto& u : result.unrunnable) {
    unrunnable_[u.job.hash] = u.reason;
    // A waiting deployment says why no worker takes it.
    if (u.job.kind == "deployment") deployment_unrunnable(u.job.purpose, u.reason);
  }
  for (const auto& a : result.assignments) {
    if (now_seconds() < store_retry_at_) break;  // the last start could not be stored
    WorkerState& worker = workers_.at(a.worker);
    if (worker.ami && worker.runs_started > 0) continue;  // one job (above): the rest waits
    if (a.job.kind == "deployment") {
      std::erase_if(waiting_deployments_,
                    [&a](const planner::Job& j) { return j.purpose == a.job.purpose; });
      start_deployment(worker, a.job, a.cores, a.ram_gb);
      continue;
    }
    start_run(worker, a.job, a.cores, a.ram_gb);
  }
  if (!result.assignments.empty()) broadcast(json{{"type", "runs"}}.dump());
}

void ServerState::start_run(WorkerState& worker, const planner::Job& job, int cores, int ram) {
  const CommitState* c = commit(job.repo, job.commit);
  if (c == nullptr) return;
  // Read from the store (a commit's objects keep no definition in memory).
  const std::string definition = this->definition(job.repo, job.commit, job.name);
  if (definition.empty()) return;
  store::RunRow run;
  run.id = new_run_id();
  run.hash = job.hash;
  run.repo = job.repo;
  run.commit = job.commit;
  run.name = job.name;
  run.kind = job.kind;
  run.worker = worker.id;
  run.started = now_seconds();
  run.purpose = job.purpose;
  // Uploads of the run's files must carry it: only this worker, while the run is active, may
  // store them (may_upload_build, may_upload_record). Its hash is stored with the run so that a
  // restarted server still knows it.
  const std::string upload_token = random_hex(32);
  run.upload_token_hash = sha256_hex(upload_token);
  if (Status stored = store_pending(&run); !stored.ok())
    return store_failed("a new run", stored.error());
  if (!run.purpose.empty()) ++extra_used_[run.purpose];
  ++run_counter_;
  active_runs_[run.id] = run;
  ++progress_[run.hash].active;
  plan_index_.progress_changed(run.hash);
  worker.running[run.id] = {cores, ram};
  ++worker.runs_started;
  // Keep the plan's counts in step so the same runs are not dispatched twice in one pass.
  for (auto& j : plan_.jobs) {
    if (j.hash == job.hash && j.purpose == job.purpose && j.runs > 0) --j.runs;
  }
  upload_tokens_[run.id] = run.upload_token_hash;
  json message = {{"type", "job"},
                  {"run_id", run.id},
                  {"cores", cores},
                  {"ram_gb", ram},
                  {"repo", job.repo},
                  {"commit", job.commit},
                  {"upload_token", upload_token},
                  {"max_log_bytes", options_.max_log_bytes}};
  add_file_access(message, worker);
  // The stored definition is JSON text that the server wrote: spliced in as it is rather than
  // parsed and written again (issue 18: that was 4% of the server's CPU per run).
  std::string text = message.dump();
  text.insert(text.size() - 1, ",\"object\":" + definition);
  worker.socket->send(std::move(text));
}

void ServerState::add_file_access(json& message, const WorkerState& worker) const {
  // Only a worker that shares the server's disk is told where it is; any other one fetches
  // sources and builds over HTTP and uploads what it stores (docs/api.md "Files"), or, with
  // artifacts in S3 and credentials of its own, reads and writes the bucket (never given
  // credentials: only where the bucket is).
  if (worker.shared_disk) {
    message["repos_dir"] = options_.repos_dir;
    message["artifacts_dir"] = options_.artifacts_dir;
  } else if (s3_ != nullptr) {
    const fleet::S3Options& o = s3_->options();
    message["s3"] = {{"bucket", o.bucket},
                     {"region", o.region},
                     {"key_prefix", o.key_prefix},
                     {"endpoint_url", o.endpoint_url}};
  }
}

void ServerState::finish_run(const std::string& worker, const ResultMessage& m) {
  auto w = workers_.find(worker);
  auto run = active_runs_.find(m.run_id);
  if (run == active_runs_.end()) {
    // Already recorded (a resend after a reconnect): acknowledge so the worker forgets it. One
    // waiting to be stored is acknowledged once it is (retry_unstored).
    if (waiting_result(m.run_id) != nullptr) return;
    if (w != workers_.end() && w->second.socket) {
      w->second.socket->send(json{{"type", "ack"}, {"run_id", m.run_id}}.dump());
    }
    return;
  }
  if (run->second.worker != worker) return;  // another worker's run: not its to report
  store::RunRow r = run->second;
  r.state = run_state_of_outcome(m.outcome);
  r.exit_code = m.exit_code;
  r.ended = m.end.value_or(now_seconds());
  r.detail = m.message;
  std::vector<store::CaseRow> cases;
  for (const auto& c : m.cases)
    cases.push_back({c.name, c.success, c.elapsed, c.message, c.logs, c.skipped});
  std::optional<std::vector<s3store::PutKey>> s3_keys = m.s3_keys;
  if (s3_keys) {
    // A worker names only its own run's objects: anything else is refused, and its run taught
    // nothing reliable (an infrastructure failure, never the test's).
    if (const std::string refused = refused_keys(s3_ != nullptr, r, *s3_keys); !refused.empty()) {
      log_event("warn", "s3_keys_refused",
                {{"worker", printable(worker)}, {"run", r.id}, {"refused", refused}});
      r.state = store::RunState::kInfraFailed;
      r.detail = "the worker named S3 objects outside its run: " + refused;
      cases.clear();
      s3_keys.reset();
    }
  }
  // A worker on the server's disk that could not work because that disk is full: a failed write
  // of the server's, which backs off (the run's quick end must not count as a whole run stored).
  // A test that failed then may have failed only for want of space (its output could not be
  // written): an infrastructure failure, never counted as the test's.
  if ((r.state == store::RunState::kInfraFailed || r.state == store::RunState::kFailed) &&
      w != workers_.end() && w->second.shared_disk && disk_full(options_.logs_dir)) {
    if (r.state == store::RunState::kFailed) {
      r.state = store::RunState::kInfraFailed;
      r.detail =
          "the server's disk, which this worker works on, was full when the run ended: " + r.detail;
    }
    store_failed("the work of run " + r.id + " (a worker on the server's disk)",
                 Error{"", r.detail});
  }
  if (!record_result(r, cases, m.environment_failed && r.state == store::RunState::kInfraFailed,
                     std::move(s3_keys), true)) {
    // Acknowledged once stored (store_pending, retry_unstored, collect_s3_puts).
    waiting_result(r.id)->ack = true;
    return;
  }
  if (w != workers_.end() && w->second.socket) {
    w->second.socket->send(json{{"type", "ack"}, {"run_id", m.run_id}}.dump());
  }
}

bool ServerState::record_result(store::RunRow run, const std::vector<store::CaseRow>& cases,
                                bool environment_failed,
                                std::optional<std::vector<s3store::PutKey>> s3_keys,
                                bool with_next_write) {
  if (auto c = cancels_.find(run.id); c != cancels_.end()) {
    if (run.state == store::RunState::kCancelled) run.detail = c->second;
    cancels_.erase(c);
  }
  active_runs_.erase(run.id);
  open_logs_.erase(run.id);
  upload_tokens_.erase(run.id);
  for (auto& [id, w] : workers_) w.running.erase(run.id);
  if (auto w = workers_.find(run.worker); w != workers_.end()) {
    w->second.recent.push_front(run);
    if (w->second.recent.size() > kRecentRuns) w->second.recent.pop_back();
  }
  // Not stored before the back-off allows, nor before results already waiting.
  const bool may_store = unstored_.empty() && now_seconds() >= store_retry_at_;
  // What a worker put in S3 itself is verified now, whatever the back-off: until then it is not
  // known whether the run taught anything.
  if ((may_store || s3_keys) && s3_ != nullptr) {
    end_log(run.id);  // the log is put whole, with its cut line
    s3store::S3Artifacts* s3 = s3_;
    const std::string artifacts_dir = options_.artifacts_dir, log = log_path(run.id);
    const bool direct = s3_keys.has_value();
    s3_puts_.emplace(run.id, S3Put{{run, cases, environment_failed, false, direct},
                                   std::async(std::launch::async, [s3, artifacts_dir, log, run,
                                                                   keys = std::move(s3_keys)] {
                                     S3PutOutcome out;
                                     if (keys)
                                       out.verified =
                                           verify_worker_keys(*s3, artifacts_dir, run, *keys);
                                     out.put = put_run_files(*s3, artifacts_dir, run, log,
                                                             keys && out.verified.ok());
                                     return out;
                                   })});
    return false;
  }
  // A result that holds nothing back waits for the next write (pending_results_): with the job
  // its worker is given next, one commit instead of two.
  const bool holds = run.state == store::RunState::kInfraFailed ||
                     (run.state == store::RunState::kFailed && run.kind == "build");
  if (may_store && with_next_write && !holds) {
    pending_results_[run.id] = Unstored{run, cases, environment_failed};
    return false;
  }
  Result<bool> recorded = Error{"", "waiting for earlier results"};
  if (may_store) recorded = store_result(run, cases, false);
  return stored_or_waiting({run, cases, environment_failed}, recorded);
}

ServerState::Unstored* ServerState::waiting_result(const std::string& id) {
  if (auto p = pending_results_.find(id); p != pending_results_.end()) return &p->second;
  if (auto u = unstored_.find(id); u != unstored_.end()) return &u->second;
  if (auto s = s3_puts_.find(id); s != s3_puts_.end()) return &s->second.unstored;
  return nullptr;
}

Status ServerState::store_pending(const store::RunRow* started) {
  if (pending_results_.empty()) return started != nullptr ? store_.start_run(*started) : Status{};
  std::map<std::string, Unstored> pending;
  pending.swap(pending_results_);
  std::vector<store::Store::FinishedRun> finished;
  for (const auto& [id, u] : pending) finished.push_back({u.run, u.cases});
  const Result<std::vector<bool>> recorded = store_.record_runs(finished, started);
  results_stored_late_ = true;
  size_t i = 0;
  for (const auto& [id, u] : pending) {
    if (recorded.ok()) {
      stored_or_waiting(u, (*recorded)[i++]);
    } else {
      stored_or_waiting(u, recorded.error());
    }
  }
  if (!recorded.ok()) return recorded.error();
  return {};
}

bool ServerState::stored_or_waiting(const Unstored& u, const Result<bool>& recorded) {
  if (!recorded.ok()) {
    unstored_[u.run.id] = u;
    if (!recorded.error().where.empty())
      store_failed("the result of run " + u.run.id, recorded.error());
    return false;
  }
  // Writing works again once a whole run, started after the last failure, is stored: its log,
  // its files and its result (a start alone proves little: logs and records come later).
  if (u.run.started > store_failed_at_) store_worked();
  result_stored(u.run, *recorded, u.environment_failed);
  acknowledge(u);
  return true;
}

void ServerState::acknowledge(const Unstored& u) {
  auto w = workers_.find(u.run.worker);
  if (u.ack && w != workers_.end() && w->second.socket) {
    w->second.socket->send(json{{"type", "ack"}, {"run_id", u.run.id}}.dump());
  }
}

void ServerState::collect_s3_puts() {
  bool stored = false;
  for (auto it = s3_puts_.begin(); it != s3_puts_.end();) {
    if (it->second.done.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      ++it;
      continue;
    }
    const S3PutOutcome outcome = it->second.done.get();
    const Status& put = outcome.put;
    Unstored u = std::move(it->second.unstored);
    it = s3_puts_.erase(it);
    if (u.record_in_s3 && !outcome.verified.ok()) {
      // Not in S3 as its worker said: the run's result cannot be trusted nor its files served.
      log_event("warn", "s3_keys_unverified",
                {{"worker", printable(u.run.worker)},
                 {"run", u.run.id},
                 {"error", outcome.verified.error().to_string()}});
      u.run.state = store::RunState::kInfraFailed;
      u.run.detail = "the run's files are not in S3 as its worker said: " +
                     outcome.verified.error().to_string();
      u.cases.clear();
      u.environment_failed = false;
      u.record_in_s3 = false;
    } else if (u.record_in_s3) {
      log_event("info", "s3_direct_put", {{"worker", printable(u.run.worker)}, {"run", u.run.id}});
    }
    Result<bool> recorded = Error{"", "waiting for earlier results"};
    // S3 failing is the server's infrastructure failure: the result waits, with back-off.
    if (!put.ok()) {
      recorded = Error{"S3", put.error().to_string()};
    } else if (unstored_.empty() && now_seconds() >= store_retry_at_) {
      recorded = store_.finish_run(u.run, u.cases);
    }
    stored = stored_or_waiting(u, recorded) || stored;
  }
  if (stored) update();
}

void ServerState::retry_unstored(double now) {
  if (unstored_.empty() || now < store_retry_at_) return;
  while (!unstored_.empty()) {
    const Unstored u = unstored_.begin()->second;
    Result<bool> recorded = store_result(u.run, u.cases, u.record_in_s3);
    if (!recorded.ok()) return store_failed("the result of run " + u.run.id, recorded.error());
    unstored_.erase(unstored_.begin());
    result_stored(u.run, *recorded, u.environment_failed);
    acknowledge(u);
  }
  update();
}

Result<bool> ServerState::store_result(const store::RunRow& run,
                                       const std::vector<store::CaseRow>& cases,
                                       bool record_in_s3) {
  if (s3_ != nullptr) {
    end_log(run.id);  // the log is put whole, with its cut line
    const Status put =
        put_run_files(*s3_, options_.artifacts_dir, run, log_path(run.id), record_in_s3);
    // An infrastructure failure of the server's (S3 unreachable, refusing): the result waits in
    // memory and is retried with back-off, as for a full disk; never a test's failure.
    if (!put.ok()) return Error{"S3", put.error().to_string()};
  }
  return store_.finish_run(run, cases);
}

void ServerState::store_failed(const std::string& what, const Error& error) {
  const double now = now_seconds();
  store_failed_at_ = now;
  if (store_delay_ > 0 && now < store_retry_at_) return;  // this attempt was logged already
  store_delay_ = std::clamp(store_delay_ * 2, 2.0, 300.0);
  store_retry_at_ = now + store_delay_;
  // The store's errors name the operation ("store: commit: ..."); the file is the database.
  const std::string failure = error.where == "store"
                                  ? "to " + options_.store_path + ": " + error.message
                                  : "(" + error.to_string() + ")";
  log_event("error", "store_failed",
            {{"message", fmt::format("cannot write {} {}; new runs paused, retrying in {} s "
                                     "({} results waiting)",
                                     what, failure, store_delay_, unstored_.size())}});
}

void ServerState::store_worked() {
  if (store_delay_ == 0) return;
  log_event("info", "store_writable",
            {{"message", "the data dir is writable again (a run was stored whole)"}});
  store_delay_ = 0;
  store_retry_at_ = 0;
}

void ServerState::result_stored(const store::RunRow& run, bool counted, bool environment_failed) {
  ++runs_ended_[{store::to_string(run.state), run.kind}];
  case_cache_.erase(run.hash);
  planner::HashProgress& p = progress_[run.hash];
  plan_index_.progress_changed(run.hash);
  if (p.active > 0) --p.active;
  // An infrastructure failure taught nothing: the budget gets its run back.
  if (run.state == store::RunState::kInfraFailed) {
    log_event("warn", "infra_failure",
              {{"run", run.id},
               {"repo", run.repo},
               {"commit", run.commit},
               {"name", run.name},
               {"worker", run.worker},
               {"reason", run.detail}});
  }
  if (!run.purpose.empty() && run.state == store::RunState::kInfraFailed && extra_used_[run.purpose] > 0) {
    --extra_used_[run.purpose];
  }
  if (counted &&
      (run.state == store::RunState::kSucceeded || run.state == store::RunState::kFailed)) {
    ++p.runs;
    if (run.state == store::RunState::kFailed) ++p.failures;
  }
  // An infrastructure failure while the server's own disk cannot be written is the server's, not
  // the identity's: it does not count towards that identity's back-off.
  if (counted && store_writable()) update_holds(run, environment_failed);
  broadcast(json{{"type", "run"}, {"run_id", run.id}, {"state", store::to_string(run.state)},
                 {"repo", run.repo}, {"commit", run.commit}, {"name", run.name}}.dump());
  end_log(run.id);
  log_viewers_.ended(run.id);
}

void ServerState::append_log(const std::string& run_id, const std::string& data) {
  if (!active_runs_.count(run_id) || !is_run_id(run_id)) return;
  OpenLog once;  // when too many logs are open already
  OpenLog* log = nullptr;
  if (auto open = open_logs_.find(run_id); open != open_logs_.end()) {
    log = &open->second;
  } else {
    const std::string path = log_path(run_id);
    artifacts::Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    struct stat st {};
    if (!fd.valid() || ::fstat(fd.get(), &st) != 0) {
      return store_failed("the log of run " + run_id, Error{path, std::strerror(errno)});
    }
    OpenLog opened{std::move(fd), static_cast<int64_t>(st.st_size)};
    log = open_logs_.size() < kOpenLogs
              ? &open_logs_.emplace(run_id, std::move(opened)).first->second
              : &(once = std::move(opened));
  }
  const int64_t room = std::max<int64_t>(0, options_.max_log_bytes + kLogSlack - log->size);
  const size_t keep = static_cast<size_t>(std::min<int64_t>(room, std::ssize(data)));
  if (keep < data.size()) log_dropped_[run_id] += std::ssize(data) - static_cast<int64_t>(keep);
  if (keep == 0) return;
  if (write_all(log->fd.get(), std::string_view(data).substr(0, keep))) {
    log->size += static_cast<int64_t>(keep);
  } else {
    store_failed("the log of run " + run_id, Error{log_path(run_id), std::strerror(errno)});
  }
  log_viewers_.appended(run_id);
}

void ServerState::end_log(const std::string& run_id) {
  auto dropped = log_dropped_.find(run_id);
  if (dropped == log_dropped_.end()) return;
  std::ofstream(log_path(run_id), std::ios::app | std::ios::binary)
      << "\n"
      << log_cut_line(options_.max_log_bytes + kLogSlack, dropped->second) << "\n";
  log_dropped_.erase(dropped);
}

void ServerState::add_log_socket(const std::string& run_id, const std::shared_ptr<Socket>& socket) {
  if (!is_run_id(run_id)) return socket->close("not a run id");
  log_viewers_.add(run_id, log_path(run_id), socket, active_runs_.count(run_id) > 0);
}

void ServerState::remove_socket(const std::shared_ptr<Socket>& socket) {
  event_sockets_.erase(socket);
  log_viewers_.remove(socket);
  remove_terminal_viewer(socket);
}

void ServerState::broadcast(const std::string& event) {
  for (const auto& s : event_sockets_) s->send(event);
}

}  // namespace testlooper::server
