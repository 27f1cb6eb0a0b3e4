// The fleet: machines booted on demand (EC2) for the runs no connected worker can take, within
// limits, and terminated when idle. This header is pure (options and the decision); the provider
// that boots machines is provider.h, the server's controller server/fleet_controller.h.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace testlooper::fleet {

// One entry of machine_management.instance_types: [{"cores": 4, "ram_gb": 16}, "m5.xlarge"].
struct InstanceType {
  std::string name;
  int cores = 0;
  int ram_gb = 0;
};

// config.json's machine_management, Aws form (docs/configuration.md "The fleet").
struct FleetOptions {
  bool enabled = false;     // the Aws form was given
  std::string worker_name;  // the tag testlooper-worker-name on every instance; required
  std::string region = "us-east-1";
  std::string endpoint_url;  // "" = AWS; else an EC2-compatible endpoint (moto in the tests)
  std::string vpc_id;
  std::string security_group;  // sg-...
  std::string subnet;          // subnet-...
  std::string keypair;
  std::string bootstrap_bucket;  // "" = the whole boot script goes in the user data
  std::string bootstrap_key_prefix;
  std::string worker_iam_role_name;          // the instance profile booted machines get
  std::string path_to_keys;                  // the keypair's private key (for people; unused by us)
  std::vector<InstanceType> instance_types;  // at least one; "cheapest" = fewest cores, then RAM
  std::string linux_ami;
  std::string windows_ami;
  std::map<std::string, std::string> host_ips;  // host name -> IP, appended to /etc/hosts
  int max_workers = -1;                         // -1 = no limit
  int max_cores = -1;
  int max_ram_gb = -1;
  double idle_shutdown_seconds = 600;
  double boot_timeout_seconds =
      900;  // a machine whose worker has not connected by then is terminated
  // The URL booted workers reach the server at ("" = server.public_url).
  std::string server_url;
};

// What waits: runs no connected worker can take now, grouped by what a machine needs to take them.
struct Demand {
  std::string platform = "linux";  // "linux" | "windows"
  std::string ami;                 // "" = linux_ami/windows_ami; else an AMI environment's base_ami
  std::string setup_script;  // an AMI environment's setup_script_contents (run before the worker)
  bool one_job = false;      // AMI environments: the machine runs one job, then is terminated
  int cores = 1;             // per run
  int ram_gb = 0;            // per run
  int runs = 0;              // how many runs wait
};

enum class MachineState { kBooting, kIdle, kBusy, kTerminating };

// A machine of ours, as the controller knows it (provider.h's list plus the connected workers).
struct Machine {
  std::string id;           // the worker id it connects with (also tag testlooper-machine)
  std::string instance_id;  // i-...
  std::string type;         // instance type name
  int cores = 0;
  int ram_gb = 0;
  std::string platform = "linux";
  std::string ami;  // the image it was booted from
  bool one_job = false;
  MachineState state = MachineState::kBooting;
  double booted_at = 0;   // Unix seconds
  double idle_since = 0;  // when it last had no run (kIdle)
  int jobs_started = 0;   // runs given to it
  int free_cores = 0;     // while connected
  int free_ram_gb = 0;
};

struct Boot {
  InstanceType type;
  std::string platform = "linux";
  std::string ami;  // the image to boot
  std::string setup_script;
  bool one_job = false;
  int runs = 0;  // how many waiting runs it is booted for
};

struct FleetDecision {
  std::vector<Boot> boots;
  std::vector<std::string> terminate;  // machine ids, with why in `reasons`
  std::map<std::string, std::string> reasons;
  // Per entry of `demand`: why some of its runs get no machine now ("" = every run has one,
  // booting, idle or booted now): no AMI for the platform, no type that fits, a limit reached.
  std::vector<std::string> waiting_reasons;
};

// The cheapest type with at least `cores` and `ram_gb` (fewest cores, then least RAM), or null.
const InstanceType* cheapest_fitting(const std::vector<InstanceType>& types, int cores, int ram_gb);

// The image a demand boots: its own AMI, else the platform's (linux_ami/windows_ami; "" = none).
std::string image_for(const FleetOptions& options, const Demand& demand);

// Decides what to boot and terminate now. Boots the cheapest instance type that fits each waiting
// run, packing runs of one kind onto a machine, within max_workers, max_cores and max_ram_gb
// counted over every machine not terminating; never boots for runs a booting machine (or an idle
// one that can take it) will take. Terminates machines idle longer than idle_shutdown_seconds,
// one-job machines that ran their job and are idle, and machines still booting after
// boot_timeout_seconds.
FleetDecision decide(const FleetOptions& options, const std::vector<Demand>& demand,
                     const std::vector<Machine>& machines, double now);

}  // namespace testlooper::fleet
