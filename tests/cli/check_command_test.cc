// `testlooper check` end to end: the real binary over real git repos in a temp dir.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "git/git_fixture.h"

namespace testlooper::cli {
namespace {

using fixtures::GitFixtureRepo;
using fixtures::shell_quote;
using fixtures::TempDir;
using nlohmann::json;

struct Output {
  int status = -1;
  std::string out;
};

Output run(const std::string& args) {
  Output result;
  FILE* p = popen((std::string(TL_BINARY) + " " + args + " 2>/dev/null").c_str(), "r");
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) result.out.append(buf.data(), n);
  const int status = pclose(p);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

class CheckCommand : public testing::Test {
 protected:
  std::string repo_dir() const { return dir_.path() + "/app"; }
  TempDir dir_;
};

TEST_F(CheckCommand, PrintsResolvedJsonAndExitsZero) {
  GitFixtureRepo lib(dir_.path() + "/lib");
  lib.write("testlooper.yml",
            "looper_version: 5\n"
            "environments: {linux: {platform: linux, image: {host: true}}}\n"
            "builds: {lib/linux: {stages: [{command: make, artifacts: [{name: so}]}]}}\n");
  const std::string lib_sha = lib.commit("lib");
  GitFixtureRepo app(repo_dir());
  app.write("ci/app.testlooper.yml",
            "looper_version: 5\n"
            "repos: {lib: lib/" + lib_sha + "}\n"
            "environments: {linux: {base: lib/linux, variables: {X: '1'}}}\n"
            "tests: {unit/linux: {command: 'echo ${X}', dependencies: {so: lib/lib/linux/so}}}\n");
  const std::string sha = app.commit("app");
  const Output o = run("check --json --repo " + shell_quote(repo_dir()));
  ASSERT_EQ(o.status, 0) << o.out;
  const json j = json::parse(o.out);
  EXPECT_EQ(j["commit"], sha);
  EXPECT_EQ(j["file"], "ci/app.testlooper.yml");
  EXPECT_EQ(j["error"], nullptr);
  EXPECT_EQ(j["repos"]["lib"]["commit"], lib_sha);
  EXPECT_EQ(j["environments"]["linux"]["inheritance"], json({"linux", "linux"}));
  ASSERT_EQ(j["objects"].size(), 1u);
  const json& t = j["objects"][0];
  EXPECT_EQ(t["kind"], "test");
  EXPECT_EQ(t["stages"][0]["command"], "echo 1");
  EXPECT_EQ(t["dependencies"]["so"]["kind"], "build");
  EXPECT_EQ(t["dependencies"]["so"]["name"], "lib/" + lib_sha + "/lib/linux");
  EXPECT_EQ(t["dependencies"]["so"]["artifact"], "so");
  EXPECT_EQ(j["test_sets"]["all"], json({"lib/" + lib_sha + "/lib/linux", "unit/linux"}));
  EXPECT_EQ(j["triggered_test_sets"], json({"all"}));
  for (const char* key : {"hash", "environment", "configuration", "project", "variables", "timeout",
                          "min_cores", "max_cores", "min_ram_gb", "min_disk_gb", "max_retries",
                          "retry_wait_seconds"}) {
    EXPECT_TRUE(t.contains(key)) << key;
  }
}

TEST_F(CheckCommand, DefinitionErrorExitsOneWithJsonStillPrinted) {
  GitFixtureRepo app(repo_dir());
  app.write("testlooper.yml", "looper_version: 5\ntests:\n  t/x: {command: x, bogus: 1}\n");
  app.commit("bad");
  const Output o = run("check --json --repo " + shell_quote(repo_dir()));
  EXPECT_EQ(o.status, 1);
  const json j = json::parse(o.out);
  EXPECT_EQ(j["error"].get<std::string>().rfind("testlooper.yml:3:21: unknown key 'bogus'", 0), 0u)
      << j["error"];
  const Output human = run("check --repo " + shell_quote(repo_dir()));
  EXPECT_EQ(human.status, 1);
  EXPECT_NE(human.out.find("testlooper.yml:3:21"), std::string::npos) << human.out;
}

TEST_F(CheckCommand, NoDefinitionsIsNotAnError) {
  GitFixtureRepo app(repo_dir());
  app.write("README", "x");
  app.commit("readme");
  const Output o = run("check --json --repo " + shell_quote(repo_dir()));
  EXPECT_EQ(o.status, 0);
  EXPECT_EQ(json::parse(o.out)["file"], nullptr);
}

TEST_F(CheckCommand, OlderCommitAndReposRoot) {
  GitFixtureRepo app(repo_dir());
  app.write("testlooper.yml", "looper_version: 5\n");
  const std::string first = app.commit("one");
  app.write("testlooper.yml", "looper_version: 4\n");
  app.commit("two");
  EXPECT_EQ(run("check --repo " + shell_quote(repo_dir())).status, 1);
  const Output o = run("check --json --commit HEAD~1 --repos-root /nonexistent --repo " + shell_quote(repo_dir()));
  EXPECT_EQ(o.status, 0);
  EXPECT_EQ(json::parse(o.out)["commit"], first);
}

TEST_F(CheckCommand, MissingReferencedRepoIsAPositionedError) {
  GitFixtureRepo app(repo_dir());
  app.write("testlooper.yml",
            "looper_version: 5\nrepos: {lib: lib/" + std::string(40, 'a') + "}\n"
            "environments: {e: {base: lib/linux}}\ntests: {t/e: {command: x}}\n");
  app.commit("refers to a missing repo");
  const Output o = run("check --json --repo " + shell_quote(repo_dir()));
  EXPECT_EQ(o.status, 1);
  EXPECT_EQ(json::parse(o.out)["error"].get<std::string>().rfind("testlooper.yml:3:", 0), 0u) << o.out;
}

TEST_F(CheckCommand, UnreadableRepoCommitOrUsageExitsTwo) {
  EXPECT_EQ(run("check --repo " + shell_quote(dir_.path() + "/missing")).status, 2);
  GitFixtureRepo app(repo_dir());
  app.write("a", "b");
  app.commit("a");
  EXPECT_EQ(run("check --repo " + shell_quote(repo_dir()) + " --commit no-such-rev").status, 2);
  EXPECT_EQ(run("check --no-such-flag").status, 2);
  EXPECT_EQ(run("").status, 2);
}

}  // namespace
}  // namespace testlooper::cli
