// Test helpers for commands that leave processes behind: read pid files, ask whether a pid is
// gone (a zombie counts as gone: it runs nothing and only waits for its parent).
#pragma once

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace testlooper::testing {

inline bool process_gone(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string text((std::istreambuf_iterator<char>(stat)), {});
  const size_t paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() &&
         (text[paren + 2] == 'Z' || text[paren + 2] == 'X');
}

// Waits (without a time limit: the test runner's timeout is the limit) until `path` holds at
// least `count` lines, and returns them as pids.
inline std::vector<int> wait_for_pids(const std::filesystem::path& path, size_t count) {
  for (;;) {
    std::ifstream in(path);
    std::vector<int> pids;
    for (int pid; in >> pid;) pids.push_back(pid);
    if (pids.size() >= count) return pids;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// SIGKILL is asynchronous: a killed process may take a moment to become a zombie. Waits until
// it is gone, giving up (returning false) only after a generous bound.
inline bool eventually_gone(int pid) {
  for (int i = 0; i < 500; ++i) {
    if (process_gone(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace testlooper::testing
