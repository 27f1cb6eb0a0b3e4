// Moving stored builds and run records between two stores that share no disk (the server's and a
// remote worker's), one file per transfer.
//
// A build travels as the files of builds/<hash>/, named as the store names them: artifact files
// ("<stem>.tar", "<stem>.zip", "<stem>.files") first, then "complete.json" (which is refused
// until every artifact it lists is there, so a build is never complete without its artifacts).
// A Files artifact (a directory) travels as a tar of its files, and so does a run record
// (runs/<run id>/) and a Files artifact kept in a test's record. Imports are atomic (unpacked or
// written under tmp/, then renamed into place) and idempotent: what is already stored is kept.
//
// Thread-safety: as Store (any thread, any process; atomic renames arbitrate).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "artifacts/artifacts.h"
#include "core/error.h"

namespace testlooper::artifacts {

// The file of a build directory that says the build is complete (Store::mark_build_complete).
inline constexpr char kCompleteFile[] = "complete.json";

// True for a build hash or run id that is safe as one path segment: 1 to 128 characters of
// [A-Za-z0-9_-].
bool is_safe_id(std::string_view id);

// True when `name` may travel as a file of a build directory: "complete.json", or an artifact
// file name ("<stem>.tar|.zip|.files" without '/', not starting with '.').
bool is_build_file_name(std::string_view name);

// The travelling names of build `build_hash`'s stored files: its artifacts sorted by name, then
// "complete.json" when the build is complete. Empty when nothing is stored.
std::vector<std::string> build_file_names(const Store& store, const std::string& build_hash);

// A file holding the travelling form of file `name` of build `build_hash`: the stored file
// itself, or for a Files artifact a tar of it (packed once under tmp/exports/ and reused).
// Error when it is not stored.
Result<fs::path> export_build_file(const Store& store, const std::string& build_hash,
                                   const std::string& name);

// Adds `blob` (a travelling form) as file `name` of build `build_hash`. True when it was added,
// false when the store already had it. `blob` may be moved into place; the caller removes
// whatever is left at its path. Errors: a bad name, a bad archive, "complete.json" that is not
// JSON or lists an artifact that is not stored.
Result<bool> import_build_file(const Store& store, const std::string& build_hash,
                               const std::string& name, const fs::path& blob);

// Packs run record runs/<run_id> into the tar `dest`. Error when there is no such record.
Status export_run_record(const Store& store, const std::string& run_id, const fs::path& dest);

// Unpacks a tar written by export_run_record as runs/<run_id>. True when it was added, false
// when a record with that id already exists (it is kept).
Result<bool> import_run_record(const Store& store, const std::string& run_id, const fs::path& tar);

// The artifacts kept in run record runs/<run_id>/artifacts/ (a test's), sorted: file names,
// where a Files artifact is its directory's name.
std::vector<std::string> run_artifact_names(const Store& store, const std::string& run_id);

// A file holding artifact `name` of run record `run_id`: the archive itself, or a tar of a Files
// artifact's directory (packed once under tmp/exports/). Error when there is none.
Result<fs::path> export_run_artifact(const Store& store, const std::string& run_id,
                                     const std::string& name);

}  // namespace testlooper::artifacts
