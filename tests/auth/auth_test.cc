#include "auth/auth.h"

#include <gtest/gtest.h>

namespace testlooper::auth {
namespace {

TEST(Auth, RolesAreOrderedAndWorkersApart) {
  EXPECT_TRUE(allows(Role::kAdmin, Role::kEditor));
  EXPECT_TRUE(allows(Role::kEditor, Role::kViewer));
  EXPECT_FALSE(allows(Role::kViewer, Role::kEditor));
  EXPECT_FALSE(allows(Role::kAnonymous, Role::kViewer));
  EXPECT_FALSE(allows(Role::kAdmin, Role::kWorker));
  EXPECT_FALSE(allows(Role::kWorker, Role::kViewer));
  EXPECT_TRUE(allows(Role::kWorker, Role::kWorker));
  EXPECT_TRUE(allows(Role::kAnonymous, Role::kAnonymous));
}

TEST(Auth, NamesRoundTrip) {
  for (Role r : {Role::kViewer, Role::kEditor, Role::kAdmin, Role::kWorker}) {
    EXPECT_EQ(parse_role(to_string(r)), r);
  }
  EXPECT_EQ(parse_role("anonymous"), std::nullopt);
  EXPECT_EQ(parse_role("Admin"), std::nullopt);
  for (Mode m : {Mode::kNone, Mode::kToken, Mode::kOAuth}) EXPECT_EQ(parse_mode(to_string(m)), m);
  EXPECT_EQ(parse_mode(""), std::nullopt);
}

}  // namespace
}  // namespace testlooper::auth
