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

TEST(Planner, UnreachableCommitsGetNothingAndSharedIdentityRunsOnce) {
  PlanInput in = one_commit();
  in.commits.push_back(commit_with_build_and_test("c2", 200));
  in.commits.back().reachable = false;
  in.enabled_sets[{"repo", "c2"}] = {"all"};
  const Plan plan = make_plan(in);
  ASSERT_EQ(plan.jobs.size(), 1u);  // the build "hb" is shared by both commits
  EXPECT_EQ(plan.jobs[0].commit, "c1");
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
