// Change points: where along a branch's first-parent history a test's failure rate changed.
//
// The model (docs/statistics.md): the history is cut into segments, each with its own failure rate
// p ~ Beta(rate_alpha, rate_beta), runs are independent Bernoulli(p) given their segment, and the
// rate may change at a commit where the test's identity changed, independently with probability
// change_prior. The posterior over every segmentation is computed exactly (O(B^2) for B commits
// with runs), so several changes, rates far from 0 and 1, and commits without runs are handled.
// Changes are only looked for between the first and the last commit with runs.
// Pure functions on values; thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "stats/evidence.h"
#include "stats/failure_rate.h"

namespace testlooper::stats {

// A stretch of history between two probable changes, its runs pooled into one failure rate.
struct Segment {
  size_t first = 0;  // history index of its first commit
  size_t last = 0;   // history index of its last commit
  int64_t runs = 0;
  int64_t failures = 0;
  FailureRate rate;  // failure_rate(failures, runs): estimate and 95% Jeffreys interval
  // P(no other change hides inside it | data), counting its commits but the first, between the
  // first and the last commit with runs.
  double stable = 1;
};

// A change of failure rate: from commit `index` on, the rate is `after` instead of `before`.
struct ChangePoint {
  size_t index = 0;        // history index of the first commit with the new rate (most probable)
  std::string commit;      // its commit id
  double probability = 0;  // P(the rate changed exactly at `index` | data)
  // The commits over which this change's probability is spread (untested commits share it), and
  // P(the rate changed somewhere in [earliest, latest] | data), at most 1.
  size_t earliest = 0;
  size_t latest = 0;
  double range_probability = 0;
  // The rate from the previous listed change (or the oldest commit) to index - 1, and from index
  // to the next listed change (or the newest commit).
  FailureRate before;
  FailureRate after;
  int64_t runs_used = 0;  // the runs those two rates rest on
};

struct ChangeAnalysis {
  // P(the rate did not change between the first and the last commit with runs | data).
  double no_change_probability = 1;
  // Per history index, P(the rate changed at this commit | data). 0 where it cannot change (same
  // identity as the previous commit, or the test absent); the prior outside the commits with runs.
  std::vector<double> posterior;
  // Changes with range_probability >= report_threshold, most probable (range_probability) first.
  std::vector<ChangePoint> changes;
  // The history cut at every listed change with range_probability >= 0.5 (more likely than not),
  // oldest first; covers every index. Classification reads the rate at a commit from these.
  std::vector<Segment> segments;
  // The history indices spanned by the experiments with runs: from the first commit of the first
  // to the last commit of the last. Outside them nothing is known. Both 0 when `observed` is false.
  bool observed = false;
  size_t observed_first = 0;
  size_t observed_last = 0;
};

// The changes of failure rate along `history` (oldest first). An empty history gives an empty
// analysis with no_change_probability 1. Takes well under 10 ms for 2,000 commits with runs.
ChangeAnalysis analyse_changes(std::span<const CommitEvidence> history,
                               const ChangeModel& model = {});

// The segment of `analysis` that holds history index `index` (nullptr when none does: an empty
// analysis).
const Segment* segment_at(const ChangeAnalysis& analysis, size_t index);

}  // namespace testlooper::stats
