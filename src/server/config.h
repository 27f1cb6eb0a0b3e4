// `testlooper serve --config config.json`: the original TestLooper's configuration sections,
// in their local forms (docs/configuration.md). `$VAR` and `${VAR}` in strings are replaced by
// environment variables; an unset one is an error. Unknown or unsupported keys are errors that
// name the key.
#pragma once

#include <string>

#include "core/error.h"
#include "server/server.h"

namespace testlooper::server {

// Reads `path` over the defaults already in `options`.
Status load_config(const std::string& path, ServerOptions& options);

// Copies the sign-in settings (auth.mode, auth.admins, auth.session_hours, auth.provider,
// auth.provider_timeout_seconds and source_control's OAuth keys) of a loaded config `from`
// into `to` (serve --config: no flag sets them).
void take_sign_in_options(const ServerOptions& from, ServerOptions& to);

}  // namespace testlooper::server
