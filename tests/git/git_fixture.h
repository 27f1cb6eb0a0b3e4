// Test fixtures for anything that reads git: a temporary directory removed on destruction, and a
// repository driven through the real `git` CLI with fixed identities, increasing fixed dates
// (time zone +0100) and no user or system configuration, so every sha is reproducible.
// Helpers throw std::runtime_error on failure (GoogleTest reports it as a test failure); git's
// stderr goes to the test's stderr. Header-only: another test directory reuses it by adding
// ${CMAKE_SOURCE_DIR}/tests to its include path and including "git/git_fixture.h".
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace testlooper::fixtures {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/testlooper-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// `text` quoted for /bin/sh.
inline std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// A git repository (with a working tree, initial branch "main") at a given directory.
class GitFixtureRepo {
 public:
  // Runs `git init` in `path` (created if missing).
  explicit GitFixtureRepo(std::string path) : path_(std::move(path)) {
    std::filesystem::create_directories(path_);
    run({"init", "-q", "-b", "main"});
  }

  const std::string& path() const { return path_; }

  // Writes `content` to the working-tree file `relative`, creating parent directories.
  void write(const std::string& relative, const std::string& content, bool executable = false) {
    const std::filesystem::path file = std::filesystem::path(path_) / relative;
    std::filesystem::create_directories(file.parent_path());
    std::filesystem::remove(file);
    std::ofstream(file, std::ios::binary) << content;
    if (executable) {
      using std::filesystem::perms;
      std::filesystem::permissions(file, perms::owner_exec | perms::group_exec | perms::others_exec,
                                   std::filesystem::perm_options::add);
    }
  }

  // Creates the working-tree symlink `relative` pointing at `target`.
  void symlink(const std::string& relative, const std::string& target) {
    const std::filesystem::path link = std::filesystem::path(path_) / relative;
    std::filesystem::create_directories(link.parent_path());
    std::filesystem::create_symlink(target, link);
  }

  // Removes a working-tree file or directory.
  void remove(const std::string& relative) {
    std::filesystem::remove_all(std::filesystem::path(path_) / relative);
  }

  // Stages everything and commits (empty commits allowed); returns the new HEAD sha.
  std::string commit(const std::string& message) {
    run({"add", "-A"});
    run({"commit", "-q", "--allow-empty", "-m", message});
    return head();
  }

  // Creates branch `name` at `start`.
  void branch(const std::string& name, const std::string& start = "HEAD") {
    run({"branch", name, start});
  }

  // Checks out branch or commit `name`.
  void checkout(const std::string& name) { run({"checkout", "-q", name}); }

  // Merges `other` into the current branch with a merge commit; returns its sha.
  std::string merge(const std::string& other, const std::string& message) {
    run({"merge", "-q", "--no-ff", "-m", message, other});
    return head();
  }

  // The sha HEAD points at.
  std::string head() {
    std::string sha = run({"rev-parse", "HEAD"});
    while (!sha.empty() && sha.back() == '\n') sha.pop_back();
    return sha;
  }

  // Runs `git <args>` in the repository with the fixed environment; returns its stdout.
  // Each call advances the fixed clock by one minute.
  std::string run(const std::vector<std::string>& args) {
    const std::string command = command_line(args);
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) throw std::runtime_error("popen failed: " + command);
    std::string output;
    char buffer[4096];
    size_t read;
    while ((read = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, read);
    check_exit(::pclose(pipe), command);
    return output;
  }

  // Runs `git <args>` with `input` on its stdin (e.g. `fast-import`); its stdout is not kept.
  void run_with_input(const std::vector<std::string>& args, const std::string& input) {
    const std::string command = command_line(args) + " >/dev/null";
    FILE* pipe = ::popen(command.c_str(), "w");
    if (pipe == nullptr) throw std::runtime_error("popen failed: " + command);
    std::fwrite(input.data(), 1, input.size(), pipe);
    check_exit(::pclose(pipe), command);
  }

 private:
  static constexpr long long kStartTime = 1700000000;  // Tue Nov 14 22:13:20 2023 UTC

  // The shell command running `git <args>` here with the fixed environment and the next date.
  std::string command_line(const std::vector<std::string>& args) {
    const std::string date = std::to_string(kStartTime + 60 * clock_++) + " +0100";
    std::string command =
        "env GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null HOME=/nonexistent "
        "GIT_AUTHOR_NAME='Ada Author' GIT_AUTHOR_EMAIL=ada@example.com "
        "GIT_COMMITTER_NAME='Cy Committer' GIT_COMMITTER_EMAIL=cy@example.com "
        "GIT_AUTHOR_DATE=" +
        shell_quote(date) + " GIT_COMMITTER_DATE=" + shell_quote(date) + " git -C " +
        shell_quote(path_);
    for (const std::string& arg : args) command += " " + shell_quote(arg);
    return command;
  }

  static void check_exit(int status, const std::string& command) {
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      throw std::runtime_error("failed: " + command);
    }
  }

  std::string path_;
  long long clock_ = 0;
};

}  // namespace testlooper::fixtures
