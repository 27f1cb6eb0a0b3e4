// The runner: runs ONE run of a resolved build or test on this machine (FORMAT.md §8, §11, §12).
//
// A run: fresh inputs/output/scratch directories under the store's work/ dir; every dependency
// extracted into $TEST_INPUTS/<relpath> (source trees exported from git with .git_commit, build
// artifacts unpacked from the store); the stages in order (after a failed stage only always_run
// ones; a stage's cleanup after its command whatever happened), each command started by the
// environment's launcher with the run's variables; the object's `timeout` for the whole run,
// which kills the whole process tree; after each stage the individual test results are read
// (testSummary.json, then removed; JUnit XML files) and the stage's artifacts packed and
// published (builds: to the store by build hash, announced through PublishCallback so that
// consumers can start; tests: into the run record). The record runs/<run id>/ holds log.txt,
// test_result.json, artifacts/ and test_logs/, and appears atomically when the run ends. The
// commands' output reaches log.txt through a pipe, and only RunRequest::max_log_bytes of it are
// kept (the log's last line then says how much was not).
//
// Outcomes: kSuccess, kFailure (a command failed or timed out: a test result), kInfraError
// (the machinery failed: inputs could not be staged, environment unavailable, disk full; never
// counted as a test failure), kCancelled.
//
// Seams: environments come from a LauncherLookup, sources from a SourceExporter, time from a
// Clock, so the run logic is tested with fakes. Thread-safety: Runner::run may be called from
// many threads at once if the seams are thread-safe (the production ones are).
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "artifacts/artifacts.h"
#include "core/error.h"
#include "core/log_cap.h"
#include "definitions/definitions.h"
#include "environments/environments.h"

namespace testlooper::git {
class WorkingTree;
}

namespace testlooper::runner {

namespace fs = std::filesystem;

// Wall time (for records) and monotonic time (for deadlines), behind a seam.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual double now_seconds() = 0;  // since the epoch
  virtual std::chrono::steady_clock::time_point steady_now() = 0;
};

// The real clocks. Thread-safe.
Clock& system_clock();

// Writes a source tree (or its subdirectory `path`, "" = whole tree) of `repo` at `commit` into
// `dest` with `.git_commit`. Thread-safe implementations only.
class SourceExporter {
 public:
  virtual ~SourceExporter() = default;
  virtual Status export_tree(const std::string& repo, const std::string& commit,
                             const std::string& path, const fs::path& dest) = 0;
};

// Maps a repo name to its directory; nullopt when unknown.
using RepoLocator = std::function<std::optional<std::string>(const std::string& repo)>;

// A SourceExporter over git repositories found by `locate` (exports are serialised).
std::unique_ptr<SourceExporter> make_git_exporter(RepoLocator locate);

// A SourceExporter that writes working trees (git/working_tree.h; `trees` maps a repo name to
// one) when asked for a tree's id(), and passes every other export to `commits`. Working-tree
// exports are serialised; a file changed since the tree's snapshot fails the export. The trees
// must outlive the exporter.
std::unique_ptr<SourceExporter> with_working_trees(
    std::unique_ptr<SourceExporter> commits, std::map<std::string, const git::WorkingTree*> trees);

// Gives the launcher for an environment (environments::LauncherFactory::launcher_for in
// production). Errors are infrastructure errors.
using LauncherLookup =
    std::function<Result<std::shared_ptr<environments::Launcher>>(const definitions::Environment&)>;

// Called when artifact `artifact` of build `build_hash` is in the store (at the end of its
// stage), from the running thread.
using PublishCallback =
    std::function<void(const std::string& build_hash, const std::string& artifact)>;

// Stops a run from another thread: kills the command running now, starts no more.
class Cancellation {
 public:
  void cancel();
  bool cancelled() const;

  // For the runner: `process` is the command running now (nullptr when none).
  void attach(environments::Process* process);

