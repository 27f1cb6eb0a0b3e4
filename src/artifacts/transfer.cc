// Build files and run records in their travelling form (transfer.h).
#include "artifacts/transfer.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "artifacts/confined_dir.h"
#include "core/case_message.h"

namespace testlooper::artifacts {
namespace {

using nlohmann::json;

constexpr char kBuildIsComplete[] = "the build is complete: its files cannot be added or replaced";
constexpr uintmax_t kMaxCompleteFileBytes = 1 << 20;

// An exclusive flock(2) on a build's directory (created), held while deciding whether a file may
// be added, so that complete.json and an artifact arriving together cannot both pass their
// checks. Works across processes sharing the store.
class BuildLock {
 public:
  static Result<BuildLock> take(const Store& store, const std::string& build_hash) {
    const fs::path dir = store.root() / "builds" / build_hash;
    std::error_code ec;
    fs::create_directories(dir, ec);
    Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid() || ::flock(fd.get(), LOCK_EX) != 0) {
      return Error{build_hash, "cannot lock the build's directory"};
    }
    return BuildLock(std::move(fd));
  }

 private:
  explicit BuildLock(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;  // closing it releases the lock
};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// rename(2) that never replaces: false (both left alone) when `to` already exists.
Result<bool> rename_no_replace(const fs::path& from, const fs::path& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return true;
  if (errno == EEXIST || errno == ENOTEMPTY) return false;
  return Error{to.string(), std::string("cannot rename into place: ") + strerror(errno)};
}

// Moves `from` to `to` unless `to` exists, copying first when they are on different devices.
Result<bool> move_no_replace(const Store& store, const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_directories(to.parent_path(), ec);
  if (ec) return Error{to.parent_path().string(), "cannot create: " + ec.message()};
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return true;
  if (errno == EEXIST || errno == ENOTEMPTY) return false;
  if (errno != EXDEV)
    return Error{to.string(), std::string("cannot move into place: ") + strerror(errno)};
  Result<fs::path> temp = store.make_temp_dir("import");
  if (!temp.ok()) return temp.error();
  fs::copy(from, *temp / "blob", fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
  Result<bool> moved = ec ? Result<bool>(Error{from.string(), "cannot copy: " + ec.message()})
                          : rename_no_replace(*temp / "blob", to);
  fs::remove_all(*temp, ec);
  return moved;
}

// A tar of directory `dir`, packed once as tmp/exports/<key>.tar (the directory never changes).
Result<fs::path> tar_of_directory(const Store& store, const fs::path& dir, const std::string& key) {
  const fs::path tar = store.root() / "tmp" / "exports" / (key + ".tar");
  std::error_code ec;
  if (fs::is_regular_file(fs::symlink_status(tar, ec))) return tar;
  Result<fs::path> temp = store.make_temp_dir("export");
  if (!temp.ok()) return temp.error();
  Status packed = pack(dir, {}, Format::kTar, *temp / "packed.tar");
  Result<bool> moved = packed.ok() ? move_no_replace(store, *temp / "packed.tar", tar)
                                   : Result<bool>(packed.error());
  fs::remove_all(*temp, ec);
  if (!moved.ok()) return moved.error();
  return tar;
}

// The artifact names complete.json `summary` lists, sorted; an Error says what is malformed.
// A "directory" must be a relative path that stays inside $TEST_INPUTS (it is where the runner
// unpacks that artifact).
Result<std::vector<std::string>> listed_artifacts(const json& summary,
                                                  const std::string& build_hash) {
  if (!summary.is_object()) return Error{kCompleteFile, "not a JSON object"};
  if (summary.contains("hash") && summary["hash"] != build_hash) {
    return Error{kCompleteFile, "\"hash\" is not the build's hash"};
  }
  if (!summary.contains("artifacts") || !summary["artifacts"].is_array()) {
    return Error{kCompleteFile, "\"artifacts\" must be an array"};
  }
  std::vector<std::string> names;
  for (const json& artifact : summary["artifacts"]) {
    if (!artifact.is_object() || !artifact.contains("name") || !artifact["name"].is_string()) {
      return Error{kCompleteFile, "each artifact must be an object with a string \"name\""};
    }
    if (artifact.contains("directory")) {
      const json& directory = artifact["directory"];
      if (!directory.is_string() || !entry_components(directory.get<std::string>()).ok()) {
        return Error{kCompleteFile,
                     "an artifact's \"directory\" must be a relative path without '..'"};
      }
    }
    names.push_back(artifact["name"].get<std::string>());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// complete.json is accepted only when it lists exactly the stored artifacts. REQUIRES: the
// build's lock is held.
Status check_complete_file(const Store& store, const std::string& build_hash, const json& summary) {
  Result<std::vector<std::string>> listed = listed_artifacts(summary, build_hash);
  if (!listed.ok()) return listed.error();
  Result<std::vector<StoredArtifact>> stored = store.build_artifacts(build_hash);
  if (!stored.ok()) return stored.error();
  std::vector<std::string> stored_names;
  for (const StoredArtifact& artifact : *stored) stored_names.push_back(artifact.name);
  for (const std::string& name : *listed) {
    if (std::find(stored_names.begin(), stored_names.end(), name) == stored_names.end()) {
      return Error{kCompleteFile, "lists artifact '" + name + "', which is not stored"};
    }
  }
  if (stored_names != *listed) {
    return Error{kCompleteFile, "does not list exactly the stored artifacts (" +
                                    std::to_string(stored_names.size()) + " stored, " +
                                    std::to_string(listed->size()) + " listed)"};
  }
  return {};
}

Result<bool> import_complete_file(const Store& store, const std::string& build_hash,
                                  const fs::path& blob) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(blob, ec);
  if (ec || size > kMaxCompleteFileBytes) {
    return Error{kCompleteFile, "larger than " + std::to_string(kMaxCompleteFileBytes) + " bytes"};
  }
  std::ifstream in(blob, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const json summary = json::parse(text, nullptr, false);
  Result<BuildLock> lock = BuildLock::take(store, build_hash);
  if (!lock.ok()) return lock.error();
  if (store.is_build_complete(build_hash)) return Error{kCompleteFile, kBuildIsComplete};
  TL_RETURN_IF_ERROR(check_complete_file(store, build_hash, summary));
  TL_RETURN_IF_ERROR(store.mark_build_complete(build_hash, text));
  return true;
}

// Options for archives that arrive over the network: a tar holds no more data than its own
// size (sparse entries could claim more), and run records hold no symlinks at all.
UnpackOptions upload_unpack_options(const fs::path& tar, UnpackOptions::Symlinks symlinks) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(tar, ec);
  return UnpackOptions{symlinks, ec ? 0 : static_cast<uint64_t>(size), kMaxUnpackedEntries};
}

// Places `blob` (already in its stored form) as file `name` of the build, under its lock.
Result<bool> place_build_file(const Store& store, const std::string& build_hash,
                              const std::string& name, const fs::path& blob) {
  Result<BuildLock> lock = BuildLock::take(store, build_hash);
  if (!lock.ok()) return lock.error();
  if (store.is_build_complete(build_hash)) return Error{name, kBuildIsComplete};
  const fs::path to = store.root() / "builds" / build_hash / name;
  std::error_code ec;
  if (fs::exists(fs::symlink_status(to, ec))) return false;
  const std::string stem = fs::path(name).stem().string();
  if (const auto stored = store.find_build_artifact(build_hash, *artifact_name_of_stem(stem))) {
    return Error{name, "the artifact is already stored as " + stored->path.filename().string()};
  }
  return move_no_replace(store, blob, to);
}

Result<bool> import_files_artifact(const Store& store, const std::string& build_hash,
                                   const std::string& name, const fs::path& tar) {
  Result<fs::path> temp = store.make_temp_dir("import");
  if (!temp.ok()) return temp.error();
  Status unpacked = unpack(tar, Format::kTar, *temp / "files",
                           upload_unpack_options(tar, UnpackOptions::Symlinks::kInside));
  Result<bool> moved = unpacked.ok() ? place_build_file(store, build_hash, name, *temp / "files")
                                     : Result<bool>(unpacked.error());
  std::error_code ec;
  fs::remove_all(*temp, ec);
  return moved;
}

// Whether `rel` (components under the store root) is of `type` there, lstat'ing every component:
// a symlink anywhere on the way is not followed, so it is never "found".
bool stored_as(const Store& store, const std::vector<std::string>& rel, fs::file_type type) {
  fs::path path = store.root();
  std::error_code ec;
  for (size_t i = 0; i < rel.size(); ++i) {
    path /= rel[i];
    const fs::file_type found = fs::symlink_status(path, ec).type();
    if (ec) return false;
    if (found != (i + 1 == rel.size() ? type : fs::file_type::directory)) return false;
  }
  return true;
}

}  // namespace

bool is_safe_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (const unsigned char c : id) {
    if (!isalnum(c) && c != '_' && c != '-') return false;
  }
  return true;
}

bool is_build_file_name(std::string_view name) {
  if (name == kCompleteFile) return true;
  if (name.empty() || name.size() > 255 || name[0] == '.') return false;
  for (const std::string_view ext : {".tar", ".zip", ".files"}) {
    if (ends_with(name, ext)) {
      return artifact_name_of_stem(name.substr(0, name.size() - ext.size())).has_value();
    }
  }
  return false;
}

bool is_build_complete_error(const Error& error) { return error.message == kBuildIsComplete; }

Result<std::vector<std::string>> build_file_names(const Store& store,
                                                  const std::string& build_hash) {
  std::vector<std::string> names;
  if (!is_safe_id(build_hash)) return names;
  Result<std::vector<StoredArtifact>> stored = store.build_artifacts(build_hash);
  if (!stored.ok()) return stored.error();
  for (const StoredArtifact& artifact : *stored) {
    names.push_back(artifact.path.filename().string());
  }
  if (store.is_build_complete(build_hash)) names.push_back(kCompleteFile);
  return names;
}

Result<fs::path> export_build_file(const Store& store, const std::string& build_hash,
                                   const std::string& name) {
  if (!is_safe_id(build_hash) || !is_build_file_name(name)) {
    return Error{name, "not a file of a build"};
  }
  const fs::path file = store.root() / "builds" / build_hash / name;
  const bool files = ends_with(name, ".files");
  const fs::file_type type = files ? fs::file_type::directory : fs::file_type::regular;
  if (!stored_as(store, {"builds", build_hash, name}, type)) {
    return Error{name, "build " + build_hash + " has no such file"};
  }
  if (!files) return file;
  return tar_of_directory(store, file, "build-" + build_hash + "-" + name);
}

Result<bool> import_build_file(const Store& store, const std::string& build_hash,
                               const std::string& name, const fs::path& blob) {
  if (!is_safe_id(build_hash) || !is_build_file_name(name)) {
    return Error{name, "not a file of a build"};
  }
  if (store.is_build_complete(build_hash)) return Error{name, kBuildIsComplete};
  if (name == kCompleteFile) return import_complete_file(store, build_hash, blob);
  if (ends_with(name, ".files")) return import_files_artifact(store, build_hash, name, blob);
  return place_build_file(store, build_hash, name, blob);
}

Status export_run_record(const Store& store, const std::string& run_id, const fs::path& dest) {
  std::error_code ec;
  if (!is_safe_id(run_id) || !fs::is_directory(store.run_dir(run_id), ec)) {
    return Error{run_id, "no run record"};
  }
  return pack(store.run_dir(run_id), {}, Format::kTar, dest);
}

Result<bool> import_run_record(const Store& store, const std::string& run_id, const fs::path& tar) {
  if (!is_safe_id(run_id)) return Error{run_id, "not a run id"};
  std::error_code ec;
  if (fs::exists(store.run_dir(run_id), ec)) return false;
  Result<fs::path> temp = store.make_temp_dir("run-import");
  if (!temp.ok()) return temp.error();
  Status unpacked =
      unpack(tar, Format::kTar, *temp, upload_unpack_options(tar, UnpackOptions::Symlinks::kNone));
  if (!unpacked.ok()) {
    fs::remove_all(*temp, ec);
    return unpacked.error();
  }
  Result<fs::path> committed = store.commit_run(*temp, run_id);
  if (committed.ok()) return true;
  fs::remove_all(*temp, ec);
  if (fs::exists(store.run_dir(run_id), ec)) return false;
  return committed.error();
}

std::vector<std::string> run_artifact_names(const Store& store, const std::string& run_id) {
  std::vector<std::string> names;
  if (!is_safe_id(run_id)) return names;
  std::error_code ec;
  for (const fs::directory_entry& entry :
       fs::directory_iterator(store.run_dir(run_id) / "artifacts", ec)) {
    const fs::file_type type = entry.symlink_status(ec).type();
    if (type == fs::file_type::regular || type == fs::file_type::directory) {
      names.push_back(entry.path().filename().string());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

Result<fs::path> export_run_artifact(const Store& store, const std::string& run_id,
                                     const std::string& name) {
  if (!is_safe_id(run_id) || name.empty() || name[0] == '.' ||
      name.find_first_of(std::string_view("/\0", 2)) != std::string::npos) {
    return Error{name, "not an artifact name"};
  }
  const fs::path file = store.run_dir(run_id) / "artifacts" / name;
  const std::vector<std::string> rel = {"runs", run_id, "artifacts", name};
  if (stored_as(store, rel, fs::file_type::regular)) return file;
  if (!stored_as(store, rel, fs::file_type::directory)) {
    return Error{name, "run " + run_id + " kept no such artifact"};
  }
  return tar_of_directory(store, file, "run-" + run_id + "-" + name);
}

Result<fs::path> run_test_log(const Store& store, const std::string& run_id, const std::string& dir,
                              const std::string& file) {
  if (!is_safe_id(run_id) || !is_case_log_segment(dir) || !is_case_log_segment(file)) {
    return Error{"test log", "not a test log's name"};
  }
  if (!stored_as(store, {"runs", run_id, "test_logs", dir, file}, fs::file_type::regular)) {
    return Error{"test log", "run " + run_id + " kept no such test log"};
  }
  return store.run_dir(run_id) / "test_logs" / dir / file;
}

}  // namespace testlooper::artifacts
