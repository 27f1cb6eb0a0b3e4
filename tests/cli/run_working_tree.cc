// `testlooper run` the way the original tl.py worked (issue 17): on the working tree with its
// uncommitted changes (tracked, staged, untracked; ignored files have no effect), with dirty
// identities that never share the commit's stored builds, and `--no-deps` against the builds in
// the store. Real git repos in a temp dir, the real binary. Labelled "compat" and "cli".
#include <gtest/gtest.h>

#include "cli/run_fixture.h"

namespace testlooper::cli {
namespace {

using nlohmann::json;
using testing::object_named;
using testing::read_text;

constexpr char kHostEnvironment[] =
    "looper_version: 5\n"
    "environments: {linux: {platform: linux, image: {host: true}}}\n";

class RunWorkingTree : public testing::RunFixture {
 protected:
  // The log of the first run of `name` in `report`.
  static std::string log_of(const json& report, const std::string& name) {
    return read_text(object_named(report, name)["runs_detail"][0]["log"]);
  }
};

TEST_F(RunWorkingTree, ADirtyTrackedFileIsTestedAndTheHeaderSaysSo) {
  const std::string sha = commit(std::string(kHostEnvironment) +
                                     "tests: {t/linux: {command: 'grep -x two src/x.txt', "
                                     "dependencies: {src: HEAD}}}\n",
                                 {{"x.txt", "one\n"}});
  EXPECT_EQ(run("--json").status, 1) << "the clean commit has 'one'";
  app_.write("x.txt", "two\n");
  const testing::RunOutput o = run("--json");
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_NE(o.err.find("testing the working tree of app (uncommitted changes on top of " +
                       sha.substr(0, 12) + ")"),
            std::string::npos)
      << o.err;
  const json report = json::parse(o.out);
  EXPECT_EQ(report["commit"], sha);
  EXPECT_EQ(report["dirty"], true);
  EXPECT_EQ(report["working_tree"].get<std::string>().rfind(sha + "+dirty:", 0), 0u) << report;
  // --commit runs the commit as before, dirty tree or not.
  const json committed = run_json("--commit HEAD", 1);
  EXPECT_EQ(committed["dirty"], false);
  EXPECT_TRUE(committed["working_tree"].is_null());
}

TEST_F(RunWorkingTree, AStagedChangeIsTested) {
  commit(std::string(kHostEnvironment) +
             "tests: {t/linux: {command: 'grep -x two src/x.txt', dependencies: {src: HEAD}}}\n",
         {{"x.txt", "one\n"}});
  app_.write("x.txt", "two\n");
  app_.run({"add", "x.txt"});
  EXPECT_EQ(run_json("", 0)["dirty"], true);
}

TEST_F(RunWorkingTree, UntrackedFilesAndUncommittedDefinitionsAreSeen) {
  commit(std::string(kHostEnvironment) + "tests: {t/linux: {command: 'true'}}\n");
  app_.write("testlooper.yml", std::string(kHostEnvironment) +
                                   "tests:\n"
                                   "  t/linux: {command: 'true'}\n"
                                   "  new/linux: {command: 'test -f src/dir/new.txt && test -x "
                                   "src/tool.sh', dependencies: {src: HEAD}}\n");
  app_.write("dir/new.txt", "new\n");
  app_.write("tool.sh", "#!/bin/sh\n", /*executable=*/true);
  const json report = run_json("new/linux", 0);
  EXPECT_EQ(report["dirty"], true);
  EXPECT_EQ(object_named(report, "new/linux")["runs"], 1);
}

TEST_F(RunWorkingTree, IgnoredFilesHaveNoEffect) {
  const std::string sha = commit(std::string(kHostEnvironment) +
                                     "tests: {t/linux: {command: 'test ! -e src/out.log && test ! "
                                     "-e src/tmp', dependencies: {src: HEAD}}}\n",
                                 {{".gitignore", "*.log\ntmp/\n"}});
  const json clean = run_json("", 0);
  app_.write("out.log", "noise\n");
  app_.write("tmp/scratch.txt", "noise\n");
  const testing::RunOutput o = run("--json");
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_NE(o.err.find("testlooper run: app at " + sha.substr(0, 12)), std::string::npos) << o.err;
  const json report = json::parse(o.out);
  EXPECT_EQ(report["dirty"], false);
  EXPECT_EQ(object_named(report, "t/linux")["hash"], object_named(clean, "t/linux")["hash"]);
}

TEST_F(RunWorkingTree, ADirtyBuildIsNeverReusedForTheCleanCommitNorTheOtherWayRound) {
  const std::string counter = path("builds-run");
  commit(std::string(kHostEnvironment) + "builds: {b/linux: {command: 'echo x >> " + counter +
             " && cp src/x.txt $TEST_BUILD_OUTPUT_DIR/x.txt', dependencies: {src: HEAD}}}\n"
             "tests: {t/linux: {command: 'cat b/x.txt', dependencies: {b: b/linux}}}\n",
         {{"x.txt", "clean\n"}});
  app_.write("x.txt", "dirty\n");
  const json dirty = run_json("", 0);
  EXPECT_EQ(object_named(dirty, "b/linux")["runs"], 1);
  EXPECT_NE(log_of(dirty, "t/linux").find("dirty"), std::string::npos);
  const json clean = run_json("--commit HEAD", 0);
  EXPECT_EQ(object_named(clean, "b/linux")["runs"], 1) << "the dirty build was reused";
  EXPECT_NE(log_of(clean, "t/linux").find("clean"), std::string::npos);
  EXPECT_NE(object_named(clean, "b/linux")["hash"], object_named(dirty, "b/linux")["hash"]);
  EXPECT_NE(object_named(clean, "t/linux")["hash"], object_named(dirty, "t/linux")["hash"]);
  // The same dirty state again reuses the dirty build; back to clean reuses the clean one.
  const json again = run_json("", 0);
  EXPECT_EQ(object_named(again, "b/linux")["reused"], true);
  EXPECT_EQ(object_named(again, "b/linux")["hash"], object_named(dirty, "b/linux")["hash"]);
  app_.write("x.txt", "clean\n");
  const json reverted = run_json("", 0);
  EXPECT_EQ(reverted["dirty"], false);
  EXPECT_EQ(object_named(reverted, "b/linux")["reused"], true);
  EXPECT_NE(log_of(reverted, "t/linux").find("clean"), std::string::npos);
  EXPECT_EQ(read_text(counter), "x\nx\n");
}

TEST_F(RunWorkingTree, AFileEditedDuringTheRunIsAnInfrastructureErrorNotAMixOfStates) {
  // The build edits the working tree after it was read; the test, exported after the build,
  // must not see the edit as if it were the state resolved at the start.
  commit(
      std::string(kHostEnvironment) + "builds: {b/linux: {command: 'echo edited > " + app_.path() +
          "/x.txt'}}\n"
          "tests: {t/linux: {command: 'cat src/x.txt', dependencies: {src: HEAD, b: b/linux}}}\n",
      {{"x.txt", "one\n"}});
  app_.write("x.txt", "two\n");
  const json report = run_json("", 1);
  const json& test = object_named(report, "t/linux");
  EXPECT_EQ(test["failures"], 0);
  EXPECT_EQ(test["infra_errors"], 1);
  EXPECT_NE(log_of(report, "t/linux").find("changed while testlooper read the working tree"),
            std::string::npos)
      << log_of(report, "t/linux");
}

constexpr char kBuildAndTest[] =
    "builds: {b/linux: {command: 'echo x >> COUNTER && echo built > "
    "$TEST_BUILD_OUTPUT_DIR/out.txt', dependencies: {src: HEAD}}}\n"
    "tests: {t/linux: {command: 'cat b/out.txt src/x.txt', dependencies: {b: b/linux, src: "
    "HEAD}}}\n";

TEST_F(RunWorkingTree, NoDepsErrorsClearlyWithoutTheBuild) {
  std::string yaml = std::string(kHostEnvironment) + kBuildAndTest;
  yaml.replace(yaml.find("COUNTER"), 7, path("builds-run"));
  commit(yaml, {{"x.txt", "one\n"}});
  const testing::RunOutput o = run("--no-deps t/linux");
  EXPECT_EQ(o.status, 2);
  EXPECT_NE(o.err.find("build b/linux (needed by t/linux) is not in the store"), std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find("testlooper run 'b/linux'"), std::string::npos) << o.err;
  EXPECT_EQ(o.out, "");
  const testing::RunOutput builds_only = run("--no-deps b/linux");
  EXPECT_EQ(builds_only.status, 2);
  EXPECT_NE(builds_only.err.find("runs tests only"), std::string::npos) << builds_only.err;
}

TEST_F(RunWorkingTree, NoDepsRunsATestAgainstTheStoredBuildWithoutRebuildingIt) {
  const std::string counter = path("builds-run");
  std::string yaml = std::string(kHostEnvironment) + kBuildAndTest;
  yaml.replace(yaml.find("COUNTER"), 7, counter);
  commit(yaml, {{"x.txt", "one\n"}});
  const json built = run_json("", 0);
  EXPECT_EQ(read_text(counter), "x\n");
  // The same commit: the build of the same identity.
  const json same = run_json("--no-deps t/linux", 0);
  EXPECT_EQ(object_named(same, "b/linux")["reused"], true);
  EXPECT_EQ(object_named(same, "t/linux")["hash"], object_named(built, "t/linux")["hash"]);
  // An edited working tree: the build made from its commit, not rebuilt; the test sees the edit,
  // and its identity says which build it ran against.
  app_.write("x.txt", "two\n");
  const testing::RunOutput o = run("--json --no-deps t/linux");
  ASSERT_EQ(o.status, 0) << o.err;
  const json report = json::parse(o.out);
  EXPECT_EQ(read_text(counter), "x\n") << "--no-deps rebuilt the build";
  EXPECT_EQ(object_named(report, "b/linux")["runs"], 0);
  EXPECT_EQ(object_named(report, "b/linux")["hash"], object_named(built, "b/linux")["hash"]);
  EXPECT_NE(log_of(report, "t/linux").find("built\ntwo"), std::string::npos)
      << log_of(report, "t/linux");
  EXPECT_NE(o.err.find("b/linux is taken from the store"), std::string::npos) << o.err;
  const json full = run_json("t/linux", 0);
  EXPECT_EQ(read_text(counter), "x\nx\n") << "without --no-deps the dirty tree is built";
  EXPECT_NE(object_named(report, "t/linux")["hash"], object_named(full, "t/linux")["hash"]);
  EXPECT_NE(object_named(report, "t/linux")["hash"], object_named(built, "t/linux")["hash"]);
}

TEST_F(RunWorkingTree, NoDepsNeverTakesABuildOfAnotherCommit) {
  const std::string counter = path("builds-run");
  std::string yaml = std::string(kHostEnvironment) + kBuildAndTest;
  yaml.replace(yaml.find("COUNTER"), 7, counter);
  commit(yaml, {{"x.txt", "one\n"}});
  run_json("", 0);
  commit(yaml, {{"x.txt", "two\n"}});  // HEAD moves: the stored build is of its parent
  const testing::RunOutput o = run("--no-deps t/linux");
  EXPECT_EQ(o.status, 2) << o.err;
  EXPECT_NE(o.err.find("build b/linux (needed by t/linux) is not in the store"), std::string::npos)
      << o.err;
  EXPECT_EQ(read_text(counter), "x\n");
}

}  // namespace
}  // namespace testlooper::cli
