#include <gtest/gtest.h>

#include "artifacts/artifacts.h"
#include "temp_dir.h"

namespace testlooper::artifacts {
namespace {

using testing::read_file;
using testing::TempDir;
using testing::write_file;

TEST(Store, PutThenFindAndUnpackByHashAndName) {
  TempDir dir;
  Store store(dir / "store");
  write_file(dir / "out/bin/x", "x1");
  ASSERT_TRUE(store.put_build_artifact("h1", "bin", dir / "out", {}, Format::kTar).ok());
  const std::optional<StoredArtifact> found = store.find_build_artifact("h1", "bin");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->format, Format::kTar);
  ASSERT_TRUE(unpack(found->path, found->format, dir / "dep").ok());
  EXPECT_EQ(read_file(dir / "dep/bin/x"), "x1");
  EXPECT_FALSE(store.find_build_artifact("h1", "other").has_value());
  EXPECT_FALSE(store.find_build_artifact("h2", "bin").has_value());
}

TEST(Store, RepublishingKeepsTheFirstArtifact) {
  TempDir dir;
  Store store(dir / "store");
  write_file(dir / "out/f", "first");
  ASSERT_TRUE(store.put_build_artifact("h", "", dir / "out", {}, Format::kFiles).ok());
  write_file(dir / "out/f", "second");
  ASSERT_TRUE(store.put_build_artifact("h", "", dir / "out", {}, Format::kFiles).ok());
  const std::optional<StoredArtifact> found = store.find_build_artifact("h", "");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(read_file(found->path / "f"), "first");
}

TEST(Store, ListsArtifactsWithOddNames) {
  TempDir dir;
  Store store(dir / "store");
  for (const std::string name : {"", "a/b", "@", ".hidden", "plain"}) {
    ASSERT_TRUE(store.put_build_artifact("h", name, dir / "none", {}, Format::kZip).ok());
  }
  std::vector<std::string> names;
  const Result<std::vector<StoredArtifact>> stored = store.build_artifacts("h");
  ASSERT_TRUE(stored.ok());
  for (const StoredArtifact& artifact : *stored) names.push_back(artifact.name);
  EXPECT_EQ(names, (std::vector<std::string>{"", ".hidden", "@", "a/b", "plain"}));
}

TEST(Store, LeavesNoTemporariesAndCompletesBuilds) {
  TempDir dir;
  Store store(dir / "store");
  EXPECT_FALSE(store.is_build_complete("h"));
  ASSERT_TRUE(store.put_build_artifact("h", "", dir / "none", {}, Format::kTar).ok());
  ASSERT_TRUE(store.mark_build_complete("h", "{}").ok());
  EXPECT_TRUE(store.is_build_complete("h"));
  EXPECT_TRUE(fs::is_empty(dir / "store/tmp"));
}

TEST(Store, CommitRunMovesTheRecordOnceById) {
  TempDir dir;
  Store store(dir / "store");
  Result<fs::path> temp = store.make_temp_dir("run");
  ASSERT_TRUE(temp.ok());
  write_file(*temp / "log.txt", "log");
  Result<fs::path> committed = store.commit_run(*temp, "r1");
  ASSERT_TRUE(committed.ok());
  EXPECT_EQ(*committed, store.run_dir("r1"));
  EXPECT_EQ(read_file(store.run_dir("r1") / "log.txt"), "log");
  Result<fs::path> again = store.make_temp_dir("run");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(store.commit_run(*again, "r1").ok());
}

TEST(Store, WriteFileAtomicallyReplacesWholeFiles) {
  TempDir dir;
  ASSERT_TRUE(write_file_atomically(dir / "a/b.json", "one").ok());
  ASSERT_TRUE(write_file_atomically(dir / "a/b.json", "two").ok());
  EXPECT_EQ(read_file(dir / "a/b.json"), "two");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir / "a"), fs::directory_iterator()), 1);
}

}  // namespace
}  // namespace testlooper::artifacts
