// The environments module: starts one command of a run in the environment its definition asks
// for, and kills everything it started.
//
//   host    a bash process in its own process group on this machine (`image: {host: true}`, or
//           any Linux environment with EnvironmentOptions::on_host);
//   docker  `docker run` of an image built from the environment's Dockerfile text, tagged
//           `testlooper-env:<first 12 hex of its sha256>` and reused when present; the run's
//           directories are mounted at the same paths; every container started is removed,
//           including after a timeout or kill.
// `ami` and `windows` environments are not runnable on a Linux machine: launcher_for() says so.
//
// Processes that leave the command's process group (setsid, daemons) carry the run's marker
// TESTLOOPER_RUN_ID=<run id> in their environment and are killed when the command ends, however
// it ends; processes of a dead worker are found by their owner marker (kill_leftovers).
//
// Every Error returned here is an infrastructure failure (cannot fork, no docker engine, image
// build failed), never a test failure: a command that runs and exits non-zero is an Exit.
// Thread-safety: Launchers and the LauncherFactory are thread-safe; a Process is used by one
// thread, except kill(), which may be called from any thread at any time.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"
#include "definitions/definitions.h"

namespace testlooper::environments {

// One command to run: a bash script with the variables the run defines.
struct Command {
  std::string script;                      // run by `bash -c`
  std::map<std::string, std::string> env;  // the run's variables; the environment adds its base
                                           // (host: PATH, HOME, USER, LANG...; docker: image ENV)
  std::string working_dir;                 // absolute
  std::vector<std::string> mounts;         // absolute host dirs visible at the same path
  int log_fd = -1;                         // stdout and stderr (not owned); stdin is /dev/null
  std::string run_id;  // names what the command belongs to: containers, process sweeps
  // The work directory (slot) the command runs in, "" = none. Host processes carry
  // TESTLOOPER_OWNER=<owner> in their environment and containers the label
  // testlooper.owner=<owner>, so that kill_leftovers(owner) finds what a dead process started.
  std::string owner;
  // Ports published for a docker command (`--publish address:port:port`: a deployment's
  // portExpose, on the worker's address the server sees); host commands listen themselves.
  struct Published {
    std::string address;  // an IPv4 or IPv6 address
    int port = 0;         // 1..65535
  };
  std::vector<Published> publish;
};

// How a command ended.
struct Exit {
  enum class Kind { kExited, kSignaled, kTimedOut, kKilled };
  Kind kind = Kind::kExited;
  int code = 0;  // exit status for kExited, signal number for kSignaled, else -1

  bool success() const { return kind == Kind::kExited && code == 0; }
  // "exit 3", "signal 9", "timed out", "killed".
  std::string to_string() const;
};

// A started command. Destroying it kills whatever still runs and reaps it.
class Process {
 public:
  virtual ~Process() = default;

  // Blocks until the command ends, or until `deadline`, when the whole tree is killed and the
  // result is kTimedOut. Every process the command started is gone when this returns. Error
  // only for infrastructure failures (e.g. the docker engine failed under the command).
  virtual Result<Exit> wait_until(std::chrono::steady_clock::time_point deadline) = 0;

  // Kills the whole tree now; wait_until() then returns kKilled. Idempotent, any thread.
  virtual void kill() = 0;

  // A descriptor that becomes readable once the command's own process has ended (its pidfd), so
  // that a caller can wait for that and for other descriptors in one poll before wait_until();
  // -1 when there is none. Owned by the process.
  virtual int exit_fd() const { return -1; }
};

// Starts commands in one prepared environment.
class Launcher {
 public:
  virtual ~Launcher() = default;

  // Starts `command`. Error = infrastructure failure.
  virtual Result<std::unique_ptr<Process>> start(const Command& command) = 0;

  // Short description for logs: "host", "docker testlooper-env:0123456789ab".
  virtual std::string describe() const = 0;

  // Whether its commands run in containers (labelled testlooper.run=<run id>: a terminal in
  // one is open_docker_terminal's, environments/terminal.h) rather than as processes here.
  virtual bool runs_in_containers() const { return false; }

