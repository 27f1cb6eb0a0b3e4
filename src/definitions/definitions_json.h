// JSON forms of resolved definitions: the `testlooper check --json` document (docs/cli.md) and
// the identity hash input. Both are stable: keys sorted, no floating-point noise.
#pragma once

#include <string>

#include "definitions/definitions.h"

namespace testlooper::definitions {

// The `check --json` document for a resolved commit, as text (`indent` < 0: one line).
std::string commit_to_json(const ResolvedCommit& commit, int indent = 2);

// One resolved object as a JSON object text (the "objects" items of commit_to_json).
std::string object_to_json(const ResolvedObject& object, int indent = -1);

// Reads back what object_to_json wrote (what a worker receives). Error on malformed input.
Result<ResolvedObject> object_from_json(const std::string& text);

}  // namespace testlooper::definitions
