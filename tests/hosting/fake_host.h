// tests/hosting/fake_host.py from a test: a fake GitHub + GitLab (REST and git over HTTP) on a
// kernel-chosen loopback port, killed and waited for on destruction; and the bare repos it
// serves, which the test creates, pushes to and deletes.
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
  // Serves the bare repos under `root` (ROOT/<owner>/<name>.git).
  FakeHost(std::string root, const std::string& token, int page_size = 0)
      : root_(std::move(root)), port_file_(root_ + "/.port") {
    std::filesystem::create_directories(root_);
    std::vector<std::string> args = {"python3", FAKE_HOST_PY,  "--root",
                                     root_,     "--port-file", port_file_};
    if (!token.empty()) args.insert(args.end(), {"--token", token});
    if (page_size > 0) args.insert(args.end(), {"--page-size", std::to_string(page_size)});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      execvp(argv[0], argv.data());
      _exit(127);
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!std::filesystem::exists(port_file_)) {
      if (std::chrono::steady_clock::now() > until || waitpid(pid_, nullptr, WNOHANG) == pid_)
        throw std::runtime_error("fake_host.py did not start");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::ifstream(port_file_) >> port_;
  }
  ~FakeHost() {
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  FakeHost(const FakeHost&) = delete;
  FakeHost& operator=(const FakeHost&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string github_api() const { return url() + "/api/v3"; }
  std::string gitlab_api() const { return url() + "/api/v4"; }
  // The bare repo the fake serves as `owner`/`name`.
  std::string bare(const std::string& owner, const std::string& name) const {
    return root_ + "/" + owner + "/" + name + ".git";
  }

  // Every request the fake has had (method, path, query, body, authorization, private_token,
  // time).
  nlohmann::json requests() const {
    return nlohmann::json::parse(
        run("curl -s --max-time 30 " + shell_quote(url() + "/_fake/requests")), nullptr, false);
  }
  // How many requests so far had a path containing `part` (and, when given, a query containing
  // `query_part`).
  int count(const std::string& part, const std::string& query_part = "") const {
    int n = 0;
    const auto all = requests();
    if (!all.is_array()) return -1;
    for (const auto& r : all) {
      if (r.value("path", "").find(part) != std::string::npos &&
          r.value("query", "").find(query_part) != std::string::npos)
        ++n;
    }
    return n;
  }

  // When each request whose path contains `part` arrived (seconds), in order.
  std::vector<double> times(const std::string& part) const {
    std::vector<double> out;
    for (const auto& r : requests()) {
      if (r.value("path", "").find(part) != std::string::npos) out.push_back(r.value("time", 0.0));
    }
    return out;
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
  // The next `count` requests whose path contains `path_contains` get HTTP `status` (-1: no
  // answer ever).
  void fail(const std::string& path_contains, int count, int status) const {
    const nlohmann::json body = {
        {"path_contains", path_contains}, {"count", count}, {"status", status}};
    run("curl -s --max-time 30 -X POST -d " + shell_quote(body.dump()) + " " +
        shell_quote(url() + "/_fake/fail"));
  }

  // Runs `command` with /bin/sh; its standard output.
  static std::string run(const std::string& command) {
    FILE* p = popen(command.c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n = 0;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
    pclose(p);
    return out;
  }

 private:
  std::string root_;
  std::string port_file_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// A work clone whose pushes go to the fake's bare repo `bare` (created empty when missing).
class HostedWork {
 public:
  HostedWork(const std::string& work_dir, const std::string& bare) : repo_(work_dir), bare_(bare) {
    if (!std::filesystem::exists(bare)) {
      std::filesystem::create_directories(bare);
      FakeHost::run("git init -q --bare " + shell_quote(bare));
    }
  }
  GitFixtureRepo& repo() { return repo_; }
  // Pushes `refspec` (e.g. "main", "+main", ":gone") to the bare repo.
  void push(const std::string& refspec) { repo_.run({"push", "-q", bare_, refspec}); }

 private:
  GitFixtureRepo repo_;
  std::string bare_;
};

}  // namespace testlooper::fixtures
