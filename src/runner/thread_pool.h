// ThreadPool: threads kept from task to task instead of made and joined per task. Running a
// trivial test costs about as much as making two threads (a clone, a stack and its page faults),
// so the runner takes the threads of its runs and of their output copiers from pools.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace testlooper::runner {

// Runs each posted task at once: on an idle thread, or on a new one when none is idle (so a
// task never waits for another to end: there are as many threads as tasks ever ran at once).
// Thread-safe. The destructor waits for the tasks running and posted.
class ThreadPool {
 public:
  ThreadPool() = default;
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void post(std::function<void()> task);

 private:
  void serve();

  std::mutex mutex_;  // guards the members below
  std::condition_variable ready_;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::thread> threads_;
  int idle_ = 0;  // threads waiting for a task
  bool closing_ = false;
};

}  // namespace testlooper::runner
