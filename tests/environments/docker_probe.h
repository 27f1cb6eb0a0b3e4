// For docker tests: whether an engine and the base image are there, and the containers a run
// left behind. Tests call GTEST_SKIP() with skip_reason() when docker is unusable.
#pragma once

#include <cstdio>
#include <memory>
#include <string>

namespace testlooper::testing {

inline std::string shell_output(const std::string& command) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return out;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe.get())) out.append(buffer, n);
  return out;
}

// "" when docker is usable for tests, else why not.
inline std::string docker_skip_reason() {
  if (std::system("docker info >/dev/null 2>&1") != 0) {
    return "no docker engine reachable (run scripts/docker-env as root)";
  }
  if (std::system("docker image inspect testlooper-base:bookworm >/dev/null 2>&1") != 0) {
    return "base image testlooper-base:bookworm missing (run scripts/docker-env)";
  }
  return "";
}

// Containers (running or not) labelled with testlooper.run=<run_id>, one id per line.
inline std::string containers_of_run(const std::string& run_id) {
  return shell_output("docker ps --all --quiet --filter label=testlooper.run=" + run_id);
}

}  // namespace testlooper::testing
