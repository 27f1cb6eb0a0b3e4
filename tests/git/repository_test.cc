#include <gtest/gtest.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "git/git.h"
#include "git_fixture.h"

namespace testlooper::git {
namespace {

using fixtures::GitFixtureRepo;
using fixtures::TempDir;
using Paths = std::vector<std::string>;

std::string trimmed(std::string text) {
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

Repository open_or_die(const std::string& path) {
  auto repo = Repository::open(path);
  if (!repo.ok()) throw std::runtime_error(repo.error().to_string());
  return std::move(repo.value());
}

TEST(Repository, OpenMissingDirectoryFailsNamingIt) {
  TempDir tmp;
  auto repo = Repository::open(tmp.path() + "/absent");
  ASSERT_FALSE(repo.ok());
  EXPECT_EQ(repo.error().where, tmp.path() + "/absent");
}

TEST(Repository, OpenDoesNotSearchParentDirectories) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  fixture.write("src/a.txt", "a");
  fixture.commit("one");
  EXPECT_FALSE(Repository::open(fixture.path() + "/src").ok());
}

TEST(Repository, OpenBareRepository) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  fixture.write("a.txt", "a");
  const std::string sha = fixture.commit("one");
  fixture.run({"clone", "-q", "--bare", fixture.path(), tmp.path() + "/bare.git"});
  Repository repo = open_or_die(tmp.path() + "/bare.git");
  EXPECT_EQ(*repo.resolve("main"), sha);
}

TEST(Repository, ResolveHeadBranchShortShaAndAncestry) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  const std::string first = fixture.commit("one");
  const std::string second = fixture.commit("two");
  fixture.branch("feature/x", first);
  const std::string third = fixture.commit("three");
  Repository repo = open_or_die(fixture.path());
  EXPECT_EQ(*repo.resolve("HEAD"), third);
  EXPECT_EQ(*repo.resolve("main"), third);
  EXPECT_EQ(*repo.resolve("feature/x"), first);
  EXPECT_EQ(*repo.resolve(second.substr(0, 8)), second);
  EXPECT_EQ(*repo.resolve(second), second);
  EXPECT_EQ(*repo.resolve("HEAD~2"), first);
}

TEST(Repository, ResolveAnnotatedTagPeelsToCommit) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  const std::string sha = fixture.commit("one");
  fixture.run({"tag", "-a", "v1", "-m", "release"});
  Repository repo = open_or_die(fixture.path());
  EXPECT_EQ(*repo.resolve("v1"), sha);
}

TEST(Repository, ResolveBadRevisionNamesIt) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  fixture.write("a.txt", "a");
  fixture.commit("one");
  Repository repo = open_or_die(fixture.path());
  for (const std::string rev :
       {"no-such-branch", "HEAD~5", "0123456789abcdef0123456789abcdef01234567", "HEAD:a.txt", ""}) {
    auto sha = repo.resolve(rev);
    ASSERT_FALSE(sha.ok()) << rev;
    EXPECT_NE(sha.error().message.find("'" + rev + "'"), std::string::npos) << sha.error().message;
    EXPECT_EQ(sha.error().where, fixture.path());
  }
}

TEST(Repository, CommitInfoMatchesGit) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  const std::string parent = fixture.commit("root");
  const std::string sha = fixture.commit("Subject line  \n\nBody text.\n");
  Repository repo = open_or_die(fixture.path());
  auto info = repo.commit("HEAD");
  ASSERT_TRUE(info.ok()) << info.error().to_string();
  EXPECT_EQ(info->sha, sha);
  EXPECT_EQ(info->parents, Paths{parent});
  EXPECT_EQ(info->author_name, "Ada Author");
  EXPECT_EQ(info->author_email, "ada@example.com");
  EXPECT_EQ(std::to_string(info->author_time), trimmed(fixture.run({"log", "-1", "--format=%at"})));
  EXPECT_EQ(info->subject, "Subject line");
  EXPECT_EQ(info->message, "Subject line\n\nBody text.\n");
  EXPECT_TRUE(repo.commit(parent)->parents.empty());
}

