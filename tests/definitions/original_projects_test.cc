// The original TestLooper's four example projects (original/README.md), each loaded as one commit
// of a repo of its name, resolve to the objects the original made of them (issue 17).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "definitions/definitions.h"
#include "memory_source_reader.h"

namespace testlooper::definitions {
namespace {

namespace fs = std::filesystem;

const std::map<std::string, std::string> kShas = {{"simple_project", std::string(40, 'a')},
                                                  {"simple_project_2", std::string(40, 'b')},
                                                  {"simple_project_3", std::string(40, 'c')},
                                                  {"project_with_stages", std::string(40, 'd')}};

// The project's files; `<project>/__replace_this_hash__` becomes that project's sha.
MemorySourceReader::Files project_files(const std::string& project) {
  MemorySourceReader::Files files;
  const fs::path root = fs::path(TL_ORIGINAL_DIR) / project;
  const std::regex placeholder("([A-Za-z0-9_]+)/__replace_this_hash__");
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path());
    std::stringstream text;
    text << in.rdbuf();
    std::string content = text.str();
    std::smatch m;
    while (std::regex_search(content, m, placeholder)) {
      content.replace(m.position(0), m.length(0), m[1].str() + "/" + kShas.at(m[1].str()));
    }
    files[fs::relative(e.path(), root).generic_string()] = content;
  }
  return files;
}

class OriginalProjects : public testing::Test {
 protected:
  OriginalProjects() {
    for (const auto& [project, sha] : kShas)
      reader_.add_commit(project, sha, project_files(project));
  }

  ResolvedCommit resolve(const std::string& project) {
    auto resolved = resolve_commit(reader_, project, kShas.at(project));
    EXPECT_TRUE(resolved.ok()) << resolved.error().to_string();
    EXPECT_FALSE(resolved->error.has_value()) << *resolved->error;
    return *resolved;
  }

  static std::vector<std::string> names(const ResolvedCommit& c) {
    std::vector<std::string> out;
    for (const auto& o : c.objects) out.push_back(o.name);
    return out;
  }

  static const ResolvedObject& object(const ResolvedCommit& c, const std::string& name) {
    const ResolvedObject* o = c.find(name);
    if (o == nullptr) throw std::runtime_error("no object " + name);
    return *o;
  }

  MemorySourceReader reader_;
};

TEST_F(OriginalProjects, SimpleProjectDockerfilesListSectionsNestedForeachAndSlices) {
  const ResolvedCommit c = resolve("simple_project");
  EXPECT_EQ(names(c),
            (std::vector<std::string>{
                "bad/linux", "build/linux", "check_build_output/linux", "good/linux",
                "test_with_individual_failures_1/linux", "test_with_individual_failures_1/linux2",
                "test_with_individual_failures_2/linux", "test_with_individual_failures_2/linux2",
                "test_with_individual_failures_nogroup/linux",
                "test_with_individual_failures_nogroup/linux2"}));
  const ResolvedObject& good = object(c, "good/linux");
  EXPECT_EQ(good.environment.image_kind, "dockerfile");
  EXPECT_EQ(good.environment.image_path, "Dockerfile.txt");
  EXPECT_EQ(good.environment.dockerfile_contents, "FROM ubuntu:16.04\nRUN apt-get update\n");
  EXPECT_EQ(good.dependencies.at("build").kind, Dependency::Kind::kBuild);
  EXPECT_EQ(good.dependencies.at("build").build_name,
            "simple_project/" + kShas.at("simple_project") + "/build/linux");
  EXPECT_EQ(good.dependencies.at("src").kind, Dependency::Kind::kSource);
  const ResolvedObject& grouped = object(c, "test_with_individual_failures_2/linux2");
  EXPECT_EQ(grouped.dependencies.at("util").path, "util");
  ASSERT_EQ(grouped.stages.size(), 1u);
  EXPECT_NE(grouped.stages[0].command.find("produce_test_failures.py Group2WithAVeryLongGroupName"),
            std::string::npos);
  EXPECT_EQ(grouped.environment.name, "linux2");
}

