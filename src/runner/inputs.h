// Staging a run's dependencies into $TEST_INPUTS (FORMAT.md §8). Internal to the runner.
#pragma once

#include <filesystem>
#include <string>

#include "artifacts/artifacts.h"
#include "core/error.h"
#include "definitions/definitions.h"
#include "runner/runner.h"

namespace testlooper::runner {

// Extracts every dependency of `object` into inputs/<relpath>: source trees through `sources`,
// build artifacts from `store` (artifact "" = the whole build: its unnamed artifact, or every
// artifact into the directory it was packed from). Errors are infrastructure errors naming the
// dependency.
Status stage_inputs(const definitions::ResolvedObject& object, const std::filesystem::path& inputs,
                    const artifacts::Store& store, SourceExporter& sources);

// The complete.json a finished build leaves in the store: its artifacts and their directories.
std::string build_summary_json(const definitions::ResolvedObject& build,
                               const std::vector<std::string>& published);

}  // namespace testlooper::runner
