#include "git/git_source_reader.h"

#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "git_fixture.h"

namespace testlooper::git {
namespace {

using fixtures::GitFixtureRepo;
using fixtures::TempDir;
using Paths = std::vector<std::string>;

// Two repositories, "app" and "lib", under one root.
class GitSourceReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    app_.write("testDefinitions.yml", "looper_version: 5\n");
    app_root_ = app_.commit("app root");
    app_.write("src/main.cc", "int main() {}\n");
    app_head_ = app_.commit("app code");
    lib_.write("lib/x.h", "x");
    lib_sha_ = lib_.commit("lib");
  }

  TempDir tmp_;
  GitFixtureRepo app_{tmp_.path() + "/app"};
  GitFixtureRepo lib_{tmp_.path() + "/lib"};
  std::string app_root_, app_head_, lib_sha_;
};

TEST_F(GitSourceReaderTest, AnswersFromTheNamedRepository) {
  GitSourceReader reader = GitSourceReader::under_root(tmp_.path());
  EXPECT_EQ(*reader.list_files("app", app_head_), (Paths{"src/main.cc", "testDefinitions.yml"}));
  EXPECT_EQ(*reader.list_files("lib", lib_sha_), Paths{"lib/x.h"});
  EXPECT_EQ(*reader.read_file("app", app_head_, "testDefinitions.yml"), "looper_version: 5\n");
  EXPECT_EQ(*reader.read_file("app", app_head_, "absent"), std::nullopt);
  EXPECT_EQ(*reader.changed_paths("app", app_root_), std::nullopt);
  EXPECT_EQ(**reader.changed_paths("app", app_head_), Paths{"src/main.cc"});
  EXPECT_EQ(*reader.last_commit_touching("app", app_head_, "testDefinitions.yml"), app_root_);
  EXPECT_EQ(*reader.last_commit_touching("app", app_head_, "src"), app_head_);
  EXPECT_EQ(*reader.last_commit_touching("app", app_head_, "src"), app_head_);  // cached
}

TEST_F(GitSourceReaderTest, SymbolicRevisionsAreResolvedOnEveryCall) {
  GitSourceReader reader = GitSourceReader::under_root(tmp_.path());
  EXPECT_EQ(reader.list_files("app", "HEAD")->size(), 2u);
  app_.write("more.txt", "m");
  const std::string newer = app_.commit("more");
  EXPECT_EQ(reader.list_files("app", "HEAD")->size(), 3u);
  EXPECT_EQ(*reader.last_commit_touching("app", "HEAD", "more.txt"), newer);
  EXPECT_EQ(reader.list_files("app", app_head_)->size(), 2u);
}

TEST_F(GitSourceReaderTest, FileListCacheStaysCorrectPastItsCapacity) {
  // One commit per file on top of lib's history, written in one fast-import run.
  const size_t commits = GitSourceReader::kFileListCacheSize + 3;
  std::string stream;
  for (size_t i = 0; i < commits; ++i) {
    stream += "commit refs/heads/main\ncommitter A <a@example.com> 1700000000 +0000\ndata 2\nc\n";
    if (i == 0) stream += "from refs/heads/main^0\n";
    stream += "M 100644 inline f" + std::to_string(i) + "\ndata 2\nx\n\n";
  }
  lib_.run_with_input({"fast-import", "--quiet"}, stream);
  std::istringstream listing(lib_.run({"rev-list", "--reverse", "main"}));
  std::vector<std::string> shas;
  for (std::string sha; std::getline(listing, sha);) shas.push_back(sha);
  ASSERT_EQ(shas.size(), commits + 1);
  GitSourceReader reader = GitSourceReader::under_root(tmp_.path());
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < shas.size(); ++i) {
      EXPECT_EQ(reader.list_files("lib", shas[i])->size(), i + 1) << i;
    }
  }
}

TEST_F(GitSourceReaderTest, UnknownRepoIsAnErrorNamingIt) {
  GitSourceReader reader = GitSourceReader::under_root(tmp_.path());
  auto files = reader.list_files("nope", app_head_);
  ASSERT_FALSE(files.ok());
  EXPECT_NE(files.error().message.find("repo 'nope' not found at " + tmp_.path() + "/nope"),
            std::string::npos)
      << files.error().message;
  for (const std::string name : {"../app", "", "app/..", "/app", "a//b"}) {
    auto escaped = reader.read_file(name, app_head_, "testDefinitions.yml");
    ASSERT_FALSE(escaped.ok()) << name;
    EXPECT_NE(escaped.error().message.find("repo '" + name + "' not found"), std::string::npos);
  }
}

TEST_F(GitSourceReaderTest, UnknownCommitIsAnErrorNamingItAndTheRepo) {
  GitSourceReader reader = GitSourceReader::under_root(tmp_.path());
  const std::string missing = "0123456789abcdef0123456789abcdef01234567";
  auto files = reader.list_files("lib", missing);
  ASSERT_FALSE(files.ok());
  EXPECT_EQ(files.error().message, "commit " + missing + " not found in repo 'lib'");
  EXPECT_FALSE(reader.read_file("lib", missing, "lib/x.h").ok());
  EXPECT_FALSE(reader.changed_paths("lib", missing).ok());
  EXPECT_FALSE(reader.last_commit_touching("lib", app_head_, "lib").ok());
}

TEST_F(GitSourceReaderTest, CustomLocatorMapsNames) {
  std::map<std::string, std::string> where = {{"core", tmp_.path() + "/lib"}};
  GitSourceReader reader([&where](const std::string& repo) -> std::optional<std::string> {
    auto found = where.find(repo);
    if (found == where.end()) return std::nullopt;
    return found->second;
  });
  EXPECT_EQ(*reader.list_files("core", lib_sha_), Paths{"lib/x.h"});
  auto missing = reader.list_files("lib", lib_sha_);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "repo 'lib' not found");
}

TEST_F(GitSourceReaderTest, WorksThroughTheSourceReaderInterface) {
  GitSourceReader git_reader = GitSourceReader::under_root(tmp_.path());
  definitions::SourceReader& reader = git_reader;
  EXPECT_EQ(*reader.read_file("lib", lib_sha_, "lib/x.h"), "x");
}

}  // namespace
}  // namespace testlooper::git
