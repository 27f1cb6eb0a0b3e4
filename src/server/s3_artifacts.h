// The server's artifacts in S3 (config.json `artifacts: {"bucket", ...}`, docs/configuration.md
// "Artifacts in S3"). The local artifact store (artifacts/artifacts.h) stays the staging area and
// the cache: workers write there (or upload there through the server), and a run's files are put
// in S3 before its result is recorded, so a result is never acknowledged before its files are in
// S3; what is missing locally is fetched back from S3 when asked for.
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

namespace testlooper::server {

// How long the presigned URLs of the UI's downloads stay valid.
inline constexpr int kPresignSeconds = 300;

class S3Artifacts {
 public:
  S3Artifacts(fleet::S3Options options, fleet::Credentials credentials);

  // The store `options` configures, with the environment's credentials (fleet::load_credentials).
  static Result<std::unique_ptr<S3Artifacts>> open(const fleet::S3Options& options);

  const fleet::S3Options& options() const { return options_; }

  // The object key of `relative` ("builds/<hash>/bin.tar"): key_prefix + relative.
  std::string key(const std::string& relative) const { return options_.key_prefix + relative; }

  // Puts build `hash`'s stored files (local `store`) that S3 does not have yet: its artifacts,
  // then complete.json when the build is complete.
  Status put_build(const artifacts::Store& store, const std::string& hash);

  // Puts every regular file under run record directory `dir` as runs/<run_id>/<relative path>
  // (a missing directory puts nothing), and the log file `log` (when it exists) as
  // runs/<run_id>/log.txt.
  Status put_run(const std::string& run_id, const std::filesystem::path& dir,
                 const std::filesystem::path& log);

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
  // Puts the file `path` as `relative`.
  Status put(const std::string& relative, const std::filesystem::path& path);

  fleet::S3Options options_;
  mutable fleet::S3Client client_;
  std::mutex mutex_;
  std::set<std::string> put_;  // builds/ and sources/ keys put by this process (put_once)
};

}  // namespace testlooper::server
