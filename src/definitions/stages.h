// Stages and artifacts of builds, tests and deployments (FORMAT.md §7), parsed from Nodes with
// variables substituted.
#pragma once

#include <vector>

#include "definitions/definitions.h"
#include "definitions/macros.h"
#include "definitions/node.h"

namespace testlooper::definitions {

// Parses one stage. `tests_allowed`: list_tests_command/run_tests_command are accepted.
Stage parse_stage(const Node& node, const VariableLookup& lookup, bool tests_allowed);

// The stage the `command`/`cleanup` shorthand stands for: order 1e9, one unnamed artifact that
// is the whole output directory.
Stage command_stage(const std::string& command, const std::string& cleanup);

// Sorts stages by order (stable) and checks artifact names: unique, and the unnamed artifact
// only alone. `at` names the object for errors.
void finish_stages(std::vector<Stage>& stages, const Node& at);

}  // namespace testlooper::definitions
