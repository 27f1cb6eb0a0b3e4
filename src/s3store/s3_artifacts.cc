#include "s3store/s3_artifacts.h"

#include <algorithm>

#include "artifacts/artifacts.h"
#include "artifacts/transfer.h"
#include "core/ids.h"

namespace testlooper::s3store {

namespace fs = std::filesystem;

namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

// A relative path a worker may name in a run's record: segments not empty, "." or "..", of
// printable ASCII but '\\'.
bool is_record_path(const std::string& path) {
  if (path.empty() || path.size() > 512) return false;
  for (const char c : path) {
    if (c < 0x20 || c > 0x7e || c == '\\') return false;
  }
  size_t start = 0;
  while (start <= path.size()) {
    const size_t slash = std::min(path.find('/', start), path.size());
    const std::string segment = path.substr(start, slash - start);
    if (segment.empty() || segment == "." || segment == "..") return false;
    start = slash + 1;
  }
  return true;
}

}  // namespace

bool is_run_key(const std::string& run_id, const std::string& key) {
  const std::string prefix = "runs/" + run_id + "/";
  if (!is_run_id(run_id) || !starts_with(key, prefix)) return false;
  const std::string rest = key.substr(prefix.size());
  return is_record_path(rest) && rest != "log.txt";
}

bool is_build_key(const std::string& hash, const std::string& key) {
  const std::string prefix = "builds/" + hash + "/";
  return is_identity_hash(hash) && starts_with(key, prefix) &&
         artifacts::is_build_file_name(key.substr(prefix.size()));
}

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
Status S3Artifacts::put(const std::string& relative, const fs::path& path,
                        std::vector<PutKey>* put) {
  std::string etag;
  Status done = client_.put_file(options_.bucket, key(relative), path.string(), &etag);
  if (!done.ok()) {
    return Error{"s3://" + options_.bucket + "/" + key(relative), done.error().to_string()};
  }
  if (put != nullptr) {
    std::error_code ec;
    const uint64_t size = fs::file_size(path, ec);
    put->push_back({relative, ec ? 0 : size, etag});
  }
  return done;
}

Status S3Artifacts::put_once(const std::string& relative, const fs::path& path) {
  return put_once(relative, path, nullptr);
}

Status S3Artifacts::put_once(const std::string& relative, const fs::path& path,
                             std::vector<PutKey>* put) {
  {
    std::lock_guard lock(mutex_);
    if (put_.count(relative)) return Status();
  }
  TL_RETURN_IF_ERROR(this->put(relative, path, put));
  std::lock_guard lock(mutex_);
  put_.insert(relative);
  return Status();
}

Status S3Artifacts::put_build(const artifacts::Store& store, const std::string& hash,
                              std::vector<PutKey>* put) {
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
    TL_RETURN_IF_ERROR(put_once(relative, *file, put));
  }
  return Status();
}

Status S3Artifacts::put_run(const std::string& run_id, const fs::path& dir, const fs::path& log,
                            std::vector<PutKey>* put) {
  std::error_code ec;
  std::vector<fs::path> files;
  if (fs::is_directory(fs::symlink_status(dir, ec))) {
    for (auto it = fs::recursive_directory_iterator(dir, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      // Symlinks are never followed (a record holds none; a crafted one stays local). The runner's
      // log.txt is not put: runs/<id>/log.txt is the log as the server kept it (put_log).
      if (it->is_regular_file(ec) && !it->is_symlink(ec) && it->path() != dir / "log.txt") {
        files.push_back(it->path());
      }
    }
    if (ec) return Error{dir.string(), "cannot list the run record: " + ec.message()};
  }
  std::sort(files.begin(), files.end());
  // test_result.json last: a record with it in S3 is whole (rebuild reads only those).
  std::stable_partition(files.begin(), files.end(),
                        [](const fs::path& f) { return f.filename() != "test_result.json"; });
  for (const fs::path& file : files) {
    TL_RETURN_IF_ERROR(this->put(
        "runs/" + run_id + "/" + file.lexically_relative(dir).generic_string(), file, put));
  }
  return put_log(run_id, log);
}

Status S3Artifacts::put_log(const std::string& run_id, const fs::path& log) {
  std::error_code ec;
  if (!log.empty() && fs::is_regular_file(log, ec)) {
    TL_RETURN_IF_ERROR(put("runs/" + run_id + "/log.txt", log));
  }
  return Status();
}

Status S3Artifacts::verify(const std::vector<PutKey>& keys) {
  for (const PutKey& k : keys) {
    const std::string where = "s3://" + options_.bucket + "/" + key(k.key);
    std::string etag;
    Result<std::optional<uint64_t>> size = client_.head_object(options_.bucket, key(k.key), &etag);
    if (!size.ok()) return Error{where, size.error().to_string()};
    if (!size->has_value()) return Error{where, "is not in the bucket"};
    if (**size != k.size) {
      return Error{where, "holds " + std::to_string(**size) + " bytes, not the " +
                              std::to_string(k.size) + " the worker said"};
    }
    if (!k.etag.empty() && etag != k.etag) {
      return Error{where, "has ETag " + etag + ", not the " + k.etag + " the worker said"};
    }
  }
  return Status();
}

Result<bool> S3Artifacts::has(const std::string& relative) {
  Result<std::optional<uint64_t>> size = client_.head_object(options_.bucket, key(relative));
  if (!size.ok())
    return Error{"s3://" + options_.bucket + "/" + key(relative), size.error().to_string()};
  return size->has_value();
}

Status S3Artifacts::fetch_run(const artifacts::Store& store, const std::string& run_id,
                              const std::vector<PutKey>& keys) {
  std::error_code ec;
  if (fs::exists(store.run_dir(run_id), ec)) return Status();
  Result<fs::path> temp = store.make_temp_dir("s3-run");
  if (!temp.ok()) return temp.error();
  Status status;
  for (const PutKey& k : keys) {
    if (!starts_with(k.key, "runs/")) continue;
    if (!is_run_key(run_id, k.key)) {
      status = Error{k.key, "is not a file of run " + run_id + "'s record"};
      break;
    }
    // Checked above: a relative path without "..", so it stays under the temp directory.
    const fs::path file = *temp / k.key.substr(("runs/" + run_id + "/").size());
    fs::create_directories(file.parent_path(), ec);
    Result<bool> got = fetch_file(k.key, file);
    if (!got.ok()) status = got.error();
    if (got.ok() && !*got) status = Error{"s3://" + options_.bucket + "/" + key(k.key), "is gone"};
    if (!status.ok()) break;
  }
  if (status.ok()) {
    Result<fs::path> committed = store.commit_run(*temp, run_id);
    if (committed.ok() || fs::exists(store.run_dir(run_id), ec)) {
      return Status();
    }
    status = committed.error();
  }
  fs::remove_all(*temp, ec);
  return status;
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

}  // namespace testlooper::s3store
