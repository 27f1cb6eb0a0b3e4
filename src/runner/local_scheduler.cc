// run_schedule(): drives a Schedule, each running run on a thread of a pool; with_needed_builds().
#include "runner/local_scheduler.h"

#include <condition_variable>
#include <deque>
#include <thread>

#include "runner/thread_pool.h"

namespace testlooper::runner {
namespace {

using definitions::Dependency;
using definitions::ObjectKind;
using definitions::ResolvedObject;
using std::chrono::steady_clock;

// What worker threads tell the driving thread.
struct Event {
  bool finished = false;  // else: a publication
  std::string build_hash;
  std::string artifact;
  size_t slot = 0;
  RunResult result;
};

// One run going on: what it is and how to cancel it.
struct Worker {
  Start start;
  std::unique_ptr<Cancellation> cancellation;
};

class Driver {
 public:
  Driver(Schedule& schedule, const RunFunction& run, Clock& clock, const ScheduleEvents& events,
         ScheduleCancellation* cancellation)
      : schedule_(schedule),
        run_(run),
        clock_(clock),
        events_(events),
        cancellation_(cancellation),
        origin_(clock.steady_now()) {}

  void drive() {
    auto last_tick = clock_.steady_now();
    for (;;) {
      if (cancellation_ && cancellation_->cancelled()) schedule_.stop();
      for (const Start& start : schedule_.next(now())) launch(start);
      if (schedule_.done()) break;
      wait_for_events();
      handle_events();
      if (events_.tick && clock_.steady_now() - last_tick >= std::chrono::seconds(1)) {
        last_tick = clock_.steady_now();
        events_.tick();
      }
    }
  }

 private:
  double now() const {
    return std::chrono::duration<double>(clock_.steady_now() - origin_).count();
  }

  void launch(const Start& start) {
    const size_t slot = next_slot_++;
    Worker& worker = workers_[slot];
    worker.start = start;
    worker.cancellation = std::make_unique<Cancellation>();
    RunRequest request{schedule_.objects()[start.object],
                       new_run_id(),
                       start.cores,
                       start.ram_gb,
                       worker.cancellation.get(),
                       {}};
    if (cancellation_) cancellation_->track(worker.cancellation.get(), true);
    if (events_.started) events_.started(start, request.run_id);
    threads_.post([this, slot, request] {
      PublishCallback publish = [this](const std::string& hash, const std::string& artifact) {
        post({false, hash, artifact, 0, {}});
      };
      post({true, "", "", slot, run_(request, publish)});
    });
  }

  void post(Event event) {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(event));
    wakeup_.notify_one();
  }

  void wait_for_events() {
    std::unique_lock lock(mutex_);
    const std::optional<double> wake = schedule_.wake_time(now());
    double wait_seconds = events_.tick ? 1.0 : 3600.0;
    if (wake) wait_seconds = std::min(wait_seconds, *wake - now());
    wakeup_.wait_for(lock, std::chrono::duration<double>(std::max(0.0, wait_seconds)),
                     [this] { return !queue_.empty(); });
  }

  void handle_events() {
    std::deque<Event> events;
    {
      std::lock_guard lock(mutex_);
      events.swap(queue_);
    }
    for (Event& event : events) {
      if (!event.finished) {
        schedule_.published(event.build_hash, event.artifact);
        continue;
      }
      Worker worker = std::move(workers_.at(event.slot));
      workers_.erase(event.slot);
      if (cancellation_) cancellation_->track(worker.cancellation.get(), false);
      schedule_.finished(worker.start, event.result.outcome, now());
      if (events_.finished) events_.finished(worker.start, event.result);
    }
  }

  Schedule& schedule_;
  const RunFunction& run_;
  Clock& clock_;
  const ScheduleEvents& events_;
  ScheduleCancellation* cancellation_;
  const steady_clock::time_point origin_;
  std::map<size_t, Worker> workers_;
  size_t next_slot_ = 0;
  std::mutex mutex_;  // guards queue_
  std::condition_variable wakeup_;
  std::deque<Event> queue_;
  ThreadPool threads_;  // the runs' threads; last: joined first, before what they post to goes
};

}  // namespace

void ScheduleCancellation::cancel() {
  std::lock_guard lock(mutex_);
  cancelled_ = true;
  for (Cancellation* run : running_) run->cancel();
}

bool ScheduleCancellation::cancelled() const {
  std::lock_guard lock(mutex_);
  return cancelled_;
}

void ScheduleCancellation::track(Cancellation* run, bool running) {
  std::lock_guard lock(mutex_);
  if (!running) {
    running_.erase(run);
    return;
  }
  running_.insert(run);
  if (cancelled_) run->cancel();
}

void run_schedule(Schedule& schedule, const RunFunction& run, Clock& clock,
                  const ScheduleEvents& events, ScheduleCancellation* cancellation) {
  Driver(schedule, run, clock, events, cancellation).drive();
}

std::vector<const ResolvedObject*> with_needed_builds(const definitions::ResolvedCommit& commit,
                                                      const std::vector<std::string>& names) {
  std::map<std::string, const ResolvedObject*> builds;
  for (const auto* list : {&commit.objects, &commit.external_builds}) {
    for (const ResolvedObject& object : *list) {
      if (object.kind == ObjectKind::kBuild) builds.emplace(object.hash, &object);
    }
  }
  std::vector<const ResolvedObject*> chosen;
  std::set<const ResolvedObject*> seen;
  std::vector<const ResolvedObject*> todo;
  for (const std::string& name : names) {
    const ResolvedObject* object = commit.find(name);
    if (object && object->kind != ObjectKind::kDeployment) todo.push_back(object);
  }
  while (!todo.empty()) {
    const ResolvedObject* object = todo.back();
    todo.pop_back();
    if (!seen.insert(object).second) continue;
    chosen.push_back(object);
    for (const auto& [relpath, dependency] : object->dependencies) {
      if (dependency.kind != Dependency::Kind::kBuild) continue;
      if (auto it = builds.find(dependency.build_hash); it != builds.end()) {
        todo.push_back(it->second);
      }
    }
  }
  std::stable_sort(chosen.begin(), chosen.end(), [](const auto* a, const auto* b) {
    return (a->kind == ObjectKind::kBuild) > (b->kind == ObjectKind::kBuild) ||
           ((a->kind == ObjectKind::kBuild) == (b->kind == ObjectKind::kBuild) &&
            a->full_name < b->full_name);
  });
  return chosen;
}

}  // namespace testlooper::runner
