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
  w.job_acks = m.job_acks;
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
  // This worker's results stored with the run are acknowledged in its job, when it reads them
  // there (issue 18: one message instead of two).
  std::vector<std::string> acks;
  if (Status stored = store_pending(&run, worker.job_acks ? &acks : nullptr); !stored.ok())
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
                  {"max_log_bytes", options_.max_log_bytes},
                  {"log_in_result", true}};
  if (!acks.empty()) message["acks"] = std::move(acks);
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
    if (waiting_result(m.run_id) == nullptr) send_ack(worker, m.run_id);
    return;
  }
  if (run->second.worker != worker) return;  // another worker's run: not its to report
  if (!m.log.empty()) append_log(m.run_id, m.log);
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
  send_ack(worker, m.run_id);
}

void ServerState::append_log(const std::string& run_id, const std::string& data) {
  if (!active_runs_.count(run_id) || !is_run_id(run_id)) return;
  OpenLog once;  // when too many logs are open already
  OpenLog* log = nullptr;
  if (auto open = open_logs_.find(run_id); open != open_logs_.end()) {
    log = &open->second;
  } else {
    const std::string path = log_path(run_id);
    // Made new, as a run's log nearly always is, it is known to be empty without an fstat.
    artifacts::Fd fd(
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644));
    struct stat st {};
    const auto failed = [&] {
      store_failed("the log of run " + run_id, Error{path, std::strerror(errno)});
    };
    if (!fd.valid() && errno == EEXIST) {  // a run that began before a restart
      fd = artifacts::Fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
      if (fd.valid() && ::fstat(fd.get(), &st) != 0) return failed();
    }
    if (!fd.valid()) return failed();
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
