// test_sets with their closure, and the sets a commit's changes trigger (FORMAT.md §10).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "definitions/definitions.h"
#include "definitions/node.h"

namespace testlooper::definitions {

// Every test set of the commit (including 'all'), each the sorted names it selects plus the
// builds they need (this commit's by name, other commits' by full name). `objects` holds every
// resolved object reachable, by full name.
std::map<std::string, std::vector<std::string>> compute_test_sets(
    const std::optional<Node>& section, const std::string& prefix,
    const std::vector<ResolvedObject>& commit_objects,
    const std::map<std::string, ResolvedObject>& objects);

// The sets the commit's changes trigger; `changed` is nullopt for a root commit.
std::vector<std::string> triggered_sets(const std::optional<Node>& triggers,
                                        const std::map<std::string, std::vector<std::string>>& sets,
                                        const std::optional<std::vector<std::string>>& changed);

}  // namespace testlooper::definitions
