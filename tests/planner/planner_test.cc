#include "planner/planner.h"

#include <gtest/gtest.h>

namespace testlooper::planner {
namespace {

PlannedCommit commit_with_build_and_test(const std::string& sha, int64_t time) {
  PlannedCommit c{"repo", sha, time, true, {}, {}};
  c.objects.push_back({"build", "build", "hb", {}, 2, 2, 0, 1});
  c.objects.push_back({"test", "test", "ht-" + sha, {{"repo/" + sha + "/build", "hb"}}, 1, 1, 0, 0});
  c.test_sets["all"] = {"build", "test"};
  return c;
}

PlanInput one_commit() {
  PlanInput in;
  in.commits.push_back(commit_with_build_and_test("c1", 100));
  in.enabled_sets[{"repo", "c1"}] = {"all"};
  return in;
}

TEST(Planner, BuildRunsFirstThenTestsWaitOnIt) {
  const Plan plan = make_plan(one_commit());
  ASSERT_EQ(plan.jobs.size(), 1u);
  EXPECT_EQ(plan.jobs[0].name, "build");
  EXPECT_EQ(plan.statuses.at({"repo", "c1", "test"}).state, ObjectState::kWaitingOnBuilds);
}

// A booted deployment (PlanInput::deployments) needs its builds before everything else, even on
// a commit nothing enabled; it is never a job itself: its status says when the server may start it.
TEST(Planner, BootedDeploymentNeedsItsBuildsFirstAndIsNeverAJob) {
  PlanInput in = one_commit();
  PlannedCommit other{"repo", "c2", 50, true, {}, {}};
  other.objects.push_back({"build", "build", "hb2", {}, 1, 1, 0, 1});
  other.objects.push_back({"web", "deployment", "hd", {{"repo/c2/build", "hb2"}}, 1, 1, 0, 0});
  in.commits.push_back(other);
  in.deployments.insert({"repo", "c2", "web"});
  Plan plan = make_plan(in);
  ASSERT_EQ(plan.jobs.size(), 2u);
  EXPECT_EQ(plan.jobs[0].hash, "hb2");  // before c1's build, though c1 is newer
  EXPECT_EQ(plan.jobs[1].hash, "hb");
  EXPECT_EQ(plan.statuses.at({"repo", "c2", "web"}).state, ObjectState::kWaitingOnBuilds);
  EXPECT_FALSE(plan.keep.count("hd"));
  in.progress["hb2"] = {1, 0, 0};
  plan = make_plan(in);
  EXPECT_EQ(plan.statuses.at({"repo", "c2", "web"}).state, ObjectState::kRunnable);
  for (const Job& j : plan.jobs) EXPECT_NE(j.kind, "deployment");
  in.deployments.clear();
  plan = make_plan(in);
  EXPECT_FALSE(plan.statuses.count({"repo", "c2", "web"}));
}

TEST(Planner, TestsBecomeRunnableWithTargetRuns) {
  PlanInput in = one_commit();
  in.progress["hb"] = {1, 0, 0};
  in.targets[{"repo", "c1", "test"}] = 5;
  in.progress["ht-c1"] = {2, 1, 1};
  const Plan plan = make_plan(in);
  ASSERT_EQ(plan.jobs.size(), 1u);
  EXPECT_EQ(plan.jobs[0].name, "test");
  EXPECT_EQ(plan.jobs[0].runs, 2);  // 5 wanted - 2 done - 1 running
  EXPECT_EQ(plan.statuses.at({"repo", "c1", "build"}).state, ObjectState::kDone);
}

TEST(Planner, FailedBuildAfterRetriesFailsDependents) {
  PlanInput in = one_commit();
  in.progress["hb"] = {1, 1, 0};
  EXPECT_EQ(make_plan(in).jobs.size(), 1u);  // max_retries 1: one more attempt
  in.progress["hb"] = {2, 2, 0};
  const Plan plan = make_plan(in);
  EXPECT_TRUE(plan.jobs.empty());
  EXPECT_EQ(plan.statuses.at({"repo", "c1", "test"}).state, ObjectState::kDependencyFailed);
}

TEST(Planner, HoldsBlockWaitLimitAndForgive) {
  PlanInput in = one_commit();
  in.progress["hb"] = {1, 0, 0};
  in.targets[{"repo", "c1", "test"}] = 5;
  in.holds["ht-c1"] = {.waiting = true, .one_at_a_time = true, .reason = "backing off"};
  Plan plan = make_plan(in);
  EXPECT_TRUE(plan.jobs.empty());
  EXPECT_EQ(plan.statuses.at({"repo", "c1", "test"}).state, ObjectState::kRunnable);
  EXPECT_EQ(plan.statuses.at({"repo", "c1", "test"}).reason, "backing off");
  in.holds["ht-c1"].waiting = false;  // after a failure: one run at a time
  plan = make_plan(in);
  ASSERT_EQ(plan.jobs.size(), 1u);
  EXPECT_EQ(plan.jobs[0].runs, 1);
  in.holds["ht-c1"].blocked = true;
  plan = make_plan(in);
  EXPECT_TRUE(plan.jobs.empty());
  EXPECT_EQ(plan.statuses.at({"repo", "c1", "test"}).state, ObjectState::kInfraBlocked);
  // An environment's hold holds every object on it.
  in.holds.clear();
  in.commits[0].objects[1].environment_key = "env:x";
  in.holds["env:x"] = {.blocked = true, .reason = "image build failed"};
  plan = make_plan(in);
  EXPECT_EQ(plan.statuses.at({"repo", "c1", "test"}).state, ObjectState::kInfraBlocked);
  EXPECT_EQ(plan.statuses.at({"repo", "c1", "test"}).reason, "image build failed");
  // A user's retry forgives a build's failures: it runs again.
  in.holds.clear();
  in.progress["hb"] = {2, 2, 0};
  EXPECT_EQ(make_plan(in).statuses.at({"repo", "c1", "test"}).state,
            ObjectState::kDependencyFailed);
  in.holds["hb"] = {.forgiven_failures = 2};
  plan = make_plan(in);
  ASSERT_EQ(plan.jobs.size(), 1u);
  EXPECT_EQ(plan.jobs[0].name, "build");
}

TEST(Planner, UnreachableCommitsGetNothingAndSharedIdentityRunsOnce) {
  PlanInput in = one_commit();
  in.commits.push_back(commit_with_build_and_test("c2", 200));
  in.commits.back().reachable = false;
  in.enabled_sets[{"repo", "c2"}] = {"all"};
  const Plan plan = make_plan(in);
  ASSERT_EQ(plan.jobs.size(), 1u);  // the build "hb" is shared by both commits
  EXPECT_EQ(plan.jobs[0].commit, "c1");
}

TEST(Planner, KeepSaysHowManyActiveRunsEachIdentityIsStillWantedFor) {
  PlanInput in = one_commit();
  in.commits.push_back(commit_with_build_and_test("c2", 200));
  in.enabled_sets[{"repo", "c2"}] = {"all"};
  in.progress["hb"] = {1, 0, 0};
  in.progress["ht-c1"] = {1, 0, 3};
  in.targets[{"repo", "c1", "test"}] = 2;
  Plan plan = make_plan(in);
  EXPECT_EQ(plan.keep.at("ht-c1"), 1);  // target 2, one run finished: 1 of the 3 active is wanted
  EXPECT_EQ(plan.keep.at("ht-c2"), 1);
  EXPECT_EQ(plan.keep.at("hb"), 0);  // the build is done
  // Lowering the target below what ran wants none; an identity nothing needs is absent.
  in.targets[{"repo", "c1", "test"}] = 1;
  in.enabled_sets.erase({"repo", "c2"});
  plan = make_plan(in);
  EXPECT_EQ(plan.keep.at("ht-c1"), 0);
  EXPECT_EQ(plan.keep.count("ht-c2"), 0u);
}

TEST(Planner, ABuildPinnedAtAnUnreachableCommitIsNeededAndKept) {
  PlanInput in;
  PlannedCommit lib{"lib", "x", 50, false, {}, {}};
  lib.objects.push_back({"libbuild", "build", "hl", {}, 1, 1, 0, 0});
  in.commits.push_back(lib);
  PlannedCommit app{"app", "a", 100, true, {}, {}};
  app.objects.push_back({"uses", "test", "hu", {{"lib/x/libbuild", "hl"}}, 1, 1, 0, 0});
  app.test_sets["all"] = {"uses"};
  in.commits.push_back(app);
  in.enabled_sets[{"app", "a"}] = {"all"};
  Plan plan = make_plan(in);
  ASSERT_EQ(plan.jobs.size(), 1u);
  EXPECT_EQ(plan.jobs[0].commit, "x");
  EXPECT_EQ(plan.keep.at("hl"), 1);  // its run, once started, is not cancelled
  EXPECT_EQ(plan.statuses.at({"app", "a", "uses"}).state, ObjectState::kWaitingOnBuilds);
}

TEST(Planner, ExtraPurposesAreTheirBranchs) {
  EXPECT_TRUE(is_extra_purpose_of(extra_purpose("r", "a", "abc"), "r", "a"));
  EXPECT_FALSE(is_extra_purpose_of(extra_purpose("r", "a@b", "abc"), "r", "a"));
  EXPECT_FALSE(is_extra_purpose_of(extra_purpose("r", "a/b", "abc"), "r", "a"));
  EXPECT_FALSE(is_extra_purpose_of("", "r", "a"));
}

TEST(Planner, UnknownBuildIsAnUnresolvedDependency) {
  PlanInput in = one_commit();
  in.commits[0].objects[1].builds.push_back({"other/x/build", "missing"});
  in.progress["hb"] = {1, 0, 0};
  EXPECT_EQ(make_plan(in).statuses.at({"repo", "c1", "test"}).state,
            ObjectState::kUnresolvedDependency);
}

}  // namespace
}  // namespace testlooper::planner

