// Test helper: builds first-parent histories of one test, oldest first, and simulates runs.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "stats/evidence.h"

namespace testlooper::stats {

// `commits` commits named c0, c1, ... with a distinct identity each (the test's hash changes at
// every commit, as when it depends on the whole source tree) and no runs.
inline std::vector<CommitEvidence> fresh_history(size_t commits) {
  std::vector<CommitEvidence> history(commits);
  for (size_t i = 0; i < commits; ++i) {
    history[i].commit = "c" + std::to_string(i);
    history[i].identity = "h" + std::to_string(i);
  }
  return history;
}

// Adds `runs` runs at history[index], each failing with probability `rate`.
inline void simulate_runs(std::vector<CommitEvidence>& history, size_t index, int64_t runs,
                          double rate, std::mt19937_64& rng) {
  history[index].runs += runs;
  history[index].failures += std::binomial_distribution<int64_t>(runs, rate)(rng);
}

// A history of `commits` commits with `runs_per_commit` runs each at the rate rate_at(index).
inline std::vector<CommitEvidence> simulated_history(size_t commits, int64_t runs_per_commit,
                                                     const std::function<double(size_t)>& rate_at,
                                                     uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<CommitEvidence> history = fresh_history(commits);
  for (size_t i = 0; i < commits; ++i) simulate_runs(history, i, runs_per_commit, rate_at(i), rng);
  return history;
}

}  // namespace testlooper::stats
