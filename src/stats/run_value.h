// The value of one more run, and a planner's helper that spends a budget of runs where they teach
// most.
//
// Uncertainty about a test's history is measured in nats: the entropy of where its failure rate
// changed (a distribution over "no change" and the commits between the first and the last
// commit with runs, the commits' probabilities scaled to sum to P(some change)), plus the binary
// entropy of P(the test is flaky at its newest commit) (three-way model, classification.h). The
// value of one more run at a commit is the expected reduction of that uncertainty, averaging the
// outcomes pass and fail by their posterior predictive probabilities; it is clamped at 0, and 0
// where a run cannot happen (the test is absent).
// Pure functions; thread-safe. Cost: two change analyses per value, O(B^2) each.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "stats/evidence.h"
#include "stats/failure_rate.h"

namespace testlooper::stats {

// The expected reduction of uncertainty (nats) from one more run of the test at history[index]
// (history oldest first). REQUIRES index < history.size().
double value_of_one_more_run(std::span<const CommitEvidence> history, size_t index,
                             const ChangeModel& model = {});

// One run to schedule: the test of histories[history] at its commit `index`, and its value.
struct PlannedRun {
  size_t history = 0;
  size_t index = 0;
  double value = 0;
};

struct RunBudget {
  int64_t runs = 0;          // how many runs to plan at most
  double confidence = 0.95;  // a history whose listed changes are all at least this probable
                             // (at their most probable commit) gets no more runs
  double min_value = 1e-6;   // runs worth less than this (nats) are not planned
};

// Plans up to budget.runs runs over `histories` (each oldest first: tests, test cases, or one test
// on several branches), in the order picked. Greedy: each pick is the (history, commit) of highest
// value among the histories' candidate commits (around their probable changes, in the untested
// gaps between, and the newest commit); the picked history is then updated as if the run had its
// most probable outcome, so that the next pick accounts for it. Several runs may go to the same
// commit. Stops early when no run is worth budget.min_value.
std::vector<PlannedRun> plan_runs(std::span<const std::vector<CommitEvidence>> histories,
                                  const RunBudget& budget, const ChangeModel& model = {});

// Whether `history` (oldest first) lists at least one change and each listed change is at least
// `confidence` probable at its most probable commit (ChangeAnalysis::changes): plan_runs gives
// such a history no more runs.
bool changes_localised(std::span<const CommitEvidence> history, double confidence,
                       const ChangeModel& model = {});

// The newest commit's own failure rate: the runs of its experiment alone (the consecutive present
// commits that share its identity, experiments.h), never pooled with older experiments as a
// segment's rate is. `bounded` when its 95% interval is at most `width` wide
// (docs/statistics.md "Confirming the head"). nullopt when the newest commit is absent.
struct HeadRate {
  size_t first = 0;  // history index of the experiment's first commit
  int64_t runs = 0;
  int64_t failures = 0;
  FailureRate rate;
  bool bounded = false;
};
std::optional<HeadRate> head_rate(std::span<const CommitEvidence> history, double width);

}  // namespace testlooper::stats
