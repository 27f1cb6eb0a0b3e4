#include "server/s3_artifacts.h"

#include <algorithm>

#include "artifacts/artifacts.h"
#include "artifacts/transfer.h"
#include "core/ids.h"

namespace testlooper::server {

namespace fs = std::filesystem;

S3Artifacts::S3Artifacts(fleet::S3Options options, fleet::Credentials credentials)
    : options_(std::move(options)),
      client_(fleet::Endpoint{"s3", options_.region, options_.endpoint_url},
              std::move(credentials)) {}

Result<std::unique_ptr<S3Artifacts>> S3Artifacts::open(const fleet::S3Options& options) {
  Result<fleet::Credentials> credentials = fleet::load_credentials();
  if (!credentials.ok()) return credentials.error();
  return std::make_unique<S3Artifacts>(options, *credentials);
}

// Errors name the bucket and key (never a server path: they may reach a log, not a client).
Status S3Artifacts::put(const std::string& relative, const fs::path& path) {
  Status put = client_.put_file(options_.bucket, key(relative), path.string());
  if (!put.ok()) {
    return Error{"s3://" + options_.bucket + "/" + key(relative), put.error().to_string()};
  }
  return put;
}

Status S3Artifacts::put_once(const std::string& relative, const fs::path& path) {
  {
    std::lock_guard lock(mutex_);
    if (put_.count(relative)) return Status();
  }
  TL_RETURN_IF_ERROR(put(relative, path));
  std::lock_guard lock(mutex_);
  put_.insert(relative);
  return Status();
}

Status S3Artifacts::put_build(const artifacts::Store& store, const std::string& hash) {
  Result<std::vector<std::string>> names = artifacts::build_file_names(store, hash);
  if (!names.ok()) return names.error();
  std::optional<std::set<std::string>> there;  // listed once, when needed
  for (const std::string& name : *names) {
    const std::string relative = "builds/" + hash + "/" + name;
    {
      std::lock_guard lock(mutex_);
      if (put_.count(relative)) continue;
    }
    // Put by an earlier server process: build files never change once stored.
    if (!there) {
      const std::string prefix = key("builds/" + hash + "/");
      Result<std::vector<fleet::S3Object>> objects = client_.list_objects(options_.bucket, prefix);
      if (!objects.ok()) {
        return Error{"s3://" + options_.bucket + "/" + prefix, objects.error().to_string()};
      }
      there.emplace();
      for (const fleet::S3Object& o : *objects) there->insert(o.key);
    }
    if (there->count(key(relative))) {
      std::lock_guard lock(mutex_);
      put_.insert(relative);
      continue;
    }
    Result<fs::path> file = artifacts::export_build_file(store, hash, name);
    if (!file.ok()) return file.error();
    TL_RETURN_IF_ERROR(put_once(relative, *file));
  }
  return Status();
}

Status S3Artifacts::put_run(const std::string& run_id, const fs::path& dir, const fs::path& log) {
  std::error_code ec;
  std::vector<fs::path> files;
  if (fs::is_directory(fs::symlink_status(dir, ec))) {
    for (auto it = fs::recursive_directory_iterator(dir, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      // Symlinks are never followed (a record holds none; a crafted one stays local).
      if (it->is_regular_file(ec) && !it->is_symlink(ec)) files.push_back(it->path());
    }
    if (ec) return Error{dir.string(), "cannot list the run record: " + ec.message()};
  }
  std::sort(files.begin(), files.end());
  // test_result.json last: a record with it in S3 is whole (rebuild reads only those).
  std::stable_partition(files.begin(), files.end(),
                        [](const fs::path& f) { return f.filename() != "test_result.json"; });
  for (const fs::path& file : files) {
    TL_RETURN_IF_ERROR(
        put("runs/" + run_id + "/" + file.lexically_relative(dir).generic_string(), file));
  }
  if (fs::is_regular_file(log, ec)) TL_RETURN_IF_ERROR(put("runs/" + run_id + "/log.txt", log));
  return Status();
}

Result<bool> S3Artifacts::fetch_file(const std::string& relative, const fs::path& path) {
  Status got = client_.get_file(options_.bucket, key(relative), path.string());
  // One GET, no HEAD first: absence is its 404 (S3 says NoSuchKey).
  if (!got.ok() && got.error().message.find("NoSuchKey") != std::string::npos) return false;
  if (!got.ok()) {
    return Error{"s3://" + options_.bucket + "/" + key(relative), got.error().to_string()};
  }
  return true;
}

Result<bool> S3Artifacts::fetch_build(const artifacts::Store& store, const std::string& hash) {
  if (!is_identity_hash(hash)) return false;
  const std::string prefix = key("builds/" + hash + "/");
  Result<std::vector<fleet::S3Object>> objects = client_.list_objects(options_.bucket, prefix);
  if (!objects.ok())
    return Error{"s3://" + options_.bucket + "/" + prefix, objects.error().to_string()};
  std::vector<std::string> names;
  for (const fleet::S3Object& o : *objects) {
    const std::string name = o.key.substr(prefix.size());
    // What a hostile bucket may hold is not trusted: only names the store itself writes.
    if (artifacts::is_build_file_name(name)) names.push_back(name);
  }
  if (names.empty()) return false;
  std::stable_partition(names.begin(), names.end(),
                        [](const std::string& n) { return n != artifacts::kCompleteFile; });
  Result<fs::path> temp = store.make_temp_dir("s3-build");
  if (!temp.ok()) return temp.error();
  Status status;
  for (const std::string& name : names) {
    const fs::path blob = *temp / "blob";
    Result<bool> got = fetch_file("builds/" + hash + "/" + name, blob);
    if (!got.ok()) {
      status = got.error();
      break;
    }
    if (!*got) continue;
    Result<bool> added = artifacts::import_build_file(store, hash, name, blob);
    std::error_code ec;
    fs::remove_all(blob, ec);
    if (!added.ok() && !artifacts::is_build_complete_error(added.error())) {
      status = Error{"s3://" + options_.bucket + "/" + prefix + name, added.error().message};
      break;
    }
  }
  std::error_code ec;
  fs::remove_all(*temp, ec);
  if (!status.ok()) return status.error();
  return true;
}

std::string S3Artifacts::presign(const std::string& relative, int seconds) const {
  return client_.presign_get(options_.bucket, key(relative), seconds);
}

Result<std::vector<std::string>> S3Artifacts::run_ids() {
  const std::string prefix = key("runs/");
  Result<std::vector<fleet::S3Object>> objects = client_.list_objects(options_.bucket, prefix);
  if (!objects.ok())
    return Error{"s3://" + options_.bucket + "/" + prefix, objects.error().to_string()};
  std::vector<std::string> ids;
  for (const fleet::S3Object& o : *objects) {
    const std::string rest = o.key.substr(prefix.size());
    const size_t slash = rest.find('/');
    if (slash != std::string::npos && rest.substr(slash + 1) == "test_result.json") {
      ids.push_back(rest.substr(0, slash));
    }
  }
  return ids;
}

Result<std::string> S3Artifacts::get(const std::string& relative, size_t max_bytes) {
  Result<std::string> body = client_.get_object(options_.bucket, key(relative), max_bytes);
  if (!body.ok()) {
    return Error{"s3://" + options_.bucket + "/" + key(relative), body.error().to_string()};
  }
  return body;
}

}  // namespace testlooper::server
