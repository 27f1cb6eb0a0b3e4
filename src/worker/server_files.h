// A worker's access to its server's files when it does not share the server's disk (docs/api.md
// "Files"): source trees come as tar archives from GET /api/source (cached under the worker's
// directory by commit), the builds a job depends on are downloaded into the worker's own artifact
// store before the run, and what the run stored (a build's artifacts, the run record) is uploaded
// after it, before the result is reported. With artifacts in S3 (the job's "s3") and credentials
// of its own (S3Access: the environment's, else an EC2 instance role's), the worker reads the
// builds from the bucket and puts its files there itself, and falls back to the server when it
// cannot. The runner itself never knows: it reads sources through RemoteSourceExporter and builds
// from the local store.
//
// Thread-safety: every class here may be used from many threads at once; downloads land in
// their final place atomically, so two runs fetching the same thing only waste a download.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "artifacts/artifacts.h"
#include "core/error.h"
#include "core/url.h"
#include "definitions/definitions.h"
#include "fleet/aws.h"
#include "fleet/s3.h"
#include "runner/runner.h"
#include "s3store/s3_artifacts.h"
#include "worker/server_connection.h"

namespace testlooper::worker {

namespace fs = std::filesystem;

// HTTP/1.1 requests to the server, over TLS for an https:// one (Boost.Beast, kept out of this
// header), one connection each, carrying the worker secret (`Authorization: Bearer <token>`). A
// status other than 200 is an Error carrying the server's {"error"} message.
class ServerClient {
 public:
  ServerClient(ServerEndpoint server, std::string token);

  // GET `target` ("/api/..."): the body.
  Result<std::string> get(const std::string& target) const;
  // GET `target` streamed into `dest`, which appears atomically (temp sibling, then rename).
  Status download(const std::string& target, const fs::path& dest) const;
  // POSTs the content of `file` to `target` with the job's `upload_token` (header
  // `X-TestLooper-Upload`): the response body.
  Result<std::string> upload(const std::string& target, const fs::path& file,
                             const std::string& upload_token) const;
  // Whether `error` (of a request above) may pass if tried again later: the server could not be
  // reached or answered 5xx (restarting, its disk full), rather than refusing the request.
  static bool is_transient(const Error& error);

 private:
  ServerEndpoint server_;
  std::string token_;
};

// Source trees from GET /api/source/{repo}/{commit}?path=..., cached as archives under
// `cache_dir` (a commit's tree never changes) and unpacked into each run's inputs.
class RemoteSourceExporter : public runner::SourceExporter {
 public:
  RemoteSourceExporter(const ServerClient& client, fs::path cache_dir);
  Status export_tree(const std::string& repo, const std::string& commit, const std::string& path,
                     const fs::path& dest) override;

 private:
  const ServerClient& client_;
  fs::path cache_dir_;
};

// The bucket a job names, with this worker's own credentials: the environment's or a credentials
// file's (fleet::load_credentials), else the EC2 instance role's (fleet::instance_credentials,
// IMDSv2 at $AWS_EC2_METADATA_SERVICE_ENDPOINT or 169.254.169.254; kept until 5 minutes before
// they expire). A worker off EC2 pays the metadata probe (at most 1 s to connect, 3 s in all)
// once per kRetryInstanceRole, not once per job.
class S3Access {
 public:
  static constexpr std::chrono::seconds kRetryInstanceRole{300};

  // The bucket `options` names, or an Error saying why this worker cannot reach it itself.
  Result<std::unique_ptr<s3store::S3Artifacts>> open(const fleet::S3Options& options);

 private:
  Result<fleet::Credentials> credentials();

  std::mutex mutex_;
  std::optional<fleet::Credentials> instance_;  // the role's, while they last
  std::optional<Error> instance_error_;         // why there are none, until retry_at_
  std::chrono::steady_clock::time_point retry_at_;
};

// Moves builds and run records between the server and the worker's local store.
class RemoteFiles {
 public:
  // The most objects a result may name (the server's limit on its lists).
  static constexpr size_t kMaxS3Keys = 10000;

  // `client` and `store` must outlive this.
  RemoteFiles(const ServerClient& client, const artifacts::Store& store);

  // Brings every build `object` depends on into the local store (what the server has of it; a
  // build already complete here is not fetched again): from `s3` when given and it has the
  // build whole, else from the server (a line on stderr says why). Errors name the build.
  Status fetch_inputs(const definitions::ResolvedObject& object,
                      s3store::S3Artifacts* s3 = nullptr) const;

  // Puts what run `run_id` of `object` stored in `s3` itself: a succeeded build's artifacts
  // (complete.json last), then the run record (test_result.json last), which is then removed
  // here. The objects it put (for the result's "s3_keys"); an Error when S3 refused or could not
  // be reached, or the server would not take the names (more than kMaxS3Keys, a path too long):
  // then nothing is removed, and upload_outputs can still send it all to the server.
  Result<std::vector<s3store::PutKey>> put_outputs(const definitions::ResolvedObject& object,
                                                   const std::string& run_id, bool succeeded,
                                                   s3store::S3Artifacts& s3) const;

  // Uploads what run `run_id` of `object` stored: a build's artifacts (complete.json last), then
  // the run record, which is then removed here (the server keeps it). A missing record (the run
  // could not write one) is not an error. `upload_token` is the job's (the server accepts the
  // run's files only with it).
  Status upload_outputs(const definitions::ResolvedObject& object, const std::string& run_id,
                        const std::string& upload_token) const;

 private:
  Status fetch_build(const std::string& build_hash, s3store::S3Artifacts* s3) const;
  Status upload_build(const std::string& build_hash, const std::string& upload_token) const;

  const ServerClient& client_;
  const artifacts::Store& store_;
};

}  // namespace testlooper::worker