TEST(Repository, CommitInfoIsUtf8WhateverEncodingTheCommitNames) {
  // As `git log` shows them: a message and an author written in the encoding the commit names
  // (its "encoding" header, from i18n.commitEncoding) are read as UTF-8; with none named, or one
  // iconv does not know, the bytes are kept as they are.
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  fixture.commit("root");
  const std::string tree = trimmed(fixture.run({"rev-parse", "HEAD^{tree}"}));
  // A commit object written by hand: `git commit` would re-encode a message that is not UTF-8.
  auto make = [&](const std::string& header, const std::string& author,
                  const std::string& message) {
    const std::string file = tmp.path() + "/object";
    std::ofstream(file, std::ios::binary)
        << "tree " << tree << "\nauthor " << author << " <a@example.com> 1700000000 +0000\n"
        << "committer C <c@example.com> 1700000000 +0000\n"
        << header << "\n"
        << message;
    return trimmed(fixture.run({"hash-object", "-t", "commit", "-w", file}));
  };
  Repository repo = open_or_die(fixture.path());
  const std::string latin =
      make("encoding ISO-8859-1\n", "J\xf6rg", "Caf\xe9 au lait\n\nd\xe9j\xe0 vu\n");
  auto info = repo.commit(latin);
  ASSERT_TRUE(info.ok()) << info.error().to_string();
  EXPECT_EQ(info->author_name, "J\xc3\xb6rg");
  EXPECT_EQ(info->subject, "Caf\xc3\xa9 au lait");
  EXPECT_EQ(info->message, "Caf\xc3\xa9 au lait\n\nd\xc3\xa9j\xc3\xa0 vu\n");
  EXPECT_EQ(info->subject, trimmed(fixture.run({"log", "-1", "--format=%s", latin})));

  info = repo.commit(make("", "Ada", "na\xefve \xff\n"));
  ASSERT_TRUE(info.ok()) << info.error().to_string();
  EXPECT_EQ(info->subject, "na\xefve \xff");
  info = repo.commit(make("encoding X-NO-SUCH-ENCODING\n", "Ada", "caf\xe9\n"));
  ASSERT_TRUE(info.ok()) << info.error().to_string();
  EXPECT_EQ(info->subject, "caf\xe9");
  info = repo.commit(make("encoding UTF-8\n", "Ada", "caf\xc3\xa9\n"));
  ASSERT_TRUE(info.ok()) << info.error().to_string();
  EXPECT_EQ(info->subject, "caf\xc3\xa9");
}

TEST(Repository, ListFilesIncludesNestedDirectoriesAndSymlinksSorted) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  fixture.write("z.txt", "z");
  fixture.write("a/b/c/deep.txt", "deep");
  fixture.write("a/b.txt", "b");
  fixture.write("a-b.txt", "dash");
  fixture.symlink("link", "z.txt");
  const std::string sha = fixture.commit("files");
  Repository repo = open_or_die(fixture.path());
  auto files = repo.list_files(sha);
  ASSERT_TRUE(files.ok()) << files.error().to_string();
  EXPECT_EQ(*files, (Paths{"a-b.txt", "a/b.txt", "a/b/c/deep.txt", "link", "z.txt"}));
}

TEST(Repository, ListFilesOfEmptyTreeIsEmpty) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  const std::string sha = fixture.commit("empty");
  Repository repo = open_or_die(fixture.path());
  EXPECT_TRUE(repo.list_files(sha)->empty());
}

TEST(Repository, ReadFilePresentAbsentAndDirectory) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  fixture.write("dir/file.txt", std::string("line\n\0binary", 12));
  const std::string first = fixture.commit("one");
  fixture.write("dir/file.txt", "changed");
  fixture.commit("two");
  Repository repo = open_or_die(fixture.path());
  EXPECT_EQ(*repo.read_file(first, "dir/file.txt"), std::string("line\n\0binary", 12));
  EXPECT_EQ(*repo.read_file("HEAD", "dir/file.txt"), "changed");
  EXPECT_EQ(*repo.read_file("HEAD", "dir/absent.txt"), std::nullopt);
  EXPECT_EQ(*repo.read_file("HEAD", "dir"), std::nullopt);
  EXPECT_EQ(*repo.read_file("HEAD", "dir/file.txt/more"), std::nullopt);
  EXPECT_EQ(*repo.read_file("HEAD", ""), std::nullopt);
  EXPECT_FALSE(repo.read_file("nope", "dir/file.txt").ok());
}

TEST(Repository, ChangedPathsOfRootIsNullopt) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  fixture.write("a.txt", "a");
  const std::string sha = fixture.commit("root");
  Repository repo = open_or_die(fixture.path());
  auto changed = repo.changed_paths(sha);
  ASSERT_TRUE(changed.ok()) << changed.error().to_string();
  EXPECT_EQ(*changed, std::nullopt);
}

