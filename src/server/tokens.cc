#include "server/tokens.h"

#include "auth/auth.h"
#include "core/hash.h"
#include "core/token.h"

namespace testlooper::server {

std::string token_name_error(const std::string& name) {
  if (!auth::is_token_name(name)) {
    return "'" + name + "' is not a token name (1 to 64 of A-Z a-z 0-9 . _ -)";
  }
  if (name == kLocalTokenName) return "the name 'local' is the server's own workers' token";
  return "";
}

std::string revoke_error(const std::string& name) {
  if (name != kLocalTokenName) return "";
  return "the local workers' token cannot be revoked: to change it, stop the server, delete "
         "<data>/worker.token and start the server";
}

Result<std::string> make_token(store::Store& store, const std::string& name,
                               const std::string& role, double now) {
  const std::string token = new_api_token();
  Result<bool> added = store.add_token({name, role, sha256_hex(token), now, 0}, false);
  if (!added.ok()) return added.error();
  return *added ? token : "";
}

}  // namespace testlooper::server
