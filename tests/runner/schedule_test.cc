#include <gtest/gtest.h>

#include "runner/local_scheduler.h"

namespace testlooper::runner {
namespace {

using definitions::Dependency;
using definitions::ObjectKind;
using definitions::ResolvedObject;

ResolvedObject build(const std::string& name) {
  ResolvedObject o;
  o.name = name;
  o.full_name = "repo/c/" + name;
  o.kind = ObjectKind::kBuild;
  o.hash = "hash-" + name;
  return o;
}

ResolvedObject test(const std::string& name) {
  ResolvedObject o = build(name);
  o.kind = ObjectKind::kTest;
  return o;
}

void needs(ResolvedObject& consumer, const ResolvedObject& producer, const std::string& artifact) {
  Dependency d;
  d.kind = Dependency::Kind::kBuild;
  d.build_name = producer.full_name;
  d.build_hash = producer.hash;
  d.artifact = artifact;
  consumer.dependencies[producer.name] = d;
}

// "name#index" of each start, for compact expectations.
std::string names(const Schedule& s, const std::vector<Start>& starts) {
  std::string out;
  for (const Start& start : starts) {
    out += s.objects()[start.object]->name + "#" + std::to_string(start.index) + " ";
  }
  return out;
}

const Capacity kBig{8, 32, 8};

TEST(Schedule, RunsBuildsBeforeTheirConsumersAndTestsRepeatedly) {
  ResolvedObject b = build("b"), t = test("t");
  needs(t, b, "");
  Schedule s({&b, &t}, 3, kBig, {});
  EXPECT_EQ(s.total_runs(), 4);
  std::vector<Start> first = s.next(0);
  EXPECT_EQ(names(s, first), "b#0 ");
  EXPECT_EQ(names(s, s.next(0)), "");
  s.published("hash-b", "");
  s.finished(first[0], Outcome::kSuccess, 1);
  EXPECT_EQ(names(s, s.next(1)), "t#0 t#1 t#2 ");
  EXPECT_FALSE(s.done());
}

TEST(Schedule, ConsumerOfAnEarlyArtifactStartsBeforeTheProducerEnds) {
  ResolvedObject b = build("b"), t = test("t");
  needs(t, b, "first_stage");
  Schedule s({&b, &t}, 1, kBig, {});
  const std::vector<Start> producer = s.next(0);
  EXPECT_EQ(names(s, producer), "b#0 ");
  s.published("hash-b", "first_stage");
  EXPECT_EQ(names(s, s.next(0)), "t#0 ");
}

TEST(Schedule, PacksRunsByCoresRamAndJobs) {
  ResolvedObject big = test("big"), small = test("small");
  big.min_cores = 3;
  big.max_cores = 3;
  big.min_ram_gb = 6;
  Schedule s({&big, &small}, 2, Capacity{4, 8, 3}, {});
  const std::vector<Start> starts = s.next(0);
  // big#0 takes 3 cores and 6 GB; small#0 the last core; big#1 must wait (head of line).
  ASSERT_EQ(names(s, starts), "big#0 small#0 ");
  EXPECT_EQ(starts[0].cores, 3);
  EXPECT_EQ(starts[0].ram_gb, 6);
  EXPECT_EQ(starts[1].cores, 1);
  EXPECT_EQ(starts[1].ram_gb, 2);
  s.finished(starts[1], Outcome::kSuccess, 1);
  EXPECT_EQ(names(s, s.next(1)), "");
  s.finished(starts[0], Outcome::kSuccess, 2);
  EXPECT_EQ(names(s, s.next(2)), "big#1 small#1 ");
}

TEST(Schedule, JobsLimitCapsConcurrency) {
  ResolvedObject t = test("t");
  Schedule s({&t}, 5, Capacity{8, 8, 2}, {});
  EXPECT_EQ(names(s, s.next(0)), "t#0 t#1 ");
}

TEST(Schedule, RunNeedingMoreThanTheMachineGetsAllOfIt) {
  ResolvedObject huge = test("huge");
  huge.min_cores = 64;
  huge.max_cores = 64;
  huge.min_ram_gb = 512;
  Schedule s({&huge}, 1, Capacity{2, 4, 2}, {});
  const std::vector<Start> starts = s.next(0);
  ASSERT_EQ(starts.size(), 1u);
  EXPECT_EQ(starts[0].cores, 2);
  EXPECT_EQ(starts[0].ram_gb, 4);
}

TEST(Schedule, RetriesAFailedBuildAfterItsWait) {
  ResolvedObject b = build("b"), t = test("t");
  b.max_retries = 2;
  b.retry_wait_seconds = 10;
  needs(t, b, "");
  Schedule s({&b, &t}, 1, kBig, {});
  Start attempt = s.next(0)[0];
  s.finished(attempt, Outcome::kFailure, 5);
  EXPECT_EQ(s.wake_time(5), 15);
  EXPECT_EQ(names(s, s.next(14)), "");
  attempt = s.next(15)[0];
  EXPECT_EQ(attempt.index, 1);
  s.finished(attempt, Outcome::kFailure, 16);
  attempt = s.next(26)[0];
  EXPECT_EQ(attempt.index, 2);
  s.finished(attempt, Outcome::kSuccess, 27);
  EXPECT_EQ(names(s, s.next(27)), "t#0 ");
}

// wake_time() looks at the pending runs only while retries wait: it must keep counting them
// right as they start, are blocked, or wait together.
TEST(Schedule, WakesForEveryWaitingRetryUntilItStarts) {
  ResolvedObject a = build("a"), b = build("b"), c = build("c"), t = test("t");
  for (ResolvedObject* x : {&a, &b, &c}) x->max_retries = 1;
  a.retry_wait_seconds = 10;
  b.retry_wait_seconds = 20;
  c.retry_wait_seconds = 5;
  needs(t, c, "");
  Schedule s({&a, &b, &c, &t}, 1, kBig, {});
  std::vector<Start> first = s.next(0);
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(s.wake_time(0), std::nullopt);
  for (const Start& start : first) s.finished(start, Outcome::kFailure, 1);
  EXPECT_EQ(s.wake_time(1), 6);
  std::vector<Start> retry_c = s.next(6);
  ASSERT_EQ(retry_c.size(), 1u);
  EXPECT_EQ(s.wake_time(6), 11);
  s.finished(retry_c[0], Outcome::kFailure, 7);  // c gives up: t is blocked
  EXPECT_EQ(s.wake_time(7), 11);
  ASSERT_EQ(s.next(11).size(), 1u);
  EXPECT_EQ(s.wake_time(11), 21);
  ASSERT_EQ(s.next(21).size(), 1u);
  EXPECT_EQ(s.wake_time(21), std::nullopt);
}

TEST(Schedule, AFailedBuildBlocksEverythingThatNeedsIt) {
  ResolvedObject b = build("b"), b2 = build("b2"), t = test("t"), free = test("free");
  needs(b2, b, "");
  needs(t, b2, "");
  Schedule s({&b, &b2, &t, &free}, 2, Capacity{1, 0, 1}, {});
  const Start attempt = s.next(0)[0];
  EXPECT_EQ(s.objects()[attempt.object]->name, "b");
  s.finished(attempt, Outcome::kFailure, 1);
  ASSERT_EQ(s.blocked().size(), 2u);
  EXPECT_EQ(s.blocked()[0].reason, "build b failed");
  EXPECT_EQ(names(s, s.next(1)), "free#0 ");
}

TEST(Schedule, ReusesCompleteBuildsAndBlocksOnUnknownOnes) {
  ResolvedObject b = build("b"), t = test("t"), orphan = test("orphan"), missing = build("m");
  needs(t, b, "bin");
  needs(orphan, missing, "");
  Schedule s({&b, &t, &orphan}, 1, kBig, {"hash-b"});
  EXPECT_TRUE(s.reused(0));
  EXPECT_EQ(s.total_runs(), 2);
  ASSERT_EQ(s.blocked().size(), 1u);
  EXPECT_EQ(s.objects()[s.blocked()[0].object]->name, "orphan");
  const std::vector<Start> starts = s.next(0);
  EXPECT_EQ(names(s, starts), "t#0 ");
  s.finished(starts[0], Outcome::kSuccess, 1);
  EXPECT_TRUE(s.done());
}

TEST(Schedule, StopStartsNothingMore) {
  ResolvedObject t = test("t");
  Schedule s({&t}, 3, Capacity{1, 0, 1}, {});
  const Start first = s.next(0)[0];
  s.stop();
  EXPECT_FALSE(s.done());
  s.finished(first, Outcome::kCancelled, 1);
  EXPECT_EQ(names(s, s.next(1)), "");
  EXPECT_TRUE(s.done());
}

TEST(WithNeededBuilds, AddsBuildsTransitivelyAndSkipsDeployments) {
  definitions::ResolvedCommit commit;
  ResolvedObject b1 = build("b1"), b2 = build("b2"), t = test("t"), d = test("d"), x = build("x");
  d.kind = ObjectKind::kDeployment;
  needs(b2, b1, "");
  needs(t, b2, "");
  x.full_name = "other/c/x";
  needs(b1, x, "");
  commit.objects = {b1, b2, d, t};
  commit.external_builds = {x};
  std::vector<std::string> got;
  for (const ResolvedObject* o : with_needed_builds(commit, {"t", "d"})) got.push_back(o->name);
  EXPECT_EQ(got, (std::vector<std::string>{"x", "b1", "b2", "t"}));
}

}  // namespace
}  // namespace testlooper::runner
