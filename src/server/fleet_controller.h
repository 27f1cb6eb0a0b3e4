// FleetController: the server's side of the fleet (issue 14). It boots EC2 machines for the runs
// that wait and terminates those no longer needed (fleet::decide), adopting at start the
// instances the provider lists under our worker_name.
//
// Threads: every provider call (EC2, S3) is made on the controller's own thread, never on the io
// thread. The io thread hands it what the state knows (update(), a FleetSnapshot taken after
// dispatch) and reads what it last saw (status()); making and revoking the machines' worker
// tokens (the store is the io thread's) go through Hooks that post to the io thread. Destroy it
// before the io thread's objects (it is stopped first at shutdown).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "fleet/fleet.h"
#include "fleet/provider.h"

namespace testlooper::server {

// A run on a worker, as /api/machines shows it.
struct FleetRun {
  std::string run_id, repo, commit, name;
};

// A worker the state knows (ServerState::fleet_snapshot): machines connect as workers whose id is
// the machine id.
struct FleetWorker {
  std::string id;
  bool connected = false;
  int cores = 0, ram_gb = 0, free_cores = 0, free_ram_gb = 0;
  int runs_started = 0;
  std::vector<FleetRun> runs;
};

struct FleetSnapshot {
  std::vector<fleet::Demand> demand;  // what waits after dispatch
  std::vector<FleetWorker> workers;
};

// What the controller last saw and decided, for GET /api/machines.
struct FleetStatus {
  struct MachineView {
    fleet::Machine machine;
    double idle_seconds = 0;
    std::vector<FleetRun> runs;
    int cost_class = 0;  // 1 = the cheapest configured type
  };
  std::vector<MachineView> machines;
  std::vector<std::pair<fleet::Demand, std::string>> waiting;  // with why it waits
  int used_workers = 0, used_cores = 0, used_ram_gb = 0;
  std::string error;  // the last provider error ("" once a call works again)
};

class FleetController {
 public:
  struct Hooks {
    // A new worker token named `machine_id` (role worker); its text. Blocking.
    std::function<Result<std::string>(const std::string& machine_id)> make_token;
    // Revokes token `machine_id` (its machine is terminated).
    std::function<void(const std::string& machine_id)> revoke_token;
    // One line of the server's log.
    std::function<void(const std::string& line)> log;
  };

  // Starts the thread. `server_url`: what booted workers connect to.
  FleetController(fleet::FleetOptions options, std::unique_ptr<fleet::Provider> provider,
                  std::string server_url, Hooks hooks, double tick_seconds = 1);
  ~FleetController();  // stops and joins
  FleetController(const FleetController&) = delete;
  FleetController& operator=(const FleetController&) = delete;

  const fleet::FleetOptions& options() const { return options_; }
  // The latest state (io thread).
  void update(FleetSnapshot snapshot);
  FleetStatus status() const;
  // Whether the controller is stopping (hooks waiting on the io thread give up).
  bool stopping() const { return stop_; }

 private:
  void loop();
  // Forgets what it kept about machines no longer listed.
  void forget_gone(const std::vector<fleet::ProvidedMachine>& listed);
  void step(double now);
  std::vector<fleet::Machine> machines_now(const std::vector<fleet::ProvidedMachine>& listed,
                                           const FleetSnapshot& snapshot, double now);
  void terminate(const fleet::FleetDecision& decision, const std::vector<fleet::Machine>& machines,
                 double now);
  void boot(const fleet::Boot& boot, double now);
  void failed(const std::string& what, const Error& error, double now);
  void publish(const std::vector<fleet::Machine>& machines, const FleetSnapshot& snapshot,
               const fleet::FleetDecision& decision, double now);

  const fleet::FleetOptions options_;
  std::unique_ptr<fleet::Provider> provider_;
  const std::string server_url_;
  const Hooks hooks_;
  const double tick_seconds_;

  mutable std::mutex mutex_;  // guards snapshot_, status_, stop_ changes
  std::condition_variable wake_;
  std::optional<FleetSnapshot> snapshot_;
  FleetStatus status_;
  std::atomic<bool> stop_{false};

  // The controller thread's own (no lock).
  std::map<std::string, double> first_seen_;      // machine id -> when this server first listed it
  std::map<std::string, double> last_connected_;  // machine id -> when its worker was last seen
  std::map<std::string, double> idle_since_;
  std::map<std::string, fleet::ProvidedMachine> booted_;  // booted, not listed yet
  std::map<std::string, double> terminating_;             // instance id -> when asked
  std::set<std::string> adopted_;                         // machine ids logged as adopted
  bool first_list_ = true;
  double next_boot_at_ = 0;  // back-off after a failed boot or a machine that never connected
  double backoff_ = 0;
  bool backing_off_ = false;  // boots were wanted but wait for next_boot_at_
  std::string error_;
  std::thread thread_;
};

}  // namespace testlooper::server
