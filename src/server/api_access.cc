// Who a request is from and whether they may make it (docs/configuration.md "Access",
// docs/security.md "Threat model"). The one place every endpoint's access is decided.
#include <optional>
#include <string>

#include "server/api.h"
#include "server/api_json.h"

namespace testlooper::server {

auth::Principal Api::principal(const Request& request) {
  (void)request;
  // Authentication off: today's open behaviour (a loopback server only).
  return auth::Principal{auth::Role::kAdmin, "open", "open", ""};
}

std::optional<Response> Api::access_refusal(const Request& request, const auth::Principal& who) {
  (void)request;
  (void)who;
  return std::nullopt;
}

}  // namespace testlooper::server
