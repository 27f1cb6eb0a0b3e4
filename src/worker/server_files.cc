// RemoteSourceExporter and RemoteFiles: the server's file endpoints seen from a worker.
#include "worker/server_files.h"

#include <algorithm>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "artifacts/transfer.h"
#include "core/hash.h"

namespace testlooper::worker {
namespace {

using nlohmann::json;

}  // namespace

RemoteSourceExporter::RemoteSourceExporter(const ServerClient& client, fs::path cache_dir)
    : client_(client), cache_dir_(std::move(cache_dir)) {}

Status RemoteSourceExporter::export_tree(const std::string& repo, const std::string& commit,
                                         const std::string& path, const fs::path& dest) {
  const fs::path cached =
      cache_dir_ / (commit + "-" + sha256_hex(repo + '\n' + path).substr(0, 16) + ".tar");
  std::error_code ec;
  if (!fs::exists(cached, ec)) {
    std::string target = "/api/source/" + url_segment(repo) + "/" + url_segment(commit);
    if (!path.empty()) target += "?path=" + url_segment(path);
    TL_RETURN_IF_ERROR(client_.download(target, cached));
  }
  // A git tree may hold links pointing anywhere (git checkout would make them too); nothing is
  // written through them.
  artifacts::UnpackOptions options;
  options.symlinks = artifacts::UnpackOptions::Symlinks::kAny;
  return artifacts::unpack(cached, artifacts::Format::kTar, dest, options);
}

Result<fleet::Credentials> S3Access::credentials() {
  Result<fleet::Credentials> from_environment = fleet::load_credentials();
  if (from_environment.ok()) return from_environment;
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (instance_ && instance_->expires_at - 300 > static_cast<int64_t>(std::time(nullptr))) {
    return *instance_;
  }
  if (instance_error_ && now < retry_at_) return *instance_error_;
  Result<fleet::Credentials> role = fleet::instance_credentials();
  if (role.ok()) {
    instance_ = *role;
    instance_error_.reset();
    return role;
  }
  instance_.reset();
  instance_error_ = Error{"", "no AWS credentials (" + from_environment.error().to_string() + "; " +
                                  role.error().to_string() + ")"};
  retry_at_ = now + kRetryInstanceRole;
  return *instance_error_;
}

Result<std::unique_ptr<s3store::S3Artifacts>> S3Access::open(const fleet::S3Options& options) {
  Result<fleet::Credentials> found = credentials();
  if (!found.ok()) return found.error();
  return std::make_unique<s3store::S3Artifacts>(options, *found);
}

RemoteFiles::RemoteFiles(const ServerClient& client, const artifacts::Store& store)
    : client_(client), store_(store) {}

Status RemoteFiles::fetch_inputs(const definitions::ResolvedObject& object,
                                 s3store::S3Artifacts* s3) const {
  std::set<std::string> builds;
  for (const auto& [relpath, dep] : object.dependencies) {
    if (dep.kind == definitions::Dependency::Kind::kBuild) builds.insert(dep.build_hash);
  }
  for (const std::string& hash : builds) {
    Status fetched = fetch_build(hash, s3);
    if (!fetched.ok()) return Error{hash, "cannot fetch the build: " + fetched.error().to_string()};
  }
  return {};
}

Status RemoteFiles::fetch_build(const std::string& build_hash, s3store::S3Artifacts* s3) const {
  if (!artifacts::is_safe_id(build_hash)) return Error{build_hash, "not a build hash"};
  if (store_.is_build_complete(build_hash)) return {};
  if (s3 != nullptr) {
    // Straight from the bucket (complete.json last, as it was put); the server when it cannot.
    Result<bool> got = s3->fetch_build(store_, build_hash);
    if (got.ok() && store_.is_build_complete(build_hash)) return {};
    std::cerr << "testlooper worker: build " << build_hash << " is not read from S3 ("
              << (got.ok() ? std::string("not complete in the bucket") : got.error().to_string())
              << "): from the server" << std::endl;
  }
  Result<std::string> listing = client_.get("/api/artifacts/builds/" + build_hash);
  if (!listing.ok()) return listing.error();
  const json parsed = json::parse(*listing, nullptr, false);
  if (!parsed.is_object() || !parsed.contains("files") || !parsed["files"].is_array()) {
    return Error{build_hash, "the server's listing of the build is not {\"files\": [...]}"};
  }
  const json& files = parsed["files"];
  const Result<std::vector<std::string>> local = artifacts::build_file_names(store_, build_hash);
  if (!local.ok()) return local.error();
  // The listing puts complete.json last, so a build is never complete here without its files.
  for (const json& file : files) {
    const std::string name = file.is_string() ? file.get<std::string>() : "";
    if (!artifacts::is_build_file_name(name)) {
      return Error{build_hash, "the server lists a file that is not a build's: '" + name + "'"};
    }
    if (std::find(local->begin(), local->end(), name) != local->end()) continue;
    Result<fs::path> temp = store_.make_temp_dir("download");
    if (!temp.ok()) return temp.error();
    Status downloaded = client_.download(
        "/api/artifacts/builds/" + build_hash + "/" + url_segment(name), *temp / "blob");
    Result<bool> added =
        downloaded.ok() ? artifacts::import_build_file(store_, build_hash, name, *temp / "blob")
                        : Result<bool>(downloaded.error());
    std::error_code ec;
    fs::remove_all(*temp, ec);
    // Another run's fetch of the same build may have completed it meanwhile: then all is here.
    if (!added.ok() && artifacts::is_build_complete_error(added.error())) return {};
    if (!added.ok()) return added.error();
  }
  return {};
}

Status RemoteFiles::upload_outputs(const definitions::ResolvedObject& object,
                                   const std::string& run_id,
                                   const std::string& upload_token) const {
  if (object.kind == definitions::ObjectKind::kBuild) {
    TL_RETURN_IF_ERROR(upload_build(object.hash, upload_token));
  }
  std::error_code ec;
  if (!fs::is_directory(store_.run_dir(run_id), ec)) return {};
  Result<fs::path> temp = store_.make_temp_dir("upload");
  if (!temp.ok()) return temp.error();
  Status packed = artifacts::export_run_record(store_, run_id, *temp / "record.tar");
  Result<std::string> uploaded = packed.ok()
                                     ? client_.upload("/api/artifacts/runs/" + url_segment(run_id),
                                                      *temp / "record.tar", upload_token)
                                     : Result<std::string>(packed.error());
  fs::remove_all(*temp, ec);
  if (!uploaded.ok()) return uploaded.error();
  fs::remove_all(store_.run_dir(run_id), ec);
  return {};
}

Result<std::vector<s3store::PutKey>> RemoteFiles::put_outputs(
    const definitions::ResolvedObject& object, const std::string& run_id, bool succeeded,
    s3store::S3Artifacts& s3) const {
  std::vector<s3store::PutKey> put;
  if (object.kind == definitions::ObjectKind::kBuild && succeeded) {
    TL_RETURN_IF_ERROR(s3.put_build(store_, object.hash, &put));
  }
  // The log is the server's to put (it keeps it as it came); the record is the worker's.
  TL_RETURN_IF_ERROR(s3.put_run(run_id, store_.run_dir(run_id), "", &put));
  // Named in the result only when the server will take the names (docs/api.md): else the server
  // gets the files as uploads, and what was put stays (the server puts the same keys again).
  if (put.size() > kMaxS3Keys) {
    return Error{run_id, "the run stored more than " + std::to_string(kMaxS3Keys) + " files"};
  }
  for (s3store::PutKey& k : put) {
    if (!s3store::is_run_key(run_id, k.key) && !s3store::is_build_key(object.hash, k.key)) {
      return Error{k.key, "is not a name the server takes from a worker"};
    }
    if (k.etag.size() > 128) k.etag.clear();  // then only the size is checked
  }
  std::error_code ec;
  fs::remove_all(store_.run_dir(run_id), ec);
  return put;
}

Status RemoteFiles::upload_build(const std::string& build_hash,
                                 const std::string& upload_token) const {
  // A build the server already holds complete is immutable there (409): nothing to upload.
  if (Result<std::string> listing = client_.get("/api/artifacts/builds/" + build_hash);
      listing.ok()) {
    const json parsed = json::parse(*listing, nullptr, false);
    if (parsed.is_object() && parsed.contains("complete") && parsed["complete"] == true) return {};
  }
  const Result<std::vector<std::string>> names = artifacts::build_file_names(store_, build_hash);
  if (!names.ok()) return names.error();
  for (const std::string& name : *names) {
    Result<fs::path> file = artifacts::export_build_file(store_, build_hash, name);
    if (!file.ok()) return file.error();
    Result<std::string> uploaded = client_.upload(
        "/api/artifacts/builds/" + build_hash + "/" + url_segment(name), *file, upload_token);
    if (!uploaded.ok()) return uploaded.error();
  }
  return {};
}

}  // namespace testlooper::worker
