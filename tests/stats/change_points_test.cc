#include "stats/change_points.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "history_builder.h"

namespace testlooper::stats {
namespace {

double max_posterior(const ChangeAnalysis& analysis) {
  return *std::max_element(analysis.posterior.begin(), analysis.posterior.end());
}

// log P(one sequence of `failures` in `runs`) under Beta(a, b), computed independently.
double log_likelihood(int64_t failures, int64_t runs, const ChangeModel& model) {
  const auto k = static_cast<double>(failures), f = static_cast<double>(runs - failures);
  const double a = model.rate_alpha, b = model.rate_beta;
  return std::lgamma(a + k) + std::lgamma(b + f) - std::lgamma(a + b + k + f) - std::lgamma(a) -
         std::lgamma(b) + std::lgamma(a + b);
}

// The exact answer by enumerating every set of change positions of a small history.
struct BruteForce {
  std::vector<double> posterior;
  double no_change = 0;  // no change between the first and the last commit with runs
};

BruteForce brute_force(const std::vector<CommitEvidence>& history, const ChangeModel& model) {
  std::vector<size_t> positions;
  std::vector<bool> inside;
  for (size_t i = 0, previous = SIZE_MAX; i < history.size(); ++i) {
    if (!history[i].present) continue;
    if (previous != SIZE_MAX &&
        (history[i].identity.empty() || history[i].identity != history[previous].identity)) {
      positions.push_back(i);
      bool before = false, after = false;
      for (size_t j = 0; j < history.size(); ++j) (j < i ? before : after) |= history[j].runs > 0;
      inside.push_back(before && after);
    }
    previous = i;
  }
  BruteForce out;
  out.posterior.assign(history.size(), 0.0);
  double total = 0;
  for (uint32_t mask = 0; mask < (1u << positions.size()); ++mask) {
    double log_joint = 0;
    bool changes_inside = false;
    int64_t runs = 0, failures = 0;
    for (size_t i = 0, p = 0; i <= history.size(); ++i) {
      const bool cut = p < positions.size() && positions[p] == i;
      if (cut || i == history.size()) {
        const bool chosen = cut && (mask >> p & 1);
        if (cut) log_joint += std::log(chosen ? model.change_prior : 1 - model.change_prior);
        if (chosen || i == history.size()) {
          log_joint += log_likelihood(failures, runs, model);
          runs = failures = 0;
        }
        changes_inside |= chosen && inside[p];
        if (cut) ++p;
      }
      if (i < history.size()) runs += history[i].runs, failures += history[i].failures;
    }
    const double joint = std::exp(log_joint);
    total += joint;
    if (!changes_inside) out.no_change += joint;
    for (size_t p = 0; p < positions.size(); ++p) {
      if (mask >> p & 1) out.posterior[positions[p]] += joint;
    }
  }
  for (double& p : out.posterior) p /= total;
  out.no_change /= total;
  return out;
}

TEST(ChangePoints, EmptyHistoryHasNoChange) {
  const ChangeAnalysis analysis = analyse_changes({});
  EXPECT_EQ(analysis.no_change_probability, 1);
  EXPECT_TRUE(analysis.changes.empty());
  EXPECT_FALSE(analysis.observed);
}

TEST(ChangePoints, MatchesBruteForceOnSmallHistories) {
  std::vector<CommitEvidence> history = fresh_history(11);
  const int64_t runs[] = {3, 0, 2, 12, 1, 0, 0, 4, 9, 2, 0};
  const int64_t failures[] = {0, 0, 0, 1, 1, 0, 0, 3, 7, 2, 0};
  for (size_t i = 0; i < history.size(); ++i) {
    history[i].runs = runs[i];
    history[i].failures = failures[i];
  }
  history[2].identity = history[1].identity;  // same experiment as commit 1
  history[6].present = false;                 // the test is absent at commit 6
  ChangeModel model;
  model.change_prior = 0.1;  // large enough that every set of positions matters
  for (const bool unknown_identity : {false, true}) {
    if (unknown_identity) {
      for (CommitEvidence& commit : history) commit.identity.clear();
    }
    const ChangeAnalysis analysis = analyse_changes(history, model);
    const BruteForce expected = brute_force(history, model);
    EXPECT_NEAR(analysis.no_change_probability, expected.no_change, 1e-9);
    for (size_t i = 0; i < history.size(); ++i) {
      EXPECT_NEAR(analysis.posterior[i], expected.posterior[i], 1e-9) << "commit " << i;
    }
  }
}

TEST(ChangePoints, LongAllPassingHistoryReportsNoChange) {
  std::mt19937_64 rng(11);
  std::vector<CommitEvidence> history = fresh_history(1000);
  for (size_t i = 0; i < history.size(); ++i) {
    simulate_runs(history, i, std::uniform_int_distribution<int64_t>(1, 5)(rng), 0.0, rng);
  }
  const ChangeAnalysis analysis = analyse_changes(history);
  EXPECT_GT(analysis.no_change_probability, 0.95);
  EXPECT_LT(max_posterior(analysis), 0.05);
  EXPECT_TRUE(analysis.changes.empty());
  ASSERT_EQ(analysis.segments.size(), 1u);
  EXPECT_EQ(analysis.segments[0].failures, 0);
}

TEST(ChangePoints, LongAllFailingHistoryReportsNoChange) {
  std::mt19937_64 rng(12);
  std::vector<CommitEvidence> history = fresh_history(1000);
  for (size_t i = 0; i < history.size(); ++i) {
    simulate_runs(history, i, std::uniform_int_distribution<int64_t>(1, 5)(rng), 1.0, rng);
  }
  const ChangeAnalysis analysis = analyse_changes(history);
  EXPECT_GT(analysis.no_change_probability, 0.95);
  EXPECT_LT(max_posterior(analysis), 0.05);
  EXPECT_TRUE(analysis.changes.empty());
}

// With one run per commit, the neighbours keep about 1% (commit 119's one pass could come from a
// test that fails 199 times in 200): 98.9% lands on the right commit. Two runs are enough for 99%.
TEST(ChangePoints, SharpBreakIsLocalisedExactly) {
  for (const int64_t runs : {2, 3, 10}) {
    const auto history = simulated_history(
        200, runs, [](size_t i) { return i >= 120 ? 1.0 : 0.0; }, 1);
    const ChangeAnalysis analysis = analyse_changes(history);
    EXPECT_GE(analysis.posterior[120], 0.99) << runs << " runs per commit";
    ASSERT_EQ(analysis.changes.size(), 1u);
    const ChangePoint& change = analysis.changes[0];
    EXPECT_EQ(change.index, 120u);
    EXPECT_EQ(change.commit, "c120");
    EXPECT_EQ(change.before.estimate, 0);
    EXPECT_EQ(change.after.estimate, 1);
    EXPECT_GT(change.after.low, 0.95);
    EXPECT_EQ(change.runs_used, 200 * runs);
    EXPECT_LT(analysis.no_change_probability, 1e-9);
  }
}

TEST(ChangePoints, SharpBreakWithOneRunPerCommitIsStillMostProbableOnTheRightCommit) {
  const auto history = simulated_history(
      200, 1, [](size_t i) { return i >= 120 ? 1.0 : 0.0; }, 1);
  const ChangeAnalysis analysis = analyse_changes(history);
  ASSERT_EQ(analysis.changes.size(), 1u);
  EXPECT_EQ(analysis.changes[0].index, 120u);
  EXPECT_GE(analysis.changes[0].probability, 0.98);
}

TEST(ChangePoints, FivePercentFlakeAppearingIsFoundWithEnoughRuns) {
  const auto history = simulated_history(
      200, 40, [](size_t i) { return i >= 130 ? 0.05 : 0.0; }, 2);
  const ChangeAnalysis analysis = analyse_changes(history);
  ASSERT_EQ(analysis.changes.size(), 1u);
  const ChangePoint& change = analysis.changes[0];
  EXPECT_GE(change.range_probability, 0.95);
  EXPECT_LE(change.earliest, 130u);
  EXPECT_GE(change.latest, 130u);
  EXPECT_LE(change.latest - change.earliest, 10u);
  EXPECT_EQ(change.before.estimate, 0);
  EXPECT_GT(change.after.estimate, 0.03);
  EXPECT_LT(change.after.estimate, 0.08);
  EXPECT_LT(change.after.low, 0.05);
  EXPECT_GT(change.after.high, 0.05);
}

TEST(ChangePoints, FlakeIntroducedFixedAndReintroducedGivesThreeChanges) {
  const auto rate = [](size_t i) { return (i >= 100 && i < 200) || i >= 300 ? 0.2 : 0.0; };
  const auto history = simulated_history(400, 10, rate, 3);
  const ChangeAnalysis analysis = analyse_changes(history);
  ASSERT_EQ(analysis.changes.size(), 3u);
  std::vector<ChangePoint> changes = analysis.changes;
  std::sort(changes.begin(), changes.end(),
            [](const ChangePoint& a, const ChangePoint& b) { return a.index < b.index; });
  const size_t truth[] = {100, 200, 300};
  for (size_t c = 0; c < 3; ++c) {
    EXPECT_GE(changes[c].range_probability, 0.95) << truth[c];
    EXPECT_LE(changes[c].earliest, truth[c]);
    EXPECT_GE(changes[c].latest, truth[c]);
    EXPECT_NEAR(static_cast<double>(changes[c].index), static_cast<double>(truth[c]), 3.0);
  }
  EXPECT_LT(changes[0].before.estimate, changes[0].after.estimate);  // introduced
  EXPECT_GT(changes[1].before.estimate, changes[1].after.estimate);  // fixed
  EXPECT_LT(changes[2].before.estimate, changes[2].after.estimate);  // reintroduced
  EXPECT_EQ(analysis.segments.size(), 4u);
}

TEST(ChangePoints, UntestedCommitsShareTheChangeEvenly) {
  auto history = simulated_history(
      200, 3, [](size_t i) { return i >= 105 ? 1.0 : 0.0; }, 4);
  for (size_t i = 100; i < 110; ++i) history[i].runs = history[i].failures = 0;
  const ChangeAnalysis analysis = analyse_changes(history);
  ASSERT_EQ(analysis.changes.size(), 1u);
  const ChangePoint& change = analysis.changes[0];
  EXPECT_EQ(change.earliest, 100u);
  EXPECT_EQ(change.latest, 110u);
  EXPECT_GT(change.range_probability, 0.99);
  for (size_t i = 100; i <= 110; ++i) EXPECT_NEAR(analysis.posterior[i], 1.0 / 11, 1e-3) << i;
  // Outside the gap only the multiple-change prior's small chance of an extra split remains.
  EXPECT_LT(analysis.posterior[99], 1e-3);
  EXPECT_LT(analysis.posterior[111], 1e-3);
}

TEST(ChangePoints, CommitsBeyondTheRunsKeepThePrior) {
  auto history = simulated_history(
      50, 3, [](size_t) { return 0.0; }, 5);
  for (size_t i = 40; i < 50; ++i) history[i].runs = 0;
  const ChangeModel model;
  const ChangeAnalysis analysis = analyse_changes(history, model);
  EXPECT_EQ(analysis.observed_last, 39u);
  EXPECT_DOUBLE_EQ(analysis.posterior[45], model.change_prior);
  EXPECT_GT(analysis.no_change_probability, 0.95);
}

TEST(ChangePoints, SameIdentityPoolsRunsAndPinsTheChange) {
  // Two identities, one run per commit; the identity changes at commit 50, which has no run.
  std::vector<CommitEvidence> history = fresh_history(100);
  for (size_t i = 0; i < history.size(); ++i) {
    history[i].identity = i < 50 ? "a" : "b";
    history[i].runs = i == 50 ? 0 : 1;
    history[i].failures = i > 50 ? 1 : 0;
  }
  const ChangeAnalysis pinned = analyse_changes(history);
  EXPECT_GE(pinned.posterior[50], 0.99);
  for (size_t i = 1; i < history.size(); ++i) {
    if (i != 50) {
      EXPECT_EQ(pinned.posterior[i], 0) << i;
    }
  }
  // Without identities the change could be at commit 50 or 51, equally.
  for (CommitEvidence& commit : history) commit.identity.clear();
  const ChangeAnalysis unknown = analyse_changes(history);
  EXPECT_NEAR(unknown.posterior[50], 0.5, 0.01);
  EXPECT_NEAR(unknown.posterior[51], 0.5, 0.01);
}

TEST(ChangePoints, AbsentCommitsAreNotChangePoints) {
  auto history = simulated_history(
      30, 2, [](size_t i) { return i >= 20 ? 1.0 : 0.0; }, 6);
  for (size_t i = 15; i < 20; ++i) {
    history[i].present = false;
    history[i].runs = history[i].failures = 0;
  }
  const ChangeAnalysis analysis = analyse_changes(history);
  for (size_t i = 15; i < 20; ++i) EXPECT_EQ(analysis.posterior[i], 0) << i;
  ASSERT_EQ(analysis.changes.size(), 1u);
  EXPECT_EQ(analysis.changes[0].index, 20u);
  EXPECT_GT(analysis.changes[0].probability, 0.99);
}

TEST(ChangePoints, LargeBlocksAreHandled) {
  // Thousands of runs on a few commits use the log-Gamma path.
  auto history = simulated_history(
      6, 2000, [](size_t i) { return i >= 3 ? 0.5 : 0.45; }, 7);
  const ChangeAnalysis analysis = analyse_changes(history);
  ASSERT_FALSE(analysis.changes.empty());
  EXPECT_EQ(analysis.changes[0].index, 3u);
  EXPECT_GT(analysis.changes[0].probability, 0.9);
}

TEST(ChangePoints, SegmentsCoverTheHistory) {
  const auto rate = [](size_t i) { return i >= 60 ? 1.0 : 0.0; };
  const auto history = simulated_history(100, 2, rate, 8);
  const ChangeAnalysis analysis = analyse_changes(history);
  ASSERT_EQ(analysis.segments.size(), 2u);
  EXPECT_EQ(analysis.segments[0].first, 0u);
  EXPECT_EQ(analysis.segments[0].last, 59u);
  EXPECT_EQ(analysis.segments[1].first, 60u);
  EXPECT_EQ(analysis.segments[1].last, 99u);
  EXPECT_EQ(analysis.segments[1].runs, 80);
  EXPECT_EQ(analysis.segments[1].failures, 80);
}

}  // namespace
}  // namespace testlooper::stats
