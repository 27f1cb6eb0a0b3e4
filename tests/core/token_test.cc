#include "core/token.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace testlooper {
namespace {

TEST(Token, RandomHexIsHexOfTheSizeAndNeverTheSame) {
  const std::string a = random_hex(32);
  EXPECT_EQ(a.size(), 64u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, random_hex(32));
}

TEST(Token, SameSecretComparesWholeValues) {
  const std::string t(64, 'a');
  EXPECT_TRUE(same_secret(t, t));
  EXPECT_FALSE(same_secret(t, t.substr(1)));
  EXPECT_FALSE(same_secret(t, t + "a"));
  EXPECT_FALSE(same_secret(t, std::string(63, 'a') + "b"));
  EXPECT_FALSE(same_secret("", ""));  // no secret set accepts nothing
}

TEST(Token, TokenFileIsOneTokenInARegularFile) {
  const std::string dir = ::testing::TempDir() + "/token_test-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/good") << std::string(64, 'f') << "\n";
  std::ofstream(dir + "/short") << "abc\n";
  std::ofstream(dir + "/spaces") << std::string(20, 'a') << " " << std::string(20, 'b') << "\n";
  std::filesystem::create_symlink(dir + "/good", dir + "/link");
  ASSERT_TRUE(read_token_file(dir + "/good").ok());
  EXPECT_EQ(*read_token_file(dir + "/good"), std::string(64, 'f'));
  EXPECT_FALSE(read_token_file(dir + "/short").ok());
  EXPECT_FALSE(read_token_file(dir + "/spaces").ok());
  EXPECT_FALSE(read_token_file(dir + "/link").ok());
  EXPECT_FALSE(read_token_file(dir + "/missing").ok());
  EXPECT_FALSE(read_token_file(dir).ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace testlooper
