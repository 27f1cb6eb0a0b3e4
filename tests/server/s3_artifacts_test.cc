// Artifacts in S3 (issue 14, docs/configuration.md "Artifacts in S3"), end to end against
// moto_server (through tests/fleet/aws_proxy.py, which checks every signature as AWS does,
// presigned URLs' included): a real `testlooper serve` whose config's artifacts are in a bucket on
// moto, real workers (local ones on the server's disk, remote ones with their own), and boto3 (a
// real AWS client) reading back what the server put there.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>

#include "s3_fixture.h"

namespace testlooper::server {
namespace {

TEST_F(S3ArtifactsTest, BuildsRunRecordsAndLogs_AreInTheBucketUnderTheDocumentedKeys) {
  start_app("1");
  const json build = ended("build/linux");
  const json test = ended("uses-build/linux");
  ASSERT_EQ(build["state"], "succeeded") << build.dump(2) << server_log();
  ASSERT_EQ(test["state"], "succeeded") << test.dump(2) << server_log();
  const std::string hash = build["hash"], build_id = build["id"], test_id = test["id"];

  // Read back with boto3: the build's files (complete.json last), each run's record, the logs.
  expect_build_and_test_keys(hash, build_id, test_id);
  EXPECT_EQ(json::parse(object("builds/" + hash + "/complete.json"))["hash"], hash);
  const json record = json::parse(object("runs/" + test_id + "/test_result.json"));
  EXPECT_EQ(record["id"], test_id);
  EXPECT_NE(object("runs/" + test_id + "/log.txt").find("read-the-build"), std::string::npos);

  // The UI's downloads redirect to presigned URLs that plain curl (no credentials) follows.
  const auto [status, location] = head("/api/runs/" + build_id + "/artifacts/bin.tar");
  ASSERT_EQ(status, 302);
  EXPECT_EQ(location.rfind(
                proxy_->url() + "/" + bucket_ + "/" + kPrefix + "builds/" + hash + "/bin.tar?", 0),
            0u)
      << location;
  // Short-lived: X-Amz-Expires is the lifetime, 5 minutes.
  EXPECT_NE(location.find("X-Amz-Expires=300"), std::string::npos) << location;
  EXPECT_NE(location.find("X-Amz-Signature="), std::string::npos) << location;
  {
    // The same URL 301 s later (X-Amz-Date as long before now) is refused, as AWS refuses it.
    const std::regex date("X-Amz-Date=(\\d{8}T\\d{6}Z)");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(location, m, date)) << location;
    const std::string earlier = capture("date -u -d @$(( $(date -u +%s) - 301 )) +%Y%m%dT%H%M%SZ");
    const std::string expired =
        std::regex_replace(location, date, "X-Amz-Date=" + earlier.substr(0, 16));
    EXPECT_EQ(capture("curl -s -o /dev/null -w '%{http_code}' " + shell_quote(expired)), "403");
    EXPECT_NE(proxy_->refused().find("the presigned URL expired"), std::string::npos);
  }
  const std::string file = dir_.path() + "/download.tar";
  EXPECT_EQ(
      capture("curl -s -o " + shell_quote(file) + " -w '%{http_code}' " + shell_quote(location)),
      "200");
  EXPECT_EQ(capture("tar -tf " + shell_quote(file) + " | tr '\\n' ' '"), "greeting.txt ");
  // Every request the server and the presigned URLs made was signed as AWS wants it.
  EXPECT_EQ(proxy_->refused().find("mismatch"), std::string::npos) << proxy_->refused();
  const auto [report_status, report] = head("/api/runs/" + test_id + "/artifacts/report.tar");
  ASSERT_EQ(report_status, 302);
  EXPECT_EQ(capture("curl -s " + shell_quote(report) + " | tar -tf - | tr '\\n' ' '"), "r.txt ");
  // The log: a link the browser follows (or ?download=1) redirects; the UI's fetch does not.
  const auto [log_status, log] =
      head("/api/runs/" + test_id + "/log", "-H 'Sec-Fetch-Mode: navigate'");
  ASSERT_EQ(log_status, 302);
  EXPECT_NE(capture("curl -s " + shell_quote(log)).find("read-the-build"), std::string::npos);
  EXPECT_EQ(head("/api/runs/" + test_id + "/log?download=1").first, 302);
  EXPECT_EQ(head("/api/runs/" + test_id + "/log", "-H 'Sec-Fetch-Mode: cors'").first, 200);

