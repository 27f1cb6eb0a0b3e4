// decide(): pure (no I/O, no clock: `now` is given).
//
// Packing (kept simple): each boot is the cheapest type that fits one run of its demand, and it
// counts for as many runs of that demand as its cores and RAM hold (one for one-job machines). A
// bigger type is never chosen to pack more runs: the cheapest fitting type is also the cheapest
// per run when prices grow with cores, as EC2's do within a family.
#include "fleet/fleet.h"

#include <fmt/format.h>

#include <algorithm>
#include <climits>

namespace testlooper::fleet {

namespace {

// How many runs of `demand` a machine with these free cores and RAM holds.
int runs_fitting(const Demand& demand, int cores, int ram_gb) {
  if (demand.one_job) return cores >= demand.cores && ram_gb >= demand.ram_gb ? 1 : 0;
  int n = cores / std::max(1, demand.cores);
  if (demand.ram_gb > 0) n = std::min(n, ram_gb / demand.ram_gb);
  return std::max(0, n);
}

bool machine_serves(const FleetOptions& options, const Machine& machine, const Demand& demand) {
  return machine.platform == demand.platform && machine.one_job == demand.one_job &&
         machine.ami == image_for(options, demand);
}

// Why `machine` should go now, or "".
std::string termination_reason(const FleetOptions& options, const Machine& machine, double now) {
  switch (machine.state) {
    case MachineState::kBooting:
      if (now - machine.booted_at > options.boot_timeout_seconds)
        return fmt::format("its worker did not connect within boot_timeout_seconds ({:g} s)",
                           options.boot_timeout_seconds);
      return "";
    case MachineState::kIdle:
      if (machine.one_job && machine.jobs_started > 0) return "a one-job machine that ran its job";
      if (now - machine.idle_since > options.idle_shutdown_seconds)
        return fmt::format("idle for more than idle_shutdown_seconds ({:g} s)",
                           options.idle_shutdown_seconds);
      return "";
    default:
      return "";
  }
}

struct Use {
  int64_t workers = 0, cores = 0, ram_gb = 0;
};

// The limit a boot of `type` would pass, or "".
std::string limit_passed(const FleetOptions& options, const Use& use, const InstanceType& type) {
  if (options.max_workers >= 0 && use.workers + 1 > options.max_workers)
    return fmt::format("max_workers ({}) reached", options.max_workers);
  if (options.max_cores >= 0 && use.cores + type.cores > options.max_cores)
    return fmt::format("max_cores ({}) reached", options.max_cores);
  if (options.max_ram_gb >= 0 && use.ram_gb + type.ram_gb > options.max_ram_gb)
    return fmt::format("max_ram_gb ({}) reached", options.max_ram_gb);
  return "";
}

}  // namespace

const InstanceType* cheapest_fitting(const std::vector<InstanceType>& types, int cores,
                                     int ram_gb) {
  const InstanceType* best = nullptr;
  for (const auto& t : types) {
    if (t.cores < cores || t.ram_gb < ram_gb) continue;
    if (!best || t.cores < best->cores || (t.cores == best->cores && t.ram_gb < best->ram_gb))
      best = &t;
  }
  return best;
}

std::string image_for(const FleetOptions& options, const Demand& demand) {
  if (!demand.ami.empty()) return demand.ami;
  return demand.platform == "windows" ? options.windows_ami : options.linux_ami;
}

FleetDecision decide(const FleetOptions& options, const std::vector<Demand>& demand,
                     const std::vector<Machine>& machines, double now) {
  FleetDecision decision;
  decision.waiting_reasons.assign(demand.size(), "");
  Use use;
  // What each staying machine that takes no run yet can still hold: booting ones whole, idle
  // ones their free cores and RAM.
  std::vector<std::pair<int, int>> room;
  std::vector<const Machine*> spare;
  for (const auto& m : machines) {
    if (m.state == MachineState::kTerminating) continue;
    if (auto why = termination_reason(options, m, now); !why.empty()) {
      decision.terminate.push_back(m.id);
      decision.reasons[m.id] = why;
      continue;
    }
    use.workers += 1, use.cores += m.cores, use.ram_gb += m.ram_gb;
    if (m.state == MachineState::kBooting)
      spare.push_back(&m), room.emplace_back(m.cores, m.ram_gb);
    else if (m.state == MachineState::kIdle && !(m.one_job && m.jobs_started > 0))
      spare.push_back(&m), room.emplace_back(m.free_cores, m.free_ram_gb);
  }
  for (size_t d = 0; d < demand.size(); ++d) {
    const Demand& want = demand[d];
    int waiting = want.runs;
    for (size_t i = 0; i < spare.size() && waiting > 0; ++i) {
      if (!machine_serves(options, *spare[i], want)) continue;
      const int n = std::min(waiting, runs_fitting(want, room[i].first, room[i].second));
      if (n <= 0) continue;
      waiting -= n;
      room[i].first -= n * want.cores;
      room[i].second -= n * want.ram_gb;
      if (want.one_job) room[i] = {0, 0};
    }
    if (waiting <= 0) continue;
    const std::string image = image_for(options, want);
    if (image.empty()) {
      decision.waiting_reasons[d] =
          fmt::format("no {}_ami is configured in machine_management", want.platform);
      continue;
    }
    const InstanceType* type = cheapest_fitting(options.instance_types, want.cores, want.ram_gb);
    if (!type) {
      decision.waiting_reasons[d] =
          fmt::format("no instance type has {} cores and {} GB of RAM", want.cores, want.ram_gb);
      continue;
    }
    while (waiting > 0) {
      if (auto passed = limit_passed(options, use, *type); !passed.empty()) {
        decision.waiting_reasons[d] = passed;
        break;
      }
      const int n = std::min(waiting, std::max(1, runs_fitting(want, type->cores, type->ram_gb)));
      decision.boots.push_back({*type, want.platform, image, want.setup_script, want.one_job, n});
      waiting -= n;
      use.workers += 1, use.cores += type->cores, use.ram_gb += type->ram_gb;
    }
  }
  return decision;
}

}  // namespace testlooper::fleet
