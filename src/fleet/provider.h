// Where machines come from. `ec2` boots instances (Ec2Provider below); `local` workers are the
// processes `serve --workers N` supervises, as before the fleet.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "fleet/fleet.h"

namespace testlooper::fleet {

// What a booted machine must do to become a worker of this server.
struct BootTicket {
  std::string machine_id;    // the worker id (--id) and tag testlooper-machine
  std::string server_url;    // --server
  std::string worker_token;  // a worker token made for this machine
  Boot boot;
};

// A machine as the provider sees it.
struct ProvidedMachine {
  std::string machine_id;  // tag testlooper-machine
  std::string instance_id;
  std::string type;
  std::string state;  // pending | running | shutting-down | ...
  std::string ami;
  std::string platform;  // from tag testlooper-platform
  bool one_job = false;  // from tag testlooper-one-job
  double launched_at = 0;
};

class Provider {
 public:
  virtual ~Provider() = default;
  virtual Result<ProvidedMachine> boot(const BootTicket& ticket) = 0;
  // Every machine of this worker_name that is not terminated (ours only: by tag).
  virtual Result<std::vector<ProvidedMachine>> list() = 0;
  virtual Status terminate(const std::vector<std::string>& instance_ids) = 0;
};

// The boot scripts (user data). Linux: a bash script that appends host_ips to /etc/hosts, writes
// the token to a private file and execs `testlooper worker --server URL --id ID --token-file F
// [--ami AMI]` after the setup script; Windows: the same in PowerShell (<powershell> ...
// </powershell>). Its first lines carry `# testlooper-server:`, `# testlooper-machine:` ... so the
// tests' harness (tests/fleet/instance_harness.py) can play the instance.
std::string boot_script(const FleetOptions& options, const BootTicket& ticket);

// EC2: RunInstances tagged testlooper-worker-name=<worker_name>, testlooper-machine=<id>,
// testlooper-platform, testlooper-one-job, Name; the boot script put in bootstrap_bucket under
// bootstrap_key_prefix + <id> when a bucket is set (the user data then fetches and runs it), else
// the user data itself.
// Error when no credentials are found (load_credentials).
Result<std::unique_ptr<Provider>> make_ec2_provider(const FleetOptions& options);

}  // namespace testlooper::fleet
