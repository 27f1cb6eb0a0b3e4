// A strict JSON reader (RFC 8259) producing positioned Nodes; nlohmann-json gives no positions
// per value, which every error message here needs.
#pragma once

#include <string>

#include "definitions/node.h"

namespace testlooper::definitions {

// Parses `text` as one JSON value. Numbers, true, false keep their text as plain scalars; null is
// a null node. Throws DefinitionError at the offending character.
Node parse_json(const std::string& text, const std::string& file);

}  // namespace testlooper::definitions
