#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <random>

#include "artifacts/temp_dir.h"
#include "environments/docker_probe.h"
#include "environments/environments.h"

namespace testlooper::environments {
namespace {

using std::chrono::steady_clock;
using testing::read_file;
using testing::TempDir;

class DockerLauncherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string reason = testing::docker_skip_reason();
    if (!reason.empty()) GTEST_SKIP() << "docker tests skipped: " << reason;
    log_fd_ = ::open((dir_ / "log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  }
  void TearDown() override {
    if (log_fd_ >= 0) ::close(log_fd_);
  }

  // An environment whose Dockerfile is unique to this test process, so it is built here.
  definitions::Environment fresh_environment() {
    definitions::Environment env;
    env.name = "docker-test";
    env.platform = "linux";
    env.image_kind = "dockerfile";
    env.dockerfile_contents =
        "FROM testlooper-base:bookworm\nENV FRESH=" + std::to_string(std::random_device{}()) + "\n";
    return env;
  }

  Command command(const std::string& script) {
    Command c;
    c.script = script;
    c.working_dir = dir_.path().string();
    c.mounts = {dir_.path().string()};
    c.log_fd = log_fd_;
    c.run_id = "dockertest" + std::to_string(::getpid()) + dir_.path().filename().string();
    c.env["GREETING"] = "hi";
    return c;
  }

  TempDir dir_;
  int log_fd_ = -1;
};

TEST_F(DockerLauncherTest, BuildsOnceThenReusesTheImageByHash) {
  const definitions::Environment env = fresh_environment();
  LauncherFactory first({});
  Result<std::shared_ptr<Launcher>> built = first.launcher_for(env);
  ASSERT_TRUE(built.ok()) << built.error().to_string();
  EXPECT_NE((*built)->describe().find("(built)"), std::string::npos);
  LauncherFactory second({});
  Result<std::shared_ptr<Launcher>> cached = second.launcher_for(env);
  ASSERT_TRUE(cached.ok());
  EXPECT_NE((*cached)->describe().find("(cached)"), std::string::npos);
  (void)testing::shell_output("docker rmi " + image_tag(dockerfile_text(env)) + " 2>&1");
}

TEST_F(DockerLauncherTest, RunsWithMountsAndVariablesAndRemovesTheContainer) {
  LauncherFactory factory({});
  definitions::Environment env = fresh_environment();
  env.dockerfile_contents = "FROM testlooper-base:bookworm\n";
  Result<std::shared_ptr<Launcher>> launcher = factory.launcher_for(env);
  ASSERT_TRUE(launcher.ok()) << launcher.error().to_string();
  const Command c = command("echo \"$GREETING $(hostname)\" > out.txt; exit 4");
  Result<std::unique_ptr<Process>> process = (*launcher)->start(c);
  ASSERT_TRUE(process.ok());
  Result<Exit> exit = (*process)->wait_until(steady_clock::time_point::max());
  ASSERT_TRUE(exit.ok()) << exit.error().to_string() << read_file(dir_ / "log");
  EXPECT_EQ(exit->code, 4);
  EXPECT_EQ(read_file(dir_ / "out.txt"), "hi testlooperworker\n");
  EXPECT_EQ(testing::containers_of_run(c.run_id), "");
}

TEST_F(DockerLauncherTest, TimeoutRemovesTheContainer) {
  LauncherFactory factory({});
  definitions::Environment env = fresh_environment();
  env.dockerfile_contents = "FROM testlooper-base:bookworm\n";
  const Command c = command("touch started; sleep 1000");
  Result<std::unique_ptr<Process>> process = (*factory.launcher_for(env))->start(c);
  ASSERT_TRUE(process.ok());
  while (!std::filesystem::exists(dir_ / "started")) usleep(10'000);
  Result<Exit> exit = (*process)->wait_until(steady_clock::now());
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(exit->kind, Exit::Kind::kTimedOut);
  EXPECT_EQ(testing::containers_of_run(c.run_id), "");
}

TEST_F(DockerLauncherTest, BrokenDockerfileIsAnInfrastructureError) {
  LauncherFactory factory({});
  definitions::Environment env = fresh_environment();
  env.dockerfile_contents += "RUN exit 7\n";
  const std::string containers_before = testing::shell_output("docker ps --all --quiet");
  Result<std::shared_ptr<Launcher>> launcher = factory.launcher_for(env);
  ASSERT_FALSE(launcher.ok());
  EXPECT_NE(launcher.error().message.find("image build failed"), std::string::npos);
  // The failed step's container is removed too (docker build --force-rm).
  EXPECT_EQ(testing::shell_output("docker ps --all --quiet"), containers_before);
}

}  // namespace
}  // namespace testlooper::environments
