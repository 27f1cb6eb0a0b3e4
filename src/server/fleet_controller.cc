#include "server/fleet_controller.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "core/token.h"
#include "server/protocol.h"

namespace testlooper::server {

namespace {

constexpr double kFirstBackoff = 5;
constexpr double kMaxBackoff = 300;

bool terminating_state(const std::string& state) {
  return state == "shutting-down" || state == "stopping" || state == "stopped" ||
         state == "terminated";
}

const fleet::InstanceType* type_named(const fleet::FleetOptions& options, const std::string& name) {
  for (const auto& t : options.instance_types)
    if (t.name == name) return &t;
  return nullptr;
}

// 1 for the cheapest configured type (fewest cores, then least RAM), 2 for the next, ...
int cost_class(const fleet::FleetOptions& options, const std::string& type) {
  const auto* mine = type_named(options, type);
  if (!mine) return 0;
  std::set<std::pair<int, int>> sizes;
  for (const auto& t : options.instance_types) sizes.insert({t.cores, t.ram_gb});
  return 1 +
         static_cast<int>(std::distance(sizes.begin(), sizes.find({mine->cores, mine->ram_gb})));
}

}  // namespace

FleetController::FleetController(fleet::FleetOptions options,
                                 std::unique_ptr<fleet::Provider> provider, std::string server_url,
                                 Hooks hooks, double tick_seconds)
    : options_(std::move(options)),
      provider_(std::move(provider)),
      server_url_(std::move(server_url)),
      hooks_(std::move(hooks)),
      tick_seconds_(tick_seconds) {
  thread_ = std::thread([this] { loop(); });
}

FleetController::~FleetController() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void FleetController::update(FleetSnapshot snapshot) {
  std::lock_guard lock(mutex_);
  snapshot_ = std::move(snapshot);
}

FleetStatus FleetController::status() const {
  std::lock_guard lock(mutex_);
  return status_;
}

void FleetController::loop() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, std::chrono::duration<double>(tick_seconds_),
                     [this] { return !!stop_; });
      if (stop_) return;
    }
    step(now_seconds());
  }
}

void FleetController::failed(const std::string& what, const Error& error, double now) {
  error_ = what + ": " + error.to_string();
  backoff_ = backoff_ == 0 ? kFirstBackoff : std::min(kMaxBackoff, backoff_ * 2);
  next_boot_at_ = now + backoff_;
  hooks_.log(fmt::format("fleet: {} (no boot for {:g} s)", error_, backoff_));
}

void FleetController::step(double now) {
  std::optional<FleetSnapshot> snapshot;
  {
    std::lock_guard lock(mutex_);
    snapshot = snapshot_;
  }
  if (!snapshot) return;  // nothing from the state yet: no decision on half a picture
  auto listed = provider_->list();
  if (!listed.ok()) {
    error_ = "listing instances: " + listed.error().to_string();
    std::lock_guard lock(mutex_);
    status_.error = error_;
    return;
  }
  forget_gone(*listed);
  const auto machines = machines_now(*listed, *snapshot, now);
  const auto decision = fleet::decide(options_, snapshot->demand, machines, now);
  terminate(decision, machines, now);
  backing_off_ = now < next_boot_at_ && !decision.boots.empty();
  if (!backing_off_) {
    for (const auto& b : decision.boots) {
      if (stop_ || now_seconds() < next_boot_at_) break;
      boot(b, now);
    }
  }
  publish(machines_now(*listed, *snapshot, now), *snapshot, decision, now);
}

void FleetController::forget_gone(const std::vector<fleet::ProvidedMachine>& listed) {
  std::set<std::string> ids, instances;
  for (const auto& p : listed) ids.insert(p.machine_id), instances.insert(p.instance_id);
  for (const auto& [id, p] : booted_) ids.insert(id);
  std::erase_if(terminating_, [&](const auto& t) { return !instances.count(t.first); });
  for (auto* times : {&first_seen_, &last_connected_, &idle_since_})
    std::erase_if(*times, [&](const auto& t) { return !ids.count(t.first); });
}

