// Small shared pieces of the server and its worker protocol: the wall clock, and the store's
// state for a worker's result outcome ("success" | "failure" | "cancelled" | anything else =
// an infrastructure failure, also the words the runner writes in test_result.json).
#pragma once

#include <chrono>
#include <string>

#include "store/store.h"

namespace testlooper::server {

inline double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

inline store::RunState run_state_of_outcome(const std::string& outcome) {
  if (outcome == "success") return store::RunState::kSucceeded;
  if (outcome == "failure") return store::RunState::kFailed;
  if (outcome == "cancelled") return store::RunState::kCancelled;
  return store::RunState::kInfraFailed;
}

}  // namespace testlooper::server