  // `rebuild` from S3 restores the same runs as from the local store.
  server_->stop(SIGTERM);
  const std::string rebuild = std::string(TL_BINARY) + " rebuild --trust-unknown-runs ";
  fs::remove(data() + "/state.db");
  const std::string local = capture(rebuild + "--data " + shell_quote(data()) + " 2>&1");
  const std::string from_s3 = capture(rebuild + "--config " + shell_quote(write_config()) +
                                      " --data " + shell_quote(dir_.path() + "/fresh") + " 2>&1");
  EXPECT_NE(local.find("restored 2 runs (0 records skipped)"), std::string::npos) << local;
  EXPECT_EQ(from_s3, local);
  // Without --data, the config's data dir (its database now has both runs: none restored).
  EXPECT_NE(capture(rebuild + "--config " + shell_quote(write_config()) + " 2>&1")
                .find("restored 0 runs (2 records skipped)"),
            std::string::npos);
}

TEST_F(S3ArtifactsTest, LargeArtifact_GoesThroughMultipartAndAFreshWorkerGetsItFromS3) {
  app_.write("testlooper.yml", kLargeDefinitions);
  sha_ = app_.commit("first");
  create_bucket();
  start_server("0");
  test_branch();
  TempDir first_dir, second_dir;
  json build;
  {
    // A 1-core worker builds; the 2-core test waits for a worker that fits.
    WorkerProcess first({"--server", server_->url(""), "--dir", first_dir.path(), "--cores", "1",
                         "--ram-gb", "2", "--id", "builder", "--token-file", worker_token_file()});
    build = ended("build/linux", 300);
    ASSERT_EQ(build["state"], "succeeded") << build.dump(2) << server_log();
  }
  const std::string hash = build["hash"];
  // Multipart: the ETag of an object put in N parts ends "-N" (200 MiB in 16 MiB parts: 13).
  const std::string etag = moto_->boto3("print(s3.head_object(Bucket='" + bucket_ + "', Key='" +
                                        kPrefix + "builds/" + hash + "/big.tar')['ETag'])");
  EXPECT_NE(etag.find("-13\""), std::string::npos) << etag;
  WorkerProcess second({"--server", server_->url(""), "--dir", second_dir.path(), "--cores", "2",
                        "--ram-gb", "2", "--id", "tester", "--token-file", worker_token_file()});
  const json test = ended("big/linux", 300);
  EXPECT_EQ(test["state"], "succeeded")
      << test.dump(2) << server_log()
      << capture("curl -s " + server_->url("/api/runs/" + test["id"].get<std::string>() + "/log"));
  // The workers have credentials (moto's, in the environment): they read and wrote the bucket
  // themselves (s3_direct_test.cc), so the build reached the tester from S3, not the server.
  EXPECT_TRUE(fs::exists(second_dir.path() + "/store/builds/" + hash + "/complete.json"));
  EXPECT_FALSE(fs::exists(data() + "/artifacts/builds/" + hash));
}

TEST_F(S3ArtifactsTest, S3Unreachable_IsAnInfrastructureFailureOfTheServerNotOfTheTest) {
  app_.write("testlooper.yml", kQuickTest);
  sha_ = app_.commit("first");
  // Nothing listens there: every call to S3 fails to connect.
  start_server("1", "http://127.0.0.1:" + std::to_string(fixtures::free_port()));
  test_branch();
  ASSERT_TRUE(eventually(
      [&] { return server_log().find("cannot write the result of run") != std::string::npos; },
      120))
      << server_log();
  EXPECT_NE(server_log().find("(S3: s3://" + bucket_ + "/"), std::string::npos) << server_log();
  // The result waits in memory, unrecorded: the test is not failed (nor infra_failed) for it.
  EXPECT_EQ(only_run("quick/linux")["state"], "running");
  // The server still answers, and says it cannot store.
  EXPECT_TRUE(server_->get("/api/repos").is_array());
}

TEST_F(S3ArtifactsTest, S3Failing_ResultWaitsAndIsStoredOnceS3IsBack) {
  app_.write("testlooper.yml", kQuickTest);
  sha_ = app_.commit("first");
  // No bucket yet: every put fails, as when S3 is down or refusing.
  start_server("1");
  test_branch();
  ASSERT_TRUE(eventually(
      [&] { return server_log().find("cannot write the result of run") != std::string::npos; },
      120))
      << server_log();
  EXPECT_NE(server_log().find("S3"), std::string::npos) << server_log();
  // Not lost, and not a test failure: the run waits, unrecorded.
  const json waiting = only_run("quick/linux");
  EXPECT_EQ(waiting["state"], "running") << waiting.dump(2);
  // S3 is back: the result is put and stored (after the back-off).
  create_bucket();
  const json run = ended("quick/linux", 180);
  EXPECT_EQ(run["state"], "succeeded") << run.dump(2) << server_log();
  const std::string id = run["id"];
  EXPECT_NE(keys().find("runs/" + id + "/test_result.json\n"), std::string::npos) << keys();
  EXPECT_NE(object("runs/" + id + "/log.txt").find("quick-ran"), std::string::npos);
}

}  // namespace
}  // namespace testlooper::server
