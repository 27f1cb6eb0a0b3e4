#include "stats/classification.h"

#include <gtest/gtest.h>

#include "history_builder.h"
#include "stats/change_points.h"

namespace testlooper::stats {
namespace {

Classification classify_at(const std::vector<CommitEvidence>& history, size_t index) {
  return classify(history, index, analyse_changes(history));
}

TEST(Classification, VerdictsHaveLowerCaseNames) {
  EXPECT_EQ(to_string(Verdict::kGood), "good");
  EXPECT_EQ(to_string(Verdict::kFlaky), "flaky");
  EXPECT_EQ(to_string(Verdict::kBroken), "broken");
  EXPECT_EQ(to_string(Verdict::kFixed), "fixed");
  EXPECT_EQ(to_string(Verdict::kNew), "new");
  EXPECT_EQ(to_string(Verdict::kRemoved), "removed");
  EXPECT_EQ(to_string(Verdict::kUnknown), "unknown");
}

TEST(RateClasses, WithoutRunsAreThePriors) {
  const ChangeModel model;
  const RateClasses classes = rate_classes(0, 0, model);
  EXPECT_NEAR(classes.flaky, model.flaky_prior, 1e-12);
  EXPECT_NEAR(classes.broken, model.broken_prior, 1e-12);
  EXPECT_NEAR(classes.good, 1 - model.flaky_prior - model.broken_prior, 1e-12);
}

TEST(RateClasses, OnePassAndOneFailureIsCertainlyFlaky) {
  const RateClasses classes = rate_classes(1, 2);
  EXPECT_EQ(classes.flaky, 1);
  EXPECT_EQ(classes.good, 0);
  EXPECT_EQ(classes.broken, 0);
}

TEST(RateClasses, ConfidenceInGoodGrowsWithPasses) {
  const double one = rate_classes(0, 1).good, ten = rate_classes(0, 10).good;
  const double thousand = rate_classes(0, 1000).good;
  EXPECT_LT(one, 0.9);  // one lucky run says little: rare flakes pass most runs
  EXPECT_LT(one, ten);
  EXPECT_LT(ten, thousand);
  EXPECT_GT(thousand, 0.98);
  EXPECT_GT(rate_classes(3, 3).broken, 0.95);  // flaky tests rarely fail three times in a row
}

TEST(Classification, LongPassingHistoryIsGood) {
  const auto history = simulated_history(
      300, 3, [](size_t) { return 0.0; }, 1);
  const Classification at = classify_at(history, 150);
  EXPECT_EQ(at.verdict, Verdict::kGood);
  EXPECT_GT(at.confidence, 0.9);
}

TEST(Classification, OneLuckyRunIsNotAConfidentVerdict) {
  const auto history = simulated_history(
      1, 1, [](size_t) { return 0.0; }, 2);
  const Classification at = classify_at(history, 0);
  EXPECT_EQ(at.verdict, Verdict::kGood);
  EXPECT_LT(at.confidence, 0.9);
}

TEST(Classification, OnePassAfterManyFailuresIsNotFixed) {
  auto history = simulated_history(
      51, 3, [](size_t) { return 1.0; }, 3);
  history[50].runs = 1;
  history[50].failures = 0;
  const Classification at = classify_at(history, 50);
  EXPECT_NE(at.verdict, Verdict::kFixed);
  EXPECT_NE(at.verdict, Verdict::kGood);
}

TEST(Classification, FlakeIsFlaky) {
  const auto history = simulated_history(
      100, 5, [](size_t) { return 0.05; }, 4);
  const Classification at = classify_at(history, 50);
  EXPECT_EQ(at.verdict, Verdict::kFlaky);
  EXPECT_GT(at.confidence, 0.9);
}

TEST(Classification, SameIdentityPoolsRunsIntoOneVerdict) {
  std::vector<CommitEvidence> history = fresh_history(100);
  for (size_t i = 0; i < history.size(); ++i) {
    history[i].identity = "same";
    history[i].runs = 1;
    history[i].failures = i % 40 == 7 ? 1 : 0;  // three failures in 100 runs of one experiment
  }
  const Classification at = classify_at(history, 20);  // commit 20 itself passed once
  EXPECT_EQ(at.verdict, Verdict::kFlaky);
  EXPECT_GT(at.confidence, 0.99);
}

TEST(Classification, ClassifyAtReadsOnlyPresenceOfTheHistory) {
  // classify_at (for callers holding a compact history) says what classify says, also where the
  // test is absent, new or removed.
  auto history = simulated_history(
      80, 3, [](size_t i) { return i >= 40 ? 0.5 : 0.0; }, 9);
  for (size_t i : {10u, 11u, 12u, 55u, 56u}) history[i] = {history[i].commit, "", false, 0, 0};
  const ChangeAnalysis analysis = analyse_changes(history);
  for (size_t i = 0; i < history.size(); ++i) {
    const Classification want = classify(history, i, analysis);
    const Classification got =
        stats::classify_at(history[i].present, i > 0 && history[i - 1].present, i, analysis);
    EXPECT_EQ(got.verdict, want.verdict) << i;
    EXPECT_EQ(got.confidence, want.confidence) << i;
  }
  EXPECT_EQ(stats::classify_at(true, true, 0, analysis).verdict,
            classify(history, 0, analysis).verdict);
}

TEST(Classification, SharpBreakIsBrokenFromTheCulpritOn) {
  const auto history = simulated_history(
      100, 3, [](size_t i) { return i >= 60 ? 1.0 : 0.0; }, 5);
  const ChangeAnalysis analysis = analyse_changes(history);
  const Classification before = classify(history, 30, analysis);
  const Classification culprit = classify(history, 60, analysis);
  const Classification after = classify(history, 80, analysis);
  EXPECT_EQ(before.verdict, Verdict::kGood);
  EXPECT_GT(before.confidence, 0.9);
  EXPECT_EQ(culprit.verdict, Verdict::kBroken);
  EXPECT_GT(culprit.confidence, 0.99);
  EXPECT_EQ(after.verdict, Verdict::kBroken);
  EXPECT_GT(after.confidence, 0.95);
}

TEST(Classification, FixIsFixedAtTheFixingCommitThenGood) {
  const auto history = simulated_history(
      100, 3, [](size_t i) { return i < 60 ? 1.0 : 0.0; }, 6);
  const ChangeAnalysis analysis = analyse_changes(history);
  const Classification fix = classify(history, 60, analysis);
  const Classification later = classify(history, 90, analysis);
  EXPECT_EQ(fix.verdict, Verdict::kFixed);
  EXPECT_GT(fix.confidence, 0.9);
  EXPECT_EQ(later.verdict, Verdict::kGood);
  EXPECT_GT(later.confidence, 0.9);
}

TEST(Classification, FlakeIntroducedIsBrokenAtTheCulpritThenFlaky) {
  const auto history = simulated_history(
      100, 40, [](size_t i) { return i >= 50 ? 0.1 : 0.0; }, 7);
  const ChangeAnalysis analysis = analyse_changes(history);
  ASSERT_FALSE(analysis.changes.empty());
  const size_t culprit = analysis.changes[0].index;
  ASSERT_EQ(culprit, 50u);
  const Classification at = classify(history, culprit, analysis);
  EXPECT_EQ(at.verdict, Verdict::kBroken);
  EXPECT_GT(at.confidence, 0.5);
  EXPECT_EQ(classify(history, 75, analysis).verdict, Verdict::kFlaky);
}

// What commit statuses' "flaky_rising" reads (server/commit_stats.h): flaky by its rate at the
// culprit, where classify says broken, and a rise there only.
TEST(Classification, FlakeIntroducedIsFlakyByItsRateAndRoseAtTheCulpritOnly) {
  const auto history = simulated_history(
      100, 40, [](size_t i) { return i >= 50 ? 0.1 : 0.0; }, 7);
  const ChangeAnalysis analysis = analyse_changes(history);
  EXPECT_EQ(classify_rate(analysis, 50).verdict, Verdict::kFlaky);
  EXPECT_EQ(classify_rate(analysis, 30).verdict, Verdict::kGood);
  EXPECT_TRUE(rate_rose_at(analysis, 50));
  EXPECT_FALSE(rate_rose_at(analysis, 49));
  EXPECT_FALSE(rate_rose_at(analysis, 75));
}

TEST(Classification, AFixIsNoRise) {
  const auto history = simulated_history(
      100, 3, [](size_t i) { return i < 60 ? 1.0 : 0.0; }, 6);
  const ChangeAnalysis analysis = analyse_changes(history);
  EXPECT_FALSE(rate_rose_at(analysis, 60));
  EXPECT_EQ(classify_rate(analysis, 30).verdict, Verdict::kBroken);
}

TEST(Classification, AppearingTestIsNewAndDisappearingTestIsRemoved) {
  auto history = simulated_history(
      20, 3, [](size_t) { return 0.0; }, 8);
  for (size_t i : {0, 1, 2, 3, 4, 15, 16, 17, 18, 19}) {
    history[i].present = false;
    history[i].runs = history[i].failures = 0;
  }
  const ChangeAnalysis analysis = analyse_changes(history);
  EXPECT_EQ(classify(history, 5, analysis).verdict, Verdict::kNew);
  EXPECT_EQ(classify(history, 5, analysis).confidence, 1);
  EXPECT_EQ(classify(history, 15, analysis).verdict, Verdict::kRemoved);
  EXPECT_EQ(classify(history, 15, analysis).confidence, 1);
  EXPECT_EQ(classify(history, 17, analysis).verdict, Verdict::kUnknown);
  EXPECT_EQ(classify(history, 10, analysis).verdict, Verdict::kGood);
}

TEST(Classification, CommitsBeyondTheRunsAreUnknown) {
  auto history = simulated_history(
      30, 3, [](size_t) { return 0.0; }, 9);
  for (size_t i = 25; i < 30; ++i) history[i].runs = 0;
  const Classification at = classify_at(history, 27);
  EXPECT_EQ(at.verdict, Verdict::kUnknown);
  EXPECT_EQ(at.confidence, 0);
}

TEST(Classification, UntestedCommitBetweenPassingCommitsIsGood) {
  auto history = simulated_history(
      100, 3, [](size_t) { return 0.0; }, 10);
  history[50].runs = 0;
  const Classification at = classify_at(history, 50);
  EXPECT_EQ(at.verdict, Verdict::kGood);
  EXPECT_GT(at.confidence, 0.9);
}

}  // namespace
}  // namespace testlooper::stats
