// `testlooper serve --config config.json`: the original TestLooper's configuration sections
// (docs/configuration.md). `$VAR` and `${VAR}` in strings are replaced by environment
// variables; an unset one is an error. Every key of the original's Config.py is accepted: those
// with a meaning here are honoured, the others give one warning each; unknown keys are errors
// that name the key.
#pragma once

#include <string>
#include <vector>

#include "core/error.h"
#include "server/server.h"

namespace testlooper::server {

// Reads `path` over the defaults already in `options`. `warnings`, when given, gets one line per
// accepted key that has no effect ("<path>: server_ports.server_worker_port is ignored: ...").
Status load_config(const std::string& path, ServerOptions& options,
                   std::vector<std::string>* warnings = nullptr);

// Copies the sign-in settings (auth.mode, auth.admins, auth.session_hours, auth.provider,
// auth.provider_timeout_seconds and source_control's OAuth keys) of a loaded config `from`
// into `to` (serve --config: no flag sets them).
void take_sign_in_options(const ServerOptions& from, ServerOptions& to);

}  // namespace testlooper::server
