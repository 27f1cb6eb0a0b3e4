// The worker secret: what a worker must show to be one (docs/api.md "The worker protocol").
// The server makes it at its first start in <data>/worker.token (32 bytes from the CSPRNG as
// hex, created with O_EXCL and mode 0600) and reads it at every later start; its local workers
// get the file's path (`testlooper worker --token-file`). Workers send it as
// `Authorization: Bearer <token>` on the WebSocket upgrade and on every file request.
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
