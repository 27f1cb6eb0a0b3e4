// moto_server (a fake AWS: EC2 and S3 as AWS answers them) from a test, on a kernel-chosen
// loopback port, killed and waited for on destruction. The test process gets fake credentials in
// its environment (AWS_ACCESS_KEY_ID, ...), as load_credentials() and boto3 read them, so the
// server and workers it starts inherit them.
#pragma once

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

namespace testlooper::fixtures {

class Moto {
 public:
  // `dir` holds moto's output (dir/moto.log) and the scripts boto3() runs.
  explicit Moto(std::string dir) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
    setenv("AWS_ACCESS_KEY_ID", "testing", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "testing", 1);
    setenv("AWS_SESSION_TOKEN", "testing", 1);
    setenv("AWS_DEFAULT_REGION", "us-east-1", 1);
    unsetenv("AWS_PROFILE");
    const std::string log = dir_ + "/moto.log";
    // Emptied before the child starts: what the loop below reads is this moto_server's.
    std::ofstream(log, std::ios::trunc).flush();
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      if (!freopen(log.c_str(), "w", stderr) || !freopen(log.c_str(), "a", stdout)) _exit(126);
      execlp("moto_server", "moto_server", "-H", "127.0.0.1", "-p", "0", nullptr);
      _exit(127);
    }
    const std::regex running(R"(Running on http://127\.0\.0\.1:(\d+))");
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    for (;;) {
      std::ifstream in(log);
      std::stringstream text;
      text << in.rdbuf();
      std::smatch m;
      const std::string s = text.str();
      if (std::regex_search(s, m, running)) {
        port_ = std::stoi(m[1]);
        break;
      }
      if (std::chrono::steady_clock::now() > until || waitpid(pid_, nullptr, WNOHANG) == pid_)
        throw std::runtime_error("moto_server did not start: " + s);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~Moto() {
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  Moto(const Moto&) = delete;
  Moto& operator=(const Moto&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Runs python3 `code` with `ec2` and `s3` boto3 clients on this moto (and json, sys imported)
  // defined; its standard output. Throws when it fails.
  std::string boto3(const std::string& code) const {
    const std::string script = dir_ + "/boto3_" + std::to_string(counter_++) + ".py";
    std::ofstream(script) << "import boto3, json, sys\n"
                          << "ec2 = boto3.client('ec2', region_name='us-east-1', endpoint_url='"
                          << url() << "')\n"
                          << "s3 = boto3.client('s3', region_name='us-east-1', endpoint_url='"
                          << url() << "')\n"
                          << code << "\n";
    std::string out;
    FILE* p = popen(("python3 " + script + " 2>&1").c_str(), "r");
    if (!p) throw std::runtime_error("popen failed");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    if (pclose(p) != 0) throw std::runtime_error("boto3 script failed: " + out);
    return out;
  }

 private:
  std::string dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  mutable int counter_ = 0;
};

}  // namespace testlooper::fixtures
