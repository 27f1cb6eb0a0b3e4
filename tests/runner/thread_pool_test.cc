#include "runner/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

namespace testlooper::runner {
namespace {

// Every task starts at once, even when all the pool's threads are busy: two tasks that each
// wait for the other both end (a pool that queued behind a busy thread would never return).
TEST(ThreadPool, RunsEachTaskAtOnceEvenWhenTheOthersWait) {
  std::mutex mutex;
  std::condition_variable changed;
  int arrived = 0;
  std::atomic<int> done = 0;
  {
    ThreadPool pool;
    for (int round = 0; round < 50; ++round) {
      for (int i = 0; i < 2; ++i) {
        pool.post([&, round] {
          std::unique_lock lock(mutex);
          ++arrived;
          changed.notify_all();
          changed.wait(lock, [&] { return arrived >= 2 * (round + 1); });
          ++done;
          changed.notify_all();
        });
      }
      std::unique_lock lock(mutex);
      changed.wait(lock, [&] { return done == 2 * (round + 1); });
    }
  }
  EXPECT_EQ(done, 100);
}

// The destructor waits for every task posted, and threads are reused from task to task.
TEST(ThreadPool, DestructorWaitsForPostedTasks) {
  std::atomic<int> done = 0;
  {
    ThreadPool pool;
    for (int i = 0; i < 200; ++i) pool.post([&] { ++done; });
  }
  EXPECT_EQ(done, 200);
}

}  // namespace
}  // namespace testlooper::runner
