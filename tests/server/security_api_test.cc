// Issue 10, item 16 (and item 2's ids in API routes): attacks on the JSON API through real HTTP
// against a real `testlooper serve`, each asserting the refusal and that nothing stored changed.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>

#include "server_fixture.h"

namespace testlooper::server {
namespace {

using fixtures::capture;
using fixtures::eventually;
using fixtures::GitFixtureRepo;
using fixtures::ServerProcess;
using fixtures::TempDir;
using nlohmann::json;

constexpr const char* kDefinitions =
    "looper_version: 5\n"
    "environments: {linux: {platform: linux, image: {host: true}}}\n"
    "tests:\n"
    "  unit/linux: {command: 'true'}\n";

class SecurityApiTest : public testing::Test {
 protected:
  SecurityApiTest() : app_(dir_.path() + "/repos/app") {
    app_.write("testlooper.yml", kDefinitions);
    sha_ = app_.commit("first");
  }

  std::vector<std::string> args(std::vector<std::string> more = {}) const {
    std::vector<std::string> out = {"--repos",        dir_.path() + "/repos",
                                    "--data",         dir_.path() + "/data",
                                    "--port",         "0",
                                    "--workers",      "0",
                                    "--poll-seconds", "0.3"};
    out.insert(out.end(), more.begin(), more.end());
    return out;
  }

  std::unique_ptr<ServerProcess> start(std::vector<std::string> more = {}) {
    auto server = std::make_unique<ServerProcess>(args(std::move(more)));
    EXPECT_TRUE(eventually(
        [&] {
          return server->get("/api/repos/app/commits/" + sha_).is_object() &&
                 server->get("/api/repos/app/commits/" + sha_).contains("objects");
        },
        30));
    return server;
  }

  // The HTTP status of `curl <curl_args> <url>`, and the body.
  static std::pair<int, std::string> request(const std::string& curl_args, const std::string& url) {
    const std::string out =
        capture("curl -s -g -w '\\n%{http_code}' " + curl_args + " '" + url + "'");
    const size_t nl = out.rfind('\n');
    return {std::stoi(out.substr(nl + 1)), out.substr(0, nl)};
  }

