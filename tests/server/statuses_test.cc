// Commit statuses back to the host, end to end: the real `testlooper serve` in GitHub (and
// GitLab) mode against fake_host.py, real local workers running host-environment tests. A branch
// put under test gets, per enabled test set, `pending` first and then `success` or `failure` with
// a description naming what broke and a link to the commit's page.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "hosting/fake_host.h"
#include "server_fixture.h"

namespace testlooper::server {
namespace {

using fixtures::eventually;
using fixtures::FakeHost;
using fixtures::GitFixtureRepo;
using fixtures::ServerProcess;
using fixtures::TempDir;
using nlohmann::json;

// Two sets: "unit" with a passing and a failing test, "extra" all passing. The trigger enables
// both on any change.
constexpr const char* kDefinitions =
    "looper_version: 5\n"
    "environments: {linux: {platform: linux, image: {host: true}}}\n"
    "tests:\n"
    "  net/linux: {command: 'echo failing; exit 1'}\n"
    "  ok/linux: {command: 'true'}\n"
    "  other/linux: {command: 'true'}\n"
    "test_sets: {unit: [net/linux, ok/linux], extra: [other/linux]}\n"
    "triggers: [{name: any, paths: ['**'], test_sets: [unit, extra]}]\n";

constexpr const char* kToken = "secret-token";

class StatusesTest : public testing::Test {
 protected:
  StatusesTest() : fake_(dir_.path() + "/host", kToken), work_(dir_.path() + "/work/app") {
    work_.write("README", "app\n");
    work_.commit("root");
    work_.write("testlooper.yml", kDefinitions);
    sha_ = work_.commit("tests");
    const std::string bare = dir_.path() + "/host/acme/app.git";
    work_.run({"init", "-q", "--bare", bare});
    work_.run({"push", "-q", bare, "main"});
  }

  // Starts the server with source_control `source` (GitHub's or GitLab's form).
  std::unique_ptr<ServerProcess> start(const json& source, const json& statuses = json::object(),
                                       int runs = 3) {
    const std::string config = dir_.path() + "/config.json";
    std::ofstream(config) << json{
        {"server",
         {{"path_to_local_data", dir_.path() + "/data"},
          {"poll_seconds", 0.3},
          {"default_target_runs", runs},
          {"extra_runs", 0}}},
        {"server_ports", {{"server_port", 0}}},
        {"source_control", source},
        {"statuses", statuses.empty() ? json{{"enabled", true}} : statuses},
        {"machine_management",
         {{"max_workers", 1},
          {"max_cores", 2},
          {"max_ram_gb", 2}}}}.dump();
    return std::make_unique<ServerProcess>(std::vector<std::string>{"--config", config});
  }

  // The statuses posted so far for `context` (GitHub's "context", GitLab's "name") of commit
  // `sha` (any when ""), oldest first.
  std::vector<json> posted(const std::string& context, const std::string& sha = "") const {
    std::vector<json> out;
    for (const json& s : fake_.statuses()) {
      const std::string path = s["_path"];
      if (!sha.empty() && !path.ends_with("/" + sha)) continue;
      if (s.value("context", s.value("name", "")) == context) out.push_back(s);
    }
    return out;
  }

  // Whether the last status of `context` (of `sha`) is no longer pending.
  bool settled(const std::string& context, const std::string& sha = "") const {
    const auto all = posted(context, sha);
    return !all.empty() && all.back()["state"] != "pending";
  }

  // Puts main under test and waits until both sets' statuses are final.
  void test_main(const ServerProcess& server) {
    ASSERT_TRUE(eventually([&] { return server.get("/api/repos").size() == 1; }, 60));
    ASSERT_EQ(server.post("/api/repos/app/branches/main/test", R"({"enabled": true})").first, 200);
    ASSERT_TRUE(
        eventually([&] { return settled("testlooper/unit") && settled("testlooper/extra"); }, 120))
        << json(fake_.statuses()).dump(2);
  }

  // Checks what every context got: pending first, the final state last, each for sha_ at
  // `path`, linking to the commit's page.
  void expect_statuses(const ServerProcess& server, const std::string& path,
                       const std::string& failure) {
    for (const std::string context : {"testlooper/unit", "testlooper/extra"}) {
      const auto all = posted(context);
      ASSERT_GE(all.size(), 2u) << context;
      EXPECT_EQ(all.front()["state"], "pending") << json(all).dump(2);
      EXPECT_NE(all.front()["description"].get<std::string>().find("running: "), std::string::npos);
      for (const json& s : all) {
        EXPECT_EQ(s["_path"], path);
        EXPECT_EQ(s["target_url"], server.url("/repos/app/commits/" + sha_));
      }
    }
    const json unit = posted("testlooper/unit").back();
    EXPECT_EQ(unit["state"], failure);
    const std::string text = unit["description"];
    EXPECT_NE(text.find("6 runs"), std::string::npos) << text;
    EXPECT_NE(text.find("1 broken"), std::string::npos) << text;
    EXPECT_NE(text.find("net/linux 100%"), std::string::npos) << text;
    const json extra = posted("testlooper/extra").back();
    EXPECT_EQ(extra["state"], "success");
    EXPECT_EQ(extra["description"], "3 runs · all passed");
  }

