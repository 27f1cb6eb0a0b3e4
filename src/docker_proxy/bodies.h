// Internal to docker_proxy: the JSON bodies of create requests, checked field by field against
// an allowlist (an unknown field is refused: a future engine field may open the sandbox) and
// rewritten for the scope (labels, name prefix, owned references, resolved bind sources).
// Each returns the rewritten body, or an Error whose message says what was refused and why.
#pragma once

#include <optional>
#include <string>

#include "core/error.h"
#include "docker_proxy/filter.h"

namespace testlooper::docker_proxy {

// A docker object name: [A-Za-z0-9][A-Za-z0-9_.-]*, at most 200 bytes.
bool valid_name(const std::string& name);

// `name` with the scope's prefix (kept when it already has it); nullopt when the result is not a
// valid name (or `name` is empty).
std::optional<std::string> scoped_name(const Scope& scope, const std::string& name);

// Whether `source` (a resolved path: no symlink in it) still lies in one of the scope's roots.
// Checked again when a container starts: the engine mounts at start, and the test owns the
// directories a source lies in.
bool bind_source_allowed(const Scope& scope, const std::string& source, Engine& engine);

Result<std::string> rewrite_container_create(const Scope& scope, const std::string& body,
                                             Engine& engine);
Result<std::string> rewrite_exec_create(const std::string& body);
Result<std::string> rewrite_network_create(const Scope& scope, const std::string& body);
Result<std::string> rewrite_network_connect(const std::string& body, Engine& engine);
Result<std::string> rewrite_volume_create(const Scope& scope, const std::string& body);

}  // namespace testlooper::docker_proxy
