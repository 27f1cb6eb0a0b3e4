#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "artifacts/temp_dir.h"
#include "environments/environments.h"
#include "environments/process_probe.h"

namespace testlooper::environments {
namespace {

using std::chrono::steady_clock;
using testing::eventually_gone;
using testing::read_file;
using testing::TempDir;

constexpr auto kForever = steady_clock::time_point::max();

// A log file opened for a command, closed at scope end.
struct Log {
  explicit Log(const std::filesystem::path& path)
      : fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) {}
  ~Log() { ::close(fd); }
  int fd;
};

Command command(const TempDir& dir, const Log& log, std::string script) {
  Command c;
  c.script = std::move(script);
  c.working_dir = dir.path().string();
  c.log_fd = log.fd;
  c.run_id = "test-" + std::to_string(::getpid()) + "-" + dir.path().filename().string();
  return c;
}

TEST(HostLauncher, RunsScriptWithVariablesInWorkingDir) {
  TempDir dir;
  Log log(dir / "log");
  Command c = command(dir, log, "echo \"$GREETING from $(pwd)\"; echo oops >&2");
  c.env["GREETING"] = "hello";
  Result<std::unique_ptr<Process>> process = make_host_launcher()->start(c);
  ASSERT_TRUE(process.ok()) << process.error().to_string();
  Result<Exit> exit = (*process)->wait_until(kForever);
  ASSERT_TRUE(exit.ok());
  EXPECT_TRUE(exit->success());
  EXPECT_EQ(read_file(dir / "log"), "hello from " + dir.path().string() + "\noops\n");
}

TEST(HostLauncher, ReportsExitCodesAndSignals) {
  TempDir dir;
  Log log(dir / "log");
  auto run = [&](const std::string& script) {
    return (*make_host_launcher()->start(command(dir, log, script)))->wait_until(kForever);
  };
  Result<Exit> three = run("exit 3");
  EXPECT_EQ(three->kind, Exit::Kind::kExited);
  EXPECT_EQ(three->code, 3);
  EXPECT_EQ(three->to_string(), "exit 3");
  Result<Exit> signaled = run("kill -TERM $$");
  EXPECT_EQ(signaled->kind, Exit::Kind::kSignaled);
  EXPECT_EQ(signaled->code, SIGTERM);
}

TEST(HostLauncher, TimeoutKillsTheWholeTreeIncludingEscapedProcesses) {
  TempDir dir;
  Log log(dir / "log");
  const std::string pids = (dir / "pids").string();
  Result<std::unique_ptr<Process>> process =
      make_host_launcher()->start(command(dir, log,
                                          "sleep 1000 & echo $! >> " + pids +
                                              "\n"
                                              "( sleep 1000 & echo $! >> " +
                                              pids +
                                              "; wait ) &\n"
                                              "setsid sleep 1000 & echo $! >> " +
                                              pids +
                                              "\n"
                                              "echo $$ >> " +
                                              pids + "; wait"));
  ASSERT_TRUE(process.ok());
  const std::vector<int> started = testing::wait_for_pids(dir / "pids", 4);
  // A deadline already past: the wait times out at once and must kill everything.
  Result<Exit> exit = (*process)->wait_until(steady_clock::now());
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(exit->kind, Exit::Kind::kTimedOut);
  for (const int pid : started) EXPECT_TRUE(eventually_gone(pid)) << "pid " << pid;
}

TEST(HostLauncher, BackgroundProcessesDieWithTheCommand) {
  TempDir dir;
  Log log(dir / "log");
  Result<std::unique_ptr<Process>> process = make_host_launcher()->start(
      command(dir, log, "sleep 1000 & echo $! > " + (dir / "pid").string()));
  ASSERT_TRUE(process.ok());
  Result<Exit> exit = (*process)->wait_until(kForever);
  EXPECT_TRUE(exit->success());
  EXPECT_TRUE(eventually_gone(testing::wait_for_pids(dir / "pid", 1)[0]));
}

// Issue 11 item 7: a process that left the group (setsid) dies with a command that ended
// normally too, not only with one that timed out or was killed.
TEST(HostLauncher, EscapedProcessesDieWithACommandThatEndsNormally) {
  TempDir dir;
  Log log(dir / "log");
  const std::string pid = (dir / "pid").string();
  Result<std::unique_ptr<Process>> process = make_host_launcher()->start(command(
      dir, log, "setsid sleep 1000 & echo $! > " + pid + ".tmp && mv " + pid + ".tmp " + pid));
  ASSERT_TRUE(process.ok());
  Result<Exit> exit = (*process)->wait_until(kForever);
  EXPECT_TRUE(exit->success());
  const int escaped = testing::wait_for_pids(dir / "pid", 1)[0];
  // Sent SIGKILL before the wait returned; on a loaded machine it may take a moment to exit.
  EXPECT_TRUE(eventually_gone(escaped)) << "pid " << escaped << " outlived its command";
  ::kill(escaped, SIGKILL);
}

// Issue 11 item 7: what a dead process's commands left behind (here: a command whose Process
// never waited, as after a kill -9 of its worker) is found by its owner and killed.
TEST(HostLauncher, KillLeftoversEndsWhatCommandsOfAnOwnerLeft) {
  TempDir dir;
  Log log(dir / "log");
  Command c = command(dir, log, "setsid sleep 1000 & echo $! > pid.tmp && mv pid.tmp pid; exit 0");
  c.run_id = "";  // no run marker: only the owner finds it
  c.owner = (dir / "slot").string();
  Command other = command(dir, log, "sleep 1000 & echo $! > other.tmp && mv other.tmp other");
  other.owner = (dir / "another-slot").string();
  Result<std::unique_ptr<Process>> process = make_host_launcher()->start(c);
  Result<std::unique_ptr<Process>> unrelated = make_host_launcher()->start(other);
  ASSERT_TRUE(process.ok() && unrelated.ok());
  const int left = testing::wait_for_pids(dir / "pid", 1)[0];
  const int kept = testing::wait_for_pids(dir / "other", 1)[0];
  EXPECT_FALSE(testing::process_gone(left));
  kill_leftovers({c.owner}, "/nonexistent/docker");
  EXPECT_TRUE(eventually_gone(left)) << "pid " << left;
  EXPECT_FALSE(testing::process_gone(kept)) << "another owner's pid " << kept;
  ::kill(left, SIGKILL);
}

TEST(HostLauncher, KillFromAnotherThreadEndsTheWait) {
  TempDir dir;
  Log log(dir / "log");
  Result<std::unique_ptr<Process>> process = make_host_launcher()->start(
      command(dir, log, "echo $$ > " + (dir / "pid").string() + "; sleep 1000"));
  ASSERT_TRUE(process.ok());
  std::thread killer([&] {
    testing::wait_for_pids(dir / "pid", 1);
    (*process)->kill();
  });
  Result<Exit> exit = (*process)->wait_until(kForever);
  killer.join();
  EXPECT_EQ(exit->kind, Exit::Kind::kKilled);
}

TEST(HostLauncher, PlainCommandLinesBehaveAsInBash) {
  TempDir dir;
  Log log(dir / "log");
  auto run = [&](const std::string& script, std::map<std::string, std::string> env = {}) {
    Command c = command(dir, log, script);
    c.env = std::move(env);
    return *(*make_host_launcher()->start(c))->wait_until(kForever);
  };
  EXPECT_TRUE(run("true").success());
  EXPECT_EQ(run("false").code, 1);
  EXPECT_EQ(run("touch  made   here").code, 0);
  EXPECT_TRUE(std::filesystem::exists(dir / "made"));
  EXPECT_EQ(run("no-such-program-anywhere").code, 127);
  EXPECT_NE(read_file(dir / "log").find("command not found"), std::string::npos);
  EXPECT_EQ(run("cd /nonexistent").code, 1);  // a builtin: bash runs it
  testing::write_file(dir / "bash_env", "touch " + (dir / "sourced").string() + "\n");
  EXPECT_TRUE(run("true", {{"BASH_ENV", (dir / "bash_env").string()}}).success());
  EXPECT_TRUE(std::filesystem::exists(dir / "sourced"));
}

TEST(HostLauncher, CommandsInheritNoOtherDescriptors) {
  TempDir dir;
  Log log(dir / "log");
  const int leaky = ::open((dir / "leaky").c_str(), O_WRONLY | O_CREAT, 0644);  // no O_CLOEXEC
  Result<std::unique_ptr<Process>> process =
      make_host_launcher()->start(command(dir, log, "ls /proc/self/fd"));
  ASSERT_TRUE(process.ok());
  EXPECT_TRUE((*process)->wait_until(kForever)->success());
  ::close(leaky);
  // ls itself opens one descriptor (3) to read the directory; nothing else is there.
  EXPECT_EQ(read_file(dir / "log"), "0\n1\n2\n3\n");
}

TEST(HostLauncher, MissingWorkingDirIsAnInfrastructureError) {
  TempDir dir;
  Log log(dir / "log");
  Command c = command(dir, log, "true");
  c.working_dir = (dir / "absent").string();
  EXPECT_FALSE(make_host_launcher()->start(c).ok());
}

}  // namespace
}  // namespace testlooper::environments
