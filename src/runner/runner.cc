// Runner::run: one run from staging its inputs to committing its record.
#include "runner/runner.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/case_message.h"
#include "runner/inputs.h"
#include "runner/run_layout.h"
#include "runner/run_output.h"
#include "runner/test_results.h"
#include "runner/thread_pool.h"

namespace testlooper::runner {
namespace {

using definitions::ObjectKind;
using definitions::Stage;
using environments::Exit;
using std::chrono::steady_clock;

// Time a cleanup or always_run stage still gets once the run's timeout has passed.
constexpr std::chrono::seconds kGrace{60};
// Time list_tests_command gets (FORMAT.md §11), and how many names it may list.
constexpr std::chrono::seconds kListTestsTimeout{60};
constexpr size_t kMaxListedTests = 100'000;

Status write_file(const fs::path& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
  out.close();
  if (!out) return Error{path.string(), "cannot write"};
  return {};
}

// A command as the log shows it: its first line after "<label>: ", then each further line
// indented, up to kCommandLogLines lines in all, then "(+N lines)". Trailing blank lines (a YAML
// block scalar's last newline) are not shown.
constexpr size_t kCommandLogLines = 40;
std::vector<std::string> command_log_lines(const std::string& label, const std::string& script) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= script.size()) {
    const size_t end = script.find('\n', start);
    lines.push_back(
        script.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  while (lines.size() > 1 && lines.back().find_first_not_of(" \t\r") == std::string::npos)
    lines.pop_back();
  std::vector<std::string> out;
  for (size_t i = 0; i < lines.size() && i < kCommandLogLines; ++i)
    out.push_back(i == 0 ? label + ": " + lines[0] : std::string(label.size() + 2, ' ') + lines[i]);
  if (lines.size() > kCommandLogLines)
    out.push_back(std::string(label.size() + 2, ' ') + "(+" +
                  std::to_string(lines.size() - kCommandLogLines) + " lines)");
  return out;
}

// An infrastructure error when the filesystem of `dir` has less than `min_gb` GB free.
Status check_free_disk(const fs::path& dir, int min_gb) {
  if (min_gb <= 0) return {};
  std::error_code ec;
  const fs::space_info space = fs::space(dir, ec);
  if (ec) return Error{dir.string(), "cannot tell the free disk space: " + ec.message()};
  const double free_gb = static_cast<double>(space.available) / (1024.0 * 1024 * 1024);
  if (free_gb >= min_gb) return {};
  char text[96];
  std::snprintf(text, sizeof text, "%.1f GB free on disk, the run needs min_disk_gb %d", free_gb,
                min_gb);
  return Error{dir.string(), text};
}

int exit_code_of(const Exit& exit) {
  if (exit.kind == Exit::Kind::kExited) return exit.code;
  if (exit.kind == Exit::Kind::kSignaled) return 128 + exit.code;
  return -1;
}

// One run in progress. Holds the state the stages share; used once, by one thread.
class RunExecution {
 public:
  RunExecution(const RunnerContext& context, WorkDirPool& work_dirs, ThreadPool& copiers,
               const RunRequest& request, const PublishCallback& on_publish)
      : context_(context),
        work_dirs_(work_dirs),
        copiers_(copiers),
        request_(request),
        object_(*request.object),
        on_publish_(on_publish) {}

  RunResult execute() {
    result_.run_id = request_.run_id;
    result_.cores = request_.cores;
    result_.ram_gb = request_.ram_gb;
    result_.start_timestamp = context_.clock->now_seconds();
    deadline_ = context_.clock->steady_now() + std::chrono::seconds(object_.timeout);
    if (Status ready = prepare(); !ready.ok()) {
      infra(ready.error().to_string());
    } else {
      run_stages();
    }
    end_run();
    finish();
    return std::move(result_);
  }

 private:
  Status prepare() {
    Result<fs::path> record = context_.store->make_temp_dir("run-" + request_.run_id);
    if (!record.ok()) return record.error();
    record_temp_ = *record;
    log_ = std::make_unique<LogFile>(record_temp_ / "log.txt", request_.max_log_bytes);
    if (log_->fd() < 0) return Error{(record_temp_ / "log.txt").string(), "cannot create"};
    if (request_.on_log_open) request_.on_log_open(record_temp_ / "log.txt");
    if (object_.stages.empty()) {
      // A test with neither command nor stages (docs/definitions.md): no environment, no
      // process, a success.
      log_->line("run " + request_.run_id + ": " + object_.full_name +
                 " has no command and no stages: nothing to run");
      return {};
    }
    Result<RunLayout> layout = RunLayout::create(work_dirs_, context_.store->root() / "ccache");
    if (!layout.ok()) return layout.error();
    layout_ = std::make_unique<RunLayout>(std::move(layout).value());
    variables_ = run_variables(request_, *layout_);
    // Only tests have a $TEST_OUTPUT_DIR to leave individual results in (FORMAT.md §12).
    if (object_.kind == ObjectKind::kTest) {
      collector_ = std::make_unique<TestResultCollector>(layout_->output, record_temp_);
    }
    Result<std::shared_ptr<environments::Launcher>> launcher =
        context_.launchers(object_.environment);
    if (!launcher.ok()) return launcher.error();
    launcher_ = *launcher;
    log_->line("run " + request_.run_id + ": " + to_string(object_.kind) + " " + object_.full_name +
               " (" + object_.hash.substr(0, 12) + ") on " + launcher_->describe() + ", given " +
               std::to_string(request_.cores) + " core(s) and " + std::to_string(request_.ram_gb) +
               " GB RAM");
    TL_RETURN_IF_ERROR(check_free_disk(layout_->root, object_.min_disk_gb));
    return stage_inputs(object_, layout_->inputs, *context_.store, *context_.sources);
  }

  // What the run's commands shared in their environment (the scoped docker's containers,
  // networks, volumes) goes with the run, whatever its outcome. Failing to remove it is the
  // infrastructure's failure, told in the log; the run's result stands.
  void end_run() {
    if (!launcher_) return;
    if (Status ended = launcher_->end_run(request_.run_id); !ended.ok()) {
      log_->line("run " + request_.run_id + ": " + ended.error().to_string());
    }
  }

  void run_stages() {
    for (size_t i = 0; i < object_.stages.size() && !stopped(); ++i) {
      const Stage& stage = object_.stages[i];
      if (failed_ && !stage.always_run) {
        log_->line("stage " + std::to_string(i + 1) + " skipped after a failure");
        continue;
      }
      run_stage(stage, i + 1);
    }
  }

  void run_stage(const Stage& stage, size_t number) {
    const std::string label = "stage " + std::to_string(number);
    const bool was_failed = failed_;
    if (!stage.list_tests_command.empty() || !stage.run_tests_command.empty()) {
      run_test_commands(stage, label);
    } else if (!stage.command.empty()) {
      run_command(label, stage.command, {});
    }
    if (!stage.cleanup.empty() && !stopped()) run_command(label + " cleanup", stage.cleanup, {});
    if (Status collected = collector_ ? collector_->collect() : Status(); !collected.ok()) {
      fail(label + ": " + collected.error().to_string(), 1);
    }
    if (failed_ == was_failed && !failed_ && !stopped()) publish_artifacts(stage, label);
  }

  void run_test_commands(const Stage& stage, const std::string& label) {
    const fs::path& control = layout_->control;
    const fs::path list = control / "test_list.txt";
    const fs::path to_run = control / "tests_to_run.txt";
    std::vector<std::string> names;
    if (!stage.list_tests_command.empty()) {
      const auto list_deadline = context_.clock->steady_now() + kListTestsTimeout;
      if (!run_command(label + " list_tests_command", stage.list_tests_command,
                       {{"TEST_LOOPER_TEST_LIST_OUTPUT", list.string()}}, list_deadline)) {
        return;
      }
      std::ifstream in(list);
      for (std::string name; std::getline(in, name);) {
        if (!name.empty()) names.push_back(name);
      }
      if (names.size() > kMaxListedTests) {
        fail(label + ": list_tests_command listed more than 100000 tests", 1);
        return;
      }
    }
    std::ofstream out(to_run);
    for (const std::string& name : names) out << name << "\n";
    out.close();
    if (!stage.run_tests_command.empty()) {
      run_command(label + " run_tests_command", stage.run_tests_command,
                  {{"TEST_LOOPER_TESTS_TO_RUN", to_run.string()}});
    }
  }

  // Runs one command; false when it failed (and records why). `cap` bounds it further.
  bool run_command(const std::string& label, const std::string& script,
                   const std::map<std::string, std::string>& extra,
                   std::optional<steady_clock::time_point> cap = std::nullopt) {
    if (stopped()) return false;
    environments::Command command;
    command.script = substitute_runtime(script, variables_);
    command.env = variables_;
    for (const auto& [name, value] : extra) command.env[name] = value;
    command.working_dir = layout_->inputs.string();
    command.mounts = {layout_->root.string(), layout_->ccache.string()};
    command.run_id = request_.run_id;
    command.owner = layout_->root.string();
    if (!request_.publish_address.empty()) {
      for (const auto& [name, port] : object_.port_expose) {
        if (port > 0 && port < 65536) command.publish.push_back({request_.publish_address, port});
      }
    }
    for (const std::string& line : command_log_lines(label, command.script)) log_->line(line);
    const auto deadline = command_deadline(cap);
    const double started = context_.clock->now_seconds();
    Result<Exit> exit = start_and_wait(command, deadline);
    if (!exit.ok()) {
      infra(label + ": " + exit.error().to_string());
      return false;
    }
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.3f", context_.clock->now_seconds() - started);
    log_->line(label + ": " + exit->to_string() + " after " + seconds + " s");
    if (exit->success()) return true;
    if (exit->kind == Exit::Kind::kKilled) {
      cancelled_ = true;
      return false;
    }
    const bool run_timeout = exit->kind == Exit::Kind::kTimedOut && !after_timeout_ &&
                             context_.clock->steady_now() >= deadline_;
    if (run_timeout) {
      after_timeout_ = true;
      result_.timed_out = true;
    }
    fail(label + ": " +
             (run_timeout ? "timed out after " + std::to_string(object_.timeout) + " s"
                          : exit->to_string()),
         exit_code_of(*exit));
    return false;
  }

  steady_clock::time_point command_deadline(std::optional<steady_clock::time_point> cap) const {
    steady_clock::time_point deadline = deadline_;
    if (after_timeout_) deadline = context_.clock->steady_now() + kGrace;
    return cap ? std::min(deadline, *cap) : deadline;
  }

  Result<Exit> start_and_wait(environments::Command& command, steady_clock::time_point deadline) {
    OutputPipe output(*log_);
    if (output.write_fd() < 0) return Error{"log", "cannot make a pipe for the command's output"};
    command.log_fd = output.write_fd();
    Result<std::unique_ptr<environments::Process>> process = launcher_->start(command);
    if (!process.ok()) return process.error();
    Cancellation* cancellation = request_.cancellation;
    if (cancellation) cancellation->attach(process->get());
    if (const int exit_fd = (*process)->exit_fd(); exit_fd >= 0) {
      output.copy_until_exit(exit_fd, deadline);
    } else {
      output.copy_on(copiers_);
    }
    Result<Exit> exit = (*process)->wait_until(deadline);
    if (cancellation) cancellation->attach(nullptr);
    process->reset();
    output.finish();
    return exit;
  }

  void publish_artifacts(const Stage& stage, const std::string& label) {
    for (const definitions::Artifact& artifact : stage.artifacts) {
      Result<bool> kept = publish(artifact);
      if (!kept.ok()) {
        infra(label + ": artifact '" + artifact.name + "': " + kept.error().to_string());
        return;
      }
      if (!*kept) continue;
      result_.artifacts.push_back(artifact.name);
      if (object_.kind == ObjectKind::kBuild && on_publish_)
        on_publish_(object_.hash, artifact.name);
    }
  }

  // Packs one artifact: builds into the store (always, consumers expect it even when empty),
  // tests into the record (only when it holds files). Returns whether it was kept.
  Result<bool> publish(const definitions::Artifact& artifact) {
    Result<artifacts::Format> format = artifacts::parse_format(artifact.format);
    if (!format.ok()) return format.error();
    artifacts::Selection selection;
    for (const std::string& p : artifact.include_patterns) {
      selection.include_patterns.push_back(substitute_runtime(p, variables_));
    }
    for (const std::string& p : artifact.exclude_patterns) {
      selection.exclude_patterns.push_back(substitute_runtime(p, variables_));
    }
    const fs::path source = layout_->output / substitute_runtime(artifact.directory, variables_);
    if (object_.kind == ObjectKind::kBuild) {
      TL_RETURN_IF_ERROR(context_.store->put_build_artifact(object_.hash, artifact.name, source,
                                                            selection, *format));
      return true;
    }
    if (artifacts::selects_nothing(source, selection)) return false;
    const std::string stem = artifact.name.empty() ? "output" : artifact.name;
    const char* extension = *format == artifacts::Format::kTar   ? ".tar"
                            : *format == artifacts::Format::kZip ? ".zip"
                                                                 : "";
    std::error_code ec;
    fs::create_directories(record_temp_ / "artifacts", ec);
    TL_RETURN_IF_ERROR(artifacts::pack(source, selection, *format,
                                       record_temp_ / "artifacts" / (stem + extension)));
    return true;
  }

  void finish();
  void fail_on_failed_cases();

  bool stopped() {
    if (request_.cancellation && request_.cancellation->cancelled()) cancelled_ = true;
    return infra_ || cancelled_;
  }

  void fail(const std::string& why, int exit_code) {
    if (!failed_) {
      result_.message = why;
      result_.exit_code = exit_code;
    }
    failed_ = true;
    if (log_) log_->line("FAILED " + why);
  }

  void infra(const std::string& why) {
    if (!infra_) result_.message = why;
    infra_ = true;
    if (log_) log_->line("INFRASTRUCTURE ERROR " + why);
  }

  const RunnerContext& context_;
  WorkDirPool& work_dirs_;
  ThreadPool& copiers_;
  const RunRequest& request_;
  const definitions::ResolvedObject& object_;
  const PublishCallback& on_publish_;
  RunResult result_;
  fs::path record_temp_;
  std::unique_ptr<LogFile> log_;
  std::unique_ptr<RunLayout> layout_;
  std::unique_ptr<TestResultCollector> collector_;
  std::shared_ptr<environments::Launcher> launcher_;
  std::map<std::string, std::string> variables_;
  steady_clock::time_point deadline_;
  bool failed_ = false;
  bool infra_ = false;
  bool cancelled_ = false;
  bool after_timeout_ = false;
};

nlohmann::json test_result_json(const RunResult& result,
                                const definitions::ResolvedObject& object) {
  nlohmann::json tests = nlohmann::json::array();
  for (const TestCaseResult& t : result.tests) {
    tests.push_back({{"testName", t.name},
                     {"success", t.success},
                     {"logs", t.logs},
                     {"message", t.message},
                     {"skipped", t.skipped},
                     {"elapsed", t.elapsed},
                     {"startTimestamp", t.start_timestamp}});
  }
  return {{"success", result.outcome == Outcome::kSuccess},
          {"individualTests", tests},
          {"start_timestamp", result.start_timestamp},
          {"end_timestamp", result.end_timestamp},
          {"id", result.run_id},
          {"name", object.full_name},
          {"hash", object.hash},
          {"kind", to_string(object.kind)},
          {"outcome", to_string(result.outcome)},
          {"message", result.message},
          {"exit_code", result.exit_code},
          {"timed_out", result.timed_out},
          {"cores", result.cores},
          {"ram_gb", result.ram_gb},
          {"artifacts", result.artifacts}};
}

// A run whose test cases failed failed, even when every command exited 0 (a runner that reports
// failures only in its JUnit or testSummary file): the message names the first few.
void RunExecution::fail_on_failed_cases() {
  std::vector<std::string> failed;
  size_t ran = 0;
  for (const TestCaseResult& t : result_.tests) {
    if (t.skipped) continue;
    ++ran;
    if (!t.success) failed.push_back(t.name);
  }
  if (failed.empty()) return;
  std::string names;
  for (size_t i = 0; i < failed.size() && i < 3; ++i) names += (i ? ", " : "") + failed[i];
  if (failed.size() > 3) names += ", ...";
  result_.outcome = Outcome::kFailure;
  result_.message =
      std::to_string(failed.size()) + " of " + std::to_string(ran) + " test cases failed: " + names;
  if (log_) log_->line(result_.message);
}

void RunExecution::finish() {
  result_.outcome = cancelled_ ? Outcome::kCancelled
                    : infra_   ? Outcome::kInfraError
                    : failed_  ? Outcome::kFailure
                               : Outcome::kSuccess;
  if (collector_) result_.tests = std::move(collector_->results());
  cap_case_messages(result_.tests);
  if (result_.outcome == Outcome::kSuccess) fail_on_failed_cases();
  if (result_.outcome == Outcome::kSuccess && object_.kind == ObjectKind::kBuild) {
    Status complete = context_.store->mark_build_complete(
        object_.hash, build_summary_json(object_, result_.artifacts));
    if (!complete.ok()) infra("cannot mark the build complete: " + complete.error().to_string());
    if (!complete.ok()) result_.outcome = Outcome::kInfraError;
  }
  result_.end_timestamp = context_.clock->now_seconds();
  if (log_) {
    log_->line("run " + std::string(to_string(result_.outcome)) +
               (result_.message.empty() ? "" : ": " + result_.message));
    log_->say_if_cut();
  }
  layout_.reset();
  if (record_temp_.empty()) return;
  log_->close();
  // No temporary file needed: the record directory's rename below is the atomic step.
  Status written =
      write_file(record_temp_ / "test_result.json", test_result_json(result_, object_).dump(2));
  Result<fs::path> record = written.ok() ? context_.store->commit_run(record_temp_, request_.run_id)
                                         : Result<fs::path>(written.error());
  if (!record.ok()) {
    result_.outcome = Outcome::kInfraError;
    result_.message = "cannot write the run record: " + record.error().to_string();
    std::error_code ec;
    fs::remove_all(record_temp_, ec);
    return;
  }
  result_.record_dir = *record;
  result_.log_path = *record / "log.txt";
}

// Ends what commands started in work slots `slots` (their owners) left running.
void kill_leftovers_in(const RunnerContext& context, const std::vector<fs::path>& slots) {
  std::vector<std::string> owners;
  for (const fs::path& slot : slots) owners.push_back(slot.string());
  if (context.kill_leftovers) {
    context.kill_leftovers(owners);
  } else {
    environments::kill_leftovers(owners);
  }
}

}  // namespace

Runner::Runner(RunnerContext context)
    : context_(std::move(context)),
      work_dirs_(std::make_unique<WorkDirPool>(
          context_.store->work_root(),
          [this](const std::vector<fs::path>& slots) { kill_leftovers_in(context_, slots); })),
      copiers_(std::make_unique<ThreadPool>()) {}

Runner::~Runner() = default;

RunResult Runner::run(const RunRequest& request, const PublishCallback& on_publish) const {
  return RunExecution(context_, *work_dirs_, *copiers_, request, on_publish).execute();
}

}  // namespace testlooper::runner
