// ServerState: the worker protocol, dispatch, results and live streams.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "dispatch/dispatch.h"
#include "server/protocol.h"
#include "server/state.h"

namespace testlooper::server {
namespace {

using nlohmann::json;


std::string new_run_id() {
  static std::mt19937_64 rng(std::random_device{}());
  return fmt::format("{:016x}", rng());
}


}  // namespace

std::string ServerState::log_path(const std::string& run_id) const {
  return options_.logs_dir + "/" + run_id + ".log";
}

void ServerState::worker_connected(const std::shared_ptr<Socket>&) {}

void ServerState::worker_message(const std::shared_ptr<Socket>& socket, const std::string& text) {
  const json m = json::parse(text, nullptr, false);
  if (!m.is_object()) return;
  const std::string type = m.value("type", "");
  auto known = worker_by_socket_.find(socket->id());
  if (type == "hello") {
    const std::string id = m.value("worker", "");
    WorkerState& w = workers_[id];
    w.id = id;
    w.socket = socket;
    w.cores = m.value("cores", 1);
    w.ram_gb = m.value("ram_gb", 0);
    w.host = m.value("host", "");
    w.shared_disk = m.value("shared_disk", false);
    w.last_seen = now_seconds();
    worker_by_socket_[socket->id()] = id;
    for (const auto& r : m.contains("finished") ? m["finished"] : json::array()) finish_run(id, r.dump());
    // Runs the server thinks this worker has but it does not report are lost.
    std::set<std::string> still;
    for (const auto& r : m.contains("running") ? m["running"] : json::array()) still.insert(r.get<std::string>());
    std::vector<std::string> lost;
    for (const auto& [run_id, res] : w.running) {
      if (!still.count(run_id)) lost.push_back(run_id);
    }
    for (const auto& run_id : lost) {
      auto run = active_runs_.find(run_id);
      if (run == active_runs_.end()) continue;
      store::RunRow r = run->second;
      r.state = store::RunState::kInfraFailed;
      r.ended = now_seconds();
      r.detail = "the worker restarted without this run";
      record_result(r, {});
    }
    // Runs it still has that are over here (cancelled while it was away, or given up on) or that
    // a user cancelled are stopped.
    for (const auto& run_id : still) {
      const bool active = active_runs_.count(run_id) > 0;
      if (active && !user_cancels_.count(run_id)) continue;
      socket->send(json{{"type", "cancel"}, {"run_id", run_id}}.dump());
      if (active) cancel_sent_.insert(run_id);
    }
    broadcast(json{{"type", "workers"}}.dump());
    update();
    return;
  }
  if (known == worker_by_socket_.end()) return;
  WorkerState& w = workers_[known->second];
  w.last_seen = now_seconds();
  if (type == "log") {
    append_log(m.value("run_id", ""), m.value("data", ""));
  } else if (type == "result") {
    finish_run(w.id, text);
    update();
  }
}

void ServerState::worker_disconnected(const std::shared_ptr<Socket>& socket) {
  auto it = worker_by_socket_.find(socket->id());
  if (it == worker_by_socket_.end()) return;
  auto w = workers_.find(it->second);
  if (w != workers_.end() && w->second.socket == socket) {
    w->second.socket.reset();
    // Cancels it may not have received are sent again when it is back.
    for (const auto& [run_id, res] : w->second.running) cancel_sent_.erase(run_id);
  }
  worker_by_socket_.erase(it);
  broadcast(json{{"type", "workers"}}.dump());
}

void ServerState::check_workers(double now) {
  std::vector<std::string> gone;
  for (auto& [id, w] : workers_) {
    if (w.socket || now - w.last_seen < options_.worker_timeout_seconds) continue;
    fail_worker_runs(w, "the worker was lost");
    gone.push_back(id);
  }
  for (const auto& id : gone) workers_.erase(id);
  if (!gone.empty()) {
    broadcast(json{{"type", "workers"}}.dump());
    update();
  }
}

std::string ServerState::unrunnable_reason(const std::string& hash) const {
  auto it = unrunnable_.find(hash);
  return it == unrunnable_.end() ? "" : it->second;
}

Status ServerState::cancel_run(const std::string& run_id) {
  auto run = active_runs_.find(run_id);
  if (run == active_runs_.end()) return Error{run_id, "run " + run_id + " is not running"};
  user_cancels_.insert(run_id);
  auto w = workers_.find(run->second.worker);
  if (w != workers_.end() && w->second.socket) {
    // Recorded when the worker reports the run (cancelled, or its result if it ended first).
    w->second.socket->send(json{{"type", "cancel"}, {"run_id", run_id}}.dump());
    cancel_sent_.insert(run_id);
    return {};
  }
  // Its worker is away: the run ends now, and the worker is told to stop it when it is back.
  store::RunRow r = run->second;
  r.state = store::RunState::kCancelled;
  r.ended = now_seconds();
  record_result(r, {});
  update();
  return {};
}

void ServerState::fail_worker_runs(WorkerState& worker, const std::string& why) {
  std::vector<std::string> ids;
  for (const auto& [run_id, res] : worker.running) ids.push_back(run_id);
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
  std::vector<dispatch::WorkerCapacity> capacity;
  for (const auto& [id, w] : workers_) {
    if (!w.socket) continue;
    int cores = w.cores;
    int ram = w.ram_gb;
    for (const auto& [run_id, res] : w.running) {
      cores -= res.first;
      ram -= res.second;
    }
    capacity.push_back({id, cores, ram, w.cores, w.ram_gb});
  }
  unrunnable_.clear();
  if (capacity.empty()) return;
  const auto result = dispatch::assign(plan_.jobs, capacity);
  for (const auto& u : result.unrunnable) unrunnable_[u.job.hash] = u.reason;
  for (const auto& a : result.assignments) start_run(workers_.at(a.worker), a.job, a.cores, a.ram_gb);
  if (!result.assignments.empty()) broadcast(json{{"type", "runs"}}.dump());
}

void ServerState::start_run(WorkerState& worker, const planner::Job& job, int cores, int ram) {
  const CommitState* c = commit(job.repo, job.commit);
  if (c == nullptr) return;
  const store::ObjectRow* object = nullptr;
  for (const auto& o : c->objects) {
    if (o.name == job.name) object = &o;
  }
  if (object == nullptr) return;
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
  if (!store_.start_run(run).ok()) return;
  if (!run.purpose.empty()) ++extra_used_[run.purpose];
  ++run_counter_;
  active_runs_[run.id] = run;
  ++progress_[run.hash].active;
  worker.running[run.id] = {cores, ram};
  // Keep the plan's counts in step so the same runs are not dispatched twice in one pass.
  for (auto& j : plan_.jobs) {
    if (j.hash == job.hash && j.purpose == job.purpose && j.runs > 0) --j.runs;
  }
  json message = {{"type", "job"},      {"run_id", run.id},     {"cores", cores},
                  {"ram_gb", ram},      {"repo", job.repo},     {"commit", job.commit},
                  {"object", json::parse(object->definition_json)}};
  // Only a worker that shares the server's disk is told where it is; any other one fetches
  // sources and builds over HTTP and uploads what it stores (docs/api.md "Files").
  if (worker.shared_disk) {
    message["repos_dir"] = options_.repos_dir;
    message["artifacts_dir"] = options_.artifacts_dir;
  }
  worker.socket->send(message.dump());
}

void ServerState::finish_run(const std::string& worker, const std::string& text) {
  const json m = json::parse(text, nullptr, false);
  if (!m.is_object()) return;
  const std::string run_id = m.value("run_id", "");
  auto run = active_runs_.find(run_id);
  if (run == active_runs_.end()) {
    // Already recorded (a resend after a reconnect): acknowledge so the worker forgets it.
    auto w = workers_.find(worker);
    if (w != workers_.end() && w->second.socket) w->second.socket->send(json{{"type", "ack"}, {"run_id", run_id}}.dump());
    return;
  }
  store::RunRow r = run->second;
  r.worker = worker;
  r.state = run_state_of_outcome(m.value("outcome", "infra"));
  r.exit_code = m.value("exit_code", 0);
  r.ended = m.value("end", now_seconds());
  r.detail = m.value("message", "");
  std::vector<store::CaseRow> cases;
  for (const auto& c : m.contains("cases") ? m["cases"] : json::array()) {
    cases.push_back({c.value("name", ""), c.value("success", false), c.value("elapsed", 0.0)});
  }
  record_result(r, cases);
  auto w = workers_.find(worker);
  if (w != workers_.end() && w->second.socket) w->second.socket->send(json{{"type", "ack"}, {"run_id", run_id}}.dump());
}

void ServerState::record_result(store::RunRow run, const std::vector<store::CaseRow>& cases) {
  if (user_cancels_.erase(run.id) && run.state == store::RunState::kCancelled) run.detail = "cancelled by a user";
  auto recorded = store_.finish_run(run, cases);
  case_cache_.erase(run.hash);
  active_runs_.erase(run.id);
  cancel_sent_.erase(run.id);
  for (auto& [id, w] : workers_) w.running.erase(run.id);
  planner::HashProgress& p = progress_[run.hash];
  if (p.active > 0) --p.active;
  // An infrastructure failure taught nothing: the budget gets its run back.
  if (!run.purpose.empty() && run.state == store::RunState::kInfraFailed && extra_used_[run.purpose] > 0) {
    --extra_used_[run.purpose];
  }
  if (recorded.ok() && *recorded &&
      (run.state == store::RunState::kSucceeded || run.state == store::RunState::kFailed)) {
    ++p.runs;
    if (run.state == store::RunState::kFailed) ++p.failures;
  }
  broadcast(json{{"type", "run"}, {"run_id", run.id}, {"state", store::to_string(run.state)},
                 {"repo", run.repo}, {"commit", run.commit}, {"name", run.name}}.dump());
  for (const auto& s : log_sockets_[run.id]) s->close();
  log_sockets_.erase(run.id);
}

void ServerState::append_log(const std::string& run_id, const std::string& data) {
  if (!active_runs_.count(run_id)) return;
  std::ofstream(log_path(run_id), std::ios::app) << data;
  auto it = log_sockets_.find(run_id);
  if (it == log_sockets_.end()) return;
  for (const auto& s : it->second) s->send(data);
}

void ServerState::add_log_socket(const std::string& run_id, const std::shared_ptr<Socket>& socket) {
  std::ifstream in(log_path(run_id));
  std::string so_far((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!so_far.empty()) socket->send(so_far);
  if (!active_runs_.count(run_id)) {
    socket->close();
    return;
  }
  log_sockets_[run_id].insert(socket);
}

void ServerState::remove_socket(const std::shared_ptr<Socket>& socket) {
  event_sockets_.erase(socket);
  for (auto& [id, sockets] : log_sockets_) sockets.erase(socket);
}

void ServerState::broadcast(const std::string& event) {
  for (const auto& s : event_sockets_) s->send(event);
}

}  // namespace testlooper::server
