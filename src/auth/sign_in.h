// Sign-in with GitHub or GitLab, the pure parts (docs/configuration.md "Access"): the role a
// signed-in user gets, and the cookies a browser sends. No I/O, no clock.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/auth.h"

namespace testlooper::auth {

// kAdmin when `login` is one of `admins` (compared ignoring ASCII case: GitHub and GitLab
// logins are), else kEditor for a `member` of the configured organisation or group, else kViewer.
Role role_of_sign_in(const std::string& login, bool member, const std::vector<std::string>& admins);

// The value of cookie `name` in a Cookie header ("a=1; b=2"), or nullopt.
std::optional<std::string> cookie_value(std::string_view header, std::string_view name);

}  // namespace testlooper::auth
