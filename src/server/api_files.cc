// The API's file endpoints (docs/api.md "Files"): source archives made from git, and the build
// artifacts and run records that workers without the server's disk download and upload. The
// artifact store's layout and transfer rules live in artifacts/transfer.h.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "artifacts/artifacts.h"
#include "artifacts/transfer.h"
#include "core/case_message.h"
#include "core/hash.h"
#include "core/ids.h"
#include "core/url.h"
#include "git/git.h"
#include "s3store/s3_artifacts.h"
#include "server/api.h"
#include "server/api_json.h"
#include "server/event_log.h"
#include "server/worker_token.h"

namespace testlooper::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using reply::error;
using reply::ok;
using reply::redirect;
using reply::store_full;

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

// Splits "a/b/c" into its segments.
std::vector<std::string> segments(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t slash = std::min(path.find('/', start), path.size());
    out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

// A full commit id: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
bool is_full_sha(const std::string& sha) {
  if (sha.size() != 40 && sha.size() != 64) return false;
  return sha.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::string content_type_of(const fs::path& file) {
  const std::string ext = file.extension().string();
  if (ext == ".tar") return "application/x-tar";
  if (ext == ".zip") return "application/zip";
  if (ext == ".json") return "application/json";
  return "application/octet-stream";
}

Response file_response(const fs::path& file) {
  return Response{200, content_type_of(file), "", file.string()};
}

// The uploaded body as a file: streamed there by the HTTP layer, or (a small body read into
// memory) written under `store`'s tmp/ now.
Result<fs::path> body_as_file(const artifacts::Store& store, const Request& request) {
  if (!request.body_file.empty()) return fs::path(request.body_file);
  Result<fs::path> temp = store.make_temp_dir("upload");
  if (!temp.ok()) return temp.error();
  TL_RETURN_IF_ERROR(artifacts::write_file_atomically(*temp / "body", request.body, false));
  return *temp / "body";
}

std::string format_word(artifacts::Format format) {
  switch (format) {
    case artifacts::Format::kTar:
      return "Tar";
    case artifacts::Format::kZip:
      return "Zip";
    case artifacts::Format::kFiles:
      return "Files";
  }
  return "Tar";
}

// Whether `request` carries the worker secret (server/worker_token.h).
bool from_worker(ServerState& state, const Request& request) {
  return state.is_worker_token(bearer_token(request.headers));
}

Response unauthorized() {
  return error(401, "this endpoint is for workers: the worker token is missing or wrong");
}

// S3 could not be read (artifacts in S3): logged; the client may try again later.
Response s3_unreadable(const std::string& what, const Error& e) {
  log_event("warn", "s3_unreadable", {{"what", what}, {"error", e.to_string()}});
  return error(503, "the artifact store (S3) cannot be read now; try again later");
}

// The upload token of the job the upload belongs to (ServerState::may_upload_build).
std::string upload_token(const Request& request) {
  auto it = request.headers.find("x-testlooper-upload");
  return it == request.headers.end() ? "" : it->second;
}

}  // namespace

std::string Api::body_file_for(const Request& head) {
  if (head.method != "POST" || !starts_with(head.path, "/api/artifacts/")) return "";
  // Only a worker's upload is streamed to disk; anyone else's is refused after at most the
  // in-memory limit.
  if (!from_worker(state_, head)) return "";
  static std::atomic<uint64_t> counter{0};
  static const uint64_t salt = std::random_device{}();
  const fs::path tmp = fs::path(state_.artifacts_dir()) / "tmp";
  std::error_code ec;
  fs::create_directories(tmp, ec);
  return (tmp / ("upload-" + std::to_string(::getpid()) + "-" + std::to_string(salt) + "-" +
                 std::to_string(counter++)))
      .string();
}

std::optional<Response> Api::get_file(const Request& request) {
  const std::string& p = request.path;
  if ((starts_with(p, "/api/source/") || starts_with(p, "/api/artifacts/")) &&
      !from_worker(state_, request)) {
    return unauthorized();
  }
  if (starts_with(p, "/api/runs/")) {
    // A build run's artifacts are its build's, served here for the web UI (no worker token).
    const std::vector<std::string> parts = segments(p.substr(10));
    if (parts.size() == 3 && parts[1] == "artifacts" && is_run_id(parts[0])) {
      auto run = state_.store().run(parts[0]);
      if (run.ok() && run->has_value() && (*run)->kind == "build") {
        // Artifacts in S3: the browser downloads from S3 (a short-lived presigned URL). A
        // succeeded build's files were put there before its result was recorded.
        if (state_.s3() != nullptr && (*run)->state == store::RunState::kSucceeded &&
            artifacts::is_build_file_name(parts[2]) && parts[2] != artifacts::kCompleteFile) {
          return redirect(state_.s3()->presign("builds/" + (*run)->hash + "/" + parts[2]));
        }
        return build_file((*run)->hash, parts[2]);
      }
    }
  }
  if (starts_with(p, "/api/source/")) {
    const std::vector<std::string> parts = segments(p.substr(12));
    if (parts.size() != 2) return error(404, "expected /api/source/{repo}/{sha}");
    auto path = request.query.find("path");
    return source_archive(parts[0], parts[1], path == request.query.end() ? "" : path->second);
  }
  if (starts_with(p, "/api/artifacts/builds/")) {
    const std::vector<std::string> parts = segments(p.substr(22));
    if (parts.size() == 1) return build_files(parts[0]);
    if (parts.size() == 2) return build_file(parts[0], parts[1]);
    return error(404, "expected /api/artifacts/builds/{hash}[/{file}]");
  }
  if (starts_with(p, "/api/runs/")) {
    const std::vector<std::string> parts = segments(p.substr(10));
    if (parts.size() == 2 && parts[1] == "artifacts") return run_artifacts(parts[0]);
    if (parts.size() == 3 && parts[1] == "artifacts") return run_artifact(parts[0], parts[2]);
    if (parts.size() >= 2 && parts[1] == "test_logs") return run_test_log(parts);
  }
  return std::nullopt;
}

bool Api::fetch_build_from_s3(const Request& request, Completion& done) {
  s3store::S3Artifacts* s3 = state_.s3();
  if (s3 == nullptr || request.method != "GET" ||
      !starts_with(request.path, "/api/artifacts/builds/") || !from_worker(state_, request)) {
    return false;
  }
  const std::vector<std::string> parts = segments(request.path.substr(22));
  if (parts.empty() || parts.size() > 2 || !is_identity_hash(parts[0])) return false;
  const artifacts::Store store(state_.artifacts_dir());
  const Result<std::vector<std::string>> names = artifacts::build_file_names(store, parts[0]);
  if (!names.ok() || !names->empty()) return false;  // stored here: answered as usual
  const std::string hash = parts[0];
  const bool running =
      start_thread(s3_fetches_, [this, s3, store, hash, request, done](const std::atomic<bool>&) {
        const Result<bool> got = s3->fetch_build(store, hash);
        // Answered on the io thread, from the local store the fetch filled.
        done([this, got, hash, request]() -> Response {
          if (!got.ok()) return s3_unreadable("build " + hash, got.error());
          return get_file(request).value_or(error(404, "no such file"));
        });
      });
  if (!running) {
    done([] { return error(503, "too many builds are being fetched from S3; try again shortly"); });
  }
  return true;
}

std::optional<Response> Api::upload_refusal(const Request& head) const {
  if (!from_worker(state_, head)) return unauthorized();
  const std::vector<std::string> parts = segments(head.path.substr(15));
  // Only the worker given the build's (or the record's) run, while that run is active.
  const bool allowed = (parts.size() == 3 && parts[0] == "builds" &&
                        state_.may_upload_build(parts[1], upload_token(head))) ||
                       (parts.size() == 2 && parts[0] == "runs" &&
                        state_.may_upload_record(parts[1], upload_token(head)));
  if (!allowed) {
    return error(403,
                 "uploads are accepted only from the worker running the build or run, "
                 "with its job's upload token, while the run is active");
  }
  // Refused before its body is read when there is no room for it: the worker tries again later.
  if (disk_full(state_.artifacts_dir())) {
    return write_failed("an upload (" + head.path + ")",
                        Error{"", "no space left on the data disk"});
  }
  return std::nullopt;
}

std::optional<Response> Api::post_file(const Request& request) {
  const std::string& p = request.path;
  if (!starts_with(p, "/api/artifacts/")) return std::nullopt;
  // Checked on the head too (refuse_early), and again now: the run may have ended meanwhile.
  if (auto refusal = upload_refusal(request)) return refusal;
  const std::vector<std::string> parts = segments(p.substr(15));
  if (parts.size() == 3 && parts[0] == "builds") return put_build_file(parts[1], parts[2], request);
  if (parts.size() == 2 && parts[0] == "runs") return put_run_record(parts[1], request);
  return error(404, "expected /api/artifacts/builds/{hash}/{file} or /api/artifacts/runs/{id}");
}

Response Api::write_failed(const std::string& what, const Error& e) const {
  state_.store_failed(what, e);
  return store_full();
}

Response Api::source_archive(const std::string& repo, const std::string& sha,
                             const std::string& path) {
  auto dir = state_.repos().find(repo);
  if (dir == state_.repos().end()) return error(404, "no repo named '" + repo + "'");
  if (!is_full_sha(sha)) return error(404, "'" + sha + "' is not a full commit id");
  const fs::path subpath = fs::path(path).lexically_normal();
  if (subpath.is_absolute() || (!subpath.empty() && *subpath.begin() == "..")) {
    return error(400, "'path' must stay inside the tree");
  }
  const artifacts::Store store(state_.artifacts_dir());
  // Cached by commit, repo and path: a commit's tree never changes.
  const fs::path cached =
      store.root() / "sources" /
      (sha + "-" + sha256_hex(repo + '\n' + subpath.generic_string()).substr(0, 16) + ".tar");
  std::error_code ec;
  if (fs::exists(cached, ec)) return file_response(cached);
  const std::string s3_key = "sources/" + cached.filename().string();
  if (state_.s3() != nullptr) {
    // Made before (by this server or an earlier one) and kept in S3.
    Result<fs::path> temp = store.make_temp_dir("source");
    if (!temp.ok()) return write_failed("a source archive of " + sha, temp.error());
    Result<bool> got = state_.s3()->fetch_file(s3_key, *temp / "tree.tar");
    if (got.ok() && *got) {
      fs::create_directories(cached.parent_path(), ec);
      fs::rename(*temp / "tree.tar", cached, ec);
    }
    fs::remove_all(*temp, ec);
    if (fs::exists(cached, ec)) return file_response(cached);
  }
  auto repository = git::Repository::open(dir->second);
  if (!repository.ok()) return error(500, repository.error().to_string());
  Result<fs::path> temp = store.make_temp_dir("source");
  if (!temp.ok()) return error(500, temp.error().to_string());
  Status exported =
      repository->export_tree(sha, subpath.generic_string(), (*temp / "tree").string());
  Status packed = exported.ok() ? artifacts::pack(*temp / "tree", {}, artifacts::Format::kTar,
                                                  *temp / "tree.tar")
                                : exported;
  if (packed.ok()) {
    fs::create_directories(cached.parent_path(), ec);
    fs::rename(*temp / "tree.tar", cached, ec);
    if (ec) packed = Error{cached.string(), "cannot store: " + ec.message()};
  }
  fs::remove_all(*temp, ec);
  if (!exported.ok())
    return error(404,
                 "cannot export " + sha + " of '" + repo + "': " + exported.error().to_string());
  if (!packed.ok() && disk_full(store.root().string())) {
    return write_failed("a source archive of " + sha, packed.error());
  }
  if (!packed.ok()) return error(500, packed.error().to_string());
  if (state_.s3() != nullptr) {
    // Only a cache (git can make it again): a failure to keep it in S3 is logged, not fatal.
    if (Status put = state_.s3()->put_once(s3_key, cached); !put.ok()) {
      log_event("warn", "s3_put_failed",
                {{"what", "a source archive"}, {"error", put.error().to_string()}});
    }
  }
  return file_response(cached);
}

Response Api::build_files(const std::string& hash) {
  if (!is_identity_hash(hash)) return error(400, "'" + hash + "' is not a build hash");
  const artifacts::Store store(state_.artifacts_dir());
  Result<std::vector<std::string>> files = artifacts::build_file_names(store, hash);
  if (files.ok() && files->empty() && state_.s3() != nullptr) {
    // Not in the local cache: S3 may have it (put by this server, or an earlier one).
    if (Result<bool> got = state_.s3()->fetch_build(store, hash); !got.ok()) {
      return s3_unreadable("build " + hash, got.error());
    }
    files = artifacts::build_file_names(store, hash);
  }
  if (!files.ok()) return error(500, files.error().message);
  if (files->empty()) return error(404, "nothing is stored for build " + hash);
  const Result<std::vector<artifacts::StoredArtifact>> stored = store.build_artifacts(hash);
  if (!stored.ok()) return error(500, stored.error().message);
  json artifacts = json::array();
  for (const auto& a : *stored) {
    const std::string file = a.path.filename().string();
    artifacts.push_back({{"name", a.name},
                         {"format", format_word(a.format)},
                         {"file", file},
                         {"url", "/api/artifacts/builds/" + hash + "/" + url_segment(file)}});
  }
  return ok({{"hash", hash},
             {"complete", store.is_build_complete(hash)},
             {"files", *files},
             {"artifacts", artifacts}});
}

Response Api::build_file(const std::string& hash, const std::string& name) {
  if (!is_identity_hash(hash) || !artifacts::is_build_file_name(name)) {
    return error(400, "not a build's file name");
  }
  const artifacts::Store store(state_.artifacts_dir());
  auto file = artifacts::export_build_file(store, hash, name);
  if (!file.ok() && state_.s3() != nullptr) {
    if (Result<bool> got = state_.s3()->fetch_build(store, hash); !got.ok()) {
      return s3_unreadable("build " + hash, got.error());
    }
    file = artifacts::export_build_file(store, hash, name);
  }
  if (!file.ok()) return error(404, file.error().message);
  return file_response(*file);
}

Response Api::put_build_file(const std::string& hash, const std::string& name,
                             const Request& request) {
  // The name must be one the store itself writes (artifact_file_stem): no NUL, '/', stray '%'.
  if (!is_identity_hash(hash) || !artifacts::is_build_file_name(name)) {
    return error(400, "not a build's file name (see docs/api.md)");
  }
  const artifacts::Store store(state_.artifacts_dir());
  if (store.is_build_complete(hash)) {
    return error(409, "build " + hash + " is complete: its files cannot be added or replaced");
  }
  Result<fs::path> body = body_as_file(store, request);
  if (!body.ok()) return write_failed("a file of build " + hash, body.error());
  Result<bool> added = artifacts::import_build_file(store, hash, name, *body);
  std::error_code ec;
  if (request.body_file.empty()) fs::remove_all(body->parent_path(), ec);
  if (!added.ok() && disk_full(store.root().string())) {
    return write_failed("a file of build " + hash, added.error());
  }
  // Messages only: an Error's `where` may be a server path.
  if (!added.ok() && artifacts::is_build_complete_error(added.error())) {
    return error(409, added.error().message);
  }
  if (!added.ok()) return error(400, name + ": " + added.error().message);
  return ok({{"hash", hash}, {"file", name}, {"added", *added}});
}

Response Api::put_run_record(const std::string& run_id, const Request& request) {
  if (!is_run_id(run_id)) return error(400, "not a run id");
  auto run = state_.store().run(run_id);
  if (!run.ok()) return error(500, run.error().message);
  if (!run->has_value()) return error(404, "no run " + run_id);
  const artifacts::Store store(state_.artifacts_dir());
  Result<fs::path> body = body_as_file(store, request);
  if (!body.ok()) return write_failed("the record of run " + run_id, body.error());
  Result<bool> added = artifacts::import_run_record(store, run_id, *body);
  std::error_code ec;
  if (request.body_file.empty()) fs::remove_all(body->parent_path(), ec);
  if (!added.ok() && disk_full(store.root().string())) {
    return write_failed("the record of run " + run_id, added.error());
  }
  if (!added.ok()) return error(400, "run record: " + added.error().message);
  return ok({{"run_id", run_id}, {"added", *added}});
}

Response Api::run_artifacts(const std::string& run_id) {
  if (!is_run_id(run_id)) return error(400, "not a run id");
  auto run = state_.store().run(run_id);
  if (!run.ok()) return error(500, run.error().message);
  if (!run->has_value()) return error(404, "no run " + run_id);
  const artifacts::Store store(state_.artifacts_dir());
  json out = json::array();
  if ((*run)->kind == "build") {
    const Result<std::vector<artifacts::StoredArtifact>> stored =
        store.build_artifacts((*run)->hash);
    if (!stored.ok()) return error(500, stored.error().message);
    for (const auto& a : *stored) {
      const std::string file = a.path.filename().string();
      out.push_back({{"name", a.name},
                     {"file", file},
                     {"url", "/api/runs/" + run_id + "/artifacts/" + url_segment(file)}});
    }
    return ok(out);
  }
  for (const auto& name : artifacts::run_artifact_names(store, run_id)) {
    out.push_back({{"name", name},
                   {"file", name},
                   {"url", "/api/runs/" + run_id + "/artifacts/" + url_segment(name)}});
  }
  return ok(out);
}

Response Api::run_artifact(const std::string& run_id, const std::string& name) {
  if (!is_run_id(run_id)) return error(400, "not a run id");
  const artifacts::Store store(state_.artifacts_dir());
  auto file = artifacts::export_run_artifact(store, run_id, name);
  if (!file.ok()) return error(404, file.error().message);
  // Artifacts in S3: a file of a recorded run's record is downloaded from S3 (presigned); a Files
  // artifact (a directory there) is served as a tar from here.
  std::error_code ec;
  if (state_.s3() != nullptr &&
      fs::is_regular_file(fs::symlink_status(store.run_dir(run_id) / "artifacts" / name, ec))) {
    auto run = state_.store().run(run_id);
    if (run.ok() && run->has_value() && (*run)->state != store::RunState::kRunning) {
      return redirect(state_.s3()->presign("runs/" + run_id + "/artifacts/" + name));
    }
  }
  return file_response(*file);
}

// GET /api/runs/{id}/test_logs/{dir}/{file}: a test case's log kept in the run's record, as
// text (never as anything a browser would run: the test wrote it).
Response Api::run_test_log(const std::vector<std::string>& parts) {
  if (!is_run_id(parts[0])) return error(400, "not a run id");
  if (parts.size() != 4 || !is_case_log_segment(parts[2]) || !is_case_log_segment(parts[3])) {
    return error(400,
                 "expected /api/runs/{id}/test_logs/{dir}/{file}, each name of [A-Za-z0-9._-] not "
                 "starting with '.'");
  }
  const artifacts::Store store(state_.artifacts_dir());
  Result<fs::path> file = artifacts::run_test_log(store, parts[0], parts[2], parts[3]);
  if (!file.ok()) return error(404, file.error().message);
  Response res{200, "text/plain; charset=utf-8", "", file->string()};
  res.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return res;
}

}  // namespace testlooper::server
