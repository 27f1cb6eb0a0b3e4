#include "environments/child_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

extern char** environ;

namespace testlooper::environments {
namespace {

std::vector<char*> c_strings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (const std::string& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// posix_spawn attributes: own process group, default signals, empty mask.
struct SpawnAttributes {
  posix_spawnattr_t attr;
  SpawnAttributes() {
    posix_spawnattr_init(&attr);
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                        POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_USEVFORK);
  }
  ~SpawnAttributes() { posix_spawnattr_destroy(&attr); }
};

struct FileActions {
  posix_spawn_file_actions_t actions;
  FileActions() { posix_spawn_file_actions_init(&actions); }
  ~FileActions() { posix_spawn_file_actions_destroy(&actions); }
  void attach(int fd, int target) {
    if (fd < 0) {
      posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_RDWR, 0);
    } else {
      posix_spawn_file_actions_adddup2(&actions, fd, target);
    }
  }
};

}  // namespace

Result<ChildProcess> ChildProcess::spawn(const SpawnSpec& spec) {
  SpawnAttributes attributes;
  FileActions files;
  files.attach(spec.stdin_fd, 0);
  files.attach(spec.stdout_fd, 1);
  files.attach(spec.stderr_fd, 2);
  // Descriptors other threads open without O_CLOEXEC must not leak into commands.
  posix_spawn_file_actions_addclosefrom_np(&files.actions, 3);
  if (!spec.working_dir.empty()) {
    posix_spawn_file_actions_addchdir_np(&files.actions, spec.working_dir.c_str());
  }
  std::vector<char*> argv = c_strings(spec.argv);
  std::vector<char*> envp = c_strings(spec.env);
  pid_t pid = -1;
  const int r =
      posix_spawnp(&pid, argv[0], &files.actions, &attributes.attr, argv.data(), envp.data());
  if (r != 0) return Error{spec.argv[0], std::string("cannot start: ") + strerror(r)};
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  return ChildProcess(pid, pidfd);
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_), pidfd_(other.pidfd_), reaped_(other.reaped_) {
  other.pid_ = -1;
  other.pidfd_ = -1;
  other.reaped_ = true;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !reaped_) {
    kill_group(SIGKILL);
    reap();
  }
  if (pidfd_ >= 0) ::close(pidfd_);
}

std::optional<int> ChildProcess::wait_exit(std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    siginfo_t info{};
    if (::waitid(P_PID, pid_, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid_) {
      return info.si_code == CLD_EXITED ? W_EXITCODE(info.si_status, 0) : info.si_status & 0x7f;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    const int timeout = static_cast<int>(std::min<int64_t>(left.count() + 1, 60'000));
    if (pidfd_ >= 0) {
      pollfd fd{pidfd_, POLLIN, 0};
      ::poll(&fd, 1, timeout);
    } else {
      // No pidfd (old kernel): poll the exit state every few milliseconds.
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(timeout, 5)));
    }
  }
}

void ChildProcess::kill_group(int signal) {
  if (pid_ > 0 && !reaped_) ::kill(-pid_, signal);
}

void ChildProcess::reap() {
  if (pid_ <= 0 || reaped_) return;
  int status;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
}

namespace {

// Up to this many new pids are looked at one by one rather than by a readdir of /proc.
constexpr int kMaxDirectPids = 256;

// True when the NUL-separated `environ_text` holds `entry` as one whole variable.
bool holds_entry(const std::string& environ_text, const std::string& entry) {
  size_t start = 0;
  while (start < environ_text.size()) {
    size_t end = environ_text.find('\0', start);
    if (end == std::string::npos) end = environ_text.size();
    if (environ_text.compare(start, end - start, entry) == 0) return true;
    start = end + 1;
  }
  return false;
}

// The content of a small /proc file; nullopt when it cannot be opened (the process is gone, or
// belongs to another user).
std::optional<std::string> read_small_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string text;
  char buffer[8192];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof buffer)) > 0) text.append(buffer, n);
  ::close(fd);
  return text;
}

// True when process `pid` is not one that could still run a command of ours: gone, a zombie
// waiting for its parent, or a kernel thread (which has no environment ever).
bool cannot_run_commands(pid_t pid) {
  const std::string stat = read_small_file("/proc/" + std::to_string(pid) + "/stat").value_or("");
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return true;
  if (stat[paren + 2] == 'Z' || stat[paren + 2] == 'X') return true;
  // Fields after the name: state ppid pgrp session tty_nr tpgid flags ...
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  unsigned long flags = 0;
  for (int i = 0; i < 7 && fields >> field; ++i) {
    if (i == 6) flags = std::strtoul(field.c_str(), nullptr, 10);
  }
  constexpr unsigned long kKernelThread = 0x00200000;  // PF_KTHREAD
  return (flags & kKernelThread) != 0;
}

// A process with no environment to read for a moment: one between the two halves of an
// execve (its new memory is in place, its environment not yet), or one that has let its memory
// go on its way out but is not a zombie yet. Looked at again for this long.
constexpr std::chrono::milliseconds kUnsettledWait{20};

}  // namespace

