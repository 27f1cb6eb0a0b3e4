// Classification: one word and a confidence for a test (or test case) at one commit.
//
// The rate part comes from a three-way model of the stretch of history (segment) the commit lies
// in: the test always passes there, always fails there, or is flaky with a failure rate
// Beta(flaky_alpha, flaky_beta) (ChangeModel). A verdict is never taken from one run: with few
// runs the confidence stays near the prior, and a "broken" or "fixed" needs a change point.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "stats/change_points.h"
#include "stats/evidence.h"

namespace testlooper::stats {

enum class Verdict {
  kGood,     // passes every time here
  kFlaky,    // sometimes fails, sometimes passes here: 0 < rate < 1
  kBroken,   // fails every time here, or this is the commit where its failure rate went up
  kFixed,    // this is the commit where its failure rate went down and it now passes
  kNew,      // the test appears at this commit (absent at the parent)
  kRemoved,  // the test disappears at this commit (present at the parent)
  kUnknown,  // nothing is known here: no runs cover this commit
};

// "good", "flaky", "broken", "fixed", "new", "removed" or "unknown".
std::string_view to_string(Verdict verdict);

// A verdict and the posterior probability that it is right (1 for new and removed, which are facts
// of the definitions; 0 for unknown).
struct Classification {
  Verdict verdict = Verdict::kUnknown;
  double confidence = 0;
};

// The posterior of the three-way model for a stretch of history with `failures` in `runs`: good
// (always passes), flaky, broken (always fails); they sum to 1. With no runs it is the prior.
struct RateClasses {
  double good = 0;
  double flaky = 0;
  double broken = 0;
};
RateClasses rate_classes(int64_t failures, int64_t runs, const ChangeModel& model = {});

// The classification of the test at history[index] (history oldest first), given `analysis` =
// analyse_changes(history, model). REQUIRES index < history.size().
//  - removed / new: the test is absent here but present at the parent, or the reverse;
//  - broken / fixed: the rate changed here with probability >= 0.5 and went up / went down to good
//    (confidence: that probability, times P(good) after the change for fixed);
//  - otherwise good, flaky or broken, whichever is most probable for the segment holding `index`
//    (confidence: its probability times the segment's `stable`);
//  - unknown outside the commits spanned by runs.
Classification classify(std::span<const CommitEvidence> history, size_t index,
                        const ChangeAnalysis& analysis, const ChangeModel& model = {});
// The same from all classify reads of the history: whether the test is present at `index`, and at
// index - 1 (`parent_present`; false when index is 0), so that a caller holding a compact history
// need not build it whole to classify one commit.
Classification classify_at(bool present, bool parent_present, size_t index,
                           const ChangeAnalysis& analysis, const ChangeModel& model = {});

// The rate part of classify alone: good, flaky or broken, whichever is most probable for the
// segment of `analysis` holding `index`; unknown when that segment has no runs.
Classification classify_rate(const ChangeAnalysis& analysis, size_t index,
                             const ChangeModel& model = {});

// Whether the failure rate rose at history index `index`: the rate changed exactly there with
// probability >= 0.5 and a listed change there goes up (what makes classify say "broken").
bool rate_rose_at(const ChangeAnalysis& analysis, size_t index);

}  // namespace testlooper::stats
