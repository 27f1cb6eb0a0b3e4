// The host environment: `bash -c` in a new process group on this machine.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string_view>

#include "environments/child_process.h"
#include "environments/environments.h"
#include "environments/launchers.h"

namespace testlooper::environments {
namespace {

// Host variables a command inherits unless the run sets them itself.
constexpr const char* kInherited[] = {"PATH",   "HOME", "USER",   "LOGNAME", "LANG",
                                      "LC_ALL", "TZ",   "TMPDIR", "SHELL"};

// Characters that make a command more than "a program and its words", as GNU make decides
// whether a recipe line needs a shell; and the words a shell treats specially.
constexpr std::string_view kShellCharacters = "#;\"*?[]&|<>(){}$`'~!\\\n\r";
constexpr const char* kShellWords[] = {
    ".",        ":",       "alias",    "bg",       "bind",    "break", "builtin", "case",
    "cd",       "command", "continue", "declare",  "do",      "done",  "echo",    "elif",
    "else",     "enable",  "esac",     "eval",     "exec",    "exit",  "export",  "fc",
    "fg",       "fi",      "for",      "function", "getopts", "hash",  "if",      "jobs",
    "let",      "local",   "logout",   "popd",     "printf",  "pushd", "pwd",     "read",
    "readonly", "return",  "select",   "set",      "shift",   "shopt", "source",  "suspend",
    "test",     "then",    "time",     "times",    "trap",    "type",  "typeset", "ulimit",
    "umask",    "unalias", "unset",    "until",    "wait",    "while", "[",       "[[",
    "{",        "}"};

// The words of `script` when it is a plain command line (no shell syntax at all, first word not
// a shell keyword or builtin): such a line means the same whether bash or we exec it, so it is
// exec'd directly, saving a bash start-up per command, as GNU make does. nullopt otherwise.
std::optional<std::vector<std::string>> plain_words(const std::string& script) {
  if (script.find_first_of(kShellCharacters) != std::string::npos) return std::nullopt;
  std::vector<std::string> words;
  std::istringstream in(script);
  for (std::string word; in >> word;) words.push_back(word);
  if (words.empty() || words[0].find('=') != std::string::npos) return std::nullopt;
  for (const char* special : kShellWords) {
    if (words[0] == special) return std::nullopt;
  }
  return words;
}

// Where `program` is found on `path` (a PATH value), as bash would find it; nullopt if nowhere.
std::optional<std::string> find_program(const std::string& program, const std::string& path) {
  if (program.find('/') != std::string::npos) return std::nullopt;  // relative: let bash do it
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    const std::string dir = end == start ? "." : path.substr(start, end - start);
    const std::string candidate = dir + "/" + program;
    if (dir[0] == '/' && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return std::nullopt;
}

std::string value_of(const std::vector<std::string>& env, const std::string& name) {
  for (const std::string& entry : env) {
    if (entry.size() > name.size() && entry.compare(0, name.size(), name) == 0 &&
        entry[name.size()] == '=') {
      return entry.substr(name.size() + 1);
    }
  }
  return "";
}

// Remembers where programs were found on a PATH, as bash's own command hash does, so that
// running the same command many times does not search PATH each time. Thread-safe.
class ProgramCache {
 public:
  std::optional<std::string> find(const std::string& program, const std::string& path) {
    const std::string key = program + '\0' + path;
    std::lock_guard lock(mutex_);
    auto it = found_.find(key);
    if (it == found_.end()) it = found_.emplace(key, find_program(program, path)).first;
    return it->second;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::optional<std::string>> found_;
};

// argv for `script`: the program itself for a plain command line found on PATH, else bash.
std::vector<std::string> command_argv(const std::string& script,
                                      const std::vector<std::string>& env, ProgramCache& programs) {
  // BASH_ENV names a file bash would source first; only bash can honour it.
  if (std::optional<std::vector<std::string>> words = plain_words(script);
      words && value_of(env, "BASH_ENV").empty()) {
    if (std::optional<std::string> program = programs.find((*words)[0], value_of(env, "PATH"))) {
      (*words)[0] = *program;
      return *words;
    }
  }
  return {"/bin/bash", "-c", script};
}

std::vector<std::string> host_environment(const Command& command) {
  std::vector<std::string> env;
  for (const char* name : kInherited) {
    const char* value = std::getenv(name);
    if (value && !command.env.count(name)) env.push_back(std::string(name) + "=" + value);
  }
  if (!command.env.count("PATH") && !std::getenv("PATH")) {
    env.push_back("PATH=/usr/local/bin:/usr/bin:/bin");
  }
  for (const auto& [name, value] : command.env) env.push_back(name + "=" + value);
  env.push_back(run_marker(command.run_id));
  if (!command.owner.empty()) env.push_back(owner_marker(command.owner));
  return env;
}

// How long a sweep of escaped processes keeps killing new ones (a fork bomb) before giving up.
constexpr std::chrono::seconds kSweepTimeout{5};

class HostProcess : public Process {
 public:
  HostProcess(ChildProcess child, std::string marker)
      : child_(std::move(child)),
        marker_(std::move(marker)),
        pid_(child_.pid()),
        started_(std::chrono::steady_clock::now()) {}

  ~HostProcess() override {
    if (!finished_) kill_tree();
  }

  Result<Exit> wait_until(std::chrono::steady_clock::time_point deadline) override {
    const std::optional<int> status = child_.wait_exit(deadline);
    if (!status) {
      kill_tree();
      child_.wait_exit(std::chrono::steady_clock::time_point::max());
    }
    {
      // Background processes left in the group die with the command.
      std::lock_guard lock(mutex_);
      child_.kill_group(SIGKILL);
      child_.reap();
    }
    // And so do the ones that left it (setsid, daemons), however the command ended.
    kill_escaped();
    finished_ = true;
    if (killed_) return Exit{Exit::Kind::kKilled, -1};
    if (!status) return Exit{Exit::Kind::kTimedOut, -1};
    if (WIFEXITED(*status)) return Exit{Exit::Kind::kExited, WEXITSTATUS(*status)};
    return Exit{Exit::Kind::kSignaled, WTERMSIG(*status)};
  }

  void kill() override {
    killed_ = true;
    kill_tree();
  }

  int exit_fd() const override { return child_.pidfd(); }

 private:
  // The group first, then whatever escaped it (setsid) but still carries the run's marker.
  void kill_tree() {
    {
      std::lock_guard lock(mutex_);
      child_.kill_group(SIGKILL);
    }
    kill_escaped();
  }

  // Every process carrying the run's marker was started after the command: a short command's
  // sweep looks only at pids newer than its own (cheap: a trivial command costs one /proc
  // readdir instead of reading the environment of every process on the machine).
  void kill_escaped() {
    if (marker_.ends_with('=')) return;
    const bool recent = std::chrono::steady_clock::now() - started_ < kRecentPidWindow;
    kill_all_with_env(marker_, kSweepTimeout, recent ? pid_ : 0);
  }

  std::mutex mutex_;  // orders kill_group() from kill() against reap() in wait_until()
  ChildProcess child_;
  std::string marker_;
  const int pid_;  // the command's pid, kept after reap()
  const std::chrono::steady_clock::time_point started_;
  std::atomic<bool> killed_{false};
  bool finished_ = false;  // reaped; only the waiting thread touches it
};

class HostLauncher : public Launcher {
 public:
  Result<std::unique_ptr<Process>> start(const Command& command) override {
    SpawnSpec spec;
    spec.env = host_environment(command);
    spec.argv = command_argv(command.script, spec.env, programs_);
    spec.working_dir = command.working_dir;
    spec.stdout_fd = command.log_fd;
    spec.stderr_fd = command.log_fd;
    Result<ChildProcess> child = ChildProcess::spawn(spec);
    if (!child.ok()) return child.error();
    return std::unique_ptr<Process>(
        std::make_unique<HostProcess>(std::move(child).value(), run_marker(command.run_id)));
  }

  std::string describe() const override { return "host"; }

 private:
  ProgramCache programs_;
};

}  // namespace

std::string run_marker(const std::string& run_id) { return "TESTLOOPER_RUN_ID=" + run_id; }

std::string owner_marker(const std::string& owner) { return "TESTLOOPER_OWNER=" + owner; }

namespace {
std::string terminal_marker(const std::string& run_id) { return "TESTLOOPER_TERMINAL=" + run_id; }
}  // namespace

std::vector<std::string> terminal_environment(std::vector<std::string> command_environment,
                                              const std::string& run_id) {
  const std::string marker_name = run_marker("");  // "TESTLOOPER_RUN_ID="
  std::erase_if(command_environment,
                [&](const std::string& entry) { return entry.starts_with(marker_name); });
  command_environment.push_back(terminal_marker(run_id));
  return command_environment;
}

void kill_terminal_leftovers(const std::string& run_id) {
  kill_all_with_env(terminal_marker(run_id), kSweepTimeout);
}

std::shared_ptr<Launcher> make_host_launcher() { return std::make_shared<HostLauncher>(); }

}  // namespace testlooper::environments
