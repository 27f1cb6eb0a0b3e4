#include "worker/lifeline.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <set>

#include "core/ids.h"
#include "environments/environments.h"

namespace testlooper::worker {
namespace {

int g_pipe = -1;  // the write end (close-on-exec: no command inherits it)

// The lifeline's life: reads `fd` until it ends, then cleans up after the runs still held.
[[noreturn]] void watch(int fd, const std::string& docker) {
  std::set<std::string> held;
  std::string pending;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buffer, static_cast<size_t>(n));
    for (size_t nl; (nl = pending.find('\n')) != std::string::npos; pending.erase(0, nl + 1)) {
      const std::string line = pending.substr(0, nl);
      if (line.size() < 2 || !is_run_id(line.substr(1))) continue;
      if (line[0] == '+') held.insert(line.substr(1));
      if (line[0] == '-') held.erase(line.substr(1));
    }
  }
  for (const std::string& run_id : held) environments::kill_run_leftovers(run_id, docker);
  ::_exit(0);
}

void write_line(const std::string& line) {
  if (g_pipe < 0) return;
  // One write of less than PIPE_BUF bytes: lines of several threads never interleave.
  while (::write(g_pipe, line.data(), line.size()) < 0 && errno == EINTR) {
  }
}

}  // namespace

bool start_lifeline(const std::string& docker) {
  if (g_pipe >= 0) return true;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return false;
  }
  if (pid == 0) {
    // A session of its own: a signal to the worker's process group (a terminal's Ctrl-C, a
    // supervisor killing the group) does not end it before it has cleaned up.
    ::setsid();
    ::signal(SIGINT, SIG_IGN);
    ::signal(SIGTERM, SIG_IGN);
    ::signal(SIGPIPE, SIG_IGN);
    ::close(fds[1]);
    // Nothing else of the worker's: the read end only (and stdin, stdout, stderr).
    if (fds[0] != 3) {
      ::dup2(fds[0], 3);
      ::close(fds[0]);
    }
    ::close_range(4, ~0U, 0);
    watch(3, docker);
  }
  ::close(fds[0]);
  g_pipe = fds[1];
  return true;
}

void lifeline_hold(const std::string& run_id) {
  if (is_run_id(run_id)) write_line("+" + run_id + "\n");
}

void lifeline_release(const std::string& run_id) {
  if (is_run_id(run_id)) write_line("-" + run_id + "\n");
}

}  // namespace testlooper::worker
