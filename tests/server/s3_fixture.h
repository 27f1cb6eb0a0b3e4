// The fixture of the tests of artifacts in S3 (s3_artifacts_test.cc, s3_direct_test.cc): one
// moto_server and signature-checking proxy (tests/fleet/aws_proxy.py) per test binary, a bucket
// per test, a real `testlooper serve` whose config keeps artifacts there, and boto3 (a real AWS
// client) to read the bucket back.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>

#include "fleet/aws_fixture.h"
#include "fleet/moto.h"
#include "server_fixture.h"

namespace testlooper::server {

namespace fs = std::filesystem;
using fixtures::capture;
using fixtures::eventually;
using fixtures::GitFixtureRepo;
using fixtures::ServerProcess;
using fixtures::shell_quote;
using fixtures::TempDir;
using fixtures::WorkerProcess;
using nlohmann::json;

constexpr const char* kPrefix = "tl/";

// A build with a Tar and a Files artifact, and a test that reads them and keeps a report.
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
    dependencies: {whole: build/linux}
    stages:
      - command: 'grep -q hello $TEST_INPUTS/whole/bin/greeting.txt && echo read-the-build && mkdir -p $TEST_OUTPUT_DIR/report && echo ok > $TEST_OUTPUT_DIR/report/r.txt'
        artifacts: [{name: report, directory: report, format: Tar}]
)";

// A build whose artifact is 200 MiB (a random MiB repeated: quick to write, as large to store),
// and a test that needs 2 cores and checks it got all of it.
constexpr const char* kLargeDefinitions = R"(looper_version: 5
environments: {linux: {platform: linux, image: {host: true}}}
builds:
  build/linux:
    dependencies: {src: HEAD}
    stages:
      - command: 'mkdir -p $TEST_BUILD_OUTPUT_DIR/big && head -c 1048576 /dev/urandom > $TEST_SCRATCH_DIR/block && for i in $(seq 200); do cat $TEST_SCRATCH_DIR/block; done > $TEST_BUILD_OUTPUT_DIR/big/big.bin'
        artifacts: [{name: big, directory: big}]
tests:
  big/linux:
    dependencies: {whole: build/linux}
    min_cores: 2
    stages:
      - command: 'test $(stat -c %s $TEST_INPUTS/whole/big/big.bin) = 209715200'
)";

// One test that writes a line.
constexpr const char* kQuickTest = R"(looper_version: 5
environments: {linux: {platform: linux, image: {host: true}}}
tests:
  quick/linux:
    stages:
      - command: 'echo quick-ran'
)";

