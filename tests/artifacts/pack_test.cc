#include <gtest/gtest.h>

#include "artifacts/artifacts.h"
#include "temp_dir.h"

namespace testlooper::artifacts {
namespace {

using testing::read_file;
using testing::TempDir;
using testing::write_file;

void make_tree(const fs::path& root) {
  write_file(root / "bin/tool", "#!/bin/sh\necho hi\n");
  fs::permissions(root / "bin/tool", fs::perms::owner_exec, fs::perm_options::add);
  write_file(root / "lib/a.so", "A");
  write_file(root / "lib/deep/b.so", "B");
  write_file(root / "notes.txt", "notes");
  fs::create_symlink("lib/a.so", root / "link.so");
}

class PackTest : public ::testing::TestWithParam<Format> {};

TEST_P(PackTest, RoundTripKeepsContentModesAndSymlinks) {
  TempDir dir;
  make_tree(dir / "src");
  ASSERT_TRUE(pack(dir / "src", {}, GetParam(), dir / "packed").ok());
  const Status status = unpack(dir / "packed", GetParam(), dir / "out");
  ASSERT_TRUE(status.ok()) << status.error().to_string();
  EXPECT_EQ(read_file(dir / "out/lib/deep/b.so"), "B");
  EXPECT_EQ(read_file(dir / "out/notes.txt"), "notes");
  EXPECT_TRUE(fs::is_symlink(dir / "out/link.so"));
  EXPECT_EQ(fs::read_symlink(dir / "out/link.so"), "lib/a.so");
  EXPECT_NE(fs::status(dir / "out/bin/tool").permissions() & fs::perms::owner_exec,
            fs::perms::none);
}

TEST_P(PackTest, IncludeAndExcludePatternsSelectFiles) {
  TempDir dir;
  make_tree(dir / "src");
  const Selection selection{{"*.so"}, {"lib/deep/*"}};
  ASSERT_TRUE(pack(dir / "src", selection, GetParam(), dir / "packed").ok());
  ASSERT_TRUE(unpack(dir / "packed", GetParam(), dir / "out").ok());
  EXPECT_TRUE(fs::exists(dir / "out/lib/a.so"));
  EXPECT_TRUE(fs::is_symlink(dir / "out/link.so"));
  EXPECT_FALSE(fs::exists(dir / "out/lib/deep/b.so"));
  EXPECT_FALSE(fs::exists(dir / "out/notes.txt"));
}

TEST_P(PackTest, MissingSourceDirPacksNothing) {
  TempDir dir;
  ASSERT_TRUE(pack(dir / "absent", {}, GetParam(), dir / "packed").ok());
  ASSERT_TRUE(unpack(dir / "packed", GetParam(), dir / "out").ok());
  EXPECT_TRUE(fs::is_empty(dir / "out"));
}

INSTANTIATE_TEST_SUITE_P(Formats, PackTest,
                         ::testing::Values(Format::kTar, Format::kZip, Format::kFiles));

TEST(Pack, ParseFormatKnowsTheThreeWords) {
  EXPECT_EQ(*parse_format("Tar"), Format::kTar);
  EXPECT_EQ(*parse_format("Zip"), Format::kZip);
  EXPECT_EQ(*parse_format("Files"), Format::kFiles);
  EXPECT_FALSE(parse_format("tgz").ok());
}

TEST(Unpack, RefusesEntriesThatEscapeTheDestination) {
  TempDir dir;
  write_file(dir / "src/x", "x");
  ASSERT_TRUE(pack(dir / "src", {}, Format::kTar, dir / "good.tar").ok());
  // A tar whose only entry is named "../x", made by editing the name field of a good one.
  std::string tar = read_file(dir / "good.tar");
  ASSERT_EQ(tar.substr(0, 1), "x");
  tar.replace(0, 4, std::string("../x", 4));
  // Fix the header checksum (bytes 148..155) so only the path check can refuse it.
  for (int i = 148; i < 156; ++i) tar[i] = ' ';
  unsigned sum = 0;
  for (int i = 0; i < 512; ++i) sum += static_cast<unsigned char>(tar[i]);
  char field[8];
  snprintf(field, sizeof field, "%06o", sum);
  tar.replace(148, 7, std::string(field, 6) + '\0');
  write_file(dir / "bad.tar", tar);
  EXPECT_FALSE(unpack(dir / "bad.tar", Format::kTar, dir / "out/inner").ok());
  EXPECT_FALSE(fs::exists(dir / "out/x"));
}

}  // namespace
}  // namespace testlooper::artifacts
