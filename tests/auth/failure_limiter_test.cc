#include "auth/failure_limiter.h"

#include <gtest/gtest.h>

#include <string>

#include "auth/auth.h"

namespace testlooper::auth {
namespace {

TEST(FailureLimiter, BlocksAfterTenFailuresInAMinute) {
  FailureLimiter limiter;
  for (int i = 0; i < FailureLimiter::kMaxFailures - 1; ++i) limiter.failed("10.0.0.1", 100 + i);
  EXPECT_EQ(limiter.blocked_for("10.0.0.1", 110), 0);
  limiter.failed("10.0.0.1", 110);
  EXPECT_EQ(limiter.blocked_for("10.0.0.1", 110), 60);
  EXPECT_EQ(limiter.blocked_for("10.0.0.2", 110), 0);
  EXPECT_EQ(limiter.blocked_for("10.0.0.1", 170.5), 0);
}

TEST(FailureLimiter, FailuresSpreadOverMoreThanAMinuteDoNotBlock) {
  FailureLimiter limiter;
  for (int i = 0; i < 30; ++i) limiter.failed("10.0.0.1", i * 7.0);
  EXPECT_EQ(limiter.blocked_for("10.0.0.1", 30 * 7.0), 0);
}

TEST(FailureLimiter, RotatingAddressesKeepItsMemoryBounded) {
  FailureLimiter limiter;
  for (size_t i = 0; i < 3 * FailureLimiter::kMaxClients; ++i)
    limiter.failed("10." + std::to_string(i), 1000);
  EXPECT_LE(limiter.size(), FailureLimiter::kMaxClients);
}

TEST(Auth, TokenNames) {
  EXPECT_TRUE(is_token_name("ci-bot_1.x"));
  EXPECT_TRUE(is_token_name(std::string(64, 'a')));
  EXPECT_FALSE(is_token_name(std::string(65, 'a')));
  EXPECT_FALSE(is_token_name(""));
  EXPECT_FALSE(is_token_name("a b"));
  EXPECT_FALSE(is_token_name("a/b"));
}

}  // namespace
}  // namespace testlooper::auth
