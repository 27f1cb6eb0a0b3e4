// Artifacts in S3 (config.json `artifacts: {"bucket", ...}`, docs/configuration.md "Artifacts in
// S3"): the one implementation of the bucket's key layout, used by the server and by workers that
// read and write the bucket directly. On the server, the local artifact store
// (artifacts/artifacts.h) stays the staging area and the cache: workers write there (or upload
// there through the server, or put their files in S3 themselves), and a run's files are in S3
// before its result is recorded, so a result is never acknowledged before its files are in S3;
// what is missing locally is fetched back from S3 when asked for. A worker fetches its input
// builds into its own store (fetch_build) and puts its outputs (put_build, put_run), then names
// what it put (PutKey) in its result; the server checks the names (is_run_key, is_build_key) and
// the objects (verify) before fetching the record (fetch_run).
//
// Key layout under key_prefix (the same names as the local store's, artifacts/transfer.h):
//   builds/<build hash>/<artifact file>   "<stem>.tar", "<stem>.zip", "<stem>.files" (a tar)
//   builds/<build hash>/complete.json     put last: the build is complete
//   runs/<run id>/test_result.json        the run record's files, as the worker wrote them
//   runs/<run id>/...                     (artifacts/, test_logs/, ...)
//   runs/<run id>/log.txt                 the run's log as the server kept it
//   sources/<sha>-<16 hex>.tar            source archives handed to remote workers
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "fleet/s3.h"

namespace testlooper::artifacts {
class Store;
}

namespace testlooper::s3store {

// How long the presigned URLs of the UI's downloads stay valid.
inline constexpr int kPresignSeconds = 300;

// An object a worker put (and names in its result): `key` is relative to key_prefix.
struct PutKey {
  std::string key;
  uint64_t size = 0;
  std::string etag;  // as S3 answered the put; "" = not known (then only the size is checked)
};

// Whether `key` (relative to key_prefix) is a file of run `run_id`'s record as a worker may put
// it: runs/<run_id>/<path>, a relative path of 1 to 512 bytes whose segments are not empty, "."
// or "..", of printable ASCII but '\\'; never runs/<run_id>/log.txt (the server's log).
bool is_run_key(const std::string& run_id, const std::string& key);
// Whether `key` is a file of build `hash`: builds/<hash>/<a name the store writes>.
bool is_build_key(const std::string& hash, const std::string& key);

class S3Artifacts {
 public:
  S3Artifacts(fleet::S3Options options, fleet::Credentials credentials);

  // The store `options` configures, with the environment's credentials (fleet::load_credentials).
  static Result<std::unique_ptr<S3Artifacts>> open(const fleet::S3Options& options);

  const fleet::S3Options& options() const { return options_; }

  // The object key of `relative` ("builds/<hash>/bin.tar"): key_prefix + relative.
  std::string key(const std::string& relative) const { return options_.key_prefix + relative; }

  // Puts build `hash`'s stored files (local `store`) that S3 does not have yet: its artifacts,
  // then complete.json when the build is complete. What it put is appended to `put` (not null).
  Status put_build(const artifacts::Store& store, const std::string& hash,
                   std::vector<PutKey>* put = nullptr);

  // Puts every regular file under run record directory `dir` as runs/<run_id>/<relative path>
  // (a missing directory puts nothing; test_result.json last; not the runner's log.txt), then the
  // log file `log` (put_log).
  // What it put is appended to `put` (not null).
  Status put_run(const std::string& run_id, const std::filesystem::path& dir,
                 const std::filesystem::path& log, std::vector<PutKey>* put = nullptr);
  // Puts the log file `log` (when it exists) as runs/<run_id>/log.txt.
  Status put_log(const std::string& run_id, const std::filesystem::path& log);

  // Whether every object of `keys` is in the bucket with its size (and its ETag, when given).
  // Error naming the first that is not.
  Status verify(const std::vector<PutKey>& keys);

  // Whether object `relative` is in the bucket.
  Result<bool> has(const std::string& relative);

  // Fetches the runs/<run_id>/ objects of `keys` (each checked with is_run_key) into the local
  // `store` as run `run_id`'s record, as an upload of it is imported (a record already there is
  // kept).
  Status fetch_run(const artifacts::Store& store, const std::string& run_id,
                   const std::vector<PutKey>& keys);

  // Puts the file `path` as `relative` (once: a key put by this process is not put again; for
  // content-addressed keys only, builds/ and sources/: the memory of what was put is never
  // forgotten, and a run's files are put once anyway).
  Status put_once(const std::string& relative, const std::filesystem::path& path);

  // Fetches build `hash`'s files from S3 into the local `store` (artifacts first, complete.json
  // last, each imported as an upload is). False when S3 has nothing of that build.
  Result<bool> fetch_build(const artifacts::Store& store, const std::string& hash);

  // Streams object `relative` to the file `path`; false when there is no such object.
  Result<bool> fetch_file(const std::string& relative, const std::filesystem::path& path);

  // A URL that GETs `relative` without credentials for `seconds`.
  std::string presign(const std::string& relative, int seconds = kPresignSeconds) const;

  // The ids of the run records in S3 (runs/<id>/test_result.json), in key order.
  Result<std::vector<std::string>> run_ids();

  // The bytes of object `relative`, at most `max_bytes`.
  Result<std::string> get(const std::string& relative, size_t max_bytes);

 private:
  // Puts the file `path` as `relative` (appended to `put` when not null).
  Status put(const std::string& relative, const std::filesystem::path& path,
             std::vector<PutKey>* put = nullptr);
  Status put_once(const std::string& relative, const std::filesystem::path& path,
                  std::vector<PutKey>* put);

  fleet::S3Options options_;
  mutable fleet::S3Client client_;
  std::mutex mutex_;
  std::set<std::string> put_;  // builds/ and sources/ keys put by this process (put_once)
};

}  // namespace testlooper::s3store
