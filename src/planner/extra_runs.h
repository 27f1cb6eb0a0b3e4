// The planner's extra-run budget: where a branch's spare runs go (stats::plan_runs).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "planner/plan_index.h"
#include "planner/planner.h"

namespace testlooper::planner {

// One extra run to make: the test `name` of `repo` at commit `sha`.
struct ExtraRun {
  std::string repo;
  std::string sha;
  std::string name;
  std::string purpose;  // extra_purpose(repo, branch, head)
};

// The extra runs `budget`'s branch should start now, best first: at most
// min(extra_left, extra_parallel - extra_active). First for the tests with a failure somewhere on
// the branch's history (a scaffold away from the head, then stats::plan_runs; none for a test
// whose listed changes are all at least input.extra_confidence probable). A test that never
// failed, or never passed, gets none after the scaffold: it has no change to localise. Then, for
// the tests whose changes are localised, runs at the head until its own rate is bounded
// (input.head_width), shared between those tests in turn.
// The histories are read from `index` (failing_test_histories).
std::vector<ExtraRun> pick_extra_runs(const BranchBudget& budget, const PlanInput& input,
                                      const PlanIndex& index);

}  // namespace testlooper::planner