std::vector<fleet::Machine> FleetController::machines_now(
    const std::vector<fleet::ProvidedMachine>& listed, const FleetSnapshot& snapshot, double now) {
  std::map<std::string, const FleetWorker*> workers;
  for (const auto& w : snapshot.workers) workers[w.id] = &w;
  std::vector<fleet::ProvidedMachine> all = listed;
  for (const auto& p : listed) booted_.erase(p.machine_id);
  for (const auto& [id, p] : booted_) all.push_back(p);
  std::vector<fleet::Machine> out;
  for (const auto& p : all) {
    if (p.machine_id.empty()) continue;  // our tag, but not booted by a TestLooper server
    fleet::Machine m;
    m.id = p.machine_id;
    m.instance_id = p.instance_id;
    m.type = p.type;
    m.platform = p.platform;
    m.ami = p.ami;
    m.one_job = p.one_job;
    if (const auto* t = type_named(options_, p.type)) m.cores = t->cores, m.ram_gb = t->ram_gb;
    if (first_seen_.emplace(m.id, now).second && first_list_ && !adopted_.count(m.id)) {
      adopted_.insert(m.id);
      hooks_.log(fmt::format("fleet: adopted {} ({}, {}): listed under worker_name {}",
                             p.instance_id, p.type, m.id, options_.worker_name));
    }
    auto w = workers.find(m.id);
    if (w != workers.end()) m.jobs_started = w->second->runs_started;
    if (terminating_state(p.state) || terminating_.count(p.instance_id)) {
      m.state = fleet::MachineState::kTerminating;
    } else if (w != workers.end() && w->second->connected) {
      last_connected_[m.id] = now;
      m.cores = w->second->cores, m.ram_gb = w->second->ram_gb;
      m.free_cores = w->second->free_cores, m.free_ram_gb = w->second->free_ram_gb;
      m.state = w->second->runs.empty() ? fleet::MachineState::kIdle : fleet::MachineState::kBusy;
    } else {
      // Booting, or its worker went away: it has boot_timeout_seconds from its launch, from
      // when this server first saw it (adopted after a restart), or from its last connection.
      m.state = fleet::MachineState::kBooting;
    }
    m.booted_at = std::max(p.launched_at, first_seen_[m.id]);
    if (auto c = last_connected_.find(m.id);
        c != last_connected_.end() && m.state == fleet::MachineState::kBooting)
      m.booted_at = std::max(m.booted_at, c->second);
    if (m.state == fleet::MachineState::kIdle)
      m.idle_since = idle_since_.emplace(m.id, now).first->second;
    else
      idle_since_.erase(m.id);
    out.push_back(m);
  }
  first_list_ = false;
  return out;
}

void FleetController::terminate(const fleet::FleetDecision& decision,
                                const std::vector<fleet::Machine>& machines, double now) {
  std::vector<std::string> ids;
  std::vector<const fleet::Machine*> going;
  for (const auto& id : decision.terminate) {
    for (const auto& m : machines)
      if (m.id == id && !m.instance_id.empty()) ids.push_back(m.instance_id), going.push_back(&m);
  }
  if (ids.empty()) return;
  if (Status s = provider_->terminate(ids); !s.ok()) {
    error_ = "terminating instances: " + s.error().to_string();
    hooks_.log("fleet: " + error_);
    return;
  }
  for (const auto* m : going) {
    terminating_[m->instance_id] = now;
    booted_.erase(m->id);
    hooks_.revoke_token(m->id);
    const std::string& why = decision.reasons.at(m->id);
    hooks_.log(
        fmt::format("fleet: terminated {} ({}, {}): {}", m->instance_id, m->type, m->id, why));
    // A machine that never connected: what it was booted for waits, and boots back off.
    if (m->state == fleet::MachineState::kBooting)
      failed("boot of " + m->id, Error{m->id, why}, now);
  }
}

void FleetController::boot(const fleet::Boot& boot, double now) {
  const std::string id = "m-" + random_hex(6);
  auto token = hooks_.make_token(id);
  if (!token.ok()) return failed("a worker token for " + id, token.error(), now);
  fleet::BootTicket ticket{id, server_url_, *token, boot};
  auto machine = provider_->boot(ticket);
  if (!machine.ok()) {
    hooks_.revoke_token(id);
    return failed("booting a " + boot.type.name, machine.error(), now);
  }
  machine->machine_id = id;
  machine->platform = boot.platform;
  machine->one_job = boot.one_job;
  if (machine->launched_at == 0) machine->launched_at = now;
  booted_[id] = *machine;
  error_.clear();
  backoff_ = 0;
  hooks_.log(fmt::format("fleet: booted {} ({}, {} from {}) as {} for {} waiting run{}{}",
                         machine->instance_id, boot.type.name, boot.platform, boot.ami, id,
                         boot.runs, boot.runs == 1 ? "" : "s", boot.one_job ? " (one job)" : ""));
}

void FleetController::publish(const std::vector<fleet::Machine>& machines,
                              const FleetSnapshot& snapshot, const fleet::FleetDecision& decision,
                              double now) {
  FleetStatus status;
  std::map<std::string, const FleetWorker*> workers;
  for (const auto& w : snapshot.workers) workers[w.id] = &w;
  for (const auto& m : machines) {
    FleetStatus::MachineView v{m, 0, {}, cost_class(options_, m.type)};
    if (m.state == fleet::MachineState::kIdle) v.idle_seconds = now - m.idle_since;
    if (auto w = workers.find(m.id); w != workers.end()) v.runs = w->second->runs;
    if (m.state != fleet::MachineState::kTerminating) {
      ++status.used_workers;
      status.used_cores += m.cores;
      status.used_ram_gb += m.ram_gb;
    }
    status.machines.push_back(std::move(v));
  }
  for (size_t i = 0; i < snapshot.demand.size(); ++i) {
    std::string why = i < decision.waiting_reasons.size() ? decision.waiting_reasons[i] : "";
    if (why.empty() && backing_off_)
      why = fmt::format("boots back off for {:.0f} s after: {}", next_boot_at_ - now, error_);
    if (why.empty()) why = "a machine is booting for it";
    status.waiting.emplace_back(snapshot.demand[i], why);
  }
  status.error = error_;
  std::lock_guard lock(mutex_);
  status_ = std::move(status);
}

}  // namespace testlooper::server
