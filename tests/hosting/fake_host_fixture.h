// The fake GitHub/GitLab of fake_host.py as a process of the test: started on a loopback port the
// kernel chose, killed (and waited for) on destruction. Header-only; needs TL_FAKE_HOST (the
// script's path) defined and ${CMAKE_SOURCE_DIR}/tests on the include path.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "git/git_fixture.h"

namespace testlooper::fixtures {

class FakeHost {
 public:
  // Serves the bare repos under `root` (<root>/<owner>/<name>.git); REST calls need `token`.
  FakeHost(const std::string& root, const std::string& token) {
    const std::string port_file = root + "/.fake-port";
    std::filesystem::create_directories(root);
    pid_ = fork();
    if (pid_ == 0) {
      execlp("python3", "python3", TL_FAKE_HOST, "--root", root.c_str(), "--port-file",
             port_file.c_str(), "--token", token.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!std::filesystem::exists(port_file)) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("fake_host.py exited");
      }
      if (std::chrono::steady_clock::now() > until)
        throw std::runtime_error("fake_host.py did not start");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::ifstream(port_file) >> port_;
  }
  ~FakeHost() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  FakeHost(const FakeHost&) = delete;
  FakeHost& operator=(const FakeHost&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Every request so far (fake_host.py's /_fake/requests).
  nlohmann::json requests() const {
    return nlohmann::json::parse(curl("-s " + shell_quote(url() + "/_fake/requests")), nullptr,
                                 false);
  }
  // The bodies of the statuses POSTed so far, oldest first, each with its "_path"; those
  // answered with an injected failure only `with_failed`.
  std::vector<nlohmann::json> statuses(bool with_failed = false) const {
    std::vector<nlohmann::json> out;
    const nlohmann::json all = requests();
    if (!all.is_array()) return out;
    for (const auto& r : all) {
      const std::string path = r.value("path", "");
      if (r.value("method", "") != "POST" || path.find("/statuses/") == std::string::npos) continue;
      if (r.contains("failed") && !with_failed) continue;
      nlohmann::json body = nlohmann::json::parse(r.value("body", ""), nullptr, false);
      body["_path"] = path;
      out.push_back(std::move(body));
    }
    return out;
  }
  // The next `count` requests whose path contains `path_contains` get HTTP `status`.
  void fail(const std::string& path_contains, int count, int status) const {
    const nlohmann::json body = {
        {"path_contains", path_contains}, {"count", count}, {"status", status}};
    curl("-s -X POST -d " + shell_quote(body.dump()) + " " + shell_quote(url() + "/_fake/fail"));
  }

 private:
  static std::string curl(const std::string& args) {
    FILE* p = popen(("curl " + args).c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n = 0;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
    pclose(p);
    return out;
  }

  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace testlooper::fixtures