// One moto_server and proxy for the whole binary (they take seconds to start); each test has its
// own bucket.
class S3ArtifactsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    moto_dir_ = new TempDir();
    moto_ = new fixtures::Moto(moto_dir_->path() + "/moto");
    proxy_ = new fixtures::AwsProxy(moto_->url(), moto_dir_->path());
  }
  static void TearDownTestSuite() {
    delete proxy_;
    delete moto_;
    delete moto_dir_;
  }

  S3ArtifactsTest() : app_(dir_.path() + "/repos/app") {
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    bucket_ = "tl-" + std::to_string(std::hash<std::string>{}(name) % 1000000000);
  }

  // config.json with the artifacts in bucket_ on moto (or at `endpoint`).
  std::string write_config(const std::string& endpoint = "") const {
    const json config = {{"server", {{"path_to_local_data", data()}, {"poll_seconds", 0.3}}},
                         {"source_control", {{"path_to_repos", dir_.path() + "/repos"}}},
                         {"artifacts",
                          {{"bucket", bucket_},
                           {"region", "us-east-1"},
                           {"key_prefix", kPrefix},
                           {"endpoint_url", endpoint.empty() ? proxy_->url() : endpoint}}}};
    const std::string path = dir_.path() + "/config.json";
    std::ofstream(path) << config.dump(2);
    return path;
  }
  // Commits kDefinitions and the file its build reads, creates the bucket, starts the server
  // with `workers` local workers and puts main under test.
  void start_app(const std::string& workers) {
    app_.write("testlooper.yml", kDefinitions);
    app_.write("greeting.txt", "hello\n");
    sha_ = app_.commit("first");
    create_bucket();
    start_server(workers);
    test_branch();
  }
  void create_bucket() const { moto_->boto3("s3.create_bucket(Bucket='" + bucket_ + "')"); }
  void start_server(const std::string& workers, const std::string& endpoint = "") {
    server_ = std::make_unique<ServerProcess>(
        std::vector<std::string>{"--config", write_config(endpoint), "--port", "0", "--workers",
                                 workers},
        dir_.path() + "/serve.err");
  }
  std::string data() const { return dir_.path() + "/data"; }
  std::string server_log() const {
    std::ifstream in(dir_.path() + "/serve.err");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  // The keys under kPrefix in the bucket, without the prefix, one per line, sorted.
  std::string keys() const {
    return moto_->boto3("r = s3.list_objects_v2(Bucket='" + bucket_ + "', Prefix='" + kPrefix +
                        "')\n"
                        "print('\\n'.join(sorted(o['Key'][len('" +
                        kPrefix + "'):] for o in r.get('Contents', []))))");
  }
  // Expects the bucket to hold what kDefinitions' build and test store: the build's files
  // (complete.json included), each run's record and log, the test's kept report.
  void expect_build_and_test_keys(const std::string& hash, const std::string& build_id,
                                  const std::string& test_id) const {
    const std::string listed = keys();
    for (const std::string& key :
         {"builds/" + hash + "/bin.tar", "builds/" + hash + "/docs.files",
          "builds/" + hash + "/complete.json", "runs/" + build_id + "/test_result.json",
          "runs/" + build_id + "/log.txt", "runs/" + test_id + "/test_result.json",
          "runs/" + test_id + "/log.txt", "runs/" + test_id + "/artifacts/report.tar"}) {
      EXPECT_NE(listed.find(key + "\n"), std::string::npos) << key << " is not in\n" << listed;
    }
  }
  std::string object(const std::string& key) const {
    return moto_->boto3("sys.stdout.write(s3.get_object(Bucket='" + bucket_ + "', Key='" + kPrefix +
                        key + "')['Body'].read().decode())");
  }

  json only_run(const std::string& name) const {
    const json runs = server_->get("/api/repos/app/commits/" + sha_ + "/runs?name=" + name);
    return runs.is_array() && runs.size() == 1 ? runs[0] : json();
  }
  // Waits until `name`'s one run has ended; its run.
  json ended(const std::string& name, double seconds = 120) const {
    EXPECT_TRUE(eventually(
        [&] {
          const json run = only_run(name);
          return run.is_object() && run["state"] != "running";
        },
        seconds))
        << server_->get("/api/repos/app/commits/" + sha_ + "/runs").dump(2) << server_log();
    return only_run(name);
  }
  void test_branch() const {
    ASSERT_TRUE(eventually([&] { return server_->get("/api/repos").size() == 1; }, 30));
    const auto [status, body] =
        server_->post("/api/repos/app/branches/main/test", R"({"enabled": true})");
    ASSERT_EQ(status, 200) << body.dump();
  }
  std::string worker_token_file() const { return data() + "/worker.token"; }

  // The status and Location header of GET `path` (not followed), with `headers`.
  std::pair<int, std::string> head(const std::string& path, const std::string& headers = "") const {
    const std::string out =
        capture("curl -s -o /dev/null " + headers + " -w '%{http_code} %{redirect_url}' " +
                shell_quote(server_->url(path)));
    const size_t space = out.find(' ');
    return {std::stoi(out.substr(0, space)), out.substr(space + 1)};
  }

  inline static TempDir* moto_dir_ = nullptr;
  inline static fixtures::Moto* moto_ = nullptr;
  inline static fixtures::AwsProxy* proxy_ = nullptr;
  TempDir dir_;
  GitFixtureRepo app_;
  std::string sha_;
  std::string bucket_;
  std::unique_ptr<ServerProcess> server_;
};

}  // namespace testlooper::server
