// ServerState: deployments (docs/api.md "Deployments") and their terminals. A deployment waits
// for its builds (the planner needs them first: PlanInput::deployments), is dispatched like a
// run (its cores and RAM held on its worker until it stops), and its worker streams a terminal
// (a PTY in its environment) over the worker socket; the server keeps a scroll-back and relays
// it to every viewer's WebSocket as binary frames.
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/ids.h"
#include "core/token.h"
#include "fleet/aws.h"
#include "server/event_log.h"
#include "server/state.h"

namespace testlooper::server {
namespace {

using nlohmann::json;

planner::Job deployment_job(const std::string& id, const store::DeploymentRow& row,
                            const planner::PlannedObject& o) {
  planner::Job job;
  job.hash = o.hash;
  job.repo = row.repo;
  job.commit = row.commit;
  job.name = row.name;
  job.kind = "deployment";
  job.runs = 1;
  job.min_cores = o.min_cores;
  job.max_cores = o.max_cores;
  job.min_ram_gb = o.min_ram_gb;
  job.platform = o.platform;
  job.docker = o.docker;
  job.ami = o.ami;
  job.image = o.image;
  job.purpose = id;
  return job;
}

}  // namespace

Status ServerState::load_deployments() {
  auto rows = store_.deployments();
  if (!rows.ok()) return rows.error();
  const double now = now_seconds();
  for (auto& row : *rows) {
    // Its worker ended it with the connection; one still waiting waits again.
    if (row.state == "starting" || row.state == "running") {
      row.state = "stopped";
      row.stopped = now;
      row.detail = "the server restarted";
      TL_RETURN_IF_ERROR(store_.put_deployment(row));
    }
    if (row.state == "waiting" && row.debug_run.empty())
      plan_input_.deployments.insert({row.repo, row.commit, row.name});
    deployments_[row.id].row = std::move(row);
  }
  return {};
}

Result<store::DeploymentRow> ServerState::boot_deployment(const std::string& repo,
                                                          const std::string& sha,
                                                          const std::string& name,
                                                          const std::string& booted_by) {
  const planner::PlannedObject* o = object(repo, sha, name);
  if (o == nullptr || o->kind != "deployment") {
    return Error{"", "commit " + sha + " of '" + repo + "' has no deployment named '" + name + "'"};
  }
  return add_deployment(repo, sha, *o, booted_by, "");
}

Result<store::DeploymentRow> ServerState::debug_run(const std::string& run_id,
                                                    const std::string& booted_by) {
  auto run = store_.run(run_id);
  if (!run.ok()) return run.error();
  if (!run->has_value()) return Error{"", "no run " + run_id};
  const store::RunRow& r = **run;
  const planner::PlannedObject* o = object(r.repo, r.commit, r.name);
  if (o == nullptr || o->kind == "deployment") {
    return Error{"", "run " + run_id + "'s object " + r.name + " of commit " + r.commit +
                         " is not known any more"};
  }
  return add_deployment(r.repo, r.commit, *o, booted_by, run_id);
}

Result<store::DeploymentRow> ServerState::add_deployment(const std::string& repo,
                                                         const std::string& sha,
                                                         const planner::PlannedObject& object,
                                                         const std::string& booted_by,
                                                         const std::string& debug_run) {
  const planner::PlannedObject* o = &object;
  const std::string& name = o->name;
  store::DeploymentRow row;
  row.debug_run = debug_run;
  row.id = random_hex(8);  // a run id's grammar (core/ids.h)
  row.repo = repo;
  row.commit = sha;
  row.name = name;
  row.hash = o->hash;
  row.state = "waiting";
  row.booted_by = booted_by;
  row.booted = now_seconds();
  TL_RETURN_IF_ERROR(store_.put_deployment(row));
  log_event(
      "info", "deployment_booted",
      {{"deployment", row.id}, {"repo", repo}, {"commit", sha}, {"name", name}, {"by", booted_by}});
  deployments_[row.id].row = row;
  // A deployment's builds are needed first; a debugged run's were built for that run.
  if (debug_run.empty()) plan_input_.deployments.insert({repo, sha, name});
  broadcast(json{{"type", "deployments"}}.dump());
  update();
  return deployments_.at(row.id).row;
}

Result<bool> ServerState::shutdown_deployment(const std::string& id, const std::string& why) {
  auto it = deployments_.find(id);
  if (it == deployments_.end()) return Error{"", "no deployment " + id};
  if (it->second.row.state == "stopped") return false;
  stop_deployment(it->second, why, true);
  update();
  return true;
}

std::vector<planner::Job> ServerState::deployment_jobs() {
  std::vector<planner::Job> jobs;
  std::vector<std::pair<std::string, std::string>> failed;
  for (const auto& [id, d] : deployments_) {
    if (d.row.state != "waiting") continue;
    const planner::PlannedObject* o = object(d.row.repo, d.row.commit, d.row.name);
    if (o == nullptr) continue;
    if (!d.row.debug_run.empty()) {
      // A debugged run's builds were built for it: ready, unless one is not (any more).
      std::string missing;
      for (const auto& b : o->builds) {
        const planner::HashProgress p = progress(b.hash);
        if (p.runs <= p.failures && missing.empty()) missing = b.name;
      }
      if (missing.empty()) {
        jobs.push_back(deployment_job(id, d.row, *o));
      } else {
        failed.emplace_back(id, "its build " + missing + " is not built");
      }
      continue;
    }
    auto status = plan_.statuses.find({d.row.repo, d.row.commit, d.row.name});
    if (status == plan_.statuses.end()) continue;
    const planner::ObjectState state = status->second.state;
    if (state == planner::ObjectState::kRunnable) {
      jobs.push_back(deployment_job(id, d.row, *o));
    } else if (state == planner::ObjectState::kDependencyFailed ||
               state == planner::ObjectState::kUnresolvedDependency) {
      failed.emplace_back(
          id, fmt::format("its build {} {}", status->second.reason,
                          state == planner::ObjectState::kDependencyFailed ? "failed"
                                                                           : "cannot be resolved"));
    }
  }
  for (const auto& [id, why] : failed) stop_deployment(deployments_.at(id), why, false);
  return jobs;
}

void ServerState::start_deployment(WorkerState& worker, const planner::Job& job, int cores,
                                   int ram) {
  auto it = deployments_.find(job.purpose);
  if (it == deployments_.end() || it->second.row.state != "waiting") return;
  const CommitState* c = commit(job.repo, job.commit);
  if (c == nullptr) return;
  const std::string definition = this->definition(job.repo, job.commit, job.name);
  if (definition.empty()) return;
  DeploymentState& d = it->second;
  store::DeploymentRow row = d.row;
  row.state = "starting";
  row.detail.clear();  // why no worker could take it, until this one
  row.worker = worker.id;
  row.started = now_seconds();
  if (Status stored = store_.put_deployment(row); !stored.ok())
    return store_failed("a deployment", stored.error());
  d.row = row;
  d.cores = cores;
  d.ram_gb = ram;
  d.idle_since = row.started;
  plan_input_.deployments.erase({row.repo, row.commit, row.name});
  json message = {{"type", "deploy"},
                  {"run_id", row.id},
                  {"cores", cores},
                  {"ram_gb", ram},
                  {"repo", row.repo},
                  {"commit", row.commit},
                  {"max_seconds", options_.deployment_max_seconds},
                  {"debug", !row.debug_run.empty()},
                  {"object", json::parse(definition, nullptr, false)}};
  add_file_access(message, worker);
  worker.socket->send(message.dump());
  log_event("info", "deployment_started",
            {{"deployment", row.id}, {"worker", worker.id}, {"cores", std::to_string(cores)}});
  broadcast(json{{"type", "deployments"}}.dump());
}

void ServerState::deployment_unrunnable(const std::string& id, const std::string& reason) {
  auto it = deployments_.find(id);
  if (it != deployments_.end() && it->second.row.state == "waiting")
    it->second.row.detail = "no worker can run it: " + reason;
}

void ServerState::deployment_message(const WorkerState& worker, const DeploymentMessage& m) {
  auto it = deployments_.find(m.run_id);
  if (it == deployments_.end() || it->second.row.worker != worker.id) return;
  DeploymentState& d = it->second;
  if (d.row.state == "stopped") return;
  if (m.state == "stopped") {
    stop_deployment(d, m.message.empty() ? "its environment ended" : m.message, false);
    update();
    return;
  }
  if (d.row.state != "starting") return;
  store::DeploymentRow row = d.row;
  row.state = "running";
  if (Status stored = store_.put_deployment(row); !stored.ok())
    store_failed("a deployment", stored.error());
  d.row = row;  // it runs whatever the store says: the worker holds it
  d.idle_since = now_seconds();
  broadcast(json{{"type", "deployments"}}.dump());
}

void ServerState::terminal_output(const WorkerState& worker, const TerminalMessage& m) {
  auto it = deployments_.find(m.run_id);
  if (it == deployments_.end() || it->second.row.worker != worker.id ||
      it->second.row.state == "stopped") {
    return;
  }
  DeploymentState& d = it->second;
  d.screen += m.data;
  if (d.screen.size() > kTerminalScrollback)
    d.screen.erase(0, d.screen.size() - kTerminalScrollback);
  for (const auto& viewer : d.viewers) {
    // A viewer that reads nothing does not make the server hold the whole stream: it is closed
    // (it attaches again and gets the scroll-back).
    if (viewer->buffered() > 8 * kTerminalScrollback) {
      viewer->close("too slow: reconnect to see the screen");
      continue;
    }
    viewer->send_binary(m.data);
  }
}

void ServerState::stop_deployment(DeploymentState& d, const std::string& why, bool tell_worker) {
  store::DeploymentRow row = d.row;
  const bool on_worker = row.state == "starting" || row.state == "running";
  row.state = "stopped";
  row.stopped = now_seconds();
  row.detail = why;
  if (Status stored = store_.put_deployment(row); !stored.ok())
    store_failed("a deployment", stored.error());
  d.row = row;  // stopped here whatever the store says: its cores are free again
  plan_input_.deployments.erase({row.repo, row.commit, row.name});
  if (tell_worker && on_worker) {
    auto w = workers_.find(row.worker);
    if (w != workers_.end() && w->second.socket)
      w->second.socket->send(json{{"type", "shutdown"}, {"run_id", row.id}}.dump());
  }
  const auto viewers = d.viewers;
  d.viewers.clear();
  for (const auto& viewer : viewers) {
    terminal_of_socket_.erase(viewer->id());
    viewer->close("the deployment stopped: " + why);
  }
  log_event("info", "deployment_stopped", {{"deployment", row.id}, {"why", why}});
  broadcast(json{{"type", "deployments"}}.dump());
}

void ServerState::stop_worker_deployments(const std::string& worker, const std::string& why) {
  for (auto& [id, d] : deployments_) {
    if (d.row.worker != worker || (d.row.state != "starting" && d.row.state != "running")) continue;
    stop_deployment(d, why, false);
  }
}

void ServerState::check_deployments(double now) {
  bool stopped = false;
  for (auto& [id, d] : deployments_) {
    if (d.row.state != "starting" && d.row.state != "running") continue;
    if (now - d.row.started > options_.deployment_max_seconds) {
      stop_deployment(
          d, fmt::format("it reached its maximum lifetime ({} s)", options_.deployment_max_seconds),
          true);
      stopped = true;
    } else if (d.viewers.empty() && now - d.idle_since > options_.deployment_idle_seconds) {
      stop_deployment(
          d, fmt::format("idle: no terminal attached for {} s", options_.deployment_idle_seconds),
          true);
      stopped = true;
    }
  }
  if (stopped) update();
}

Result<ServerState::PortTarget> ServerState::deployment_port(const std::string& id,
                                                             const std::string& name) const {
  auto it = deployments_.find(id);
  if (it == deployments_.end()) return Error{"", "no deployment " + id};
  const store::DeploymentRow& row = it->second.row;
  if (row.state != "running") return Error{"", "the deployment is " + row.state};
  std::optional<int> port;
  if (object(row.repo, row.commit, row.name) != nullptr) {
    const json d = json::parse(definition(row.repo, row.commit, row.name), nullptr, false);
    const json ports = d.is_object() ? d.value("portExpose", json::object()) : json::object();
    auto p = ports.is_object() ? ports.find(name) : ports.end();
    if (ports.is_object() && p != ports.end() && p->is_number_integer() && *p > 0 && *p < 65536)
      port = p->get<int>();
  }
  if (!port) return Error{"", "the deployment exposes no port named '" + name + "'"};
  auto w = workers_.find(row.worker);
  if (w == workers_.end() || !w->second.socket || w->second.address.empty())
    return Error{"", "the deployment's worker is not connected"};
  return PortTarget{w->second.address, *port};
}

void ServerState::deployment_used(const std::string& id) {
  auto it = deployments_.find(id);
  if (it != deployments_.end()) it->second.idle_since = now_seconds();
}

Status ServerState::add_terminal_viewer(const std::string& id,
                                        const std::shared_ptr<Socket>& socket) {
  auto it = deployments_.find(id);
  if (it == deployments_.end()) return Error{"", "no deployment " + id};
  DeploymentState& d = it->second;
  if (d.row.state != "starting" && d.row.state != "running")
    return Error{"", "the deployment is " + d.row.state};
  d.viewers.insert(socket);
  terminal_of_socket_[socket->id()] = id;
  if (!d.screen.empty()) socket->send_binary(d.screen);
  return {};
}

void ServerState::remove_terminal_viewer(const std::shared_ptr<Socket>& socket) {
  auto it = terminal_of_socket_.find(socket->id());
  if (it == terminal_of_socket_.end()) return;
  auto d = deployments_.find(it->second);
  terminal_of_socket_.erase(it);
  if (d == deployments_.end()) return;
  d->second.viewers.erase(socket);
  if (d->second.viewers.empty()) d->second.idle_since = now_seconds();
}

void ServerState::terminal_message(const std::shared_ptr<Socket>& socket, const std::string& data,
                                   bool binary) {
  auto it = terminal_of_socket_.find(socket->id());
  if (it == terminal_of_socket_.end()) return;
  auto d = deployments_.find(it->second);
  if (d == deployments_.end() || d->second.row.state == "stopped") return;
  auto w = workers_.find(d->second.row.worker);
  if (w == workers_.end() || !w->second.socket) return;
  if (binary) {
    if (data.empty() || data.size() > kMaxTerminalChunk) return;
    w->second.socket->send(
        json{{"type", "input"}, {"run_id", d->first}, {"data", fleet::base64_encode(data)}}.dump());
    return;
  }
  const json m = json::parse(data, nullptr, false);
  if (!m.is_object() || m.value("type", json()) != "resize") return;
  const json cols = m.value("cols", json()), rows = m.value("rows", json());
  if (!cols.is_number_integer() || !rows.is_number_integer()) return;
  const int64_t c = cols.get<int64_t>(), r = rows.get<int64_t>();
  if (c < 1 || c > 1000 || r < 1 || r > 1000) return;
  w->second.socket->send(
      json{{"type", "resize"}, {"run_id", d->first}, {"cols", c}, {"rows", r}}.dump());
}

}  // namespace testlooper::server
