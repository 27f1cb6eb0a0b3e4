#include "runner/local_scheduler.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "runner/fakes.h"

namespace testlooper::runner {
namespace {

using definitions::Dependency;
using definitions::ObjectKind;
using definitions::ResolvedObject;

ResolvedObject object(const std::string& name, ObjectKind kind) {
  ResolvedObject o;
  o.name = name;
  o.full_name = "repo/c/" + name;
  o.kind = kind;
  o.hash = "hash-" + name;
  return o;
}

RunResult result_of(const RunRequest& request, Outcome outcome) {
  RunResult result;
  result.run_id = request.run_id;
  result.outcome = outcome;
  return result;
}

TEST(RunSchedule, RunsEveryRunAndReportsEach) {
  ResolvedObject b = object("b", ObjectKind::kBuild), t = object("t", ObjectKind::kTest);
  t.dependencies["b"] = Dependency{Dependency::Kind::kBuild, "", "", "", b.full_name, b.hash, ""};
  Schedule schedule({&b, &t}, 5, Capacity{2, 4, 2}, {});
  std::mutex mutex;
  std::vector<std::string> ran;
  RunFunction run = [&](const RunRequest& request, const PublishCallback&) {
    std::lock_guard lock(mutex);
    ran.push_back(request.object->name);
    return result_of(request, Outcome::kSuccess);
  };
  int finished = 0;
  ScheduleEvents events;
  events.finished = [&](const Start&, const RunResult&) { ++finished; };
  testing::FakeClock clock;
  run_schedule(schedule, run, clock, events, nullptr);
  EXPECT_EQ(finished, 6);
  ASSERT_EQ(ran.size(), 6u);
  EXPECT_EQ(ran[0], "b");
  EXPECT_TRUE(schedule.done());
}

TEST(RunSchedule, AConsumerOfAnEarlyArtifactRunsWhileItsProducerStillRuns) {
  ResolvedObject b = object("b", ObjectKind::kBuild), t = object("t", ObjectKind::kTest);
  t.dependencies["b"] =
      Dependency{Dependency::Kind::kBuild, "", "", "", b.full_name, b.hash, "first"};
  Schedule schedule({&b, &t}, 1, Capacity{2, 4, 2}, {});
  std::promise<void> consumer_ran;
  RunFunction run = [&](const RunRequest& request, const PublishCallback& publish) {
    if (request.object->name == "b") {
      publish(b.hash, "first");
      // The producer only ends once the consumer has run: this deadlocks unless the
      // scheduler started the consumer on the publication alone.
      consumer_ran.get_future().wait();
      return result_of(request, Outcome::kSuccess);
    }
    consumer_ran.set_value();
    return result_of(request, Outcome::kSuccess);
  };
  testing::FakeClock clock;
  run_schedule(schedule, run, clock, {}, nullptr);
  EXPECT_TRUE(schedule.done());
}

TEST(RunSchedule, RetriesAFailingBuild) {
  ResolvedObject b = object("b", ObjectKind::kBuild);
  b.max_retries = 3;
  Schedule schedule({&b}, 1, Capacity{1, 1, 1}, {});
  int attempts = 0;
  RunFunction run = [&](const RunRequest& request, const PublishCallback&) {
    return result_of(request, ++attempts < 3 ? Outcome::kFailure : Outcome::kSuccess);
  };
  testing::FakeClock clock;
  run_schedule(schedule, run, clock, {}, nullptr);
  EXPECT_EQ(attempts, 3);
}

TEST(RunSchedule, CancellationStopsRunningRunsAndStartsNoMore) {
  ResolvedObject t = object("t", ObjectKind::kTest);
  Schedule schedule({&t}, 10, Capacity{1, 1, 1}, {});
  ScheduleCancellation cancellation;
  int ran = 0;
  RunFunction run = [&](const RunRequest& request, const PublishCallback&) {
    ++ran;
    while (!request.cancellation->cancelled()) std::this_thread::yield();
    return result_of(request, Outcome::kCancelled);
  };
  ScheduleEvents events;
  events.started = [&](const Start&, const std::string&) { cancellation.cancel(); };
  testing::FakeClock clock;
  run_schedule(schedule, run, clock, events, &cancellation);
  EXPECT_EQ(ran, 1);
}

}  // namespace
}  // namespace testlooper::runner
