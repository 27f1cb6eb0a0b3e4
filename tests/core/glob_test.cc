#include "core/glob.h"

#include <gtest/gtest.h>

namespace testlooper {
namespace {

TEST(GlobMatch, StarCrossesSlashes) {
  EXPECT_TRUE(glob_match("HEAD/src/*", "HEAD/src/a/b.cc"));
  EXPECT_TRUE(glob_match("*", "build/linux"));
  EXPECT_FALSE(glob_match("test/*", "build/linux"));
  EXPECT_TRUE(glob_match("t?st", "test"));
  EXPECT_TRUE(glob_match("[ab]x", "bx"));
}

}  // namespace
}  // namespace testlooper
