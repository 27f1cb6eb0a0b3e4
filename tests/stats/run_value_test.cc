#include "stats/run_value.h"

#include <gtest/gtest.h>

#include <random>

#include "history_builder.h"
#include "stats/change_points.h"

namespace testlooper::stats {
namespace {

// Passing before commit 100 and failing from it on, 3 runs per commit, except the untested commits
// first..last.
std::vector<CommitEvidence> break_with_untested_gap(size_t first, size_t last) {
  auto history = simulated_history(
      200, 3, [](size_t i) { return i >= 100 ? 1.0 : 0.0; }, 1);
  for (size_t i = first; i <= last; ++i) history[i].runs = history[i].failures = 0;
  return history;
}

TEST(RunValue, IsZeroWhereTheTestIsAbsent) {
  auto history = break_with_untested_gap(90, 110);
  history[95].present = false;
  EXPECT_EQ(value_of_one_more_run(history, 95), 0);
}

TEST(RunValue, IsHighestInsideAnUnlocalisedBreak) {
  const auto history = break_with_untested_gap(90, 110);
  double best = 0;
  size_t best_index = 0;
  for (size_t i = 0; i < history.size(); ++i) {
    const double value = value_of_one_more_run(history, i);
    EXPECT_GE(value, 0) << i;
    if (value > best) best = value, best_index = i;
  }
  EXPECT_GE(best_index, 90u);
  EXPECT_LE(best_index, 110u);
  EXPECT_GT(best, 0.1);  // one run roughly halves 21 equally likely commits
  EXPECT_LT(value_of_one_more_run(history, 20), best / 100);
  EXPECT_LT(value_of_one_more_run(history, 180), best / 100);
}

TEST(RunValue, FallsOnceTheChangeIsLocalised) {
  const auto unlocalised = break_with_untested_gap(90, 110);
  const auto localised = break_with_untested_gap(1, 0);  // no gap
  EXPECT_LT(value_of_one_more_run(localised, 100), value_of_one_more_run(unlocalised, 100) / 10);
}

TEST(RunValue, IsNeverNegative) {
  std::mt19937_64 rng(2);
  std::vector<CommitEvidence> history = fresh_history(60);
  for (size_t i = 0; i < history.size(); i += 3) {
    simulate_runs(history, i, 1 + static_cast<int64_t>(i % 4), i > 30 ? 0.3 : 0.02, rng);
  }
  for (size_t i = 0; i < history.size(); ++i) EXPECT_GE(value_of_one_more_run(history, i), 0) << i;
}

TEST(PlanRuns, SpendsTheBudgetOnTheUnlocalisedHistory) {
  const std::vector<std::vector<CommitEvidence>> histories = {break_with_untested_gap(1, 0),
                                                              break_with_untested_gap(90, 110)};
  const std::vector<PlannedRun> plan = plan_runs(histories, {.runs = 5});
  ASSERT_EQ(plan.size(), 5u);
  for (const PlannedRun& run : plan) {
    EXPECT_EQ(run.history, 1u);
    EXPECT_GE(run.index, 90u);
    EXPECT_LE(run.index, 110u);
    EXPECT_GT(run.value, 0);
  }
  // The first pick is the best single run of either history.
  EXPECT_NEAR(plan[0].value, value_of_one_more_run(histories[1], plan[0].index), 1e-12);
}

TEST(PlanRuns, PlansNothingWhenEveryRunIsWorthLittle) {
  const std::vector<std::vector<CommitEvidence>> histories = {simulated_history(
      100, 3, [](size_t) { return 0.0; }, 3)};
  EXPECT_TRUE(plan_runs(histories, {.runs = 10, .min_value = 0.01}).empty());
  EXPECT_EQ(plan_runs(histories, {.runs = 10, .min_value = 0}).size(), 10u);
}

TEST(PlanRuns, LocalisesASimulatedFlakeAndNamesTheRightCommit) {
  // 60 commits, a 20% flake from commit 37; a few runs on every 6th commit, then planned runs
  // until the most probable change is 95% likely.
  constexpr size_t kCulprit = 37;
  std::mt19937_64 rng(4);
  std::vector<CommitEvidence> history = fresh_history(60);
  const auto rate = [](size_t i) { return i >= kCulprit ? 0.2 : 0.0; };
  for (size_t i = 0; i < history.size(); i += 6) simulate_runs(history, i, 2, rate(i), rng);
  simulate_runs(history, 59, 2, rate(59), rng);
  int64_t runs = 0;
  ChangeAnalysis analysis = analyse_changes(history);
  while ((analysis.changes.empty() || analysis.changes[0].probability < 0.95) && runs < 2000) {
    const std::vector<std::vector<CommitEvidence>> histories = {history};
    const std::vector<PlannedRun> plan = plan_runs(histories, {.runs = 1, .min_value = 0});
    ASSERT_EQ(plan.size(), 1u);
    simulate_runs(history, plan[0].index, 1, rate(plan[0].index), rng);
    ++runs;
    analysis = analyse_changes(history);
  }
  ASSERT_FALSE(analysis.changes.empty());
  EXPECT_EQ(analysis.changes[0].index, kCulprit);
  EXPECT_GE(analysis.changes[0].probability, 0.95);
  EXPECT_LT(runs, 60 * 20);  // far fewer than the ~20 runs per commit a uniform spread needs
}

}  // namespace
}  // namespace testlooper::stats

namespace testlooper::stats {
namespace {

TEST(HeadRate, IsTheNewestExperimentsOwnRateNeverPooled) {
  auto history = fresh_history(5);
  for (size_t i = 0; i < 4; ++i) history[i].runs = history[i].failures = 10;  // broken
  history[3].identity = history[4].identity = "fix";  // the head shares c3's identity
  history[3].runs = 3;
  history[3].failures = 0;
  const auto head = head_rate(history, 0.1);
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->first, 3u);
  EXPECT_EQ(head->runs, 3);
  EXPECT_EQ(head->failures, 0);
  EXPECT_FALSE(head->bounded) << "3 passes leave a wide interval";
  history[3].runs = 40;
  EXPECT_TRUE(head_rate(history, 0.1)->bounded) << "40 passes: below about 6%";
  EXPECT_FALSE(head_rate(history, 0.01)->bounded);
  history[4].present = false;
  history[4].identity = "";
  EXPECT_FALSE(head_rate(history, 0.1).has_value()) << "the test is gone at the head";
  EXPECT_FALSE(head_rate({}, 0.1).has_value());
}

TEST(ChangesLocalised, NeedsAListedChangeAtConfidence) {
  auto history = fresh_history(20);
  EXPECT_FALSE(changes_localised(history, 0.95)) << "no change listed";
  for (size_t i = 0; i < 20; ++i) {
    history[i].runs = 10;
    history[i].failures = i >= 10 ? 10 : 0;
  }
  EXPECT_TRUE(changes_localised(history, 0.95));
  history[10].runs = history[10].failures = 0;  // c9 or c10
  EXPECT_FALSE(changes_localised(history, 0.95));
}

}  // namespace
}  // namespace testlooper::stats
