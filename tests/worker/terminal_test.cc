// The host deployment's terminal (worker/terminal.h): a real bash on a real pseudo-terminal.
#include "worker/terminal.h"

#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <string>

namespace testlooper::worker {
namespace {

// Reads the shell's output into `screen` until `pattern` is found in it (false after 30 s).
bool read_until(Pty& pty, std::string& screen, const std::string& pattern) {
  const std::regex re(pattern);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!std::regex_search(screen, re)) {
    if (std::chrono::steady_clock::now() > until) return false;
    bool ended = false;
    screen += pty.read(4096, 100, ended);
    if (ended) return false;
  }
  return true;
}

TEST(PtyTest, AResizeUndoneByTheShellRightAfterIsMadeAgain) {
  std::string screen;
  Pty pty;
  ASSERT_TRUE(pty.spawn({"PATH=/usr/bin:/bin", "HOME=/tmp", "PS1=ready$ "}, "/tmp", 80, 24).ok());
  ASSERT_TRUE(read_until(pty, screen, "ready\\$ ")) << screen;
  // What readline does when it starts reading a line while a resize comes: it read the old size
  // before the resize, and writes it back after.
  pty.resize(100, 40);
  pty.write(
      "stty cols 80 rows 24; for i in $(seq 100); do s=$(stty size); "
      "[ \"$s\" = '40 100' ] && break; sleep 0.05; done; echo \"size:$s:\"\n");
  ASSERT_TRUE(read_until(pty, screen, "size:[0-9 ]+:")) << screen;
  EXPECT_NE(screen.find("size:40 100:"), std::string::npos) << screen;

  // Once the resize is old, a size the shell sets is its own.
  pty.write("sleep " + std::to_string(Pty::kResizeKeptForMs / 1000.0 + 0.2) +
            "; stty cols 50 rows 20; sleep 0.5; echo \"later:$(stty size):\"\n");
  ASSERT_TRUE(read_until(pty, screen, "later:[0-9 ]+:")) << screen;
  EXPECT_NE(screen.find("later:20 50:"), std::string::npos) << screen;
  pty.kill();
  EXPECT_FALSE(pty.running());
}

}  // namespace
}  // namespace testlooper::worker
