// `testlooper run`: resolve a local commit's definitions, run the chosen builds and tests N
// times on this machine, show live progress and a failure-rate table (docs/running.md).
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include "artifacts/artifacts.h"
#include "cli/command.h"
#include "cli/no_deps.h"
#include "cli/repo_location.h"
#include "cli/workspace.h"
#include "core/glob.h"
#include "definitions/definitions.h"
#include "environments/environments.h"
#include "git/working_tree.h"
#include "git/working_tree_reader.h"
#include "runner/local_scheduler.h"
#include "runner/progress.h"
#include "runner/run_report.h"
#include "runner/runner.h"

namespace testlooper::cli {
namespace {

using definitions::ObjectKind;
using definitions::ResolvedCommit;
using definitions::ResolvedObject;

constexpr int kUsage = 2;
constexpr int kDefinitionsError = 3;
constexpr int kInterrupted = 130;
// Lines of the first failure's log that the closing summary shows per failing test.
constexpr int kSummaryTailLines = 15;

struct RunOptions {
  std::string repo = ".";
  std::string commit = "HEAD";
  bool commit_given = false;  // --commit: run that commit even when the working tree is dirty
  std::string repos_root;
  int runs = 1;
  int jobs = 0;     // 0: as many as cores
  int cores = 0;    // 0: all of this machine's
  int ram_gb = -1;  // -1: all of this machine's
  std::string store;
  std::string set;
  bool on_host = false;
  bool json = false;
  bool no_deps = false;
  std::vector<std::string> patterns;
  runner::Gate gate;  // --fail-on, --allow-flaky
};

int machine_ram_gb() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  long long kb = 0;
  while (meminfo >> key >> kb) {
    if (key == "MemTotal:") return static_cast<int>(kb / (1024 * 1024));
    meminfo.ignore(256, '\n');
  }
  return 1;
}

runner::Capacity capacity(const RunOptions& options) {
  runner::Capacity c;
  c.cores = options.cores > 0 ? options.cores
                              : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  c.ram_gb = options.ram_gb >= 0 ? options.ram_gb : machine_ram_gb();
  c.jobs = options.jobs > 0 ? options.jobs : c.cores;
  return c;
}

// The names of the objects to run: a test set, the PATTERNs, or every build and test.
Result<std::vector<std::string>> selected_names(const ResolvedCommit& commit,
                                                const RunOptions& options) {
  if (!options.set.empty()) {
    const auto it = commit.test_sets.find(options.set);
    if (it == commit.test_sets.end()) return Error{"--set", "no test set '" + options.set + "'"};
    return it->second;
  }
  std::vector<std::string> names;
  for (const ResolvedObject& object : commit.objects) {
    if (object.kind == ObjectKind::kDeployment) continue;
    bool match = options.patterns.empty();
    for (const std::string& pattern : options.patterns)
      match = match || glob_match(pattern, object.name);
    if (match) names.push_back(object.name);
  }
  if (names.empty()) return Error{"PATTERN", "no build or test matches"};
  return names;
}

// Blocks SIGINT/SIGTERM in every thread and turns them into a cancellation of the schedule,
// so that Ctrl-C kills the runs (their process groups do not get the terminal's signal).
class InterruptWatcher {
 public:
  explicit InterruptWatcher(runner::ScheduleCancellation& cancellation) {
    sigemptyset(&signals_);
    for (const int s : {SIGINT, SIGTERM, SIGUSR2}) sigaddset(&signals_, s);
    pthread_sigmask(SIG_BLOCK, &signals_, &previous_);
    thread_ = std::thread([this, &cancellation] {
      for (int received = 0; sigwait(&signals_, &received) == 0;) {
        if (received == SIGUSR2) return;
        interrupted_ = true;
        cancellation.cancel();
      }
    });
  }
  ~InterruptWatcher() {
    pthread_kill(thread_.native_handle(), SIGUSR2);
    thread_.join();
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }
  bool interrupted() const { return interrupted_; }

 private:
  sigset_t signals_;
  sigset_t previous_;
  std::atomic<bool> interrupted_{false};
  std::thread thread_;
};

// Everything one invocation needs, wired together.
class RunSession {
 public:
  // `tree`: the working tree run instead of location.commit, or nullptr.
  RunSession(const RunOptions& options, const RepoLocation& location, const git::WorkingTree* tree)
      : options_(options),
        location_(location),
        tree_(tree),
        store_(options.store.empty() ? artifacts::Store::default_root()
                                     : std::filesystem::path(options.store)),
        launchers_({.on_host = options.on_host}),
        exporter_(source_exporter(location, tree)),
        runner_({&store_, exporter_.get(),
                 [this](const definitions::Environment& e) { return launchers_.launcher_for(e); },
                 &runner::system_clock()}) {}