TEST_F(OriginalProjects, SimpleProject2CrossRepoEnvironmentsBuildsAmiAndRetries) {
  const ResolvedCommit c = resolve("simple_project_2");
  EXPECT_EQ(names(c), (std::vector<std::string>{
                          "build2/linux", "build_flakey/linux", "sleeper/linux", "test2/linux",
                          "test2_dep_from_env/linux2", "test3/linux_dependent",
                          "test_depends_on_flakey/linux", "test_on_windows/windows"}));
  const RepoReference& simple = c.repos.at("simple");
  EXPECT_EQ(simple.repo, "simple_project");
  EXPECT_EQ(simple.commit, kShas.at("simple_project"));
  EXPECT_EQ(simple.branch, "master");
  EXPECT_TRUE(simple.auto_update);
  EXPECT_EQ(c.repos.at("this").commit, kShas.at("simple_project_2"));  // reference: HEAD
  // An environment based on another repo's: its Dockerfile comes from there.
  const ResolvedObject& test3 = object(c, "test3/linux_dependent");
  EXPECT_EQ(test3.environment.dockerfile_contents, "FROM ubuntu:16.04\nRUN apt-get update\n");
  EXPECT_EQ(test3.variables.at("ENV_VAR"), "LINUX_OVERRIDE_SECOND");
  EXPECT_EQ(test3.variables.at("ENV_VAR_2"), "LINUX_OVERRIDE_2");
  EXPECT_EQ(test3.dependencies.at("simplesource").repo, "simple_project");
  EXPECT_EQ(test3.dependencies.at("build_import").build_name,
            "simple_project/" + kShas.at("simple_project") + "/build/linux");
  EXPECT_EQ(object(c, "test2_dep_from_env/linux2").environment.dockerfile_contents,
            "FROM ubuntu:18.04\n");
  EXPECT_EQ(object(c, "test2_dep_from_env/linux2").dependencies.count("simplesource"), 1u);
  const ResolvedObject& flakey = object(c, "build_flakey/linux");
  EXPECT_EQ(flakey.max_retries, 5);
  EXPECT_EQ(flakey.retry_wait_seconds, 30);
  const ResolvedObject& windows = object(c, "test_on_windows/windows");
  EXPECT_EQ(windows.environment.platform, "windows");
  EXPECT_EQ(windows.environment.image_kind, "ami");
  EXPECT_EQ(windows.environment.base_ami, "ami-123");
  EXPECT_EQ(object(c, "sleeper/linux").dependencies.at("src").commit, kShas.at("simple_project_2"));
  ASSERT_EQ(c.external_builds.size(), 1u);
  EXPECT_EQ(c.external_builds[0].full_name,
            "simple_project/" + kShas.at("simple_project") + "/build/linux");
}

TEST_F(OriginalProjects, SimpleProject3MixinsIncludesStagesAndTestsWithoutCommands) {
  const ResolvedCommit c = resolve("simple_project_3");
  EXPECT_EQ(names(c),
            (std::vector<std::string>{"build/k0", "build/k1", "build/k2", "cross_repo/imported",
                                      "greet/env", "nothing/env", "test/env", "test/env_1",
                                      "test/env_12", "test/env_2", "test/env_21"}));
  // The foreach around the include: each kind's environment, with its own K.
  EXPECT_EQ(object(c, "build/k1").variables.at("K"), "k1");
  EXPECT_EQ(object(c, "build/k2").environment.name, "k_env_k2");
  // Bases: the last listed base wins (docs/definitions.md; the original let the first win).
  const ResolvedObject& env = object(c, "test/env");
  EXPECT_EQ(env.variables.at("OVERRIDE_OUTPUT"), "ENV");
  EXPECT_EQ(env.dependencies.at("build").build_name,
            "simple_project_3/" + kShas.at("simple_project_3") + "/build/k0");
  EXPECT_EQ(object(c, "test/env_1").variables.at("OVERRIDE_OUTPUT"), "MIXIN_1");
  EXPECT_EQ(object(c, "test/env_1").dependencies.at("build").build_name,
            "simple_project_3/" + kShas.at("simple_project_3") + "/build/k1");
  EXPECT_EQ(object(c, "test/env_12").variables.at("OVERRIDE_OUTPUT"), "MIXIN_2");
  EXPECT_EQ(object(c, "test/env_21").variables.at("OVERRIDE_OUTPUT"), "MIXIN_1");
  ASSERT_EQ(env.stages.size(), 1u);
  ASSERT_EQ(env.stages[0].artifacts.size(), 1u);
  EXPECT_EQ(env.stages[0].artifacts[0].format, "Files");
  EXPECT_EQ(object(c, "greet/env").stages[0].command, "hello");
  EXPECT_TRUE(object(c, "nothing/env").stages.empty());
  // A cross-repo environment two pins away: simple_project_2's linux2 and its dependency on
  // simple_project at the commit simple_project_2 pins.
  const ResolvedObject& cross = object(c, "cross_repo/imported");
  EXPECT_EQ(cross.environment.dockerfile_contents, "FROM ubuntu:18.04\n");
  EXPECT_EQ(cross.dependencies.at("simplesource").commit, kShas.at("simple_project"));
  EXPECT_EQ(cross.dependencies.at("other_build").build_name,
            "simple_project_2/" + kShas.at("simple_project_2") + "/build2/linux");
}

TEST_F(OriginalProjects, ProjectWithStagesNamedArtifactsAndTheirConsumers) {
  const ResolvedCommit c = resolve("project_with_stages");
  EXPECT_EQ(names(c), (std::vector<std::string>{"build_consuming_stage_1",
                                                "build_consuming_stage_2", "build_with_stages"}));
  const ResolvedObject& staged = object(c, "build_with_stages");
  ASSERT_EQ(staged.stages.size(), 2u);
  EXPECT_EQ(staged.stages[0].artifacts.at(0).name, "first_stage");
  EXPECT_EQ(staged.stages[0].artifacts.at(0).include_patterns, std::vector<std::string>{"*.txt"});
  EXPECT_EQ(staged.stages[1].artifacts.at(0).name, "second_stage");
  EXPECT_EQ(staged.environment.image_kind, "dockerfile");
  const Dependency& in = object(c, "build_consuming_stage_2").dependencies.at("in");
  EXPECT_EQ(in.build_hash, staged.hash);
  EXPECT_EQ(in.artifact, "second_stage");
  EXPECT_EQ(object(c, "build_consuming_stage_1").dependencies.at("in").artifact, "first_stage");
}

}  // namespace
}  // namespace testlooper::definitions
