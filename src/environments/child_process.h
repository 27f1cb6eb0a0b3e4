// ChildProcess: one posix_spawn'ed child, owned by RAII, in its own process group. Internal to
// the environments module.
//
// The child is left a zombie after it exits until reap(), so its pid (= its process group id)
// cannot be reused while the rest of its group is killed. Destroying a ChildProcess kills the
// group and reaps the child. kill_group() may be called from any thread; the rest from one.
#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace testlooper::environments {

// What to start. Descriptors are not owned; -1 means /dev/null.
struct SpawnSpec {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH when it has no '/'
  std::vector<std::string> env;   // "NAME=value", the complete environment
  std::string working_dir;        // "" = inherit
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
};

class ChildProcess {
 public:
  // Starts the child in a new process group with default signal dispositions, an empty signal
  // mask and no descriptors but 0, 1 and 2.
  static Result<ChildProcess> spawn(const SpawnSpec& spec);

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&&) = delete;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  // Waits for the child to exit or `deadline`. Returns its wait status (see waitpid(2)) without
  // reaping it, or nullopt at the deadline.
  std::optional<int> wait_exit(std::chrono::steady_clock::time_point deadline);

  // Sends `signal` to the child's whole process group (no-op once reaped).
  void kill_group(int signal);

  // Reaps the exited child (after wait_exit returned a status, or after kill_group(SIGKILL)).
  void reap();

  int pid() const { return pid_; }
  // Readable once the process has exited (pidfd_open); -1 on kernels without pidfds.
  int pidfd() const { return pidfd_; }

 private:
  ChildProcess(int pid, int pidfd) : pid_(pid), pidfd_(pidfd) {}

  int pid_ = -1;
  int pidfd_ = -1;
  bool reaped_ = false;
};

// Kills (SIGKILL) every process on this machine whose environment holds `entry` exactly (e.g.
// "TESTLOOPER_RUN_ID=abc"): the ones that left their process group. Returns how many it found.
// One pass: a process forked while the scan ran may be missed (see kill_all_with_env).
//
// `started_after` > 0 looks only at processes created after that pid was (pids are handed out
// upwards, wrapping at pid_max: those from it to the last one given, /proc/sys/kernel/
// ns_last_pid), which spares reading the environment of every process on the machine. Only
// for a short time after that pid was created (see kRecentPidWindow): over a long one, pids
// could have gone round once and the answer would miss some.
int kill_processes_with_env(const std::string& entry, int started_after = 0);

// How long after a process was started its pid may serve as `started_after`: pids do not go
// round pid_max (at least 32768, usually 4194304) in less, even on a machine forking hard.
constexpr std::chrono::milliseconds kRecentPidWindow{1000};

// kill_processes_with_env() until a pass finds none (so children forked during a pass die
// too), or `timeout` has passed. True when none was left. Best effort.
bool kill_all_with_env(const std::string& entry, std::chrono::milliseconds timeout,
                       int started_after = 0);

// The output (stdout and stderr, interleaved) and exit status of a short helper command.
struct Captured {
  int exit_code = -1;  // -1 when killed by a signal
  std::string output;
  bool timed_out = false;  // killed at CaptureOptions::timeout_seconds
};

struct CaptureOptions {
  std::vector<std::string> env;  // "NAME=value", the complete environment; empty = this process's
  std::string working_dir;       // "" = this process's
  double timeout_seconds = 0;    // > 0: the process group is killed (SIGKILL) after this long
  size_t max_output = static_cast<size_t>(-1);  // output beyond this is read and dropped
  // When set and it becomes true, the process group is killed (SIGKILL) within a second, as at
  // the timeout (Captured::timed_out), e.g. when its owner stops.
  const std::atomic<bool>* cancel = nullptr;
};

// Runs `argv` with this process's environment, `stdin_text` on its stdin, and collects its
// output. Error when it cannot be started.
Result<Captured> run_and_capture(const std::vector<std::string>& argv,
                                 const std::string& stdin_text = "",
                                 const CaptureOptions& options = {});

// This process's environment as "NAME=value" strings.
std::vector<std::string> inherited_environment();

}  // namespace testlooper::environments
