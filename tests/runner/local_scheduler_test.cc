#include "runner/local_scheduler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <set>
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

TEST(RunSchedule, ARunFollowsTheOneBeforeItOnTheSameThread) {
  // The next run starts on the thread of the run that ended: no hand-over to another thread
  // per run (issue 18), so one job runs everything on one thread.
  ResolvedObject t = object("t", ObjectKind::kTest);
  Schedule schedule({&t}, 20, Capacity{1, 1, 1}, {});
  std::set<std::thread::id> threads;
  RunFunction run = [&](const RunRequest& request, const PublishCallback&) {
    threads.insert(std::this_thread::get_id());
    return result_of(request, Outcome::kSuccess);
  };
  std::set<std::thread::id> reported_on;
  ScheduleEvents events;
  events.finished = [&](const Start&, const RunResult&) {
    reported_on.insert(std::this_thread::get_id());
  };
  testing::FakeClock clock;
  run_schedule(schedule, run, clock, events, nullptr);
  EXPECT_EQ(threads.size(), 1u);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u);
  EXPECT_EQ(reported_on, threads);  // its end reported there too, not on the driving thread
  EXPECT_TRUE(schedule.done());
}

TEST(RunSchedule, EventsComeOneAtATimeAndEachRunIsReportedOnce) {
  // Many short runs on 4 jobs, builds publishing early artifacts, some tests failing: the
  // events are never called at once, every run starts and finishes exactly once.
  std::vector<ResolvedObject> objects;
  for (int i = 0; i < 4; ++i)
    objects.push_back(object("b" + std::to_string(i), ObjectKind::kBuild));
  for (int i = 0; i < 8; ++i) {
    ResolvedObject t = object("t" + std::to_string(i), ObjectKind::kTest);
    const ResolvedObject& b = objects[i % 4];
    t.dependencies["b"] =
        Dependency{Dependency::Kind::kBuild, "", "", "", b.full_name, b.hash, i % 2 ? "early" : ""};
    objects.push_back(t);
  }
  std::vector<const ResolvedObject*> pointers;
  for (const ResolvedObject& o : objects) pointers.push_back(&o);
  Schedule schedule(pointers, 50, Capacity{4, 4, 4}, {});
  std::atomic<int> inside{0};
  std::atomic<bool> overlapped{false};
  auto enter = [&] {
    if (inside.fetch_add(1) != 0) overlapped = true;
    std::this_thread::yield();
    inside.fetch_sub(1);
  };
  std::mutex mutex;
  std::map<std::string, int> started, finished;
  ScheduleEvents events;
  events.started = [&](const Start&, const std::string& id) {
    enter();
    std::lock_guard lock(mutex);
    ++started[id];
  };
  events.finished = [&](const Start&, const RunResult& result) {
    enter();
    std::lock_guard lock(mutex);
    ++finished[result.run_id];
  };
  std::atomic<int> runs{0};
  RunFunction run = [&](const RunRequest& request, const PublishCallback& publish) {
    if (++runs % 7 == 0 && request.object->kind == ObjectKind::kTest)
      return result_of(request, Outcome::kFailure);
    if (request.object->kind == ObjectKind::kBuild) publish(request.object->hash, "early");
    return result_of(request, Outcome::kSuccess);
  };
  testing::FakeClock clock;
  run_schedule(schedule, run, clock, events, nullptr);
  EXPECT_FALSE(overlapped);
  EXPECT_EQ(runs, 4 + 8 * 50);
  EXPECT_EQ(started.size(), static_cast<size_t>(runs));
  EXPECT_EQ(started, finished);
  for (const auto& [id, n] : finished) EXPECT_EQ(n, 1) << id;
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
