// Resolution rules over real git repos made in a temp dir (the cases/ runner covers the rest in
// memory). Each test writes its definitions inline so it reads top to bottom.
#include <gtest/gtest.h>

#include "definitions/definitions.h"
#include "git/git_fixture.h"
#include "git/git_source_reader.h"

namespace testlooper::definitions {
namespace {

using fixtures::GitFixtureRepo;
using fixtures::TempDir;

constexpr const char* kHostEnv =
    "environments:\n  linux: {platform: linux, image: {host: true}}\n";

class ResolverTest : public testing::Test {
 protected:
  GitFixtureRepo repo(const std::string& name) { return GitFixtureRepo(dir_.path() + "/" + name); }

  ResolvedCommit resolve(const std::string& name, const std::string& sha) {
    auto reader = git::GitSourceReader::under_root(dir_.path());
    auto resolved = resolve_commit(reader, name, sha);
    EXPECT_TRUE(resolved.ok()) << resolved.error().to_string();
    return std::move(resolved).value();
  }

  // Commits `yaml` as main's testlooper.yml and resolves it; expects no error.
  ResolvedCommit resolve_ok(const std::string& yaml) {
    GitFixtureRepo main = repo("main");
    main.write("testlooper.yml", yaml);
    const std::string sha = main.commit("definitions");
    ResolvedCommit c = resolve("main", sha);
    EXPECT_FALSE(c.error.has_value()) << *c.error;
    return c;
  }

  std::string resolve_error(const std::string& yaml) {
    GitFixtureRepo main = repo("main");
    main.write("testlooper.yml", yaml);
    ResolvedCommit c = resolve("main", main.commit("definitions"));
    EXPECT_TRUE(c.error.has_value());
    return c.error.value_or("");
  }