TEST(Repository, ChangedPathsListsModifiedAddedDeletedAndBothSidesOfRename) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  fixture.write("keep.txt", "keep");
  fixture.write("modify.txt", "old");
  fixture.write("delete/me.txt", "bye");
  fixture.write("old_name.txt", "moving content");
  fixture.commit("root");
  fixture.write("modify.txt", "new");
  fixture.write("add/new.txt", "hi");
  fixture.remove("delete");
  fixture.remove("old_name.txt");
  fixture.write("new_name.txt", "moving content");
  const std::string sha = fixture.commit("changes");
  Repository repo = open_or_die(fixture.path());
  auto changed = repo.changed_paths(sha);
  ASSERT_TRUE(changed.ok()) << changed.error().to_string();
  EXPECT_EQ(**changed,
            (Paths{"add/new.txt", "delete/me.txt", "modify.txt", "new_name.txt", "old_name.txt"}));
  EXPECT_EQ(**repo.changed_paths(fixture.commit("empty")), Paths{});
}

TEST(Repository, ChangedPathsAgreeWithGitDiffTree) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  fixture.write("same/deep/a.txt", "same");
  fixture.write("becomes_dir", "file");
  fixture.write("becomes_file/x.txt", "x");
  fixture.write("mode.sh", "echo");
  fixture.symlink("link", "same");
  fixture.write("nested/keep/k.txt", "k");
  fixture.write("nested/drop/d1.txt", "d1");
  fixture.write("nested/drop/more/d2.txt", "d2");
  fixture.commit("root");
  fixture.remove("becomes_dir");
  fixture.write("becomes_dir/inner/y.txt", "y");
  fixture.remove("becomes_file");
  fixture.write("becomes_file", "now a file");
  fixture.write("mode.sh", "echo", /*executable=*/true);
  fixture.remove("link");
  fixture.symlink("link", "nested");
  fixture.remove("nested/drop");
  fixture.write("nested/new/n.txt", "n");
  const std::string sha = fixture.commit("reshape");
  std::istringstream listing(
      fixture.run({"diff-tree", "-r", "--no-renames", "--name-only", sha + "~1", sha}));
  Paths expected;
  for (std::string line; std::getline(listing, line);) expected.push_back(line);
  Repository repo = open_or_die(fixture.path());
  EXPECT_EQ(**repo.changed_paths(sha), expected);
  EXPECT_EQ(expected.size(), 9u);
}

TEST(Repository, ChangedPathsOfMergeIsAgainstFirstParent) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  fixture.write("base.txt", "base");
  fixture.commit("root");
  fixture.branch("side");
  fixture.write("main_only.txt", "m");
  fixture.commit("main work");
  fixture.checkout("side");
  fixture.write("side/a.txt", "s");
  fixture.commit("side work");
  fixture.checkout("main");
  const std::string merge = fixture.merge("side", "merge side");
  Repository repo = open_or_die(fixture.path());
  EXPECT_EQ(**repo.changed_paths(merge), Paths{"side/a.txt"});
}

TEST(Repository, BranchesListsLocalBranchesSorted) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  const std::string first = fixture.commit("one");
  fixture.branch("feature/x");
  const std::string second = fixture.commit("two");
  fixture.run({"tag", "not-a-branch"});
  Repository repo = open_or_die(fixture.path());
  auto branches = repo.branches();
  ASSERT_TRUE(branches.ok()) << branches.error().to_string();
  ASSERT_EQ(branches->size(), 2u);
  EXPECT_EQ((*branches)[0].name, "feature/x");
  EXPECT_EQ((*branches)[0].sha, first);
  EXPECT_EQ((*branches)[1].name, "main");
  EXPECT_EQ((*branches)[1].sha, second);
}

TEST(Repository, FirstParentHistoryFollowsFirstParentAcrossMerge) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  const std::string a = fixture.commit("a");
  const std::string b = fixture.commit("b");
  fixture.branch("side");
  fixture.checkout("side");
  fixture.commit("s1");
  fixture.commit("s2");
  fixture.checkout("main");
  const std::string c = fixture.commit("c");
  const std::string m = fixture.merge("side", "merge");
  Repository repo = open_or_die(fixture.path());
  EXPECT_EQ(*repo.first_parent_history(m, 100), (Paths{m, c, b, a}));
  EXPECT_EQ(*repo.first_parent_history(m, 2), (Paths{m, c}));
  EXPECT_EQ(*repo.first_parent_history(m, 0), Paths{});
  EXPECT_EQ(*repo.first_parent_history(a, 5), Paths{a});
  EXPECT_FALSE(repo.first_parent_history("nope", 5).ok());
}

TEST(Repository, MoveKeepsTheOpenRepository) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  const std::string sha = fixture.commit("one");
  Repository first = open_or_die(fixture.path());
  Repository second = std::move(first);
  EXPECT_EQ(*second.resolve("HEAD"), sha);
}

}  // namespace
}  // namespace testlooper::git
