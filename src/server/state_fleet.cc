// ServerState::fleet_snapshot: what waits and who works, for the FleetController.
#include <nlohmann/json.hpp>
#include <tuple>

#include "server/state.h"

namespace testlooper::server {

namespace {

using nlohmann::json;

// An object's setup_script_contents (its definition's image), "" when none.
std::string setup_script(const std::string& definition) {
  const json j = json::parse(definition, nullptr, false);
  if (!j.is_object() || !j.contains("image") || !j["image"].is_object()) return "";
  const json& s = j["image"].value("setup_script_contents", json(""));
  return s.is_string() ? s.get<std::string>() : "";
}

}  // namespace

FleetSnapshot ServerState::fleet_snapshot() const {
  FleetSnapshot out;
  // (platform, image, setup script, cores, ram) -> its entry in out.demand
  std::map<std::tuple<std::string, std::string, std::string, int, int>, size_t> groups;
  auto add = [&](const planner::Job& job) {
    if (job.runs <= 0) return;
    fleet::Demand d;
    d.platform = job.platform;
    d.ami = job.ami ? job.image : "";
    // Run at boot, before the worker starts: an AMI environment's, or a Windows one's.
    if (job.ami || job.platform == "windows")
      d.setup_script = setup_script(definition(job.repo, job.commit, job.name));
    d.one_job = job.ami;
    d.cores = std::max(1, job.min_cores);
    d.ram_gb = std::max(0, job.min_ram_gb);
    auto key = std::make_tuple(d.platform, d.ami, d.setup_script, d.cores, d.ram_gb);
    auto [at, added] = groups.emplace(key, out.demand.size());
    if (added) out.demand.push_back(d);
    out.demand[at->second].runs += job.runs;
  };
  // A deployment ready to start waits like a run of its environment.
  for (const auto& job : waiting_deployments_) add(job);
  for (const auto& job : plan_.jobs) add(job);
  for (const auto& [id, w] : workers_) {
    FleetWorker f{id,       w.socket != nullptr, w.cores, w.ram_gb, w.cores,
                  w.ram_gb, w.runs_started,      {}};
    for (const auto& [run_id, use] : w.running) {
      f.free_cores -= use.first;
      f.free_ram_gb -= use.second;
      auto run = active_runs_.find(run_id);
      if (run != active_runs_.end())
        f.runs.push_back({run_id, run->second.repo, run->second.commit, run->second.name});
    }
    // A deployment holds its cores and RAM while it lives: its machine is busy, not idle.
    for (const auto& [dep_id, d] : deployments_) {
      if (d.row.worker != id || (d.row.state != "starting" && d.row.state != "running")) continue;
      f.free_cores -= d.cores;
      f.free_ram_gb -= d.ram_gb;
      f.runs.push_back({dep_id, d.row.repo, d.row.commit, d.row.name});
    }
    out.workers.push_back(std::move(f));
  }
  return out;
}

}  // namespace testlooper::server
