// GET /api/machines (docs/api.md "Machines"): the fleet's machines, what waits, the limits.
#include <nlohmann/json.hpp>

#include "server/api.h"
#include "server/api_json.h"

namespace testlooper::server {

namespace {

using nlohmann::json;

const char* state_name(fleet::MachineState s) {
  switch (s) {
    case fleet::MachineState::kBooting:
      return "booting";
    case fleet::MachineState::kIdle:
      return "idle";
    case fleet::MachineState::kBusy:
      return "busy";
    case fleet::MachineState::kTerminating:
      return "terminating";
  }
  return "booting";
}

json runs_json(const std::vector<FleetRun>& runs) {
  json out = json::array();
  for (const auto& r : runs)
    out.push_back({{"run_id", r.run_id}, {"repo", r.repo}, {"commit", r.commit}, {"name", r.name}});
  return out;
}

json machine_json(const FleetStatus::MachineView& v) {
  const fleet::Machine& m = v.machine;
  return {{"id", m.id},
          {"instance_id", m.instance_id},
          {"type", m.type},
          {"state", state_name(m.state)},
          {"platform", m.platform},
          {"ami", m.ami},
          {"cores", m.cores},
          {"ram_gb", m.ram_gb},
          {"one_job", m.one_job},
          {"booted_at", static_cast<int64_t>(m.booted_at)},
          {"idle_seconds", static_cast<int64_t>(v.idle_seconds)},
          {"runs", runs_json(v.runs)},
          {"cost_class", v.cost_class}};
}

}  // namespace

Response Api::machines() const {
  json out = {{"enabled", fleet_ != nullptr}, {"provider", fleet_ ? "ec2" : "local"}};
  json machines = json::array(), waiting = json::array();
  if (fleet_ == nullptr) {
    int workers = 0, cores = 0, ram = 0;
    for (const auto& [id, w] : state_.workers()) {
      if (!w.socket) continue;
      ++workers, cores += w.cores, ram += w.ram_gb;
    }
    out["worker_name"] = "";
    out["limits"] = {{"max_workers", -1}, {"max_cores", -1}, {"max_ram_gb", -1}};
    out["used"] = {{"workers", workers}, {"cores", cores}, {"ram_gb", ram}};
    out["error"] = "";
  } else {
    const fleet::FleetOptions& o = fleet_->options();
    const FleetStatus status = fleet_->status();
    out["worker_name"] = o.worker_name;
    out["limits"] = {
        {"max_workers", o.max_workers}, {"max_cores", o.max_cores}, {"max_ram_gb", o.max_ram_gb}};
    out["used"] = {{"workers", status.used_workers},
                   {"cores", status.used_cores},
                   {"ram_gb", status.used_ram_gb}};
    for (const auto& m : status.machines) machines.push_back(machine_json(m));
    for (const auto& [d, why] : status.waiting) {
      waiting.push_back({{"platform", d.platform},
                         {"ami", d.ami},
                         {"cores", d.cores},
                         {"ram_gb", d.ram_gb},
                         {"runs", d.runs},
                         {"reason", why}});
    }
    out["error"] = status.error;
  }
  out["machines"] = machines;
  out["waiting"] = waiting;
  return reply::ok(out);
}

}  // namespace testlooper::server
