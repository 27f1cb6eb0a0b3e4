// `testlooper run --no-deps`: the chosen tests run against builds already in the local store;
// no build is run.
//
// Each build a chosen test depends on is taken from the store: the build of the same identity
// when it is complete there; else the newest complete build of the same repo and name made from
// the same commit (the clean commit, or a working tree with uncommitted changes on top of it),
// holding the artifacts the test needs -- typically the build made before the working tree's
// latest edits, as the original tl.py's `--nodeps` reused its build directory. A test run
// against such a stand-in gets its identity recomputed with the stand-in's hash, so its runs are
// never recorded as runs against the build its definition names.
#pragma once

#include <deque>
#include <string>
#include <vector>

#include "artifacts/artifacts.h"
#include "core/error.h"
#include "definitions/definitions.h"

namespace testlooper::cli {

struct NoDepsRun {
  // The chosen tests (dependencies rewritten to the builds taken), then those builds, each with
  // the hash and full name of the stored build. Addresses are stable.
  std::deque<definitions::ResolvedObject> objects;
  // One line per build taken in place of another: which one and what it was made from.
  std::vector<std::string> notes;
};

// The run for `names` of `commit` (see the file comment). Error when no test is chosen, or
// naming a build that the store does not hold and the command that builds it.
Result<NoDepsRun> plan_no_deps(const definitions::ResolvedCommit& commit,
                               const std::vector<std::string>& names,
                               const artifacts::Store& store);

}  // namespace testlooper::cli
