// The local workers' token (docs/configuration.md "Who may do what"): the server makes it at its
// first start in <data>/worker.token (32 bytes from the CSPRNG as hex, created with O_EXCL and
// mode 0600), reads it at every later start and registers it in the store as the worker token
// named `local` (state_tokens.cc); its local workers get the file's path (`testlooper worker
// --token-file`). Remote workers use tokens of role `worker` (`testlooper token create`). Every
// worker sends its token as `Authorization: Bearer <token>` on the WebSocket upgrade and on
// every file request.
#pragma once

#include <map>
#include <string>

#include "core/error.h"

namespace testlooper::server {

// The token in `path`, made first when there is no file. Error when the file cannot be made or
// read, or when it is readable or writable by group or others, or not owned by this user (a
// secret others could read is no secret: the server refuses to start).
Result<std::string> load_or_create_worker_token(const std::string& path);

// The token of an `Authorization: Bearer <token>` header in `headers` (lower-case names), or ""
// when there is none.
std::string bearer_token(const std::map<std::string, std::string>& headers);

}  // namespace testlooper::server