  TempDir dir_;
  GitFixtureRepo app_;
  std::string sha_;
};

TEST_F(SecurityApiTest, IntegersOutOfRangeAreRefusedNotTruncated) {
  auto server = start();
  // 2^32 + 1 was stored as depth 1 (get<int> truncates).
  auto [status, body] = server->post("/api/repos/app/branches/main/test",
                                     R"({"enabled": true, "depth": 4294967297})");
  EXPECT_EQ(status, 400) << body.dump();
  EXPECT_TRUE(body.contains("error"));
  std::tie(status, body) =
      server->post("/api/repos/app/branches/main/test", R"({"enabled": true, "depth": 1.5})");
  EXPECT_EQ(status, 400);
  std::tie(status, body) =
      server->post("/api/repos/app/branches/main/test", R"({"enabled": true, "depth": -1})");
  EXPECT_EQ(status, 400);
  const json branches = server->get("/api/repos/app/branches");
  ASSERT_EQ(branches.size(), 1u) << branches.dump();
  EXPECT_EQ(branches[0]["under_test"], false) << "a refused request changed the branch";
  EXPECT_EQ(branches[0]["depth"], 0);

  std::tie(status, body) = server->post("/api/repos/app/commits/" + sha_ + "/targets",
                                        R"({"name": "unit/linux", "runs": 4294967297})");
  EXPECT_EQ(status, 400) << body.dump();
  std::tie(status, body) = server->post("/api/repos/app/commits/" + sha_ + "/targets",
                                        R"({"name": "unit/linux", "runs": 18446744073709551615})");
  EXPECT_EQ(status, 400) << body.dump();
  const json commit = server->get("/api/repos/app/commits/" + sha_);
  EXPECT_EQ(commit["objects"][0]["target_runs"], 0) << commit.dump();
}

TEST_F(SecurityApiTest, AHistoryLimitThatWouldWrapIsRefused) {
  auto server = start();
  for (const char* limit : {"-1", "0", "18446744073709551617", "1e3", "10001", "%205", "5%00"}) {
    const auto [status, body] =
        request("", server->url("/api/repos/app/branches/main/history?limit=") + limit);
    EXPECT_EQ(status, 400) << limit << ": " << body;
    EXPECT_TRUE(json::parse(body, nullptr, false).contains("error")) << body;
  }
  EXPECT_EQ(request("", server->url("/api/repos/app/branches/main/history?limit=3")).first, 200);
}

TEST_F(SecurityApiTest, IdsInRoutesAreCheckedAgainstTheirGrammar) {
  auto server = start();
  for (const char* path : {"/api/runs/..%2F..%2Fstate.db", "/api/runs/..%2F..%2Fx/log",
                           "/api/runs/ABCDEF0123456789", "/api/runs/0123456789abcde/log",
                           "/api/repos/app/commits/..%2F..", "/api/repos/app/commits/HEAD"}) {
    const auto [status, body] = request("", server->url(path));
    EXPECT_EQ(status, 400) << path << ": " << body;
    EXPECT_EQ(body.find("SQLite"), std::string::npos) << body;
  }
  const auto [status, body] = request("-X POST -H 'Content-Type: application/json' -d '{}'",
                                      server->url("/api/runs/..%2F..%2Fx/cancel"));
  EXPECT_EQ(status, 400) << body;
  EXPECT_EQ(request("", server->url("/api/runs/0123456789abcdef")).first, 404);
}

TEST_F(SecurityApiTest, WithAWebhookSecretARefreshMustBeSigned) {
  auto server = start({"--webhook-secret", "s3cret"});
  auto [status, body] = server->post("/api/refresh", "{}");
  EXPECT_EQ(status, 401) << body.dump();
  // GitLab's form of the proof.
  const auto [signed_status, signed_body] =
      request("-X POST -H 'Content-Type: application/json' -H 'X-Gitlab-Token: s3cret' -d '{}'",
              server->url("/api/refresh"));
  EXPECT_EQ(signed_status, 200) << signed_body;
  // GitHub's: sha256 HMAC of the body.
  const std::string hmac =
      capture("printf '{}' | openssl dgst -sha256 -hmac s3cret | sed 's/.*= //' | tr -d '\\n'");
  const auto [github_status, github_body] = request(
      "-X POST -H 'Content-Type: application/json' -H 'X-Hub-Signature-256: sha256=" + hmac +
          "' -d '{}'",
      server->url("/api/refresh"));
  EXPECT_EQ(github_status, 200) << github_body;
}

TEST_F(SecurityApiTest, ErrorsDoNotShowTheServersPaths) {
  auto server = start();
  const std::string data = std::filesystem::absolute(dir_.path()).string();
  // The file endpoints are the workers': show them the worker token when the server has one.
  const std::string token = fixtures::worker_token(dir_.path() + "/data");
  const std::string auth = token.empty() ? "" : "-H 'Authorization: Bearer " + token + "'";
  // A commit id git does not have: the export error named the repo's folder.
  for (const std::string& path :
       {"/api/source/app/" + std::string(40, 'a'), "/api/source/app/" + sha_ + "?path=nothing/here",
        "/api/artifacts/builds/" + std::string(64, 'b') + "/x.tar",
        std::string("/api/runs/0123456789abcdef")}) {
    const auto [status, body] = request(auth, server->url(path));
    EXPECT_GE(status, 400) << path;
    EXPECT_EQ(body.find(data), std::string::npos) << path << " showed a server path: " << body;
    EXPECT_EQ(body.find("/tmp"), std::string::npos) << path << ": " << body;
  }
}

TEST_F(SecurityApiTest, AMalformedRowInTheDatabaseIsAnErrorNamingItNotAnAbort) {
  {
    auto server = start();
    server->stop(SIGTERM);
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_.path() + "/data/state.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE objects SET definition = '{\"min_cores\": \"many\"}'", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE commits SET test_sets = '{\"all\": [1, 2]}'", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  std::string command = std::string(TL_BINARY) + " serve";
  for (const auto& a : args()) command += " '" + a + "'";
  const std::string out = capture(command + " 2>&1; echo \"exit=$?\"");
  EXPECT_NE(out.find("exit=2"), std::string::npos) << out;
  EXPECT_NE(out.find("state.db"), std::string::npos) << out;
  EXPECT_NE(out.find(sha_), std::string::npos) << out;
  EXPECT_NE(out.find("rebuild"), std::string::npos) << out;
}

TEST_F(SecurityApiTest, ACommitThePlannerCannotReadIsKeptWithItsErrorAndRestartsClean) {
  // Definitions resolve with a negative RAM limit, which the planner refuses: stored as it was,
  // the next start found a "damaged" row and refused to serve.
  app_.write("testlooper.yml",
             "looper_version: 5\n"
             "environments: {linux: {platform: linux, image: {host: true}, test_min_ram_gb: -1}}\n"
             "tests:\n"
             "  unit/linux: {command: 'true'}\n");
  const std::string bad = app_.commit("negative RAM");
  for (int start = 0; start < 2; ++start) {
    ServerProcess server(args());
    json commit;
    ASSERT_TRUE(eventually(
        [&] {
          commit = server.get("/api/repos/app/commits/" + bad);
          return commit.is_object() && commit.contains("error");
        },
        30))
        << "start " << start << ": " << commit.dump();
    EXPECT_TRUE(commit["error"].is_string()) << commit.dump();
    EXPECT_TRUE(commit["objects"].empty()) << commit.dump();
    server.stop(SIGTERM);
  }
}

}  // namespace
}  // namespace testlooper::server
