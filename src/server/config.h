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

}  // namespace testlooper::server