int kill_processes_with_env(const std::string& entry, int started_after) {
  const pid_t self = ::getpid();
  int found = 0;
  std::vector<pid_t> unsettled;
  // True when `pid` is settled: killed, or not one of ours.
  auto check = [&](pid_t pid) {
    if (pid == self) return true;
    const std::optional<std::string> environ_text =
        read_small_file("/proc/" + std::to_string(pid) + "/environ");
    if (!environ_text) return true;  // gone, or another user's
    if (holds_entry(*environ_text, entry)) {
      ::kill(pid, SIGKILL);
      ++found;
      return true;
    }
    // A zombie's environ reads empty too: only a live process with none is unsettled.
    return !environ_text->empty() || cannot_run_commands(pid);
  };
  auto look = [&](pid_t pid) {
    if (!check(pid)) unsettled.push_back(pid);
  };
  // The pids created after `started_after`: (started_after, last] while they did not wrap.
  // A short command made few: each is looked at directly, sparing a readdir of /proc (which
  // makes the kernel instantiate every process's entry).
  const int last = started_after > 0
                       ? atoi(read_small_file("/proc/sys/kernel/ns_last_pid").value_or("").c_str())
                       : 0;
  if (started_after > 0 && last >= started_after && last - started_after <= kMaxDirectPids) {
    for (pid_t pid = started_after + 1; pid <= last; ++pid) look(pid);
  } else {
    auto newer = [&](pid_t pid) {
      if (last <= 0) return true;  // no range: every process
      return last >= started_after ? pid > started_after && pid <= last
                                   : pid > started_after || pid <= last;  // wrapped at pid_max
    };
    if (DIR* proc = ::opendir("/proc")) {
      while (dirent* d = ::readdir(proc)) {
        const pid_t pid = static_cast<pid_t>(atoi(d->d_name));
        if (pid > 0 && newer(pid)) look(pid);
      }
      ::closedir(proc);
    }
  }
  // Caught mid-execve, a process of the run would be missed: look again until each has an
  // environment or has ended (one that runs with no environment at all is left after a while).
  const auto until = std::chrono::steady_clock::now() + kUnsettledWait;
  while (!unsettled.empty() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::erase_if(unsettled, check);
  }
  return found;
}

bool kill_all_with_env(const std::string& entry, std::chrono::milliseconds timeout,
                       int started_after) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (kill_processes_with_env(entry, started_after) > 0) {
    // Killed processes stay visible until they have exited: give them a moment.
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

std::vector<std::string> inherited_environment() {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  return env;
}

Result<Captured> run_and_capture(const std::vector<std::string>& argv,
                                 const std::string& stdin_text, const CaptureOptions& options) {
  int out[2], in[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return Error{argv[0], "pipe failed"};
  if (::pipe2(in, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    return Error{argv[0], "pipe failed"};
  }
  Result<ChildProcess> child =
      ChildProcess::spawn({argv, options.env.empty() ? inherited_environment() : options.env,
                           options.working_dir, in[0], out[1], out[1]});
  ::close(in[0]);
  ::close(out[1]);
  if (!child.ok()) {
    ::close(in[1]);
    ::close(out[0]);
    return child.error();
  }
  // Feed stdin from a thread so a child that writes before reading cannot deadlock us.
  std::thread feeder([fd = in[1], &stdin_text] {
    size_t done = 0;
    while (done < stdin_text.size()) {
      const ssize_t n = ::write(fd, stdin_text.data() + done, stdin_text.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    ::close(fd);
  });
  using Clock = std::chrono::steady_clock;
  const auto deadline =
      options.timeout_seconds > 0
          ? Clock::now() +
                std::chrono::milliseconds(static_cast<int64_t>(options.timeout_seconds * 1000))
          : Clock::time_point::max();
  Captured captured;
  char buffer[8192];
  while (true) {
    if (deadline != Clock::time_point::max() || options.cancel != nullptr) {
      const auto left =
          deadline == Clock::time_point::max()
              ? int64_t{1000}
              : std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now())
                    .count();
      pollfd p{out[0], POLLIN, 0};
      const bool cancelled = options.cancel != nullptr && options.cancel->load();
      if (cancelled || left <= 0 ||
          ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000))) == 0) {
        if (!cancelled && Clock::now() < deadline && !(options.cancel && options.cancel->load()))
          continue;
        // Its whole group, so that a grandchild holding the pipe lets the read end too.
        child->kill_group(SIGKILL);
        captured.timed_out = true;
        break;
      }
    }
    const ssize_t n = ::read(out[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (captured.output.size() < options.max_output) {
      captured.output.append(buffer,
                             std::min<size_t>(n, options.max_output - captured.output.size()));
    }
  }
  ::close(out[0]);
  feeder.join();
  const std::optional<int> status = child->wait_exit(Clock::time_point::max());
  child->reap();
  captured.exit_code = status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  return captured;
}

}  // namespace testlooper::environments
