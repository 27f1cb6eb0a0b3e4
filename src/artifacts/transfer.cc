// Build files and run records in their travelling form (transfer.h).
#include "artifacts/transfer.h"

#include <fcntl.h>
#include <stdio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

namespace testlooper::artifacts {
namespace {

using nlohmann::json;

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
  if (fs::exists(tar, ec)) return tar;
  Result<fs::path> temp = store.make_temp_dir("export");
  if (!temp.ok()) return temp.error();
  Status packed = pack(dir, {}, Format::kTar, *temp / "packed.tar");
  Result<bool> moved = packed.ok() ? move_no_replace(store, *temp / "packed.tar", tar)
                                   : Result<bool>(packed.error());
  fs::remove_all(*temp, ec);
  if (!moved.ok()) return moved.error();
  return tar;
}

Result<bool> import_complete_file(const Store& store, const std::string& build_hash,
                                  const fs::path& blob) {
  std::ifstream in(blob, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const json summary = json::parse(text, nullptr, false);
  if (!summary.is_object()) return Error{kCompleteFile, "not a JSON object"};
  if (summary.contains("artifacts") && summary["artifacts"].is_array()) {
    for (const json& artifact : summary["artifacts"]) {
      const std::string name = artifact.is_object() ? artifact.value("name", "") : "";
      if (!store.find_build_artifact(build_hash, name)) {
        return Error{kCompleteFile, "lists artifact '" + name + "', which is not stored"};
      }
    }
  }
  TL_RETURN_IF_ERROR(store.mark_build_complete(build_hash, text));
  return true;
}

Result<bool> import_files_artifact(const Store& store, const fs::path& tar, const fs::path& to) {
  Result<fs::path> temp = store.make_temp_dir("import");
  if (!temp.ok()) return temp.error();
  Status unpacked = unpack(tar, Format::kTar, *temp / "files");
  Result<bool> moved =
      unpacked.ok() ? move_no_replace(store, *temp / "files", to) : Result<bool>(unpacked.error());
  std::error_code ec;
  fs::remove_all(*temp, ec);
  return moved;
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
  if (name.empty() || name[0] == '.' || name.find('/') != std::string_view::npos) return false;
  return ends_with(name, ".tar") || ends_with(name, ".zip") || ends_with(name, ".files");
}

std::vector<std::string> build_file_names(const Store& store, const std::string& build_hash) {
  std::vector<std::string> names;
  if (!is_safe_id(build_hash)) return names;
  for (const StoredArtifact& artifact : store.build_artifacts(build_hash)) {
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
  std::error_code ec;
  if (!fs::exists(file, ec)) return Error{name, "build " + build_hash + " has no such file"};
  if (!ends_with(name, ".files")) return file;
  return tar_of_directory(store, file, "build-" + build_hash + "-" + name);
}

Result<bool> import_build_file(const Store& store, const std::string& build_hash,
                               const std::string& name, const fs::path& blob) {
  if (!is_safe_id(build_hash) || !is_build_file_name(name)) {
    return Error{name, "not a file of a build"};
  }
  const fs::path to = store.root() / "builds" / build_hash / name;
  std::error_code ec;
  if (fs::exists(to, ec)) return false;
  if (name == kCompleteFile) return import_complete_file(store, build_hash, blob);
  if (ends_with(name, ".files")) return import_files_artifact(store, blob, to);
  return move_no_replace(store, blob, to);
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
  Status unpacked = unpack(tar, Format::kTar, *temp);
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
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

Result<fs::path> export_run_artifact(const Store& store, const std::string& run_id,
                                     const std::string& name) {
  if (!is_safe_id(run_id) || name.empty() || name[0] == '.' ||
      name.find('/') != std::string::npos) {
    return Error{name, "not an artifact name"};
  }
  const fs::path file = store.run_dir(run_id) / "artifacts" / name;
  std::error_code ec;
  if (fs::is_regular_file(file, ec)) return file;
  if (!fs::is_directory(file, ec)) return Error{name, "run " + run_id + " kept no such artifact"};
  return tar_of_directory(store, file, "run-" + run_id + "-" + name);
}

}  // namespace testlooper::artifacts
