// The inputs of TestLooper's statistics: what was observed of one test (or one test case) along a
// branch's first-parent history, and the priors the statistics assume (docs/statistics.md).
// Plain values; no state; thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace testlooper::stats {

// One commit of first-parent history for one test or test case. A history is a sequence of these,
// OLDEST FIRST.
//
// `runs` and `failures` count completed runs only. Runs that ended in an infrastructure failure
// (worker lost, machine timeout, disk full, ...) say nothing about the test: the caller leaves them
// out, and they must never be counted as failures.
//
// `identity` is the test's identity hash at this commit. Consecutive present commits with the same
// non-empty identity run the same experiment: their runs are pooled, and the failure rate cannot
// change between them. "" means the identity is unknown, and every such commit is then a place
// where the rate may have changed.
struct CommitEvidence {
  std::string commit;    // the commit id (sha)
  std::string identity;  // the test's hash at this commit; "" = unknown
  bool present = true;   // false: the test does not exist at this commit (then runs == 0)
  int64_t runs = 0;      // REQUIRES runs >= 0
  int64_t failures = 0;  // REQUIRES 0 <= failures <= runs
};

// The priors. The defaults are the ones documented in docs/statistics.md; change them only with a
// reason, since every probability the statistics report depends on them.
struct ChangeModel {
  // Prior probability that a test's failure rate changes at one commit where its identity changed.
  // REQUIRES 0 < change_prior < 1.
  double change_prior = 1e-3;
  // Beta(rate_alpha, rate_beta) prior on the failure rate of a stretch of history between changes.
  // Jeffreys' Beta(1/2, 1/2) puts weight near 0 (passing tests) and near 1 (failing tests).
  double rate_alpha = 0.5;
  double rate_beta = 0.5;
  // A change is listed in ChangeAnalysis::changes when the probability that it happened somewhere
  // in its range of commits is at least this.
  double report_threshold = 0.05;
  // Classification: a stretch of history is a priori deterministic-passing (1 - flaky_prior -
  // broken_prior), deterministic-failing (broken_prior), or flaky (flaky_prior), and a flaky
  // test's failure rate is a priori Beta(flaky_alpha, flaky_beta): mean 10%, mostly rare failures.
  double flaky_prior = 0.15;
  double broken_prior = 0.05;
  double flaky_alpha = 0.5;
  double flaky_beta = 4.5;
};

}  // namespace testlooper::stats
