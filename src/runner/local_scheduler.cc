// run_schedule(): drives a Schedule, each running run on a thread of a pool; with_needed_builds().
#include "runner/local_scheduler.h"

#include <condition_variable>
#include <thread>

#include "runner/thread_pool.h"

namespace testlooper::runner {
namespace {

using definitions::Dependency;
using definitions::ObjectKind;
using definitions::ResolvedObject;
using std::chrono::steady_clock;

// One run going on: what it is and how to cancel it.
struct Worker {
  Start start;
  std::unique_ptr<Cancellation> cancellation;
};

// The schedule and the workers are shared by the driving thread and the runs' threads, under
// one mutex. A run's thread reports its own end and, when the schedule has a run to start,
// starts it itself: a run follows the one before it on the same thread without waking the
// driving thread, which only waits for the end, retries' wake times and the progress ticks
// (two thread switches less per run: `testlooper run` of trivial tests, issue 18).
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
    std::unique_lock lock(mutex_);
    auto last_tick = clock_.steady_now();
    for (;;) {
      for (const Start& start : next_starts()) post(start);
      if (schedule_.done()) break;
      const std::optional<double> wake = schedule_.wake_time(now());
      double wait_seconds = events_.tick ? 1.0 : 3600.0;
      if (wake) wait_seconds = std::min(wait_seconds, *wake - now());
      changed_ = false;
      wakeup_.wait_for(lock, std::chrono::duration<double>(std::max(0.0, wait_seconds)),
                       [this] { return changed_; });
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

  // REQUIRES: mutex_ held. The runs to start now; none once cancelled.
  std::vector<Start> next_starts() {
    if (cancellation_ && cancellation_->cancelled()) schedule_.stop();
    return schedule_.next(now());
  }

  // REQUIRES: mutex_ held. Records `start` as running and returns its slot and request.
  std::pair<size_t, RunRequest> begin(const Start& start) {
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
    return {slot, std::move(request)};
  }

  // REQUIRES: mutex_ held. Starts `start` on a thread of the pool.
  void post(const Start& start) {
    auto [slot, request] = begin(start);
    threads_.post([this, slot = slot, request = std::move(request)]() mutable {
      run_on_this_thread(slot, std::move(request));
    });
  }

  // Runs `request`, then each run the schedule starts when it ends, on the calling thread.
  void run_on_this_thread(size_t slot, RunRequest request) {
    const PublishCallback publish = [this](const std::string& hash, const std::string& artifact) {
      std::lock_guard lock(mutex_);
      schedule_.published(hash, artifact);
      for (const Start& start : next_starts()) post(start);
    };
    for (;;) {
      RunResult result = run_(request, publish);
      std::lock_guard lock(mutex_);
      Worker worker = std::move(workers_.at(slot));
      workers_.erase(slot);
      if (cancellation_) cancellation_->track(worker.cancellation.get(), false);
      schedule_.finished(worker.start, result.outcome, now());
      if (events_.finished) events_.finished(worker.start, result);
      std::vector<Start> starts = next_starts();
      if (starts.empty()) {
        // The end, or a retry to wait for: the driving thread decides (notified under the
        // lock, so that it cannot return and end this Driver before the call is over).
        changed_ = true;
        wakeup_.notify_one();
        return;
      }
      for (size_t i = 1; i < starts.size(); ++i) post(starts[i]);
      std::tie(slot, request) = begin(starts.front());
    }
  }

  Schedule& schedule_;
  const RunFunction& run_;
  Clock& clock_;
  const ScheduleEvents& events_;
  ScheduleCancellation* cancellation_;
  const steady_clock::time_point origin_;
  std::mutex mutex_;  // guards everything below but threads_, and the calls to events_
  std::map<size_t, Worker> workers_;
  size_t next_slot_ = 0;
  bool changed_ = false;  // set by a run's thread for the driving thread
  std::condition_variable wakeup_;
  ThreadPool threads_;  // the runs' threads; last: joined first, before what they use goes
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
