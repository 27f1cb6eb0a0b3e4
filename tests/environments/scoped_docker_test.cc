// The scoped docker with the real engine: tests run the real docker CLI (copied into a mounted
// directory) inside their container, through DOCKER_HOST, as a test of a repo would.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "artifacts/temp_dir.h"
#include "environments/docker_probe.h"
#include "environments/environments.h"

namespace testlooper::environments {
namespace {

using std::chrono::steady_clock;
using testing::read_file;
using testing::shell_output;
using testing::TempDir;

constexpr auto kForever = steady_clock::time_point::max();

// One run: its directory (mounted, the working directory), its log and its id.
struct TestRun {
  explicit TestRun(const std::string& name) {
    log_fd = ::open((dir / "log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    id = "scoped" + name + std::to_string(::getpid()) + dir.path().filename().string();
  }
  ~TestRun() { ::close(log_fd); }
  std::string log() const { return read_file(dir / "log"); }

  TempDir dir;
  int log_fd = -1;
  std::string id;
};

class ScopedDockerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string reason = testing::docker_skip_reason();
    if (!reason.empty()) GTEST_SKIP() << "docker tests skipped: " << reason;
    const std::string cli = shell_output("command -v docker | tr -d '\\n'");
    std::filesystem::copy_file(cli, tools_ / "docker");
    definitions::Environment env;
    env.name = "scoped-docker";
    env.platform = "linux";
    env.image_kind = "dockerfile";
    env.dockerfile_contents = "FROM testlooper-base:bookworm\n";
    Result<std::shared_ptr<Launcher>> launcher = factory_.launcher_for(env);
    ASSERT_TRUE(launcher.ok()) << launcher.error().to_string();
    launcher_ = *launcher;
  }

  std::unique_ptr<Process> start(const TestRun& run, const std::string& script,
                                 std::map<std::string, std::string> env = {}) {
    Command c;
    c.script = "export PATH=" + tools_.path().string() +
               ":$PATH DOCKER_CONFIG=" + (tools_ / ".docker").string() + "\n" + script;
    c.working_dir = run.dir.path().string();
    c.mounts = {run.dir.path().string(), tools_.path().string()};
    c.log_fd = run.log_fd;
    c.run_id = run.id;
    c.env = std::move(env);
    Result<std::unique_ptr<Process>> process = launcher_->start(c);
    EXPECT_TRUE(process.ok()) << process.error().to_string();
    return process.ok() ? std::move(process).value() : nullptr;
  }