  TempDir dir_;
};

TEST_F(ResolverTest, EnvironmentMerge_DiamondResolvesInC3Order) {
  const ResolvedCommit c = resolve_ok(
      "looper_version: 5\n"
      "environments:\n"
      "  root: {platform: linux, image: {host: true}, variables: {V: root}}\n"
      "  a: {base: root, variables: {V: a}}\n"
      "  b: {base: root, variables: {V: b}}\n"
      "  c: {base: root}\n"
      "  d: {base: [a, b, c]}\n"
      "tests: {t/d: {command: x}}\n");
  EXPECT_EQ(c.environments.at("d").inheritance,
            (std::vector<std::string>{"d", "c", "b", "a", "root"}));
  EXPECT_EQ(c.find("t/d")->variables.at("V"), "b");  // c sets nothing; b is the last that does
}

TEST_F(ResolverTest, EnvironmentMerge_LastBaseAndLastMixinWin) {
  const ResolvedCommit c = resolve_ok(
      "looper_version: 5\n"
      "environments:\n"
      "  root: {platform: linux, image: {host: true}}\n"
      "  x: {base: root, variables: {V: x}}\n"
      "  y: {base: root, variables: {V: y}}\n"
      "  xy: {base: [x, y]}\n"
      "  m1: {base: [], variables: {M: m1}}\n"
      "  m2: {base: [], variables: {M: m2}}\n"
      "tests:\n"
      "  t/xy: {command: x, mixins: [m1, m2]}\n");
  const ResolvedObject* t = c.find("t/xy");
  EXPECT_EQ(t->variables.at("V"), "y");
  EXPECT_EQ(t->variables.at("M"), "m2");
}

TEST_F(ResolverTest, Variables_ChildValueUsedByBaseVariable) {
  const ResolvedCommit c = resolve_ok(
      "looper_version: 5\n"
      "environments:\n"
      "  root: {platform: linux, image: {host: true}, variables: {URL: 'http://${HOST}/x'}}\n"
      "  child: {base: root, variables: {HOST: example.org}}\n"
      "tests: {t/child: {command: 'curl ${URL}'}}\n");
  EXPECT_EQ(c.find("t/child")->stages.back().command, "curl http://example.org/x");
}

TEST_F(ResolverTest, Variables_TwentyLongChain) {
  std::string vars;
  for (int i = 0; i < 20; ++i) vars += "V" + std::to_string(i) + ": '${V" + std::to_string(i + 1) + "}.'\n      ";
  const ResolvedCommit c = resolve_ok("looper_version: 5\n" + std::string(kHostEnv) +
                                      "tests:\n  t/linux:\n    command: '${V0}'\n    variables:\n      " +
                                      vars + "V20: end\n");
  EXPECT_EQ(c.find("t/linux")->stages.back().command, "end....................");
}

TEST_F(ResolverTest, Variables_CycleIsAnErrorNamingTheCycle) {
  const std::string error = resolve_error("looper_version: 5\n" + std::string(kHostEnv) +
                                          "tests:\n  t/linux: {command: x, variables: {A: '${B}', B: '${C}', C: '${A}'}}\n");
  EXPECT_EQ(error, "testlooper.yml:5:40: variables refer to each other in a cycle: A -> B -> C -> A");
}

TEST_F(ResolverTest, Foreach_CrossProductOfTwoLists) {
  const ResolvedCommit c = resolve_ok("looper_version: 5\n" + std::string(kHostEnv) +
                                      "tests:\n"
                                      "  foreach: {a: [1, 2, 3], b: [x, y]}\n"
                                      "  repeat: {'t${a}${b}/linux': {command: 'echo ${a}${b}'}}\n");
  ASSERT_EQ(c.objects.size(), 6u);
  EXPECT_EQ(c.objects.front().name, "t1x/linux");
  EXPECT_EQ(c.objects.back().name, "t3y/linux");
  EXPECT_EQ(c.objects.back().stages.back().command, "echo 3y");
}

TEST_F(ResolverTest, Includes_WithVariablesInForeach) {
  GitFixtureRepo main = repo("main");
  main.write("ci/one.yml", "tests: {'t/${NAME}/linux': {command: 'run ${NAME}'}}\n");
  main.write("testlooper.yml", "looper_version: 5\n" + std::string(kHostEnv) +
                                   "includes:\n"
                                   "  foreach: {n: [a, b, c]}\n"
                                   "  repeat: [{path: ./ci/one.yml, variables: {NAME: '${n}'}}]\n");
  const ResolvedCommit c = resolve("main", main.commit("defs"));
  ASSERT_FALSE(c.error) << *c.error;
  ASSERT_EQ(c.objects.size(), 3u);
  EXPECT_EQ(c.find("t/b/linux")->stages.back().command, "run b");
}

TEST_F(ResolverTest, Dependencies_CrossRepoBuildWithArtifact) {
  GitFixtureRepo lib = repo("lib");
  lib.write("testlooper.yml", "looper_version: 5\n" + std::string(kHostEnv) +
                                  "builds:\n  lib/linux:\n    stages:\n"
                                  "      - {command: make, artifacts: [{name: headers, directory: inc}]}\n");
  const std::string lib_sha = lib.commit("lib");
  GitFixtureRepo main = repo("main");
  main.write("testlooper.yml", "looper_version: 5\nrepos: {lib: lib/" + lib_sha + "}\n" +
                                   std::string(kHostEnv) +
                                   "tests: {t/linux: {command: x, dependencies: {h: lib/lib/linux/headers}}}\n");
  const ResolvedCommit c = resolve("main", main.commit("main"));
  ASSERT_FALSE(c.error) << *c.error;
  const Dependency& d = c.find("t/linux")->dependencies.at("h");
  EXPECT_EQ(d.kind, Dependency::Kind::kBuild);
  EXPECT_EQ(d.build_name, "lib/" + lib_sha + "/lib/linux");
  EXPECT_EQ(d.artifact, "headers");
  ASSERT_EQ(c.external_builds.size(), 1u);
  EXPECT_EQ(d.build_hash, c.external_builds[0].hash);
  EXPECT_EQ(c.test_sets.at("all"), (std::vector<std::string>{"lib/" + lib_sha + "/lib/linux", "t/linux"}));
}

TEST_F(ResolverTest, Dependencies_CycleErrorNamesTheCycle) {
  const std::string error = resolve_error("looper_version: 5\n" + std::string(kHostEnv) +
                                          "builds:\n"
                                          "  a/linux: {command: x, dependencies: {i: b/linux}}\n"
                                          "  b/linux: {command: x, dependencies: {i: c/linux}}\n"
                                          "  c/linux: {command: x, dependencies: {i: a/linux}}\n");
  EXPECT_NE(error.find("Circular test dependency found: a/linux -> b/linux -> c/linux -> a/linux"),
            std::string::npos) << error;
}

TEST_F(ResolverTest, Identity_UnchangedByUnrelatedFileAndChangedByItsBuild) {
  GitFixtureRepo main = repo("main");
  main.write("src/lib.c", "int a;");
  main.write("testlooper.yml", "looper_version: 5\n" + std::string(kHostEnv) +
                                   "builds: {b/linux: {command: make, dependencies: {src: HEAD/source/src}}}\n"
                                   "tests: {t/linux: {command: x, dependencies: {b: b/linux}}}\n");
  const ResolvedCommit first = resolve("main", main.commit("one"));
  main.write("README", "unrelated");
  const ResolvedCommit second = resolve("main", main.commit("two"));
  main.write("src/lib.c", "int b;");
  const ResolvedCommit third = resolve("main", main.commit("three"));
  EXPECT_EQ(first.find("t/linux")->hash, second.find("t/linux")->hash);
  EXPECT_EQ(first.find("b/linux")->hash, second.find("b/linux")->hash);
  EXPECT_NE(second.find("b/linux")->hash, third.find("b/linux")->hash);
  EXPECT_NE(second.find("t/linux")->hash, third.find("t/linux")->hash);
  EXPECT_EQ(second.find("b/linux")->dependencies.at("src").commit, first.commit);
}

TEST_F(ResolverTest, Identity_ChangesWithMeaningAndIsStableAcrossRuns) {
  const std::string base = "looper_version: 5\n" + std::string(kHostEnv) + "tests: {t/linux: {command: ";
  const std::string one = resolve_ok(base + "x}}\n").find("t/linux")->hash;
  TempDir other;
  const std::string again = resolve_ok(base + "x}}\n").find("t/linux")->hash;
  const std::string changed = resolve_ok(base + "y}}\n").find("t/linux")->hash;
  EXPECT_EQ(one, again);
  EXPECT_NE(one, changed);
  EXPECT_EQ(one.size(), 64u);
}

TEST_F(ResolverTest, Discovery_ReadsABareRepoWithoutCheckout) {
  GitFixtureRepo work = repo("work");
  work.write("ci/x.testlooper.yml", "looper_version: 5\n" + std::string(kHostEnv) + "tests: {t/linux: {command: x}}\n");
  const std::string sha = work.commit("defs");
  work.run({"clone", "-q", "--bare", work.path(), dir_.path() + "/bare"});
  const ResolvedCommit c = resolve("bare", sha);
  EXPECT_EQ(c.file.value_or(""), "ci/x.testlooper.yml");
  EXPECT_EQ(c.objects.size(), 1u);
}

}  // namespace
}  // namespace testlooper::definitions
