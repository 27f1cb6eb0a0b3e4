// Repository::commit_edits and commits_between against real repositories made with the git CLI.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "git/git.h"
#include "git_fixture.h"

namespace testlooper::git {
namespace {

using fixtures::GitFixtureRepo;
using fixtures::TempDir;

Repository open_or_die(const std::string& path) {
  auto repo = Repository::open(path);
  if (!repo.ok()) throw std::runtime_error(repo.error().to_string());
  return std::move(repo.value());
}

TEST(CommitEdits, ChangesOnlyTheGivenFilesAndMovesNoBranch) {
  TempDir tmp;
  GitFixtureRepo g(tmp.path() + "/r");
  g.write("a.yml", "a: 1 # keep\n");
  g.write("dir/b.yml", "b: 2\n");
  g.write("run.sh", "#!/bin/sh\n", true);
  const std::string parent = g.commit("first");
  Repository repo = open_or_die(g.path());
  auto sha = repo.commit_edits(parent, {{"dir/b.yml", "b: 3\n"}, {"run.sh", "#!/bin/sh\nexit 0\n"}},
                               "TestLooper", "testlooper@localhost", "Update pin x to y\n\nbody\n");
  ASSERT_TRUE(sha.ok()) << sha.error().to_string();
  EXPECT_EQ(g.head(), parent);  // no branch moved
  EXPECT_EQ(g.run({"diff", "--name-only", parent, *sha}), "dir/b.yml\nrun.sh\n");
  EXPECT_EQ(g.run({"show", *sha + ":dir/b.yml"}), "b: 3\n");
  EXPECT_EQ(g.run({"show", *sha + ":a.yml"}), "a: 1 # keep\n");
  // The executable bit stays.
  EXPECT_EQ(g.run({"ls-tree", *sha, "run.sh"}).substr(0, 6), "100755");
  auto info = repo.commit(*sha);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->parents, std::vector<std::string>{parent});
  EXPECT_EQ(info->author_name, "TestLooper");
  EXPECT_EQ(info->author_email, "testlooper@localhost");
  EXPECT_EQ(info->subject, "Update pin x to y");
  EXPECT_EQ(g.run({"fsck", "--no-progress", "--no-dangling"}), "");
}

TEST(CommitEdits, RefusesADirectoryAndAnUnknownParent) {
  TempDir tmp;
  GitFixtureRepo g(tmp.path() + "/r");
  g.write("dir/b.yml", "b: 2\n");
  const std::string parent = g.commit("first");
  Repository repo = open_or_die(g.path());
  EXPECT_FALSE(repo.commit_edits(parent, {{"dir", "x"}}, "T", "t@l", "m").ok());
  EXPECT_FALSE(repo.commit_edits(std::string(40, 'a'), {{"x", "x"}}, "T", "t@l", "m").ok());
}

TEST(CommitsBetween, CountsFirstToSecondAndNulloptWhenNotAnAncestor) {
  TempDir tmp;
  GitFixtureRepo g(tmp.path() + "/r");
  g.write("a", "1");
  const std::string one = g.commit("1");
  g.write("a", "2");
  g.commit("2");
  g.write("a", "3");
  const std::string three = g.commit("3");
  Repository repo = open_or_die(g.path());
  EXPECT_EQ(repo.commits_between(one, three).value(), std::optional<size_t>(2));
  EXPECT_EQ(repo.commits_between(three, three).value(), std::optional<size_t>(0));
  EXPECT_EQ(repo.commits_between(three, one).value(), std::nullopt);
}

}  // namespace
}  // namespace testlooper::git
