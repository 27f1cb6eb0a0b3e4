#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "git/git.h"
#include "git_fixture.h"

namespace testlooper::git {
namespace {

namespace fs = std::filesystem;
using fixtures::GitFixtureRepo;
using fixtures::TempDir;

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

bool is_executable(const fs::path& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && (info.st_mode & S_IXUSR) != 0;
}

// A repository with a regular file, an executable, a symlink and nested directories.
class ExportTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fixture_.write("readme.txt", "hello\n");
    fixture_.write("tools/run.sh", "#!/bin/sh\necho run\n", /*executable=*/true);
    fixture_.write("tools/deep/data.bin", std::string("\0\1\2", 3));
    fixture_.symlink("tools/link", "run.sh");
    sha_ = fixture_.commit("Add tools");
    auto repo = Repository::open(fixture_.path());
    ASSERT_TRUE(repo.ok()) << repo.error().to_string();
    repo_.emplace(std::move(repo.value()));
  }

  TempDir tmp_;
  GitFixtureRepo fixture_{tmp_.path() + "/repo"};
  std::string sha_;
  std::optional<Repository> repo_;
};

TEST_F(ExportTreeTest, WholeTreeKeepsModesSymlinksAndWritesGitCommit) {
  const fs::path out = tmp_.path() + "/out/nested";
  Status status = repo_->export_tree(sha_, "", out);
  ASSERT_TRUE(status.ok()) << status.error().to_string();
  EXPECT_EQ(slurp(out / "readme.txt"), "hello\n");
  EXPECT_FALSE(is_executable(out / "readme.txt"));
  EXPECT_EQ(slurp(out / "tools/run.sh"), "#!/bin/sh\necho run\n");
  EXPECT_TRUE(is_executable(out / "tools/run.sh"));
  EXPECT_EQ(slurp(out / "tools/deep/data.bin"), std::string("\0\1\2", 3));
  ASSERT_TRUE(fs::is_symlink(out / "tools/link"));
  EXPECT_EQ(fs::read_symlink(out / "tools/link"), "run.sh");
  EXPECT_EQ(slurp(out / ".git_commit"), fixture_.run({"log", "-n", "1", sha_}));
  EXPECT_EQ(slurp(out / ".git_commit"), *repo_->log_entry(sha_));
}

TEST_F(ExportTreeTest, SubpathExportsOnlyThatDirectory) {
  const fs::path out = tmp_.path() + "/out";
  for (const std::string subpath : {"tools", "tools/"}) {
    fs::remove_all(out);
    Status status = repo_->export_tree(sha_, subpath, out);
    ASSERT_TRUE(status.ok()) << status.error().to_string();
    EXPECT_FALSE(fs::exists(out / "readme.txt"));
    EXPECT_FALSE(fs::exists(out / "tools"));
    EXPECT_TRUE(is_executable(out / "run.sh"));
    EXPECT_EQ(slurp(out / "deep/data.bin"), std::string("\0\1\2", 3));
    EXPECT_EQ(fs::read_symlink(out / "link"), "run.sh");
    EXPECT_EQ(slurp(out / ".git_commit"), *repo_->log_entry(sha_));
  }
}

TEST_F(ExportTreeTest, ReplacesExistingFilesAndKeepsOthers) {
  const fs::path out = tmp_.path() + "/out";
  fs::create_directories(out / "tools");
  std::ofstream(out / "readme.txt") << "stale";
  std::ofstream(out / "tools/link") << "a file where a symlink goes";
  std::ofstream(out / "extra.txt") << "mine";
  Status status = repo_->export_tree(sha_, "", out);
  ASSERT_TRUE(status.ok()) << status.error().to_string();
  EXPECT_EQ(slurp(out / "readme.txt"), "hello\n");
  EXPECT_TRUE(fs::is_symlink(out / "tools/link"));
  EXPECT_EQ(slurp(out / "extra.txt"), "mine");
}

TEST_F(ExportTreeTest, MissingOrNonDirectorySubpathIsAnError) {
  const std::string out = tmp_.path() + "/out";
  Status missing = repo_->export_tree(sha_, "nope", out);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("'nope'"), std::string::npos);
  Status file = repo_->export_tree(sha_, "readme.txt", out);
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.error().message.find("not a directory"), std::string::npos);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(repo_->export_tree("no-such-rev", "", out).ok());
}

}  // namespace
}  // namespace testlooper::git
