#include "worker/terminal.h"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace testlooper::worker {

Status Pty::spawn(const std::vector<std::string>& environment, const std::string& cwd, int cols,
                  int rows) {
  kill();
  std::vector<std::string> env = environment;
  bool has_term = false;
  for (const auto& e : env) has_term = has_term || e.starts_with("TERM=");
  if (!has_term) env.push_back("TERM=xterm-256color");
  // Everything the child needs is made before the fork: after it, only async-signal-safe calls.
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string bash = "/bin/bash", noprofile = "--noprofile", norc = "--norc", interactive = "-i";
  char* argv[] = {bash.data(), noprofile.data(), norc.data(), interactive.data(), nullptr};
  struct winsize size {};
  size.ws_col = static_cast<unsigned short>(cols);
  size.ws_row = static_cast<unsigned short>(rows);
  int master = -1;
  const pid_t pid = ::forkpty(&master, nullptr, nullptr, &size);
  if (pid < 0) return Error{"terminal", std::string("forkpty: ") + std::strerror(errno)};
  if (pid == 0) {
    // A worker killed outright takes its shells with it (the shell's session then gets SIGHUP).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::chdir(cwd.c_str()) != 0) (void)::chdir("/");
    ::execve(argv[0], argv, envp.data());
    ::_exit(127);
  }
  ::fcntl(master, F_SETFD, FD_CLOEXEC);
  master_ = master;
  child_ = pid;
  return {};
}

std::string Pty::read(size_t max, int timeout_ms, bool& ended) {
  ended = false;
  if (master_ < 0) {
    ended = true;
    return "";
  }
  struct pollfd p {};
  p.fd = master_;
  p.events = POLLIN;
  const int ready = ::poll(&p, 1, timeout_ms);
  keep_size();
  if (ready <= 0) return "";
  std::string out(max, '\0');
  const ssize_t n = ::read(master_, out.data(), max);
  if (n > 0) {
    out.resize(static_cast<size_t>(n));
    return out;
  }
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return "";
  ended = true;  // EIO: the shell (and everything holding the terminal) is gone
  return "";
}

void Pty::write(const std::string& bytes) {
  keep_size();
  size_t done = 0;
  while (master_ >= 0 && done < bytes.size()) {
    const ssize_t n = ::write(master_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

namespace {

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void Pty::resize(int cols, int rows) {
  if (master_ < 0) return;
  wanted_size_ = int64_t{cols} << 16 | rows;
  keep_size_until_ms_ = steady_ms() + kResizeKeptForMs;
  struct winsize size {};
  size.ws_col = static_cast<unsigned short>(cols);
  size.ws_row = static_cast<unsigned short>(rows);
  ::ioctl(master_, TIOCSWINSZ, &size);  // the shell gets SIGWINCH
}

// A resize undone by readline (its TIOCGWINSZ before the resize, its TIOCSWINSZ after) is made
// again, while the last resize is recent: a size the shell sets later on purpose is its own.
void Pty::keep_size() {
  int64_t until = keep_size_until_ms_.load();
  if (master_ < 0 || until == 0) return;
  if (steady_ms() > until) {
    keep_size_until_ms_.compare_exchange_strong(until, 0);  // unless a resize came meanwhile
    return;
  }
  const int64_t wanted = wanted_size_;
  struct winsize size {};
  if (::ioctl(master_, TIOCGWINSZ, &size) != 0) return;
  if (size.ws_col == (wanted >> 16) && size.ws_row == (wanted & 0xffff)) return;
  size.ws_col = static_cast<unsigned short>(wanted >> 16);
  size.ws_row = static_cast<unsigned short>(wanted & 0xffff);
  ::ioctl(master_, TIOCSWINSZ, &size);
}

void Pty::kill() {
  if (child_ > 0) {
    ::kill(-child_, SIGKILL);  // its session's process group (forkpty: setsid)
    ::kill(child_, SIGKILL);
    int status = 0;
    while (::waitpid(child_, &status, 0) < 0 && errno == EINTR) {
    }
    child_ = -1;
  }
  if (master_ >= 0) {
    ::close(master_);
    master_ = -1;
  }
}

std::vector<std::string> split_environment(const std::string& nul_separated) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < nul_separated.size()) {
    size_t end = nul_separated.find('\0', start);
    if (end == std::string::npos) end = nul_separated.size();
    std::string entry = nul_separated.substr(start, end - start);
    if (entry.find('=') != std::string::npos && entry.front() != '=')
      out.push_back(std::move(entry));
    start = end + 1;
  }
  return out;
}

}  // namespace testlooper::worker
