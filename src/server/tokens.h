// Making API tokens (docs/configuration.md "Access"), for `testlooper token create` and
// POST /api/tokens alike. The token's text is returned once; the store keeps its SHA-256.
#pragma once

#include <string>

#include "core/error.h"
#include "store/store.h"

namespace testlooper::server {

// The server's own workers' token (<data>/worker.token), registered at every start. It cannot
// be revoked: its workers would retry from 127.0.0.1 and trip the limit on failed
// authentications for every local client; delete the file and restart to change it.
inline constexpr const char* kLocalTokenName = "local";

// Why `name` cannot name a new token ("" when it can): 1 to 64 of A-Z a-z 0-9 . _ -, and not
// "local" (the server's own workers' token, registered at every start).
std::string token_name_error(const std::string& name);

// Why token `name` may not be revoked ("" when it may): the local workers' token.
std::string revoke_error(const std::string& name);

// Makes token `name` with `role` ("viewer", "editor", "admin" or "worker") in `store`, at `now`:
// its text ("tl_" and 64 hex digits), or "" when the name is in use. REQUIRES: the name has no
// token_name_error and the role is one of those.
Result<std::string> make_token(store::Store& store, const std::string& name,
                               const std::string& role, double now);

}  // namespace testlooper::server
