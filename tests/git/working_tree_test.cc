// WorkingTree and WorkingTreeReader over real repositories: what counts as a change, the id,
// reads and exports of the snapshot, and the guard against files edited after the snapshot.
#include "git/working_tree.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "git/git_source_reader.h"
#include "git/working_tree_reader.h"
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

class WorkingTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_.write(".gitignore", "*.log\n");
    repo_.write("a.txt", "a\n");
    repo_.write("lib/l.txt", "l\n");
    repo_.write("gone.txt", "gone\n");
    sha_ = repo_.commit("base");
  }

  WorkingTree open() {
    auto tree = WorkingTree::open(repo_.path());
    if (!tree.ok()) throw std::runtime_error(tree.error().to_string());
    return std::move(tree.value());
  }

  TempDir dir_;
  GitFixtureRepo repo_{dir_.path() + "/repo"};
  std::string sha_;
};

TEST_F(WorkingTreeTest, IgnoredFilesAndRevertedEditsLeaveItClean) {
  repo_.write("build.log", "noise\n");
  repo_.write("a.txt", "staged\n");
  repo_.run({"add", "a.txt"});
  repo_.write("a.txt", "a\n");  // the disk is HEAD's again, whatever the index says
  const WorkingTree tree = open();
  EXPECT_FALSE(tree.dirty());
  EXPECT_EQ(tree.id(), sha_);
  EXPECT_EQ(tree.changes_hash(), "");
}

TEST_F(WorkingTreeTest, TheIdNamesTheChangesAndFollowsTheirContent) {
  repo_.write("a.txt", "edited\n");
  const std::string first = open().id();
  EXPECT_EQ(first.rfind(sha_ + "+dirty:", 0), 0u) << first;
  EXPECT_EQ(first.size(), 40u + 7u + 64u);
  EXPECT_EQ(open().id(), first) << "the same state has the same id";
  repo_.write("a.txt", "edited again\n");
  EXPECT_NE(open().id(), first);
}

TEST_F(WorkingTreeTest, ListsAndReadsTheFilesOnDisk) {
  repo_.write("a.txt", "edited\n");
  repo_.write("new/n.txt", "n\n");
  repo_.remove("gone.txt");
  repo_.write("x.log", "ignored\n");
  const WorkingTree tree = open();
  ASSERT_TRUE(tree.dirty());
  EXPECT_EQ(*tree.list_files(),
            (std::vector<std::string>{".gitignore", "a.txt", "lib/l.txt", "new/n.txt"}));
  EXPECT_EQ(**tree.read_file("a.txt"), "edited\n");
  EXPECT_EQ(**tree.read_file("new/n.txt"), "n\n");
  EXPECT_EQ(**tree.read_file("lib/l.txt"), "l\n");
  EXPECT_FALSE(tree.read_file("gone.txt")->has_value());
  EXPECT_FALSE(tree.read_file("x.log")->has_value());
}

TEST_F(WorkingTreeTest, AFileEditedAfterTheSnapshotIsAnErrorNotItsNewContent) {
  repo_.write("a.txt", "edited\n");
  const WorkingTree tree = open();
  repo_.write("a.txt", "edited later\n");
  auto read = tree.read_file("a.txt");
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.error().message.find("changed while testlooper read the working tree"),
            std::string::npos);
  EXPECT_FALSE(tree.export_tree("", dir_.path() + "/out").ok());
}

TEST_F(WorkingTreeTest, OnlySlicesWithChangesTakeTheWorkingTreesIdentity) {
  repo_.write("a.txt", "edited\n");
  const WorkingTree tree = open();
  EXPECT_EQ(*tree.last_commit_touching("lib"), sha_);
  EXPECT_EQ(*tree.last_commit_touching("a.txt"), tree.id());
  repo_.write("lib/sub/new.txt", "n\n");
  const WorkingTree with_lib = open();
  EXPECT_EQ(*with_lib.last_commit_touching("lib"), with_lib.id());
  EXPECT_EQ(*with_lib.last_commit_touching("lib/sub"), with_lib.id());
}

TEST_F(WorkingTreeTest, ExportsHeadWithTheChangesOnTop) {
  repo_.write("a.txt", "edited\n");
  repo_.write("tool.sh", "#!/bin/sh\n", /*executable=*/true);
  repo_.symlink("link", "a.txt");
  repo_.remove("gone.txt");
  repo_.write("gone.txt/inside.txt", "a directory where a file was\n");
  repo_.write("fresh/f.txt", "f\n");
  repo_.write("x.log", "ignored\n");
  const WorkingTree tree = open();
  const std::string out = dir_.path() + "/out";
  const Status exported = tree.export_tree("", out);
  ASSERT_TRUE(exported.ok()) << exported.error().to_string();
  EXPECT_EQ(slurp(out + "/a.txt"), "edited\n");
  EXPECT_EQ(slurp(out + "/lib/l.txt"), "l\n");
  EXPECT_EQ(slurp(out + "/gone.txt/inside.txt"), "a directory where a file was\n");
  EXPECT_EQ(fs::read_symlink(out + "/link"), "a.txt");
  struct stat info {};
  ASSERT_EQ(::stat((out + "/tool.sh").c_str(), &info), 0);
  EXPECT_NE(info.st_mode & S_IXUSR, 0u);
  EXPECT_FALSE(fs::exists(out + "/x.log"));
  EXPECT_NE(slurp(out + "/.git_commit").find("commit " + sha_), std::string::npos);
  // A slice that only exists in the working tree.
  ASSERT_TRUE(tree.export_tree("fresh", dir_.path() + "/slice").ok());
  EXPECT_EQ(slurp(dir_.path() + "/slice/f.txt"), "f\n");
}

TEST_F(WorkingTreeTest, TheReaderAnswersForTheTreeAndPassesCommitsOn) {
  repo_.write("a.txt", "edited\n");
  const WorkingTree tree = open();
  GitSourceReader commits([&](const std::string&) { return std::optional(repo_.path()); });
  WorkingTreeReader reader(commits);
  reader.add("repo", tree);
  EXPECT_EQ(**reader.read_file("repo", tree.id(), "a.txt"), "edited\n");
  EXPECT_EQ(**reader.read_file("repo", sha_, "a.txt"), "a\n");
  EXPECT_EQ(*reader.last_commit_touching("repo", tree.id(), "a.txt"), tree.id());
  const auto changed = reader.changed_paths("repo", tree.id());
  ASSERT_TRUE(changed.ok() && changed->has_value());
  EXPECT_NE(std::find((*changed)->begin(), (*changed)->end(), "a.txt"), (*changed)->end());
}

}  // namespace
}  // namespace testlooper::git
