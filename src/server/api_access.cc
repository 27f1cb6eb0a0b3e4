// Who a request is from and whether they may make it (docs/configuration.md "Access",
// docs/security.md "Threat model"). The one place every endpoint's access is decided.
#include <optional>
#include <string>

#include "server/api.h"
#include "server/api_json.h"

namespace testlooper::server {

namespace {

// PART C INTERIM, until part A's role policy lands (replace it then): with authentication on,
// a POST to the JSON API (not a worker's upload, not a webhook) needs an editor.
std::optional<Response> interim_role_refusal(const Request& request, const auth::Principal& who,
                                             auth::Mode mode) {
  if (mode == auth::Mode::kNone || request.method != "POST") return std::nullopt;
  const std::string& p = request.path;
  if (!p.starts_with("/api/") || p.starts_with("/api/artifacts/") || p == "/api/refresh") {
    return std::nullopt;
  }
  if (who.role == auth::Role::kAnonymous) return reply::error(401, "sign in first");
  if (!auth::allows(who.role, auth::Role::kEditor)) {
    return reply::error(
        403, "this needs the editor role; you are " + std::string(auth::to_string(who.role)));
  }
  return std::nullopt;
}

}  // namespace

auth::Principal Api::principal(const Request& request) {
  // Sign-in (part C): the session cookie of a signed-in browser, in mode oauth only.
  if (options_.auth_mode == auth::Mode::kOAuth) {
    if (auto who = session_principal(request)) return *who;
  }
  // Authentication off: today's open behaviour (a loopback server only).
  if (options_.auth_mode == auth::Mode::kNone) {
    return auth::Principal{auth::Role::kAdmin, "open", "open", ""};
  }
  return auth::Principal{};
}

std::optional<Response> Api::access_refusal(const Request& request, const auth::Principal& who) {
  // Sign-in (part C): a cookie's state-changing request needs the session's CSRF token.
  if (auto refusal = csrf_refusal(request, who)) return refusal;
  return interim_role_refusal(request, who, options_.auth_mode);
}

}  // namespace testlooper::server
