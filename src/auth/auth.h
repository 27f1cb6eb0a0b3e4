// Who may do what (docs/configuration.md "Access"): roles, authentication modes and the
// principal a request is made by. Pure: no I/O, no clock; the server decides who a request's
// token or session cookie belongs to and asks allows() whether that is enough.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace testlooper::auth {

// kViewer < kEditor < kAdmin: each may do everything of the ones before it. kWorker is apart:
// a worker token opens the worker socket and the file endpoints workers use, and nothing else;
// no user role opens those.
enum class Role { kAnonymous, kViewer, kEditor, kAdmin, kWorker };

// "viewer", "editor", "admin", "worker" (kAnonymous has no name one could give); else nullopt.
std::optional<Role> parse_role(std::string_view text);
// "anonymous", "viewer", "editor", "admin", "worker".
std::string_view to_string(Role role);
// Whether someone with role `have` may do what needs `need`.
bool allows(Role have, Role need);

// serve --auth: kNone keeps the open behaviour (loopback only), kToken accepts API tokens,
// kOAuth accepts API tokens and GitHub/GitLab sign-in.
enum class Mode { kNone, kToken, kOAuth };
std::optional<Mode> parse_mode(std::string_view text);  // "none", "token", "oauth"
std::string_view to_string(Mode mode);

// An API token's name: 1 to 64 of [A-Za-z0-9._-].
bool is_token_name(std::string_view text);

// Who made a request.
struct Principal {
  Role role = Role::kAnonymous;
  // The token's name ("token:ci-bot"), the signed-in user ("github:alice"), "anonymous", or
  // "open" when authentication is off (every request may do everything but worker endpoints).
  std::string name = "anonymous";
  // "token", "session", "anonymous" or "open".
  std::string via = "anonymous";
  // For a session: its CSRF token, which a state-changing request must echo in X-CSRF-Token.
  std::string csrf;
};

}  // namespace testlooper::auth