  // Runs `names` of `commit` with the builds they need (--no-deps: taken from the store).
  int run(const ResolvedCommit& commit, const std::vector<std::string>& names) {
    if (!options_.no_deps) return run_objects(runner::with_needed_builds(commit, names));
    Result<NoDepsRun> plan = plan_no_deps(commit, names, store_);
    if (!plan.ok()) {
      std::cerr << "testlooper run: " << plan.error().to_string() << "\n";
      return kUsage;
    }
    for (const std::string& note : plan->notes) std::cerr << note << "\n";
    std::vector<const ResolvedObject*> objects;
    for (const ResolvedObject& object : plan->objects) objects.push_back(&object);
    return run_objects(objects);
  }

 private:
  static std::unique_ptr<runner::SourceExporter> source_exporter(const RepoLocation& location,
                                                                 const git::WorkingTree* tree) {
    auto commits = runner::make_git_exporter([location](const std::string& name) {
      return std::optional<std::string>(name == location.name ? location.path
                                                              : location.repos_root + "/" + name);
    });
    if (tree == nullptr) return commits;
    return runner::with_working_trees(std::move(commits), {{location.name, tree}});
  }

  int run_objects(const std::vector<const ResolvedObject*>& objects) {
    const double started = runner::system_clock().now_seconds();
    std::set<std::string> complete;
    for (const ResolvedObject* o : objects) {
      if (o->kind == ObjectKind::kBuild && store_.is_build_complete(o->hash))
        complete.insert(o->hash);
    }
    runner::Schedule schedule(objects, options_.runs, capacity(options_), complete);
    reports_.resize(schedule.objects().size());
    for (size_t i = 0; i < reports_.size(); ++i) {
      reports_[i].object = schedule.objects()[i];
      reports_[i].reused = schedule.reused(i);
    }
    runner::ProgressDisplay progress(stderr, isatty(STDERR_FILENO), schedule.total_runs(),
                                     runner::system_clock());
    announce(schedule, progress);
    runner::ScheduleCancellation cancellation;
    InterruptWatcher watcher(cancellation);
    runner::run_schedule(
        schedule, [this](const auto& r, const auto& p) { return runner_.run(r, p); },
        runner::system_clock(), events(schedule, progress), &cancellation);
    progress.done();
    for (const runner::Blocked& blocked : schedule.blocked()) {
      reports_[blocked.object].blocked = blocked.reason;
    }
    print_report();
    std::cerr << "\n"
              << runner::report_summary(reports_, options_.gate,
                                        runner::system_clock().now_seconds() - started,
                                        [](const std::string& log) {
                                          return runner::log_tail(log, kSummaryTailLines);
                                        });
    if (watcher.interrupted()) return kInterrupted;
    return runner::exit_status(reports_, options_.gate);
  }

  // What is tested: "<repo> at <sha>", or the working tree with its changes.
  std::string subject() const {
    if (tree_ == nullptr) return location_.name + " at " + location_.commit.substr(0, 12);
    return "testing the working tree of " + location_.name + " (uncommitted changes on top of " +
           tree_->head().substr(0, 12) + ")";
  }

  void announce(const runner::Schedule& schedule, runner::ProgressDisplay& progress) {
    const runner::Capacity c = capacity(options_);
    progress.note("testlooper run: " + subject() + ", " + std::to_string(schedule.total_runs()) +
                  " runs on " + std::to_string(c.cores) + " cores, " + std::to_string(c.ram_gb) +
                  " GB, " + std::to_string(c.jobs) + " at once; store " + store_.root().string());
    if (c.jobs > c.cores) {
      // Every run takes at least one core: more jobs than cores never run at once.
      progress.note("--jobs " + std::to_string(c.jobs) + " is more than the " +
                    std::to_string(c.cores) + " cores: at most " + std::to_string(c.cores) +
                    " runs at once (each takes at least one core; --cores raises it)");
    }
    for (size_t i = 0; i < reports_.size(); ++i) {
      if (reports_[i].reused)
        progress.note("reusing " + reports_[i].object->name + " from the store");
    }
  }

  runner::ScheduleEvents events(const runner::Schedule& schedule,
                                runner::ProgressDisplay& progress) {
    runner::ScheduleEvents e;
    e.started = [&](const runner::Start& s, const std::string&) {
      progress.started(schedule.objects()[s.object]->name);
    };
    e.finished = [&](const runner::Start& s, const runner::RunResult& result) {
      reports_[s.object].runs.push_back(result);
      progress.finished(schedule.objects()[s.object]->name, s.index, result);
    };
    e.tick = [&] { progress.tick(); };
    return e;
  }

  void print_report() {
    if (options_.json) {
      std::cout << runner::report_json(location_.commit, reports_, tree_ ? tree_->id() : "")
                << "\n";
    } else {
      std::cout << "\n" << runner::report_table(reports_);
    }
    std::cout.flush();
  }

