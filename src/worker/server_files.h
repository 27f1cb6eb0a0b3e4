// A worker's access to its server's files when it does not share the server's disk (docs/api.md
// "Files"): source trees come as tar archives from GET /api/source (cached under the worker's
// directory by commit), the builds a job depends on are downloaded into the worker's own artifact
// store before the run, and what the run stored (a build's artifacts, the run record) is uploaded
// after it, before the result is reported. The runner itself never knows: it reads sources
// through RemoteSourceExporter and builds from the local store.
//
// Thread-safety: every class here may be used from many threads at once; downloads land in
// their final place atomically, so two runs fetching the same thing only waste a download.
#pragma once

#include <filesystem>
#include <string>

#include "artifacts/artifacts.h"
#include "core/error.h"
#include "core/url.h"
#include "definitions/definitions.h"
#include "runner/runner.h"
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

// Moves builds and run records between the server and the worker's local store.
class RemoteFiles {
 public:
  // `client` and `store` must outlive this.
  RemoteFiles(const ServerClient& client, const artifacts::Store& store);

  // Brings every build `object` depends on into the local store (what the server has of it; a
  // build already complete here is not fetched again). Errors name the build.
  Status fetch_inputs(const definitions::ResolvedObject& object) const;

  // Uploads what run `run_id` of `object` stored: a build's artifacts (complete.json last), then
  // the run record, which is then removed here (the server keeps it). A missing record (the run
  // could not write one) is not an error. `upload_token` is the job's (the server accepts the
  // run's files only with it).
  Status upload_outputs(const definitions::ResolvedObject& object, const std::string& run_id,
                        const std::string& upload_token) const;

 private:
  Status fetch_build(const std::string& build_hash) const;
  Status upload_build(const std::string& build_hash, const std::string& upload_token) const;

  const ServerClient& client_;
  const artifacts::Store& store_;
};

}  // namespace testlooper::worker