 private:
  mutable std::mutex mutex_;
  bool cancelled_ = false;
  environments::Process* process_ = nullptr;
};

// One individual test result (a test case), FORMAT.md §12.
struct TestCaseResult {
  std::string name;
  bool success = false;
  double elapsed = 0;             // seconds; 0 when not reported
  double start_timestamp = 0;     // seconds since the epoch; 0 when not reported
  std::vector<std::string> logs;  // files in the run record: test_logs/<dir>/<file>
  // Why it failed (or was noted): JUnit's <failure>/<error> message and text, testSummary.json's
  // "message"; capped (core/case_message.h). "" when none was reported.
  std::string message;
  // Reported but not run (JUnit <skipped>): never counted as a run of the case; `message` is
  // the <skipped message>.
  bool skipped = false;
};

enum class Outcome { kSuccess, kFailure, kInfraError, kCancelled };
const char* to_string(Outcome outcome);

// Everything one run produced.
struct RunResult {
  std::string run_id;
  Outcome outcome = Outcome::kInfraError;
  std::string message;  // why it failed: "stage 2 exit 1", "timed out", the infra error
  int exit_code = 0;    // of the first failing command; -1 when it was killed or timed out
  bool timed_out = false;
  std::vector<TestCaseResult> tests;
  std::vector<std::string> artifacts;  // names published (builds) or kept (tests)
  double start_timestamp = 0;
  double end_timestamp = 0;
  int cores = 0;
  int ram_gb = 0;
  fs::path record_dir;  // runs/<run id> in the store ("" if the record could not be written)
  fs::path log_path;    // record_dir/log.txt

  double seconds() const { return end_timestamp - start_timestamp; }
};

// What to run.
struct RunRequest {
  const definitions::ResolvedObject* object = nullptr;  // REQUIRES: non-null, outlives run()
  std::string run_id;                    // unique in the store; becomes TEST_LOOPER_TEST_ID
  int cores = 1;                         // TEST_CORES_AVAILABLE
  int ram_gb = 0;                        // TEST_RAM_GB_AVAILABLE
  Cancellation* cancellation = nullptr;  // optional
  // Optional: called once the run's log file exists (it grows while the run goes on), so that
  // a caller can follow it live. Called from the running thread.
  std::function<void(const fs::path& log)> on_log_open;
  // The log keeps at most this much (FORMAT.md has none: `serve --max-log-mb`); what commands
  // write beyond it is counted, not kept, and the log's last line says so (log_cut_line).
  int64_t max_log_bytes = kDefaultMaxLogBytes;
  // For a deployment in a docker environment: the address its exposed ports (the object's
  // portExpose) are published on, in every command's container ("" = none).
  std::string publish_address;
};

// The seams and the store a Runner uses; all must outlive it.
struct RunnerContext {
  artifacts::Store* store = nullptr;
  SourceExporter* sources = nullptr;
  LauncherLookup launchers;
  Clock* clock = nullptr;
  // Ends what commands started in a work directory (Command::owner) left running when their
  // process died (environments::LauncherFactory::kill_leftovers); empty =
  // environments::kill_leftovers with the `docker` on PATH.
  std::function<void(const std::vector<std::string>& owners)> kill_leftovers;
};

class WorkDirPool;
class ThreadPool;

class Runner {
 public:
  explicit Runner(RunnerContext context);
  ~Runner();

  // Runs the request to the end (see the file comment). Never throws; every failure is in the
  // result. `on_publish` may be empty.
  RunResult run(const RunRequest& request, const PublishCallback& on_publish) const;

 private:
  RunnerContext context_;
  std::unique_ptr<WorkDirPool> work_dirs_;  // working directories, reused from run to run
  std::unique_ptr<ThreadPool> copiers_;     // copy output of commands without an exit_fd()
};

// A fresh run id: 16 random lowercase hex characters.
std::string new_run_id();

}  // namespace testlooper::runner
