// A worker that shares no disk with its server, end to end: a real `testlooper serve` with no
// local workers, and a `testlooper worker` process with its own directory that is never told
// where the repos or the artifact store are. Sources come as archives over HTTP, the build's
// artifacts go up to the server and come back down for the test, and the run records end up in
// the server's store, where the API serves them.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "server_fixture.h"

namespace testlooper::server {
namespace {

namespace fs = std::filesystem;
using fixtures::capture;
using fixtures::eventually;
using fixtures::GitFixtureRepo;
using fixtures::ServerProcess;
using fixtures::shell_quote;
using fixtures::TempDir;
using fixtures::WorkerProcess;
using nlohmann::json;

// The build copies a file of the source tree into a Tar artifact and writes a Files artifact;
// the test reads both through the whole build, and a slice of the tree, and keeps a report.
constexpr const char* kDefinitions = R"(looper_version: 5
environments: {linux: {platform: linux, image: {host: true}}}
builds:
  build/linux:
    dependencies: {src: HEAD}
    stages:
      - command: 'mkdir -p $TEST_BUILD_OUTPUT_DIR/bin $TEST_BUILD_OUTPUT_DIR/docs && cp $TEST_INPUTS/src/greeting.txt $TEST_BUILD_OUTPUT_DIR/bin/ && echo doc > $TEST_BUILD_OUTPUT_DIR/docs/readme.md'
        artifacts: [{name: bin, directory: bin}, {name: docs, directory: docs, format: Files}]
tests:
  uses-build/linux:
    dependencies: {whole: build/linux, sub: HEAD/source/sub}
    stages:
      - command: 'grep -q hello $TEST_INPUTS/whole/bin/greeting.txt && grep -q doc $TEST_INPUTS/whole/docs/readme.md && grep -q slice $TEST_INPUTS/sub/inner.txt && test -f $TEST_INPUTS/sub/.git_commit && test ! -e $TEST_INPUTS/sub/greeting.txt && mkdir -p $TEST_OUTPUT_DIR/report && echo ok > $TEST_OUTPUT_DIR/report/r.txt'
        artifacts: [{name: report, directory: report, format: Tar}]
)";

class RemoteWorkerTest : public testing::Test {
 protected:
  RemoteWorkerTest() : app_(dir_.path() + "/repos/app") {
    app_.write("testlooper.yml", kDefinitions);
    app_.write("greeting.txt", "hello\n");
    app_.write("sub/inner.txt", "slice\n");
    sha_ = app_.commit("first");
    server_ = std::make_unique<ServerProcess>(
        std::vector<std::string>{"--repos", dir_.path() + "/repos", "--data", dir_.path() + "/data",
                                 "--port", "0", "--workers", "0", "--poll-seconds", "0.3"});
  }

  // The worker secret the server made (server/worker_token.h).
  std::string token_file() const { return dir_.path() + "/data/worker.token"; }
  std::string auth_header() const {
    std::ifstream in(token_file());
    std::string token;
    in >> token;
    return "-H " + shell_quote("Authorization: Bearer " + token) + " ";
  }

  // GETs `path` into `file` as a worker would (with the token); returns the HTTP status.
  int download(const std::string& path, const std::string& file) const {
    return std::stoi(capture("curl -s " + auth_header() + "-o " + shell_quote(file) +
                             " -w '%{http_code}' " + shell_quote(server_->url(path))));
  }

  // The names in the tar archive `file` (empty when it is not one).
  static std::string tar_listing(const std::string& file) {
    return capture("tar -tf " + shell_quote(file) + " 2>/dev/null | sort | tr '\\n' ' '");
  }

  // The one run of `name` at the commit.
  json only_run(const std::string& name) const {
    const json runs = server_->get("/api/repos/app/commits/" + sha_ + "/runs?name=" + name);
    return runs.is_array() && runs.size() == 1 ? runs[0] : json();
  }