  TempDir dir_;
  FakeHost fake_;
  GitFixtureRepo work_;
  std::string sha_;
};

TEST_F(StatusesTest, GitHub_PendingThenFailureForTheBrokenSetAndSuccessForTheOther) {
  auto server = start({{"access_token", kToken}, {"owner", "acme"}, {"github_url", fake_.url()}});
  test_main(*server);
  expect_statuses(*server, "/api/v3/repos/acme/app/statuses/" + sha_, "failure");
  for (const json& r : fake_.requests()) {
    if (r["path"].get<std::string>().find("/statuses/") != std::string::npos) {
      EXPECT_EQ(r["authorization"], std::string("Bearer ") + kToken);
    }
  }
}

TEST_F(StatusesTest, GitHub_AFailedPostIsRetriedAndTestingGoesOn) {
  fake_.fail("/statuses/", 2, 500);  // the first two posts fail, whichever they are
  auto server = start({{"access_token", kToken}, {"owner", "acme"}, {"github_url", fake_.url()}});
  test_main(*server);
  // Retried after 2 s, then 4 s; nothing is lost and the runs went on meanwhile.
  expect_statuses(*server, "/api/v3/repos/acme/app/statuses/" + sha_, "failure");
  const json commit = server->get("/api/repos/app/commits/" + sha_);
  for (const json& o : commit["objects"]) EXPECT_EQ(o["runs"], 3) << o.dump();
}

// fail_on ["flaky_rising"]: a test that turns flaky fails the status of the commit where its
// failure rate rose, not that of the next commit (flaky as well, but not rising there).
TEST_F(StatusesTest, FlakyRising_FailsWhereTheRateRoseOnly) {
  // Fails every other run, whatever runs at once.
  const std::string counter = dir_.path() + "/flaky-count";
  std::ofstream(dir_.path() + "/flaky.sh") << "exec 9>" << counter << ".lock; flock 9\n"
                                           << "n=$(cat " << counter << " 2>/dev/null || echo 0)\n"
                                           << "echo $((n + 1)) > " << counter << "\n"
                                           << "test $((n % 2)) -eq 0\n";
  auto definitions = [](const std::string& command) {
    return "looper_version: 5\n"
           "environments: {linux: {platform: linux, image: {host: true}}}\n"
           "tests:\n"
           "  net/linux: {command: '" +
           command +
           "'}\n"
           "test_sets: {unit: [net/linux]}\n"
           "triggers: [{name: any, paths: ['**'], test_sets: [unit]}]\n";
  };
  work_.write("testlooper.yml", definitions("true"));
  const std::string good = work_.commit("net passes");
  work_.write("testlooper.yml", definitions("sh " + dir_.path() + "/flaky.sh"));
  const std::string rose = work_.commit("net turns flaky");
  work_.write("README", "later\n");
  const std::string later = work_.commit("unrelated");
  work_.run({"push", "-q", dir_.path() + "/host/acme/app.git", "main"});
  auto server = start({{"access_token", kToken}, {"owner", "acme"}, {"github_url", fake_.url()}},
                      {{"fail_on", {"flaky_rising"}}}, 24);
  ASSERT_TRUE(eventually([&] { return server->get("/api/repos").size() == 1; }, 60));
  ASSERT_EQ(
      server->post("/api/repos/app/branches/main/test", R"({"enabled": true, "depth": 2})").first,
      200);
  ASSERT_TRUE(eventually(
      [&] {
        // rose's status may be success for a while: judged before good's runs were over, it
        // is judged again when they are.
        const auto at_rise = posted("testlooper/unit", rose);
        return settled("testlooper/unit", good) && settled("testlooper/unit", later) &&
               !at_rise.empty() && at_rise.back()["state"] == "failure";
      },
      180))
      << json(fake_.statuses()).dump(2);
  EXPECT_EQ(posted("testlooper/unit", good).back()["state"], "success");
  EXPECT_EQ(posted("testlooper/unit", rose).front()["state"], "pending");
  const json at_rise = posted("testlooper/unit", rose).back();
  const json after = posted("testlooper/unit", later).back();
  EXPECT_EQ(at_rise["state"], "failure") << at_rise.dump();
  EXPECT_NE(at_rise["description"].get<std::string>().find("net/linux 50%"), std::string::npos)
      << at_rise.dump();
  EXPECT_EQ(after["state"], "success") << after.dump();
  EXPECT_NE(after["description"].get<std::string>().find("1 flaky"), std::string::npos)
      << after.dump();
}

TEST_F(StatusesTest, GitLab_StateNamesDiffer) {
  auto server = start({{"private_token", kToken}, {"group", "acme"}, {"gitlab_url", fake_.url()}});
  test_main(*server);
  // Posted to the project's id, as the group's listing gives it.
  const json projects = json::parse(
      FakeHost::run("curl -s -H 'PRIVATE-TOKEN: " + std::string(kToken) + "' " +
                    fixtures::shell_quote(fake_.url() + "/api/v4/groups/acme/projects")),
      nullptr, false);
  ASSERT_TRUE(projects.is_array() && projects.size() == 1) << projects.dump();
  const std::string id = std::to_string(projects[0]["id"].get<int>());
  expect_statuses(*server, "/api/v4/projects/" + id + "/statuses/" + sha_, "failed");
}

}  // namespace
}  // namespace testlooper::server
