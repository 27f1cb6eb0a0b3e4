#include <gtest/gtest.h>

#include "environments/environments.h"

namespace testlooper::environments {
namespace {

definitions::Environment environment(const std::string& kind) {
  definitions::Environment env;
  env.name = "linux";
  env.platform = "linux";
  env.image_kind = kind;
  env.dockerfile_contents = "FROM testlooper-base:bookworm\n";
  return env;
}

TEST(LauncherFactory, AmiIsNotRunnableLocally) {
  LauncherFactory factory({});
  Result<std::shared_ptr<Launcher>> launcher = factory.launcher_for(environment("ami"));
  ASSERT_FALSE(launcher.ok());
  EXPECT_NE(launcher.error().message.find("not runnable locally"), std::string::npos);
}

TEST(LauncherFactory, AnAmiOfTheMachinesImageRunsOnTheHost) {
  LauncherFactory factory({.ami = "ami-1"});
  definitions::Environment env = environment("ami");
  env.base_ami = "ami-1";
  auto launcher = factory.launcher_for(env);
  ASSERT_TRUE(launcher.ok()) << launcher.error().to_string();
  EXPECT_EQ((*launcher)->describe(), "host");
  env.base_ami = "ami-2";
  EXPECT_FALSE(factory.launcher_for(env).ok());
}

TEST(LauncherFactory, WindowsIsNotRunnableOnLinux) {
  LauncherFactory factory({.on_host = true});
  definitions::Environment env = environment("host");
  env.platform = "windows";
  Result<std::shared_ptr<Launcher>> launcher = factory.launcher_for(env);
  ASSERT_FALSE(launcher.ok());
  EXPECT_NE(launcher.error().message.find("windows"), std::string::npos);
}

TEST(LauncherFactory, HostImageAndOnHostGiveTheHostLauncher) {
  LauncherFactory plain({});
  EXPECT_EQ((*plain.launcher_for(environment("host")))->describe(), "host");
  LauncherFactory on_host({.on_host = true});
  EXPECT_EQ((*on_host.launcher_for(environment("dockerfile")))->describe(), "host");
}

TEST(LauncherFactory, MissingDockerCliIsAnInfrastructureError) {
  LauncherFactory factory({.docker = "/nonexistent/docker"});
  Result<std::shared_ptr<Launcher>> launcher = factory.launcher_for(environment("dockerfile"));
  ASSERT_FALSE(launcher.ok());
  EXPECT_NE(launcher.error().message.find("--on-host"), std::string::npos);
}

TEST(DockerfileText, AppendsSetupScriptAndTagsByHash) {
  definitions::Environment env = environment("dockerfile");
  env.dockerfile_contents = "FROM x";
  env.setup_script_contents = "RUN true\n";
  EXPECT_EQ(dockerfile_text(env), "FROM x\nRUN true\n");
  EXPECT_EQ(image_tag("FROM x\nRUN true\n"), image_tag(dockerfile_text(env)));
  EXPECT_NE(image_tag("FROM x\n"), image_tag("FROM y\n"));
  EXPECT_EQ(image_tag("a").size(), std::string("testlooper-env:").size() + 12);
}

}  // namespace
}  // namespace testlooper::environments