  TempDir dir_;         // the server's repos and data
  TempDir worker_dir_;  // all the worker sees
  GitFixtureRepo app_;
  std::string sha_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(RemoteWorkerTest, RemoteWorker_RunsBuildAndTestThroughTheApiAndUploadsArtifacts) {
  ASSERT_TRUE(eventually([&] { return server_->get("/api/repos").size() == 1; }, 30));
  WorkerProcess worker({"--server", server_->url(""), "--dir", worker_dir_.path(), "--cores", "2",
                        "--ram-gb", "2", "--id", "remote-1", "--token-file", token_file()});
  ASSERT_TRUE(eventually([&] { return server_->get("/api/workers").size() == 1; }, 30));
  EXPECT_EQ(server_->get("/api/workers")[0]["id"], "remote-1");
  const auto [status, body] =
      server_->post("/api/repos/app/branches/main/test", R"({"enabled": true})");
  ASSERT_EQ(status, 200) << body.dump();
  ASSERT_TRUE(eventually(
      [&] {
        const json run = only_run("uses-build/linux");
        return run.is_object() && run["state"] != "running";
      },
      90))
      << server_->get("/api/repos/app/commits/" + sha_ + "/runs").dump(2);
  const json build = only_run("build/linux");
  const json test = only_run("uses-build/linux");
  ASSERT_EQ(build["state"], "succeeded") << build.dump(2);
  ASSERT_EQ(test["state"], "succeeded")
      << test.dump(2)
      << capture("curl -s " + server_->url("/api/runs/" + test["id"].get<std::string>() + "/log"));

  // The build's artifacts are on the server, complete, and download as archives.
  const std::string hash = build["hash"];
  const json listing =
      json::parse(capture("curl -s " + auth_header() +
                          shell_quote(server_->url("/api/artifacts/builds/" + hash))),
                  nullptr, false);
  EXPECT_EQ(listing["complete"], true) << listing.dump(2);
  EXPECT_EQ(listing["files"], json({"bin.tar", "docs.files", "complete.json"}));
  const json build_artifacts =
      server_->get("/api/runs/" + build["id"].get<std::string>() + "/artifacts");
  ASSERT_EQ(build_artifacts.size(), 2u) << build_artifacts.dump(2);
  const std::string file = dir_.path() + "/download.tar";
  ASSERT_EQ(download(build_artifacts[0]["url"], file), 200);
  EXPECT_EQ(tar_listing(file), "greeting.txt ");
  ASSERT_EQ(download(build_artifacts[1]["url"], file), 200);
  EXPECT_EQ(tar_listing(file), "readme.md ");

  // The test's record, uploaded by the worker, lists its report.
  const std::string test_id = test["id"];
  const json test_artifacts = server_->get("/api/runs/" + test_id + "/artifacts");
  ASSERT_EQ(test_artifacts.size(), 1u) << test_artifacts.dump(2);
  EXPECT_EQ(test_artifacts[0]["name"], "report.tar");
  ASSERT_EQ(download(test_artifacts[0]["url"], file), 200);
  EXPECT_EQ(tar_listing(file), "r.txt ");
  EXPECT_TRUE(fs::exists(dir_.path() + "/data/artifacts/runs/" + test_id + "/test_result.json"));
  EXPECT_FALSE(fs::exists(worker_dir_.path() + "/store/runs/" + test_id));
  fs::remove(file);

  // The worker built from archives it fetched, into its own store.
  EXPECT_TRUE(fs::exists(worker_dir_.path() + "/store/builds/" + hash + "/complete.json"));
  EXPECT_FALSE(fs::is_empty(worker_dir_.path() + "/sources"));
}

TEST_F(RemoteWorkerTest, LocalWorker_UsesTheSharedDiskDirectly) {
  server_.reset();
  ServerProcess server({"--repos", dir_.path() + "/repos", "--data", dir_.path() + "/data",
                        "--port", "0", "--workers", "1", "--worker-cores", "2", "--worker-ram-gb",
                        "2", "--poll-seconds", "0.3"});
  ASSERT_TRUE(eventually([&] { return server.get("/api/repos").size() == 1; }, 30));
  server.post("/api/repos/app/branches/main/test", R"({"enabled": true})");
  ASSERT_TRUE(eventually(
      [&] {
        const json runs =
            server.get("/api/repos/app/commits/" + sha_ + "/runs?name=uses-build/linux");
        return runs.is_array() && runs.size() == 1 && runs[0]["state"] == "succeeded";
      },
      90));
  // Nothing travelled over HTTP: no source archives, no store of the worker's own.
  EXPECT_FALSE(fs::exists(dir_.path() + "/data/workers/0/sources"));
  EXPECT_FALSE(fs::exists(dir_.path() + "/data/workers/0/store/builds"));
  EXPECT_FALSE(fs::exists(dir_.path() + "/data/artifacts/sources"));
}

TEST_F(RemoteWorkerTest, SourceArchive_IsTheCommitsTreeOrASlice) {
  ASSERT_TRUE(eventually([&] { return server_->get("/api/repos").size() == 1; }, 30));
  const std::string file = worker_dir_.path() + "/source.tar";
  ASSERT_EQ(download("/api/source/app/" + sha_, file), 200);
  EXPECT_EQ(tar_listing(file), ".git_commit greeting.txt sub/inner.txt testlooper.yml ");
  ASSERT_EQ(download("/api/source/app/" + sha_ + "?path=sub", file), 200);
  EXPECT_EQ(tar_listing(file), ".git_commit inner.txt ");
  // Served again from the cache.
  ASSERT_EQ(download("/api/source/app/" + sha_, file), 200);
  EXPECT_EQ(tar_listing(file), ".git_commit greeting.txt sub/inner.txt testlooper.yml ");

  EXPECT_EQ(download("/api/source/nope/" + sha_, file), 404);
  EXPECT_EQ(download("/api/source/app/" + std::string(40, '0'), file), 404);
  std::ifstream in(file);
  EXPECT_TRUE(json::parse(in, nullptr, false).contains("error"));
  EXPECT_EQ(download("/api/source/app/main", file), 404);
  EXPECT_EQ(download("/api/source/app/" + sha_ + "?path=../x", file), 400);
}

// Uploads need the worker token and the upload token of the job of an active run making that
// build (security_worker_test.cc attacks them); a real worker's are exercised above.
TEST_F(RemoteWorkerTest, BuildUpload_NeedsTheTokenAndTheRunsUploadToken) {
  const std::string hash(64, 'a');
  const std::string payload = worker_dir_.path() + "/payload";
  std::ofstream(payload) << "{\"artifacts\": []}";
  auto upload = [&](const std::string& headers) {
    return std::stoi(
        capture("curl -s -o /dev/null -w '%{http_code}' " + headers + "--data-binary @" +
                shell_quote(payload) + " " +
                shell_quote(server_->url("/api/artifacts/builds/" + hash + "/complete.json"))));
  };
  EXPECT_EQ(upload(""), 401);
  EXPECT_EQ(upload(auth_header()), 403);
  EXPECT_EQ(upload(auth_header() + "-H 'X-TestLooper-Upload: " + std::string(64, '0') + "' "), 403);
  EXPECT_FALSE(fs::exists(dir_.path() + "/data/artifacts/builds/" + hash));
}

}  // namespace
}  // namespace testlooper::server
