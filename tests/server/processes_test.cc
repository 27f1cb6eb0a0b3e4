// Issue 11 item 7: no process outlives its run. A real `testlooper serve` and a real
// `testlooper worker` (its own --dir) run tests that leave a `setsid` grandchild ticking into a
// file: it is gone once the run ends, and after a kill -9 of the worker its restart ends what its
// previous life left before it runs anything in that directory again.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "server_fixture.h"

namespace testlooper::server {
namespace {

namespace fs = std::filesystem;
using fixtures::eventually;
using fixtures::GitFixtureRepo;
using fixtures::ServerProcess;
using fixtures::TempDir;
using fixtures::WorkerProcess;
using nlohmann::json;

// leftover.sh PIDFILE TICKS: starts a grandchild in a session of its own (so it leaves the
// command's process group) that appends to TICKS every 0.1 s, and waits until it has said its
// pid in PIDFILE.
constexpr const char* kLeftoverScript = R"(#!/bin/bash
setsid bash -c 'echo $$ > "$0.tmp" && mv "$0.tmp" "$0"; while true; do echo tick >> "$1"; sleep 0.1; done' "$1" "$2" </dev/null >/dev/null 2>&1 &
while [ ! -s "$1" ]; do sleep 0.05; done
)";

// The test of the kill -9 case: the first run leaves a grandchild ticking into its own
// $TEST_OUTPUT_DIR and hangs (until its worker is killed); every later run checks that nothing
// writes into its $TEST_OUTPUT_DIR for a second.
constexpr const char* kRestartScript = R"(#!/bin/bash
if mkdir "$1/first-run" 2>/dev/null; then
  bash "$(dirname "$0")/leftover.sh" "$1/leftover.pid" "$TEST_OUTPUT_DIR/ticks"
  sleep 600
fi
sleep 1
test ! -e "$TEST_OUTPUT_DIR/ticks"
)";

// Whether `pid` is a process that can still run (not gone, not a zombie).
bool alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(stat, text)) return false;
  const size_t paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] != 'Z';
}

pid_t read_pid(const std::string& file) {
  pid_t pid = 0;
  std::ifstream(file) >> pid;
  return pid;
}

class ProcessesTest : public testing::Test {
 protected:
  ProcessesTest() : app_(dir_.path() + "/repos/app") {
    app_.write("leftover.sh", kLeftoverScript);
    app_.write("restart.sh", kRestartScript);
  }

  ~ProcessesTest() override {
    // Whatever the outcome, no grandchild outlives the test.
    if (const pid_t pid = read_pid(shared_.path() + "/leftover.pid"); pid > 0) ::kill(pid, SIGKILL);
  }

  void start_server(const std::string& test_command) {
    app_.write("testlooper.yml",
               "looper_version: 5\n"
               "environments: {linux: {platform: linux, image: {host: true}}}\n"
               "tests:\n"
               "  leaves/linux:\n"
               "    dependencies: {src: HEAD}\n"
               "    command: '" +
                   test_command + "'\n");
    sha_ = app_.commit("first");
    server_ = std::make_unique<ServerProcess>(
        std::vector<std::string>{"--repos", dir_.path() + "/repos", "--data", dir_.path() + "/data",
                                 "--port", "0", "--workers", "0", "--poll-seconds", "0.3"});
    ASSERT_TRUE(eventually([&] { return server_->get("/api/repos").size() == 1; }, 30));
  }

  std::unique_ptr<WorkerProcess> start_worker() {
    auto worker = std::make_unique<WorkerProcess>(
        std::vector<std::string>{"--server", server_->url(""), "--dir", worker_dir_.path(),
                                 "--cores", "1", "--ram-gb", "1", "--id", "w1", "--token-file",
                                 dir_.path() + "/data/worker.token"},
        SIGKILL);
    return worker;
  }

  json runs() const {
    return server_->get("/api/repos/app/commits/" + sha_ + "/runs?name=leaves/linux");
  }

  // The runs in `state`.
  size_t runs_in(const std::string& state) const {
    size_t n = 0;
    for (const json& run : runs()) n += run.is_object() && run["state"] == state;
    return n;
  }

  TempDir dir_;         // the server's repos and data
  TempDir worker_dir_;  // the worker's --dir
  TempDir shared_;      // where the tests' scripts leave their pid files
  GitFixtureRepo app_;
  std::string sha_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(ProcessesTest, SetsidGrandchild_IsGoneWhenItsRunEnds) {
  const std::string pid_file = shared_.path() + "/leftover.pid";
  ASSERT_NO_FATAL_FAILURE(start_server("bash $TEST_INPUTS/src/leftover.sh " + pid_file + " " +
                                       shared_.path() + "/ticks"));
  auto worker = start_worker();
  ASSERT_EQ(server_->post("/api/repos/app/branches/main/test", R"({"enabled": true})").first, 200);
  ASSERT_TRUE(eventually([&] { return runs_in("succeeded") >= 1; }, 120)) << runs().dump(2);
  const pid_t grandchild = read_pid(pid_file);
  ASSERT_GT(grandchild, 0);
  // Killed with the command, before the run was reported.
  EXPECT_FALSE(alive(grandchild)) << "the setsid grandchild " << grandchild << " outlived its run";
}

TEST_F(ProcessesTest, KilledWorker_ItsRestartEndsTheLeftoversBeforeTheyWriteIntoNewRuns) {
  const std::string pid_file = shared_.path() + "/leftover.pid";
  ASSERT_NO_FATAL_FAILURE(start_server("bash $TEST_INPUTS/src/restart.sh " + shared_.path()));
  auto worker = start_worker();
  ASSERT_EQ(server_->post("/api/repos/app/branches/main/test", R"({"enabled": true})").first, 200);
  ASSERT_TRUE(eventually([&] { return read_pid(pid_file) > 0; }, 120)) << runs().dump(2);
  const pid_t grandchild = read_pid(pid_file);

  worker.reset();  // kill -9 of the worker's process group: the grandchild is in none of it
  ASSERT_TRUE(alive(grandchild));
  worker = start_worker();
  // Ended by the restarted worker at its start, not by its next run.
  EXPECT_TRUE(eventually([&] { return !alive(grandchild); }, 30))
      << "the previous worker's grandchild " << grandchild << " still runs";
  // The lost run runs again, in a directory nothing else writes into.
  ASSERT_TRUE(eventually([&] { return runs_in("succeeded") >= 1 || runs_in("failed") >= 1; }, 180))
      << runs().dump(2);
  EXPECT_EQ(runs_in("failed"), 0u) << runs().dump(2);
  EXPECT_GE(runs_in("succeeded"), 1u) << runs().dump(2);
}

}  // namespace
}  // namespace testlooper::server