  const RunOptions& options_;
  const RepoLocation& location_;
  const git::WorkingTree* tree_;
  artifacts::Store store_;
  environments::LauncherFactory launchers_;
  std::unique_ptr<runner::SourceExporter> exporter_;
  runner::Runner runner_;
  std::vector<runner::ObjectReport> reports_;
};

// The working tree to test instead of a commit: when --commit is not given and the working
// tree has uncommitted changes (git/working_tree.h); nullopt: test the commit.
Result<std::optional<git::WorkingTree>> dirty_working_tree(const RunOptions& options,
                                                           const RepoLocation& location) {
  if (options.commit_given) return std::optional<git::WorkingTree>();
  Result<git::WorkingTree> tree = git::WorkingTree::open(location.path);
  TL_RETURN_IF_ERROR(tree);
  if (!tree->dirty()) return std::optional<git::WorkingTree>();
  return std::optional<git::WorkingTree>(std::move(tree.value()));
}

int run_command(const RunOptions& options) {
  Result<RepoLocation> location = locate_repo(options.repo, options.commit, options.repos_root);
  if (!location.ok()) {
    std::cerr << "testlooper run: " << location.error().to_string() << "\n";
    return kUsage;
  }
  Result<std::optional<git::WorkingTree>> tree = dirty_working_tree(options, *location);
  if (!tree.ok()) {
    std::cerr << "testlooper run: " << tree.error().to_string() << "\n";
    return kUsage;
  }
  git::GitSourceReader commits = make_reader(*location);
  git::WorkingTreeReader trees(commits);
  if (*tree) trees.add(location->name, **tree);
  // In a workspace, referenced repos are read as they are checked out (cli/workspace.h).
  std::vector<std::string> notes;
  auto in_workspace = workspace_reader(*location, trees, notes);
  if (!in_workspace.ok()) {
    std::cerr << "testlooper run: " << in_workspace.error().to_string() << "\n";
    return kUsage;
  }
  for (const std::string& note : notes) std::cerr << "testlooper run: " << note << "\n";
  definitions::SourceReader& reader =
      *in_workspace ? **in_workspace : static_cast<definitions::SourceReader&>(trees);
  Result<ResolvedCommit> commit =
      definitions::resolve_commit(reader, location->name, *tree ? (*tree)->id() : location->commit);
  if (!commit.ok()) {
    std::cerr << "testlooper run: " << commit.error().to_string() << "\n";
    return kUsage;
  }
  if (commit->error) {
    std::cerr << *commit->error << "\n";
    return kDefinitionsError;
  }
  if (!commit->file) {
    std::cerr << "testlooper run: no test definitions in " << location->name << " at "
              << location->commit.substr(0, 12) << "\n";
    return kUsage;
  }
  if (commit->pinned_to_head) {
    std::cerr << "testlooper run: a repo reference is pinned to HEAD; its tests are not parsed\n";
    return kDefinitionsError;
  }
  Result<std::vector<std::string>> names = selected_names(*commit, options);
  if (!names.ok()) {
    std::cerr << "testlooper run: " << names.error().to_string() << "\n";
    return kUsage;
  }
  return RunSession(options, *location, tree->has_value() ? &**tree : nullptr).run(*commit, *names);
}

}  // namespace

void add_run_command(CLI::App& app, Action& action) {
  auto options = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand(
      "run", "Run a commit's builds and tests N times here and show their failure rates");
  cmd->add_option("--repo", options->repo, "The git repo (default: .)");
  CLI::Option* commit = cmd->add_option(
      "--commit", options->commit,
      "The commit (default: the working tree when it has uncommitted changes, else HEAD)");
  cmd->add_option("--repos-root", options->repos_root,
                  "Where referenced repos are found by name (default: the repo's parent folder)");
  cmd->add_option("--runs", options->runs, "Runs of each test (default: 1)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--jobs", options->jobs, "Runs at once (default: --cores)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--cores", options->cores, "Cores to use (default: all)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--ram-gb", options->ram_gb, "RAM to use in GB (default: all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--store", options->store,
                  "Artifact store (default: $TESTLOOPER_STORE or ~/.cache/testlooper)");
  CLI::Option* set =
      cmd->add_option("--set", options->set, "Run the builds and tests of this test set");
  cmd->add_flag("--on-host", options->on_host, "Run every Linux environment on this machine");
  cmd->add_flag("--json", options->json, "Print the results as one JSON object");
  cmd->add_option_function<std::string>(
         "--fail-on",
         [options](const std::string& word) {
           options->gate.fail_on = *runner::parse_fail_on(word);
         },
         "What makes the exit status 1: broken (tests failing every time), flaky (any failed "
         "test), any (any run that did not succeed; the default)")
      ->check(CLI::IsMember({"broken", "flaky", "any"}));
  cmd->add_option("--allow-flaky", options->gate.allow_flaky,
                  "Tests (globs) whose flakiness does not fail the run (repeatable)")
      ->allow_extra_args(false);  // one glob per flag: the patterns follow
  cmd->add_flag("--no-deps", options->no_deps,
                "Run only the chosen tests, against builds already in the store");
  CLI::Option* patterns = cmd->add_option("PATTERN", options->patterns,
                                          "Globs over build and test names (default: all)");
  set->excludes(patterns);
  cmd->callback([options, commit, &action] {
    options->commit_given = commit->count() > 0;
    action = [options] { return run_command(*options); };
  });
}

}  // namespace testlooper::cli
