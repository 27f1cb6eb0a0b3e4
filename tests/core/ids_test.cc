#include "core/ids.h"

#include <gtest/gtest.h>

#include <string>

namespace testlooper {
namespace {

TEST(Ids, RunIdsAreSixteenLowercaseHexDigits) {
  EXPECT_TRUE(is_run_id("0123456789abcdef"));
  EXPECT_FALSE(is_run_id("0123456789ABCDEF"));
  EXPECT_FALSE(is_run_id("0123456789abcde"));
  EXPECT_FALSE(is_run_id("..%2F..%2Fx"));
  EXPECT_FALSE(is_run_id(std::string("0123456789abcde\0", 16)));
  EXPECT_FALSE(is_run_id("../../etc/passwd"));
}

TEST(Ids, IdentityHashesAndCommitShas) {
  const std::string h64(64, 'a');
  const std::string h40(40, '0');
  EXPECT_TRUE(is_identity_hash(h64));
  EXPECT_FALSE(is_identity_hash(h40));
  EXPECT_FALSE(is_identity_hash(h64.substr(1) + "/"));
  EXPECT_TRUE(is_commit_sha(h40));
  EXPECT_TRUE(is_commit_sha(h64));
  EXPECT_FALSE(is_commit_sha(h40 + "0"));
  EXPECT_FALSE(is_commit_sha(std::string(40, 'g')));
}

TEST(Ids, RepoNames) {
  for (const char* good : {"a", "lib-net", "Foo_Bar.v2", "x1"})
    EXPECT_TRUE(is_repo_name(good)) << good;
  for (const char* bad : {"", ".", "..", ".git", "-rf", "a/b", "a b", "a\\b", "é"})
    EXPECT_FALSE(is_repo_name(bad)) << bad;
  EXPECT_TRUE(is_repo_name(std::string(100, 'a')));
  EXPECT_FALSE(is_repo_name(std::string(101, 'a')));
}

}  // namespace
}  // namespace testlooper
