#include "auth/sign_in.h"

#include <gtest/gtest.h>

namespace testlooper::auth {
namespace {

TEST(SignIn, AdminsFromTheListMembersEditOthersView) {
  const std::vector<std::string> admins = {"Carol", "dave"};
  EXPECT_EQ(role_of_sign_in("carol", false, admins), Role::kAdmin);  // logins ignore case
  EXPECT_EQ(role_of_sign_in("DAVE", true, admins), Role::kAdmin);
  EXPECT_EQ(role_of_sign_in("alice", true, admins), Role::kEditor);
  EXPECT_EQ(role_of_sign_in("bob", false, admins), Role::kViewer);
  EXPECT_EQ(role_of_sign_in("carol2", false, admins), Role::kViewer);
  EXPECT_EQ(role_of_sign_in("", false, {}), Role::kViewer);
}

TEST(SignIn, CookieValues) {
  EXPECT_EQ(cookie_value("a=1; testlooper_session=abc; b=2", "testlooper_session"), "abc");
  EXPECT_EQ(cookie_value("testlooper_session=abc", "testlooper_session"), "abc");
  EXPECT_EQ(cookie_value("  testlooper_session = abc ;", "testlooper_session"), "abc");
  EXPECT_EQ(cookie_value("xtestlooper_session=abc", "testlooper_session"), std::nullopt);
  EXPECT_EQ(cookie_value("testlooper_session_x=abc", "testlooper_session"), std::nullopt);
  EXPECT_EQ(cookie_value("", "testlooper_session"), std::nullopt);
  EXPECT_EQ(cookie_value(";;;=;", "testlooper_session"), std::nullopt);
  EXPECT_EQ(cookie_value("testlooper_session=", "testlooper_session"), "");
  // The first one wins.
  EXPECT_EQ(cookie_value("s=1; s=2", "s"), "1");
}

}  // namespace
}  // namespace testlooper::auth
