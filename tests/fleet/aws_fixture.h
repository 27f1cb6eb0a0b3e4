// What the fleet's AWS tests share: one moto_server per test process (started on first use) and
// environment variables set for one test.
#pragma once

#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "artifacts/temp_dir.h"
#include "fleet/aws.h"
#include "fleet/moto.h"

namespace testlooper::fixtures {

// tests/fleet/aws_proxy.py in front of `upstream`: checks every request's SigV4 signature with
// botocore (moto checks none) and plays faults on demand. Killed and waited for on destruction.
class AwsProxy {
 public:
  AwsProxy(const std::string& upstream, const std::string& dir) {
    const std::string port_file = dir + "/proxy.port", log = dir + "/proxy.log";
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // a test that crashes or times out leaves no proxy
      if (!freopen(log.c_str(), "w", stderr) || !freopen(log.c_str(), "a", stdout)) _exit(126);
      execlp("python3", "python3", AWS_PROXY_PY, "--upstream", upstream.c_str(), "--port-file",
             port_file.c_str(), nullptr);
      _exit(127);
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (!std::filesystem::exists(port_file)) {
      if (std::chrono::steady_clock::now() > until || waitpid(pid_, nullptr, WNOHANG) == pid_)
        throw std::runtime_error("aws_proxy.py did not start: see " + log);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::ifstream(port_file) >> port_;
  }
  ~AwsProxy() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  AwsProxy(const AwsProxy&) = delete;
  AwsProxy& operator=(const AwsProxy&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // A control request (/__proxy__/...): its answer's body.
  std::string control(const std::string& method, const std::string& path_and_query) const {
    fleet::AwsRequest request{.method = method};
    const size_t q = path_and_query.find('?');
    request.path = "/__proxy__/" + path_and_query.substr(0, q);
    if (q != std::string::npos) request.query = path_and_query.substr(q + 1);
    auto answer = fleet::aws_call(fleet::Endpoint{.service = "s3", .url = url()},
                                  fleet::Credentials{"proxy", "control", ""}, request, "proxy");
    if (!answer.ok() || !answer->ok()) throw std::runtime_error("aws_proxy.py control failed");
    return answer->body;
  }
  // Faults for the next requests ("" = none): "fail_part=2", "hang=TEXT".
  void set_faults(const std::string& query) const { control("PUT", "faults?" + query); }
  int hanging() const { return std::stoi(control("GET", "hanging")); }
  // The requests refused for their signature so far, one a line.
  std::string refused() const { return control("GET", "refused"); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

struct SharedAws {
  testing::TempDir dir;
  Moto moto{dir.path().string()};
  AwsProxy proxy{moto.url(), dir.path().string()};
};

// The moto_server and proxy of this test process, started on first use, killed at exit.
inline SharedAws& shared_aws() {
  static SharedAws shared;
  return shared;
}
inline Moto& shared_moto() { return shared_aws().moto; }
inline AwsProxy& shared_proxy() { return shared_aws().proxy; }

// The credentials moto's environment gives (fake ones).
inline fleet::Credentials moto_credentials() {
  shared_moto();
  auto credentials = fleet::load_credentials();
  if (!credentials.ok()) throw std::runtime_error(credentials.error().to_string());
  return *credentials;
}

// Moto through the proxy: every call the clients make has its signature checked.
inline fleet::Endpoint moto_endpoint(const std::string& service) {
  return fleet::Endpoint{.service = service, .region = "us-east-1", .url = shared_proxy().url()};
}

// Sets (or with nullopt, unsets) an environment variable until destroyed.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, std::optional<std::string> value) : name_(std::move(name)) {
    if (const char* old = getenv(name_.c_str())) old_ = old;
    if (value)
      setenv(name_.c_str(), value->c_str(), 1);
    else
      unsetenv(name_.c_str());
  }
  ~ScopedEnv() {
    if (old_)
      setenv(name_.c_str(), old_->c_str(), 1);
    else
      unsetenv(name_.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

}  // namespace testlooper::fixtures
