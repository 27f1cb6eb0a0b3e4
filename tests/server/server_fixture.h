// Fixtures for end-to-end server tests: a real `testlooper serve` process on a loopback port
// (chosen by the kernel), driven over HTTP with curl, and stopped (or killed) by the test.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "git/git_fixture.h"

namespace testlooper::fixtures {

// Runs `command` with /bin/sh and returns its standard output.
inline std::string capture(const std::string& command) {
  FILE* p = popen(command.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  pclose(p);
  return out;
}

// Starts `testlooper <subcommand> <args>` in a process group of its own; its stdout goes to the
// pipe `out` when given (both ends are closed in the child), its stderr to the file `err` when
// given.
inline pid_t spawn_testlooper(const std::string& subcommand, const std::vector<std::string>& args,
                              const int* out = nullptr, const std::string& err = "") {
  // Opened before fork: the child of a threaded test may only make async-signal-safe calls.
  const int err_fd =
      err.empty() ? -1 : ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const pid_t pid = fork();
  if (pid != 0) {
    if (err_fd >= 0) close(err_fd);
    return pid;
  }
  if (err_fd >= 0) dup2(err_fd, STDERR_FILENO);
  if (out != nullptr) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    close(out[1]);
  }
  setpgid(0, 0);
  std::vector<std::string> all = {TL_BINARY, subcommand};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  execv(argv[0], argv.data());
  _exit(127);
}

// Whether this is a sanitizer build (-DTESTLOOPER_SANITIZE=...): there a process's memory
// (shadow memory, redzones, ASan's quarantine of up to 256 MB of freed blocks) says nothing of
// what the code keeps, so tests do not check memory bounds.
#ifdef TESTLOOPER_SANITIZED
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

// In a sanitizer build (CMakePresets.json's "asan" test preset sets ASAN_OPTIONS/UBSAN_OPTIONS) a
// sanitizer report ends a testlooper process with this exit status, the report in the file
// <log_path>.<pid>. A process with no sanitizer never exits with it.
inline constexpr int kSanitizerExitCode = 86;

// The report sanitized process `pid` wrote to the log_path of ASAN_OPTIONS (or UBSAN_OPTIONS,
// TSAN_OPTIONS); "" when there is none.
inline std::string sanitizer_report(pid_t pid) {
  std::string report;
  for (const char* variable : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS"}) {
    const char* value = std::getenv(variable);
    const std::string options = value != nullptr ? value : "";
    const size_t at = options.rfind("log_path=");  // the last one wins
    if (at == std::string::npos) continue;
    const size_t from = at + std::string("log_path=").size();
    const std::string path =
        options.substr(from, options.find(':', from) - from) + "." + std::to_string(pid);
    std::ifstream in(path);
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (report.find(text) == std::string::npos) report += text;
  }
  return report;
}

// Fails the current test when `status`, the wait status of testlooper process `pid` (`what`),
// says that a sanitizer stopped it, with the sanitizer's report.
inline void expect_no_sanitizer_report(pid_t pid, int status, const std::string& what) {
  if (WIFEXITED(status) && WEXITSTATUS(status) == kSanitizerExitCode)
    ADD_FAILURE() << what << " (pid " << pid << ") was stopped by a sanitizer:\n"
                  << sanitizer_report(pid);
}

// `testlooper worker` with `args` (another "host" when its --dir is its own), its process group
// sent `stop_signal` on destruction; its stderr goes to the file `err` when given.
class WorkerProcess {
 public:
  explicit WorkerProcess(const std::vector<std::string>& args, int stop_signal = SIGTERM,
                         const std::string& err = "")
      : pid_(spawn_testlooper("worker", args, nullptr, err)), stop_signal_(stop_signal) {}
  ~WorkerProcess() {
    kill(-pid_, stop_signal_);
    int status = -1;
    waitpid(pid_, &status, 0);
    expect_no_sanitizer_report(pid_, status, "testlooper worker");
  }
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

 private:
  pid_t pid_;
  int stop_signal_;
};

class ServerProcess {
 public:
  // Starts `testlooper serve` with `args` (its stderr to the file `err` when given); waits until
  // it listens.
  explicit ServerProcess(const std::vector<std::string>& args, const std::string& err = "") {
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid_ = spawn_testlooper("serve", args, out, err);
    close(out[1]);
    FILE* f = fdopen(out[0], "r");
    char line[512] = {0};
    if (fgets(line, sizeof(line), f) == nullptr) throw std::runtime_error("serve did not start");
    const std::string text(line);
    const size_t colon = text.rfind(':');
    port_ = std::stoi(text.substr(colon + 1));
    out_ = f;
  }
  ~ServerProcess() { stop(SIGTERM); }

  // Sends `sig` to the server (and its local workers when `group`) and waits for it; returns its
  // wait status (-1 when it was stopped already).
  int stop(int sig, bool group = true) {
    if (pid_ <= 0) return -1;
    group ? kill(-pid_, sig) : kill(pid_, sig);
    int status = -1;
    waitpid(pid_, &status, 0);
    expect_no_sanitizer_report(pid_, status, "testlooper serve");
    pid_ = -1;
    if (out_) fclose(out_);
    out_ = nullptr;
    return status;
  }

  pid_t pid() const { return pid_; }

  int port() const { return port_; }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  nlohmann::json get(const std::string& path) const {
    return nlohmann::json::parse(capture("curl -s " + shell_quote(url(path))), nullptr, false);
  }
  // POSTs `body`; returns the HTTP status and the parsed body.
  std::pair<int, nlohmann::json> post(const std::string& path, const std::string& body) const {
    const std::string out =
        capture("curl -s -w '\\n%{http_code}' -X POST -H 'Content-Type: application/json' -d " +
                shell_quote(body) + " " + shell_quote(url(path)));
    const size_t nl = out.rfind('\n');
    return {std::stoi(out.substr(nl + 1)),
            nlohmann::json::parse(out.substr(0, nl), nullptr, false)};
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  FILE* out_ = nullptr;
};

// Definitions with a build (one artifact, bin/out.txt) and a test that depends on it and runs
// until it is stopped (its log says "started" first).
inline constexpr const char* kBuildAndEndlessTest = R"(looper_version: 5
environments: {linux: {platform: linux, image: {host: true}}}
builds:
  build/linux:
    dependencies: {src: HEAD}
    stages:
      - command: 'mkdir -p $TEST_BUILD_OUTPUT_DIR/bin && echo built > $TEST_BUILD_OUTPUT_DIR/bin/out.txt'
        artifacts: [{name: bin, directory: bin}]
tests:
  slow/linux:
    dependencies: {whole: build/linux}
    stages:
      - command: 'echo started; sleep 600'
)";

// A loopback TCP port free a moment ago, for a server that must come back on the same port
// after a restart (the server itself binds with SO_REUSEADDR); a test that needs no fixed port
// lets the kernel choose (--port 0).
inline int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// The worker secret the server keeps in `data_dir` (issue 10 item 7): "" when there is none.
inline std::string worker_token(const std::string& data_dir) {
  std::string token;
  std::ifstream(data_dir + "/worker.token") >> token;
  return token;
}

// Polls `done` every 100 ms for up to `seconds`; true when it became true.
template <class F>
bool eventually(F done, double seconds = 60) {
  const auto until = std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(static_cast<int>(seconds * 1000));
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

}  // namespace testlooper::fixtures
