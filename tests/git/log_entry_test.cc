#include <gtest/gtest.h>

#include <string>

#include "git/git.h"
#include "git_fixture.h"

namespace testlooper::git {
namespace {

using fixtures::GitFixtureRepo;
using fixtures::TempDir;

// Commits `message` verbatim (no whitespace cleanup); returns the sha.
std::string commit_verbatim(GitFixtureRepo& fixture, const std::string& message,
                            const std::string& date = "") {
  std::vector<std::string> args = {
      "commit", "-q",   "--allow-empty", "--allow-empty-message", "--cleanup=verbatim",
      "-m",     message};
  if (!date.empty()) args.push_back("--date=" + date);
  fixture.run(args);
  return fixture.head();
}

// Expects log_entry(sha) to equal `git log -n 1 sha` byte for byte.
void expect_same_as_git(GitFixtureRepo& fixture, const std::string& sha) {
  auto repo = Repository::open(fixture.path());
  ASSERT_TRUE(repo.ok()) << repo.error().to_string();
  auto entry = repo->log_entry(sha);
  ASSERT_TRUE(entry.ok()) << entry.error().to_string();
  EXPECT_EQ(*entry, fixture.run({"log", "-n", "1", sha}));
}

TEST(LogEntry, SimpleCommitMatchesGitLog) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  fixture.write("a.txt", "a");
  const std::string sha = fixture.commit("Add a.txt");
  auto repo = Repository::open(fixture.path());
  ASSERT_TRUE(repo.ok());
  EXPECT_EQ(*repo->log_entry(sha), "commit " + sha +
                                       "\nAuthor: Ada Author <ada@example.com>\n"
                                       "Date:   Tue Nov 14 23:15:20 2023 +0100\n\n"
                                       "    Add a.txt\n");
  expect_same_as_git(fixture, sha);
}

TEST(LogEntry, ParagraphsTrailingWhitespaceAndTabsMatchGitLog) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  const std::string sha = commit_verbatim(
      fixture,
      "\n\nSubject after blank lines   \n\nBody\twith a tab\n  indented\t \n\t\tleading tabs\n"
      "ab\tcd\tefghijklm\tn\n\n\n   \nlast line\n\n\n");
  expect_same_as_git(fixture, sha);
}

TEST(LogEntry, NonAsciiAndControlCharactersBeforeTabsMatchGitLog) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  const std::string sha =
      commit_verbatim(fixture, "h\xc3\xa9llo\tw\xc3\xb6rld\n\na\x01\tb\tc\n\xe2\x82\xac\tend");
  expect_same_as_git(fixture, sha);
}

TEST(LogEntry, TimeZonesMatchGitLog) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  for (const std::string date :
       {"@1700000000 -0530", "@946684799 +0000", "@1234567890 +1245", "@86400 -1200"}) {
    expect_same_as_git(fixture, commit_verbatim(fixture, "at " + date, date));
  }
}

TEST(LogEntry, EmptyMessageMatchesGitLog) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  expect_same_as_git(fixture, commit_verbatim(fixture, ""));
  expect_same_as_git(fixture, commit_verbatim(fixture, "\n \n\t\n"));
}

TEST(LogEntry, MergeCommitHasMergeLineLikeGitLog) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  fixture.commit("root");
  fixture.branch("side");
  fixture.checkout("side");
  fixture.write("s.txt", "s");
  fixture.commit("side");
  fixture.checkout("main");
  fixture.write("m.txt", "m");
  fixture.commit("main");
  const std::string merge = fixture.merge("side", "Merge branch 'side'\n\nDetails.");
  expect_same_as_git(fixture, merge);
}

// A fast-import stream: a root commit with `files` files, one commit on each of "side" and
// "main", and a merge of side into main.
std::string merge_history_stream(int files) {
  const std::string committer = "committer Ada Author <ada@example.com> 1700000000 +0100\n";
  std::string stream = "commit refs/heads/main\nmark :1\n" + committer + "data 5\nroot\n";
  for (int i = 0; i < files; ++i) {
    const std::string content = std::to_string(i) + "\n";
    stream += "M 100644 inline f" + std::to_string(i) + "\ndata " + std::to_string(content.size()) +
              "\n" + content;
  }
  stream += "\ncommit refs/heads/side\nmark :2\n" + committer + "data 5\nside\nfrom :1\n";
  stream += "M 100644 inline side.txt\ndata 2\ns\n\n";
  stream += "commit refs/heads/main\nmark :3\n" + committer + "data 5\nmain\nfrom :1\n";
  stream += "M 100644 inline main.txt\ndata 2\nm\n\n";
  stream += "commit refs/heads/main\n" + committer + "data 11\nMerge side\nfrom :3\nmerge :2\n\n";
  return stream;
}

TEST(LogEntry, MergeLineAbbreviatesLikeGitInALargePackedRepository) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  fixture.run_with_input({"fast-import", "--quiet"}, merge_history_stream(17000));
  // Over 2^14 packed objects: git's automatic abbreviation is 8 characters, not 7.
  ASSERT_EQ(fixture.run({"rev-parse", "--short", "main~1"}).size(), 8u + 1);
  expect_same_as_git(fixture, "main");
  fixture.run({"config", "core.abbrev", "12"});
  expect_same_as_git(fixture, "main");
  fixture.run({"config", "core.abbrev", "no"});
  expect_same_as_git(fixture, "main");
}

TEST(LogEntry, UnknownCommitIsAnError) {
  TempDir tmp;
  GitFixtureRepo fixture(tmp.path() + "/repo");
  fixture.commit("root");
  auto repo = Repository::open(fixture.path());
  ASSERT_TRUE(repo.ok());
  EXPECT_FALSE(repo->log_entry("HEAD~3").ok());
}

}  // namespace
}  // namespace testlooper::git
