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
// file name "<stem>.tar|.zip|.files" of at most 255 bytes whose stem is exactly what
// artifact_file_stem() writes for some name (so no '/', NUL, stray '%' or leading '.').
bool is_build_file_name(std::string_view name);

// True when `error` (from import_build_file) says the build is already complete: nothing of it
// may change any more (HTTP 409).
bool is_build_complete_error(const Error& error);

// The travelling names of build `build_hash`'s stored files: its artifacts sorted by name, then
// "complete.json" when the build is complete. Empty when nothing is stored; an Error when a
// stored file is badly named.
Result<std::vector<std::string>> build_file_names(const Store& store,
                                                  const std::string& build_hash);

// A file holding the travelling form of file `name` of build `build_hash`: the stored file
// itself, or for a Files artifact a tar of it (packed once under tmp/exports/ and reused, links
// kept as links, never followed). Error when it is not stored as a regular file (a directory
// for .files) reached without any symlink from the store's root.
Result<fs::path> export_build_file(const Store& store, const std::string& build_hash,
                                   const std::string& name);

// Adds `blob` (a travelling form) as file `name` of build `build_hash`. True when it was added,
// false when the store already had it. `blob` may be moved into place; the caller removes
// whatever is left at its path. Errors: a bad name; the build is already complete
// (is_build_complete_error); the artifact is stored in another format; a .files tar that
// unpack() refuses (symlinks must stay inside; no more data than the tar's own size); a
// "complete.json" over 1 MiB, not a JSON object, with a "hash" other than `build_hash`, an
// artifact "directory" that is not a relative path without "..", or whose "artifacts" names are
// not exactly the stored artifacts. A build directory is locked (flock) while a file is added.
Result<bool> import_build_file(const Store& store, const std::string& build_hash,
                               const std::string& name, const fs::path& blob);

// Packs run record runs/<run_id> into the tar `dest`. Error when there is no such record.
Status export_run_record(const Store& store, const std::string& run_id, const fs::path& dest);

// Unpacks a tar written by export_run_record as runs/<run_id>. True when it was added, false
// when a record with that id already exists (it is kept). The tar may hold only files and
// directories (no symlinks), and no more data than its own size.
Result<bool> import_run_record(const Store& store, const std::string& run_id, const fs::path& tar);

// The artifacts kept in run record runs/<run_id>/artifacts/ (a test's), sorted: file names,
// where a Files artifact is its directory's name. Symlinks and other odd entries are left out.
std::vector<std::string> run_artifact_names(const Store& store, const std::string& run_id);

// A file holding artifact `name` of run record `run_id`: the archive itself, or a tar of a Files
// artifact's directory (packed once under tmp/exports/). Error when there is none as a regular
// file or directory reached without any symlink from the store's root.
Result<fs::path> export_run_artifact(const Store& store, const std::string& run_id,
                                     const std::string& name);

// The file of a test case's log kept in run record `run_id` as test_logs/<dir>/<file>
// (runner::TestResultCollector). Error when a name is outside core/case_message.h's grammar
// (is_case_log_segment) or there is no such regular file reached without any symlink from the
// store's root.
Result<fs::path> run_test_log(const Store& store, const std::string& run_id, const std::string& dir,
                              const std::string& file);

}  // namespace testlooper::artifacts
