#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>
#include <vector>

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

std::string touching(const Repository& repo, const std::string& sha, const std::string& path) {
  auto answer = repo.last_commit_touching(sha, path);
  if (!answer.ok()) return "error: " + answer.error().to_string();
  return *answer;
}

// The commits `git log HEAD -- path` lists.
std::set<std::string> git_touching(GitFixtureRepo& fixture, const std::string& path) {
  std::istringstream listing(fixture.run({"log", "--format=%H", "HEAD", "--", path}));
  std::set<std::string> touching;
  for (std::string sha; std::getline(listing, sha);) touching.insert(sha);
  return touching;
}

TEST(LastCommitTouching, FileAndDirectorySkipUnrelatedCommits) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  fixture.write("dir/sub/x.txt", "1");
  fixture.write("other.txt", "1");
  const std::string root = fixture.commit("root");
  const std::string b = (fixture.write("other.txt", "2"), fixture.commit("b"));
  const std::string c = (fixture.write("dir/sub/x.txt", "2"), fixture.commit("c"));
  const std::string d = (fixture.write("other.txt", "3"), fixture.commit("d"));
  const std::string e = (fixture.write("top.txt", "t"), fixture.commit("e"));
  Repository repo = open_or_die(fixture.path());
  EXPECT_EQ(touching(repo, e, "dir/sub/x.txt"), c);
  EXPECT_EQ(touching(repo, e, "dir"), c);
  EXPECT_EQ(touching(repo, e, "dir/"), c);
  EXPECT_EQ(touching(repo, e, "dir/sub"), c);
  EXPECT_EQ(touching(repo, e, "other.txt"), d);
  EXPECT_EQ(touching(repo, e, "top.txt"), e);
  EXPECT_EQ(touching(repo, b, "dir/sub/x.txt"), root);
  EXPECT_EQ(touching(repo, "HEAD~1", "other.txt"), d);
  EXPECT_EQ(touching(repo, e, ""), e);
}

TEST(LastCommitTouching, NeverPresentPathAnswersRoot) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  const std::string root = fixture.commit("root");
  fixture.write("a.txt", "a");
  const std::string sha = fixture.commit("a");
  Repository repo = open_or_die(fixture.path());
  EXPECT_EQ(touching(repo, sha, "missing/path"), root);
}

TEST(LastCommitTouching, DeletionAndModeChangeCount) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  fixture.write("run.sh", "echo hi");
  fixture.write("gone/file.txt", "x");
  fixture.commit("root");
  fixture.remove("gone");
  const std::string deleted = fixture.commit("delete");
  fixture.write("run.sh", "echo hi", /*executable=*/true);
  const std::string chmodded = fixture.commit("chmod");
  const std::string later = fixture.commit("unrelated");
  Repository repo = open_or_die(fixture.path());
  EXPECT_EQ(touching(repo, later, "gone/file.txt"), deleted);
  EXPECT_EQ(touching(repo, later, "gone"), deleted);
  EXPECT_EQ(touching(repo, later, "run.sh"), chmodded);
}

TEST(LastCommitTouching, MergeBringingAChangeIsAttributedToTheMerge) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  fixture.write("lib/x.txt", "1");
  const std::string root = fixture.commit("root");
  fixture.branch("side");
  fixture.checkout("side");
  fixture.write("lib/x.txt", "2");
  fixture.commit("side change");
  fixture.checkout("main");
  fixture.write("app.txt", "a");
  fixture.commit("main change");
  const std::string merge = fixture.merge("side", "merge");
  Repository repo = open_or_die(fixture.path());
  EXPECT_EQ(touching(repo, merge, "lib"), merge);
  EXPECT_EQ(touching(repo, merge + "~1", "lib"), root);
}

TEST(LastCommitTouching, MemoisedAnswersAgreeWithGitInEveryCallOrder) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  std::vector<std::string> shas;
  for (int i = 0; i < 24; ++i) {
    fixture.write("f" + std::to_string(i % 3) + ".txt", std::to_string(i));
    if (i % 5 == 0) fixture.write("d/sub" + std::to_string(i % 2) + "/x.txt", std::to_string(i));
    shas.push_back(fixture.commit("c" + std::to_string(i)));
  }
  const std::vector<std::string> paths = {"f0.txt", "f1.txt", "f2.txt",
                                          "d",      "d/sub0", "d/sub1/x.txt"};
  Repository oldest_first = open_or_die(fixture.path());
  Repository newest_first = open_or_die(fixture.path());
  for (const std::string& path : paths) {
    // On linear history, git's answer at commit i is the newest touching commit at or before i,
    // or (our convention) the root when there is none.
    const std::set<std::string> touched = git_touching(fixture, path);
    std::vector<std::string> expected;
    std::string answer = shas[0];
    for (const std::string& sha : shas) {
      if (touched.count(sha) != 0) answer = sha;
      expected.push_back(answer);
    }
    for (size_t i = 0; i < shas.size(); ++i) {
      const size_t j = shas.size() - 1 - i;
      EXPECT_EQ(touching(oldest_first, shas[i], path), expected[i]) << path << " at " << i;
      EXPECT_EQ(touching(newest_first, shas[j], path), expected[j]) << path << " at " << j;
    }
  }
}

TEST(LastCommitTouching, UnknownCommitIsAnError) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  fixture.commit("root");
  Repository repo = open_or_die(fixture.path());
  EXPECT_FALSE(repo.last_commit_touching("0000000000000000000000000000000000000001", "a").ok());
}

}  // namespace
}  // namespace testlooper::git