namespace testlooper::planner {
namespace {

// A branch of `n` commits c1..cn (oldest first), each with a shared build "hb" and its own test
// identity, and nothing enabled: extra runs come from the branch's budget alone.
PlanInput branch_of(int n, int64_t budget, int parallel = 4) {
  PlanInput in;
  BranchBudget b{"repo", "main", {}, budget, 0, parallel};
  for (int i = 1; i <= n; ++i) {
    const std::string sha = "c" + std::to_string(i);
    in.commits.push_back(commit_with_build_and_test(sha, 100 + i));
    b.history.push_back(sha);
  }
  in.budgets.push_back(b);
  in.progress["hb"] = {1, 0, 0};
  return in;
}

std::vector<Job> extra_jobs(const Plan& plan) {
  std::vector<Job> out;
  for (const auto& j : plan.jobs) {
    if (!j.purpose.empty()) out.push_back(j);
  }
  return out;
}

TEST(PlannerExtraRuns, SpendsTheBudgetBetweenPassingAndFailingCommits) {
  PlanInput in = branch_of(20, 100);
  in.progress["ht-c1"] = {40, 0, 0};   // surely passing
  in.progress["ht-c20"] = {10, 5, 0};  // surely failing often
  const Plan plan = make_plan(in);
  const std::vector<Job> extra = extra_jobs(plan);
  int runs = 0;
  for (const auto& j : extra) {
    runs += j.runs;
    EXPECT_EQ(j.purpose, extra_purpose("repo", "main", "c20"));
    EXPECT_EQ(j.name, "test");
    EXPECT_LT(j.priority, 0);  // after everything users want
    const int index = std::stoi(j.commit.substr(1));
    EXPECT_GE(index, 1);
    EXPECT_LE(index, 20);
  }
  EXPECT_EQ(runs, 4);  // extra_parallel
  bool between = false;
  for (const auto& j : extra) between = between || (j.commit != "c1" && j.commit != "c20");
  EXPECT_TRUE(between) << "a statistical bisection tries the untested commits between";
}

TEST(PlannerExtraRuns, NothingWithoutFailuresBudgetOrRoom) {
  PlanInput in = branch_of(20, 100);
  in.progress["ht-c1"] = {5, 0, 0};
  in.progress["ht-c20"] = {5, 0, 0};
  EXPECT_TRUE(extra_jobs(make_plan(in)).empty()) << "a test that never failed has no change to find";
  in.progress["ht-c20"] = {5, 2, 0};
  in.budgets[0].extra_left = 0;
  EXPECT_TRUE(extra_jobs(make_plan(in)).empty()) << "the budget is spent";
  in.budgets[0].extra_left = 100;
  in.budgets[0].extra_active = 4;
  EXPECT_TRUE(extra_jobs(make_plan(in)).empty()) << "a round is still running";
  in.budgets[0].extra_active = 3;
  in.budgets[0].extra_left = 1;
  int runs = 0;
  for (const auto& j : extra_jobs(make_plan(in))) runs += j.runs;
  EXPECT_EQ(runs, 1);
}

TEST(PlannerExtraRuns, StopsWhenTheChangeIsLocalisedAndTheHeadsRateIsBounded) {
  PlanInput in = branch_of(20, 100);
  for (int i = 1; i <= 20; ++i) in.progress["ht-c" + std::to_string(i)] = {10, i >= 11 ? 10 : 0, 0};
  in.progress["ht-c20"] = {40, 40, 0};
  EXPECT_TRUE(extra_jobs(make_plan(in)).empty());
}

TEST(PlannerExtraRuns, AfterTheChangeIsLocalisedTheHeadRunsUntilItsOwnRateIsBounded) {
  PlanInput in = branch_of(20, 100);
  for (int i = 1; i <= 19; ++i) in.progress["ht-c" + std::to_string(i)] = {10, i >= 11 ? 10 : 0, 0};
  in.progress["ht-c20"] = {1, 1, 0};  // still broken? one run says little of its own rate
  const std::vector<Job> extra = extra_jobs(make_plan(in));
  int runs = 0;
  for (const auto& j : extra) {
    EXPECT_EQ(j.commit, "c20");
    runs += j.runs;
  }
  EXPECT_EQ(runs, 4) << "a round of extra_parallel runs at the head";
  in.progress["ht-c20"] = {40, 40, 0};  // surely broken still: above about 94%
  EXPECT_TRUE(extra_jobs(make_plan(in)).empty());
  in.progress["ht-c20"] = {40, 0, 0};  // a fix, localised and confirmed: below about 6%
  EXPECT_TRUE(extra_jobs(make_plan(in)).empty());
  in.head_width = 0.01;
  EXPECT_FALSE(extra_jobs(make_plan(in)).empty()) << "bounded is head_width's";
}

TEST(PlannerExtraRuns, ABlockedPickNeedsItsBuildFirst) {
  PlanInput in = branch_of(20, 100);
  in.progress.erase("hb");
  in.progress["ht-c1"] = {5, 0, 0};
  in.progress["ht-c20"] = {5, 2, 0};
  const Plan plan = make_plan(in);
  EXPECT_TRUE(extra_jobs(plan).empty());
  ASSERT_EQ(plan.jobs.size(), 1u);
  EXPECT_EQ(plan.jobs[0].name, "build");
}

TEST(PlannerHistories, IdentityRunsArePlacedOnceAndCasesFollowTheTest) {
  PlanInput in = branch_of(3, 0);
  in.commits[1].objects[1].hash = "ht-c1";  // c2's test is c1's
  in.progress["ht-c1"] = {4, 1, 0};
  in.progress["ht-c3"] = {2, 0, 0};
  auto histories = test_histories(
      {"c1", "c2", "c3"},
      [&](const std::string& sha) -> const std::vector<PlannedObject>* {
        for (const auto& c : in.commits) {
          if (c.sha == sha) return &c.objects;
        }
        return nullptr;
      },
      [&](const std::string& hash) { return in.progress[hash]; }, false);
  ASSERT_EQ(histories.size(), 1u);
  const auto& t = histories.at("test");
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0].runs, 4);
  EXPECT_EQ(t[1].runs, 0);  // the same experiment as c1: counted there
  EXPECT_EQ(t[1].identity, "ht-c1");
  EXPECT_EQ(t[2].runs, 2);
  const auto cases = case_histories(t, {{"ht-c1", {{"a", {4, 1}}, {"b", {4, 0}}}}, {"ht-c3", {{"a", {2, 0}}}}});
  ASSERT_EQ(cases.size(), 2u);
  EXPECT_EQ(cases.at("a")[0].failures, 1);
  EXPECT_EQ(cases.at("a")[2].runs, 2);
  EXPECT_TRUE(cases.at("b")[0].present);
  EXPECT_FALSE(cases.at("b")[2].present) << "c3's runs never reported case b";
}

}  // namespace
}  // namespace testlooper::planner

namespace testlooper::planner {
namespace {

TEST(PlannerExtraRuns, ATestBrokenThroughoutGetsOnlyTheScaffoldAndTheHeadIsLeftToItsTarget) {
  PlanInput in = branch_of(20, 100, 64);
  in.progress["ht-c20"] = {1, 1, 0};  // the head failed its one target run
  int scaffold = 0;
  for (const auto& j : extra_jobs(make_plan(in))) {
    EXPECT_NE(j.commit, "c20") << "the head's runs are the users'";
    scaffold += j.runs;
  }
  EXPECT_EQ(scaffold, 15 * 2);  // 2 runs at 15 spread commits besides the head
  for (int i = 1; i < 20; ++i) in.progress["ht-c" + std::to_string(i)] = {2, 2, 0};
  EXPECT_TRUE(extra_jobs(make_plan(in)).empty()) << "it never passed: nothing to localise";
}

}  // namespace
}  // namespace testlooper::planner
