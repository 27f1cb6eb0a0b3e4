// For deployment tests: reading a deployment's terminal socket until its screen shows something.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <string>

#include "ws_client.h"

namespace testlooper::fixtures {

// Reads `ws` until what it received (kept in `screen`) matches `pattern`; false when the
// connection ended or 60 s passed first.
inline bool read_until(WsClient& ws, std::string& screen, const std::string& pattern) {
  const std::regex re(pattern);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!std::regex_search(screen, re)) {
    const double left =
        std::chrono::duration<double>(until - std::chrono::steady_clock::now()).count();
    if (left <= 0) return false;
    const auto message = ws.read(left);
    if (!message) return false;
    EXPECT_TRUE(ws.got_binary()) << "terminal bytes come in binary frames";
    screen += *message;
  }
  return true;
}

}  // namespace testlooper::fixtures