  // Waits (up to two minutes, the engine is shared) for `path` to exist.
  static bool wait_for(const std::filesystem::path& path) {
    const auto deadline = steady_clock::now() + std::chrono::minutes(2);
    while (!std::filesystem::exists(path)) {
      if (steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }

  // Everything of the engine's labelled with the run: containers, networks, volumes.
  static std::string leftovers(const std::string& run_id) {
    const std::string filter = " --quiet --filter label=testlooper.run=" + run_id;
    return shell_output("docker ps --all" + filter) + shell_output("docker network ls" + filter) +
           shell_output("docker volume ls" + filter);
  }

  TempDir tools_;
  LauncherFactory factory_{{}};
  std::shared_ptr<Launcher> launcher_;
};

constexpr const char* kStartSleeper =
    "set -e\n"
    "docker network create net\n"
    "docker volume create data\n"
    "docker run --detach --name sleeper --network net --volume data:/data "
    "testlooper-base:bookworm sleep 1000 > sleeper.id\n"
    "docker ps --format '{{.Names}}' > listed.txt\n"
    "touch started\n";

TEST_F(ScopedDockerTest, ARunThatExitsLeavesNoContainerNetworkOrVolume) {
  TestRun run("exits");
  std::unique_ptr<Process> process = start(run, std::string(kStartSleeper) + "exit 3\n");
  ASSERT_TRUE(process);
  Result<Exit> exit = process->wait_until(kForever);
  ASSERT_TRUE(exit.ok()) << exit.error().to_string();
  EXPECT_EQ(exit->code, 3) << run.log();
  EXPECT_TRUE(launcher_->end_run(run.id).ok());
  EXPECT_EQ(read_file(run.dir / "listed.txt"), "tl-" + run.id + "-sleeper\n") << run.log();
  EXPECT_EQ(leftovers(run.id), "");
}

// The scope is the run's, not the command's: what one stage started, the next one sees.
TEST_F(ScopedDockerTest, TheRunsCommandsShareItsScopeUntilTheRunEnds) {
  TestRun run("stages");
  std::unique_ptr<Process> first = start(run, std::string(kStartSleeper) + "exit 0\n");
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->wait_until(kForever).ok());
  std::unique_ptr<Process> second =
      start(run,
            "docker inspect --format '{{.State.Running}}' sleeper > running.txt\n"
            "docker exec sleeper sh -c 'echo hi from $HOSTNAME' > exec.txt\n"
            "docker run --name talker --network net testlooper-base:bookworm echo said\n"
            "docker logs talker > logs.txt\n");
  ASSERT_TRUE(second);
  ASSERT_TRUE(second->wait_until(kForever).ok());
  EXPECT_EQ(read_file(run.dir / "running.txt"), "true\n") << run.log();
  EXPECT_EQ(read_file(run.dir / "exec.txt").substr(0, 8), "hi from ") << run.log();
  EXPECT_EQ(read_file(run.dir / "logs.txt"), "said\n") << run.log();
  EXPECT_TRUE(launcher_->end_run(run.id).ok());
  EXPECT_EQ(leftovers(run.id), "");
}

TEST_F(ScopedDockerTest, AKilledRunLeavesNothingEither) {
  TestRun run("killed");
  std::unique_ptr<Process> process = start(run, std::string(kStartSleeper) + "sleep 1000\n");
  ASSERT_TRUE(process);
  ASSERT_TRUE(wait_for(run.dir / "started")) << run.log();
  EXPECT_NE(leftovers(run.id), "");
  process->kill();
  Result<Exit> exit = process->wait_until(kForever);
  ASSERT_TRUE(exit.ok()) << exit.error().to_string();
  EXPECT_EQ(exit->kind, Exit::Kind::kKilled);
  EXPECT_TRUE(launcher_->end_run(run.id).ok());
  EXPECT_EQ(leftovers(run.id), "");
}

TEST_F(ScopedDockerTest, ATimedOutRunLeavesNothingEither) {
  TestRun run("timeout");
  std::unique_ptr<Process> process = start(run, std::string(kStartSleeper) + "sleep 1000\n");
  ASSERT_TRUE(process);
  ASSERT_TRUE(wait_for(run.dir / "started")) << run.log();
  Result<Exit> exit = process->wait_until(steady_clock::now());
  ASSERT_TRUE(exit.ok()) << exit.error().to_string();
  EXPECT_EQ(exit->kind, Exit::Kind::kTimedOut);
  EXPECT_TRUE(launcher_->end_run(run.id).ok());
  EXPECT_EQ(leftovers(run.id), "");
}

// A worker killed with -9 never ends its scoped dockers: the next user of its work directory
// (kill_leftovers) removes their networks and volumes as well as their containers.
TEST_F(ScopedDockerTest, LeftoversOfADeadWorkerIncludeNetworksAndVolumes) {
  const std::string owner = "scoped-owner-" + std::to_string(::getpid());
  const std::string label =
      " --label testlooper.owner=" + owner + " --label testlooper.run=" + owner;
  ASSERT_NE(shell_output("docker network create" + label + " tl-" + owner + "-net"), "");
  ASSERT_NE(shell_output("docker volume create" + label + " tl-" + owner + "-data"), "");
  ASSERT_NE(leftovers(owner), "");
  factory_.kill_leftovers({owner});
  EXPECT_EQ(leftovers(owner), "");
}

TEST_F(ScopedDockerTest, ARunCannotListOrStopAnotherRunsContainer) {
  TestRun first("first");
  std::unique_ptr<Process> owner = start(first, std::string(kStartSleeper) + "sleep 1000\n");
  ASSERT_TRUE(owner);
  ASSERT_TRUE(wait_for(first.dir / "started")) << first.log();
  const std::string id = read_file(first.dir / "sleeper.id").substr(0, 64);
  const std::string name = "tl-" + first.id + "-sleeper";
  TestRun second("second");
  std::unique_ptr<Process> intruder =
      start(second,
            "docker ps --all --quiet > listed.txt\n"
            "docker network ls --quiet --filter label=testlooper.run=$FIRST > networks.txt\n"
            "for ref in $ID $NAME sleeper; do\n"
            "  docker stop --timeout 0 $ref && echo stopped $ref >> done.txt\n"
            "  docker kill $ref && echo killed $ref >> done.txt\n"
            "  docker rm $ref && echo removed $ref >> done.txt\n"
            "  docker inspect $ref && echo inspected $ref >> done.txt\n"
            "done\n"
            "docker rm --force $ID\n"
            "exit 0\n",
            {{"ID", id}, {"NAME", name}, {"FIRST", first.id}});
  ASSERT_TRUE(intruder);
  Result<Exit> exit = intruder->wait_until(kForever);
  ASSERT_TRUE(exit.ok()) << exit.error().to_string();
  EXPECT_EQ(exit->code, 0) << second.log();
  EXPECT_EQ(read_file(second.dir / "listed.txt"), "") << second.log();
  EXPECT_EQ(read_file(second.dir / "networks.txt"), "") << second.log();
  EXPECT_EQ(read_file(second.dir / "done.txt"), "") << second.log();
  EXPECT_NE(second.log().find("No such container"), std::string::npos) << second.log();
  // ... and the first run's container lives on.
  EXPECT_EQ(shell_output("docker inspect --format '{{.State.Running}}' " + id), "true\n");
  EXPECT_TRUE(launcher_->end_run(second.id).ok());
  owner->kill();
  ASSERT_TRUE(owner->wait_until(kForever).ok());
  EXPECT_TRUE(launcher_->end_run(first.id).ok());
  EXPECT_EQ(leftovers(first.id), "");
}

TEST_F(ScopedDockerTest, HostPathsOutsideTheRunCannotBeMounted) {
  TestRun run("mounts");
  testing::write_file(run.dir / "inside.txt", "mine\n");
  std::filesystem::create_directory_symlink("/etc", run.dir / "escape");
  std::unique_ptr<Process> process = start(
      run,
      "base=testlooper-base:bookworm\n"
      "docker run --rm --volume /etc:/host $base cat /host/hostname > etc.txt; echo $? > etc.rc\n"
      "docker run --rm --volume $PWD/escape:/host $base true; echo $? > link.rc\n"
      "docker run --rm --mount type=bind,source=/,target=/host $base true; echo $? > root.rc\n"
      "docker run --rm --privileged $base true; echo $? > privileged.rc\n"
      "docker run --rm --volume $PWD:/w $base cat /w/inside.txt > inside.txt.copy\n"
      "mkdir swapped\n"
      "docker create --name swap --volume $PWD/swapped:/s $base cat /s/hostname\n"
      "rmdir swapped && ln -s /etc swapped\n"
      "docker start --attach swap > swap.txt; echo $? > swap.rc\n");
  ASSERT_TRUE(process);
  Result<Exit> exit = process->wait_until(kForever);
  ASSERT_TRUE(exit.ok()) << exit.error().to_string();
  EXPECT_EQ(exit->code, 0) << run.log();
  for (const char* rc : {"etc.rc", "link.rc", "root.rc", "privileged.rc", "swap.rc"}) {
    EXPECT_NE(read_file(run.dir / rc), "0\n") << rc << run.log();
    EXPECT_NE(read_file(run.dir / rc), "") << rc << run.log();
  }
  EXPECT_EQ(read_file(run.dir / "etc.txt"), "");
  EXPECT_EQ(read_file(run.dir / "swap.txt"), "");
  EXPECT_NE(run.log().find("no longer leads inside"), std::string::npos) << run.log();
  EXPECT_NE(run.log().find("bind mount of '/etc' refused"), std::string::npos) << run.log();
  EXPECT_NE(run.log().find("Privileged is not allowed"), std::string::npos) << run.log();
  EXPECT_EQ(read_file(run.dir / "inside.txt.copy"), "mine\n") << run.log();
  EXPECT_TRUE(launcher_->end_run(run.id).ok());
  EXPECT_EQ(leftovers(run.id), "");
}

}  // namespace
}  // namespace testlooper::environments
