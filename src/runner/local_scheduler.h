// The local scheduler behind `testlooper run`: builds once (retried per max_retries and
// retry_wait_seconds), each test N times, in dependency order at the granularity of artifacts
// (a consumer of an artifact published by an early stage starts while its producer still runs),
// packed within the machine's cores, RAM and a job limit by each run's min_cores, max_cores and
// min_ram_gb. A build whose complete outputs are already in the store is reused, not run.
//
// Two layers: Schedule is the pure decision logic (no threads, no processes, no clocks: time
// is passed in), and run_schedule() drives it with one thread per running run. Schedule is not
// thread-safe; run_schedule() calls it under one lock only.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "definitions/definitions.h"
#include "runner/runner.h"

namespace testlooper::runner {

// What `testlooper run` may use. REQUIRES: every field >= 1 (ram_gb >= 0).
struct Capacity {
  int cores = 1;
  int ram_gb = 0;
  int jobs = 1;  // runs at once
};

// A run the schedule decided to start, with what it is given.
struct Start {
  size_t object = 0;  // index into the schedule's objects
  int index = 0;      // tests: repetition 0..runs-1; builds: attempt 0..max_retries
  int cores = 1;
  int ram_gb = 0;
};

// Why an object will not run: a build it needs failed or is unknown.
struct Blocked {
  size_t object = 0;
  std::string reason;
};

class Schedule {
 public:
  // `objects`: builds and tests (deployments are ignored), each test run `runs` times, each
  // build once. Builds whose hash is in `complete_builds` count as done and are not run.
  Schedule(std::vector<const definitions::ResolvedObject*> objects, int runs, Capacity capacity,
           const std::set<std::string>& complete_builds);

  // The runs to start now, at monotonic time `now` (seconds), with resources reserved for them.
  // Ready runs start in order (builds, then tests round-robin by repetition); the first ready run
  // that does not fit blocks those after it, so big runs are not starved. A run needing more
  // than the whole capacity starts alone with all of it.
  std::vector<Start> next(double now);

  // Artifact `artifact` of build `build_hash` is in the store.
  void published(const std::string& build_hash, const std::string& artifact);

  // A started run ended at `now`: frees its resources; a failed build is retried after its
  // retry_wait_seconds while attempts remain, else everything that needs it is blocked.
  void finished(const Start& start, Outcome outcome, double now);

  // The earliest time after `now` when a waiting retry becomes ready; nullopt when none waits.
  std::optional<double> wake_time(double now) const;

  // No run is running and none can start any more.
  bool done() const;

  // Stops starting runs (cancellation); running ones still report finished().
  void stop();

  const std::vector<const definitions::ResolvedObject*>& objects() const { return objects_; }
  const std::vector<Blocked>& blocked() const { return blocked_; }
  bool reused(size_t object) const;
  int total_runs() const { return total_runs_; }

 private:
  struct Pending {
    size_t object;
    int index;
    double not_before;
    bool retry = false;  // counted in delayed_
  };
  bool ready(const Pending& run) const;
  bool satisfied(const definitions::Dependency& dependency) const;
  std::optional<Start> fit(const Pending& run) const;
  void block_dependents(const std::string& build_hash, const std::string& reason);
  void block_unsatisfiable();

  std::vector<const definitions::ResolvedObject*> objects_;
  Capacity capacity_;
  // A deque: runs start from the front, so taking one costs O(1), not O(pending runs).
  std::deque<Pending> pending_;
  int delayed_ = 0;  // pending retries (they have a not_before): wake_time() looks only then
  std::map<std::string, size_t> build_by_hash_;
  std::set<std::string> complete_;                           // build hashes done
  std::set<std::pair<std::string, std::string>> published_;  // (build hash, artifact)
  std::set<std::string> failed_;                             // build hashes given up on
  std::set<std::string> reused_;                             // complete before we started
  std::vector<Blocked> blocked_;
  int free_cores_;
  int free_ram_;
  int running_ = 0;
  int total_runs_ = 0;
  bool stopped_ = false;
};

// What happened while the schedule ran, reported in order, one call at a time (from the runs'
// threads and the driving thread, never two at once).
struct ScheduleEvents {
  std::function<void(const Start&, const std::string& run_id)> started;
  std::function<void(const Start&, const RunResult&)> finished;
  std::function<void()> tick;  // about once a second while runs are going
};

// Runs `request` (Runner::run in production; fakes in tests). Called from worker threads.
using RunFunction = std::function<RunResult(const RunRequest&, const PublishCallback&)>;

// Stops run_schedule() from any thread: running runs are killed, no more start.
class ScheduleCancellation {
 public:
  void cancel();
  bool cancelled() const;

  // For run_schedule(): the cancellations of the runs going on now.
  void track(Cancellation* run, bool running);

 private:
  mutable std::mutex mutex_;
  bool cancelled_ = false;
  std::set<Cancellation*> running_;
};

// Drives `schedule` to the end: starts each decided run on its own thread with `run`, feeds
// publications and results back, waits for retries with `clock`. Returns when done().
void run_schedule(Schedule& schedule, const RunFunction& run, Clock& clock,
                  const ScheduleEvents& events, ScheduleCancellation* cancellation);

// The objects `testlooper run` runs: the objects named by `names` plus every build they need,
// transitively (found by hash among the commit's objects and external builds). Deployments
// are left out.
std::vector<const definitions::ResolvedObject*> with_needed_builds(
    const definitions::ResolvedCommit& commit, const std::vector<std::string>& names);

}  // namespace testlooper::runner