  // Ends what the launcher keeps for a run across its commands, once the run's last command has
  // ended, however it ended: for docker, the run's scoped docker (DOCKER_HOST in its commands),
  // removing every container, network and volume the run created through it. Idempotent. Error
  // = what could not be removed (an infrastructure failure, never the test's).
  virtual Status end_run(const std::string& run_id) {
    (void)run_id;
    return {};
  }
};

// How launchers are chosen.
struct EnvironmentOptions {
  bool on_host = false;           // run every Linux environment on this machine
  std::string docker = "docker";  // the docker CLI (looked up in PATH when not absolute)
  // The AMI this machine was booted from ("" = none): AMI environments of that base_ami run on
  // the host (their setup script ran at boot).
  std::string ami;
};

// Kills every process (by its TESTLOOPER_OWNER marker, whatever its process group or session)
// and removes every container, and every network and volume a scoped docker created (by their
// label, with the CLI `docker` when it is installed) that commands started with Command::owner
// in `owners`, and returns once they are gone (at most a few seconds each). For directories whose
// previous user died (kill -9): call it before reusing them.
void kill_leftovers(const std::vector<std::string>& owners, const std::string& docker = "docker");

// Kills every process that carries run `run_id`'s marker (TESTLOOPER_RUN_ID, whatever its
// process group or session), removes its containers (label testlooper.run) and what its scoped
// docker created, with the CLI `docker` when it is installed; for a run whose process died.
// Also kills what run `run_id`'s terminal started (terminal_environment).
void kill_run_leftovers(const std::string& run_id, const std::string& docker = "docker");

// The environment of a shell on this machine for run `run_id` (a deployment's terminal), from
// the one its commands saw (`command_environment`, "NAME=value" entries): the run's marker
// TESTLOOPER_RUN_ID is replaced by TESTLOOPER_TERMINAL=<run id>. Each command of a run kills
// every process with the run's marker when it ends, which would take a shell opened while the
// run's commands go on with it; the shell's processes die with the terminal instead
// (kill_terminal_leftovers).
std::vector<std::string> terminal_environment(std::vector<std::string> command_environment,
                                              const std::string& run_id);

// Kills every process that carries run `run_id`'s terminal marker (whatever its process group
// or session); returns once none is left (a few seconds at most).
void kill_terminal_leftovers(const std::string& run_id);

// The plain host launcher (process groups on this machine).
std::shared_ptr<Launcher> make_host_launcher();

// The Dockerfile text an environment builds (Dockerfile + setup_script_contents) and its tag.
std::string dockerfile_text(const definitions::Environment& environment);
std::string image_tag(const std::string& dockerfile);

// Gives out launchers for environments, building docker images once per Dockerfile text (and
// remembering a failure for kFailureMemory, so a broken image is not rebuilt for every queued
// run, yet is tried again once a user retries it later).
class LauncherFactory {
 public:
  static constexpr std::chrono::seconds kFailureMemory{60};

  explicit LauncherFactory(EnvironmentOptions options);

  // Whether Dockerfile environments can run here: on the host (on_host), or a docker engine
  // answers now. Asks the engine each time it is called.
  bool runs_dockerfiles() const;

  // The launcher for `environment`, preparing it first (may take minutes for an image build).
  // Errors: windows platform, ami image, docker unreachable, image build failed.
  Result<std::shared_ptr<Launcher>> launcher_for(const definitions::Environment& environment);

  // kill_leftovers() with this factory's docker CLI.
  void kill_leftovers(const std::vector<std::string>& owners) const;

 private:
  Result<std::shared_ptr<Launcher>> docker_launcher(const std::string& dockerfile);

  EnvironmentOptions options_;
  std::shared_ptr<Launcher> host_;  // one for every host environment
  std::mutex mutex_;                // guards images_; image builds run under it, one at a time
  std::map<std::string, Result<std::shared_ptr<Launcher>>> images_;         // by tag
  std::map<std::string, std::chrono::steady_clock::time_point> failed_at_;  // by tag
};

}  // namespace testlooper::environments
