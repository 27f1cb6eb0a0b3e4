#include "server/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <map>

namespace testlooper::server {

std::string metrics_text(const ServerState& state, const FleetController* fleet) {
  // A registry per scrape: the values are read from the state, which already keeps them.
  prometheus::Registry registry;
  auto& queue = prometheus::BuildGauge()
                    .Name("testlooper_queue_runs")
                    .Help("Runs the plan wants that have not started, by kind (build, test)")
                    .Register(registry);
  for (const auto& [kind, runs] : state.queued_runs())
    queue.Add({{"kind", kind}}).Set(static_cast<double>(runs));

  prometheus::BuildGauge()
      .Name("testlooper_runs_active")
      .Help("Runs started on a worker and not ended")
      .Register(registry)
      .Add({})
      .Set(static_cast<double>(state.active_runs()));

  auto& ended = prometheus::BuildCounter()
                    .Name("testlooper_runs_total")
                    .Help(
                        "Runs ended since the server started, by outcome (succeeded, failed, "
                        "infra_failed, cancelled) and kind")
                    .Register(registry);
  for (const auto& [key, count] : state.runs_ended())
    ended.Add({{"outcome", key.first}, {"kind", key.second}}).Increment(static_cast<double>(count));

  int connected = 0, cores = 0, busy_cores = 0;
  for (const auto& [id, w] : state.workers()) {
    if (!w.socket) continue;
    ++connected;
    cores += w.cores;
    for (const auto& [run, use] : w.running) busy_cores += use.first;
  }
  prometheus::BuildGauge()
      .Name("testlooper_workers")
      .Help("Workers connected now")
      .Register(registry)
      .Add({})
      .Set(connected);
  auto& core_gauge = prometheus::BuildGauge()
                         .Name("testlooper_worker_cores")
                         .Help("Cores of the connected workers, by use (busy, total)")
                         .Register(registry);
  core_gauge.Add({{"use", "busy"}}).Set(busy_cores);
  core_gauge.Add({{"use", "total"}}).Set(cores);

  auto& extra = prometheus::BuildGauge()
                    .Name("testlooper_extra_runs_used")
                    .Help(
                        "Extra runs a branch under test has spent from its budget "
                        "(testlooper_extra_runs_budget) at its current head")
                    .Register(registry);
  for (const auto& [key, branch] : state.branches()) {
    if (!branch.under_test) continue;
    extra.Add({{"repo", key.first}, {"branch", key.second}})
        .Set(static_cast<double>(state.extra_used(key.first, key.second)));
  }
  prometheus::BuildGauge()
      .Name("testlooper_extra_runs_budget")
      .Help("Extra runs each branch under test may spend at each head")
      .Register(registry)
      .Add({})
      .Set(static_cast<double>(state.extra_budget()));

  auto& windows = prometheus::BuildCounter()
                      .Name("testlooper_stats_windows_total")
                      .Help(
                          "Statistics windows (a branch head's tests along its first-parent "
                          "history) computed whole, or brought up to date from the cache, since "
                          "the server started")
                      .Register(registry);
  windows.Add({{"how", "computed"}}).Increment(static_cast<double>(state.stats_cache().computed()));
  windows.Add({{"how", "refreshed"}})
      .Increment(static_cast<double>(state.stats_cache().refreshed()));

  if (fleet != nullptr) {
    const FleetStatus status = fleet->status();
    auto& machines = prometheus::BuildGauge()
                         .Name("testlooper_fleet_machines")
                         .Help("Machines of the fleet, by state")
                         .Register(registry);
    std::map<std::string, double> by_state = {
        {"booting", 0}, {"idle", 0}, {"busy", 0}, {"terminating", 0}};
    for (const auto& m : status.machines) {
      switch (m.machine.state) {
        case fleet::MachineState::kBooting:
          ++by_state["booting"];
          break;
        case fleet::MachineState::kIdle:
          ++by_state["idle"];
          break;
        case fleet::MachineState::kBusy:
          ++by_state["busy"];
          break;
        case fleet::MachineState::kTerminating:
          ++by_state["terminating"];
          break;
      }
    }
    for (const auto& [name, n] : by_state) machines.Add({{"state", name}}).Set(n);
  }
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

}  // namespace testlooper::server
