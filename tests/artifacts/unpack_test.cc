// unpack() against crafted archives (issue 10, item 1): only files, directories and confined
// symlinks land, only inside the destination, never through a link, never over an entry.
#include <gtest/gtest.h>
#include <unistd.h>

#include "artifacts/artifacts.h"
#include "artifacts/transfer.h"
#include "crafted_tar.h"
#include "temp_dir.h"

namespace testlooper::artifacts {
namespace {

using testing::CraftedEntry;
using testing::dir_entry;
using testing::file_entry;
using testing::hardlink_entry;
using testing::read_file;
using testing::symlink_entry;
using testing::TempDir;
using testing::write_crafted_archive;
using testing::write_file;

class UnpackTest : public ::testing::Test {
 protected:
  UnpackTest() { write_file(dir_ / "outside/secret", "original"); }

  // Unpacks a tar of `entries` into out/; its Status.
  Status unpack_entries(const std::vector<CraftedEntry>& entries, const UnpackOptions& options = {},
                        bool zip = false) {
    write_crafted_archive(dir_ / "crafted", entries, zip);
    return unpack(dir_ / "crafted", zip ? Format::kZip : Format::kTar, dir_ / "out", options);
  }

  std::string secret() const { return read_file(dir_ / "outside/secret"); }

  TempDir dir_;
};

TEST_F(UnpackTest, Unpack_RefusesAbsoluteHardLinkWithData) {
  const std::string target = (dir_ / "outside/secret").string();
  EXPECT_FALSE(
      unpack_entries({hardlink_entry("h", target, "pwned"), file_entry("h", "pwned")}).ok());
  EXPECT_EQ(secret(), "original");
  EXPECT_FALSE(fs::exists(dir_ / "out/h"));
}

TEST_F(UnpackTest, Unpack_RefusesRelativeHardLinkWithData) {
  EXPECT_FALSE(
      unpack_entries({hardlink_entry("h", "../outside/secret", "pwned"), file_entry("h", "pwned")})
          .ok());
  EXPECT_EQ(secret(), "original");
  // Even a link to a file inside the destination: hard links are never made.
  EXPECT_FALSE(unpack_entries({file_entry("a", "a"), hardlink_entry("b", "a", "")}).ok());
  EXPECT_EQ(fs::hard_link_count(dir_ / "out/a"), 1u);
}

TEST_F(UnpackTest, Unpack_RefusesSymlinksThatLeave) {
  EXPECT_FALSE(unpack_entries({symlink_entry("l", "../outside/secret")}).ok());
  EXPECT_FALSE(unpack_entries({symlink_entry("l2", (dir_ / "outside/secret").string())}).ok());
  EXPECT_FALSE(unpack_entries({symlink_entry("d/l3", "../../outside")}).ok());
  // Inside-pointing links cannot be chained out: ".." only leads a target.
  EXPECT_FALSE(unpack_entries({symlink_entry("b", "."), symlink_entry("l4", "b/b/../..")}).ok());
  for (const char* name : {"l", "l2", "d/l3", "l4"}) {
    EXPECT_FALSE(fs::exists(fs::symlink_status(dir_ / "out" / name))) << name;
  }
}

TEST_F(UnpackTest, Unpack_NeverWritesThroughASymlink) {
  // An in-tree link, then a file through it.
  EXPECT_FALSE(
      unpack_entries({dir_entry("sub"), symlink_entry("d", "sub"), file_entry("d/x", "x")}).ok());
  EXPECT_FALSE(fs::exists(dir_ / "out/sub/x"));
  // A link already in the destination (another artifact's), pointing out.
  fs::create_directories(dir_ / "out2");
  fs::create_symlink(dir_ / "outside", dir_ / "out2/lib");
  fs::create_symlink(dir_ / "outside/secret", dir_ / "out2/f");
  write_crafted_archive(dir_ / "t.tar", {file_entry("lib/secret", "pwned")});
  EXPECT_FALSE(unpack(dir_ / "t.tar", Format::kTar, dir_ / "out2").ok());
  write_crafted_archive(dir_ / "t.tar", {file_entry("f", "pwned")});
  EXPECT_FALSE(unpack(dir_ / "t.tar", Format::kTar, dir_ / "out2").ok());
  EXPECT_EQ(secret(), "original");
}

TEST_F(UnpackTest, Unpack_RefusesDevicesAndFifos) {
  CraftedEntry device{CraftedEntry::Kind::kCharDevice, "null", "", ""};
  EXPECT_FALSE(unpack_entries({device}).ok());
  CraftedEntry fifo{CraftedEntry::Kind::kFifo, "pipe", "", ""};
  EXPECT_FALSE(unpack_entries({fifo}).ok());
  EXPECT_FALSE(fs::exists(fs::symlink_status(dir_ / "out/null")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(dir_ / "out/pipe")));
}

TEST_F(UnpackTest, Unpack_RefusesDotDotAndAbsoluteNames) {
  EXPECT_FALSE(unpack_entries({file_entry("../outside/secret", "pwned")}).ok());
  EXPECT_FALSE(unpack_entries({file_entry("a/../../outside/secret", "pwned")}).ok());
  EXPECT_FALSE(unpack_entries({file_entry((dir_ / "outside/secret").string(), "pwned")}).ok());
  EXPECT_EQ(secret(), "original");
}

TEST_F(UnpackTest, Unpack_ARegularFileIsReplacedByNameNeverWrittenThrough) {
  // Artifacts of one build staged into one directory overlap (a stage's directory and the whole
  // output): the later file replaces the earlier one.
  EXPECT_TRUE(unpack_entries({file_entry("f", "first"), file_entry("f", "second")}).ok());
  EXPECT_EQ(read_file(dir_ / "out/f"), "second");
  // A hard link already in the destination to a file outside: its name is replaced, the file
  // outside is untouched.
  fs::create_directories(dir_ / "out3");
  fs::create_hard_link(dir_ / "outside/secret", dir_ / "out3/f");
  write_crafted_archive(dir_ / "t.tar", {file_entry("f", "pwned")});
  ASSERT_TRUE(unpack(dir_ / "t.tar", Format::kTar, dir_ / "out3").ok());
  EXPECT_EQ(read_file(dir_ / "out3/f"), "pwned");
  EXPECT_EQ(secret(), "original");
  // A directory of that name is not replaced by a file.
  EXPECT_FALSE(unpack_entries({dir_entry("g"), file_entry("g", "x")}).ok());
}

TEST_F(UnpackTest, Unpack_RefusesMoreBytesOrEntriesThanItsBudget) {
  UnpackOptions small;
  small.max_bytes = 1000;
  // One entry stating more than the budget is refused before anything is written.
  EXPECT_FALSE(unpack_entries({file_entry("big", std::string(2000, 'x'))}, small).ok());
  EXPECT_FALSE(fs::exists(dir_ / "out/big"));
  // Many small entries add up.
  EXPECT_FALSE(
      unpack_entries(
          {file_entry("a", std::string(600, 'a')), file_entry("b", std::string(600, 'b'))}, small)
          .ok());
  EXPECT_FALSE(fs::exists(dir_ / "out/b"));
  UnpackOptions few;
  few.max_entries = 2;
  EXPECT_FALSE(
      unpack_entries({file_entry("c", "c"), file_entry("d", "d"), file_entry("e", "e")}, few).ok());
  EXPECT_FALSE(fs::exists(dir_ / "out/e"));
}

TEST_F(UnpackTest, Unpack_RefusesAHugeStatedSize) {
  // A header claiming 1 TiB with no data behind it: refused by the budget, not by the disk.
  write_file(dir_ / "huge.tar", testing::tar_with_stated_size("huge", uint64_t{1} << 40));
  const Status status = unpack(dir_ / "huge.tar", Format::kTar, dir_ / "out");
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find("more than"), std::string::npos) << status.error().message;
  EXPECT_FALSE(fs::exists(dir_ / "out/huge"));
}

TEST_F(UnpackTest, Unpack_KeepsRelativeInTreeSymlinksOfBuilds) {
  CraftedEntry tool = file_entry("lib/libfoo.so.1", "ELF");
  tool.mode = 04755;  // setuid is dropped
  const Status status = unpack_entries({tool, symlink_entry("lib/libfoo.so", "libfoo.so.1"),
                                        symlink_entry("bin/foo", "../lib/libfoo.so.1"),
                                        symlink_entry("top", "./lib")});
  ASSERT_TRUE(status.ok()) << status.error().to_string();
  EXPECT_EQ(read_file(dir_ / "out/lib/libfoo.so"), "ELF");
  EXPECT_EQ(read_file(dir_ / "out/bin/foo"), "ELF");
  EXPECT_EQ(fs::read_symlink(dir_ / "out/lib/libfoo.so"), "libfoo.so.1");
  EXPECT_EQ(fs::status(dir_ / "out/lib/libfoo.so.1").permissions(), fs::perms(0755));
}

TEST_F(UnpackTest, Unpack_WithoutSymlinksRefusesEveryLink) {
  UnpackOptions records;
  records.symlinks = UnpackOptions::Symlinks::kNone;
  EXPECT_FALSE(unpack_entries({file_entry("a", "a"), symlink_entry("l", "a")}, records).ok());
  EXPECT_FALSE(fs::exists(fs::symlink_status(dir_ / "out/l")));
}

TEST_F(UnpackTest, Unpack_SourceTreesKeepAnyLinkButNeverWriteThroughIt) {
  UnpackOptions sources;
  sources.symlinks = UnpackOptions::Symlinks::kAny;
  const std::string out = (dir_ / "outside").string();
  ASSERT_TRUE(unpack_entries({symlink_entry("abs", out)}, sources).ok());
  EXPECT_EQ(fs::read_symlink(dir_ / "out/abs"), out);
  EXPECT_FALSE(
      unpack_entries({symlink_entry("o", out), file_entry("o/secret", "pwned")}, sources).ok());
  EXPECT_EQ(secret(), "original");
}

TEST_F(UnpackTest, ImportRunRecord_RefusesLinksAndLeavesNoRecord) {
  const Store store(dir_ / "store");
  const std::string target = (dir_ / "outside/secret").string();
  for (const std::vector<CraftedEntry>& record :
       {std::vector<CraftedEntry>{file_entry("log.txt", "log"),
                                  symlink_entry("artifacts/a", "../log.txt")},
        std::vector<CraftedEntry>{hardlink_entry("artifacts/h", target, "pwned")}}) {
    write_crafted_archive(dir_ / "record.tar", record);
    EXPECT_FALSE(import_run_record(store, "0123456789abcdef", dir_ / "record.tar").ok());
    EXPECT_FALSE(fs::exists(store.run_dir("0123456789abcdef")));
  }
  EXPECT_EQ(secret(), "original");
}

TEST_F(UnpackTest, Unpack_ZipFollowsTheSameRules) {
  EXPECT_FALSE(unpack_entries({file_entry("../outside/secret", "pwned")}, {}, true).ok());
  EXPECT_FALSE(unpack_entries({symlink_entry("l", "/etc")}, {}, true).ok());
  EXPECT_EQ(secret(), "original");
}

TEST_F(UnpackTest, Unpack_FilesArtifactThatIsALinkIsRefused) {
  fs::create_directories(dir_ / "store");
  fs::create_directory_symlink(dir_ / "outside", dir_ / "store/evil.files");
  EXPECT_FALSE(unpack(dir_ / "store/evil.files", Format::kFiles, dir_ / "out").ok());
  EXPECT_FALSE(fs::exists(dir_ / "out/secret"));
}

TEST(ArtifactStem, OnlyTheStoresOwnSpellingRoundTrips) {
  EXPECT_EQ(artifact_name_of_stem("@"), "");
  EXPECT_EQ(artifact_name_of_stem("%40"), "@");
  EXPECT_EQ(artifact_name_of_stem("a%2Fb"), "a/b");
  EXPECT_EQ(artifact_name_of_stem("lib.so"), "lib.so");
  for (const char* bad :
       {"a%zz", "a%", "a%4", "a%2f", "a%41", ".x", "a b", "a%00%", "", "x/y", "%"}) {
    EXPECT_FALSE(artifact_name_of_stem(bad).has_value()) << bad;
  }
  for (const std::string& name :
       std::vector<std::string>{"", "@", "a/b", ".hidden", "100%", std::string("n\0l", 3)}) {
    EXPECT_EQ(artifact_name_of_stem(artifact_file_stem(name)), name);
  }
}

TEST(ArtifactStem, BadStoredNameIsAnErrorNotAnAbort) {
  TempDir dir;
  Store store(dir / "store");
  write_file(dir / "store/builds/h/a%zz.tar", "");
  const Result<std::vector<StoredArtifact>> stored = store.build_artifacts("h");
  ASSERT_FALSE(stored.ok());
  EXPECT_NE(stored.error().message.find("a%zz.tar"), std::string::npos);
}

}  // namespace
}  // namespace testlooper::artifacts
