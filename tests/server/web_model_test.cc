// Issue 16 items 1, 6 and 8 (the web UI's statistics first), through the real `testlooper serve`
// and a FakeWorker: what the API gives the web UI to draw the model and the search.
//  - a test's classification carries its segment's failure rate (the model's, pooled over the
//    runs of one identity), not just the commit's own counts;
//  - a branch says what its statistical bisection does (search, extra runs in flight), and its
//    head's definitions error; GET /api/queue counts what waits;
//  - GET /api/workers names each worker's running runs (test, commit) and its recent runs.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "fake_worker.h"
#include "server_fixture.h"

namespace testlooper::server {
namespace {

using fixtures::eventually;
using fixtures::FakeJob;
using fixtures::FakeWorker;
using fixtures::GitFixtureRepo;
using fixtures::ServerProcess;
using fixtures::TempDir;
using nlohmann::json;

json branch_of(const ServerProcess& server, const std::string& repo, const std::string& name) {
  for (const json& b : server.get("/api/repos/" + repo + "/branches")) {
    if (b.is_object() && b["name"] == name) return b;
  }
  return json();
}

json worker_of(const ServerProcess& server, const std::string& id) {
  for (const json& w : server.get("/api/workers")) {
    if (w.is_object() && w["id"] == id) return w;
  }
  return json();
}

// The head object `name` of the branch history's newest commit.
json head_object(const ServerProcess& server, const std::string& name, size_t commit = 0) {
  const json h = server.get("/api/repos/app/branches/main/history?limit=10");
  if (!h.is_object() || !h["commits"].is_array() || h["commits"].size() <= commit) return json();
  for (const json& o : h["commits"][commit]["objects"]) {
    if (o["name"] == name) return o;
  }
  return json();
}

// A test without a source dependency keeps its identity across commits: a docs commit shares the
// runs of its parent, and the model pools them into one segment.
TEST(WebModel, Item1_ClassificationCarriesTheSegmentRate) {
  TempDir dir;
  GitFixtureRepo app(dir.path() + "/repos/app");
  app.write("testlooper.yml",
            "looper_version: 5\n"
            "environments: {linux: {platform: linux, image: {host: true}}}\n"
            "tests: {flaky/linux: {command: 'true'}}\n");
  app.commit("one");
  app.write("README", "docs\n");
  const std::string head = app.commit("docs only");
  ServerProcess server({"--repos", dir.path() + "/repos", "--data", dir.path() + "/data", "--port",
                        "0", "--workers", "0", "--poll-seconds", "0.3", "--extra-runs", "0"});
  ASSERT_TRUE(eventually([&] { return server.get("/api/repos").size() == 1; }, 30));
  FakeWorker worker(server.port(), fixtures::worker_token(dir.path() + "/data"), "fake");
  ASSERT_EQ(server.post("/api/repos/app/branches/main/test", R"({"enabled": true})").first, 200);
  ASSERT_EQ(server
                .post("/api/repos/app/commits/" + head + "/targets",
                      R"({"name": "flaky/linux", "runs": 5})")
                .first,
            200);
  const std::vector<FakeJob> jobs = worker.jobs("flaky/linux", 5);
  ASSERT_EQ(jobs.size(), 5u);
  for (size_t i = 0; i < jobs.size(); ++i) {
    ASSERT_TRUE(worker.report(jobs[i].run_id, i == 0 ? "failure" : "success"));
  }
  ASSERT_TRUE(eventually([&] { return head_object(server, "flaky/linux")["runs"] == 5; }, 30));
  for (size_t commit : {0u, 1u}) {
    const json o = head_object(server, "flaky/linux", commit);
    ASSERT_TRUE(o["classification"].is_object()) << o.dump(2);
    const json& rate = o["classification"]["rate"];
    ASSERT_TRUE(rate.is_object()) << o.dump(2);
    EXPECT_EQ(rate["runs"], 5) << rate.dump();
    EXPECT_GT(rate["estimate"].get<double>(), 0.1) << rate.dump();
    EXPECT_LT(rate["estimate"].get<double>(), 0.3) << rate.dump();
    EXPECT_LT(rate["low"].get<double>(), rate["estimate"].get<double>()) << rate.dump();
    EXPECT_GT(rate["high"].get<double>(), rate["estimate"].get<double>()) << rate.dump();
  }
  // The test's own history and the commit page say the same.
  const json th = server.get("/api/repos/app/branches/main/tests/flaky/linux/history");
  ASSERT_TRUE(th["commits"].is_array()) << th.dump();
  EXPECT_EQ(th["commits"][0]["classification"]["rate"]["runs"], 5) << th.dump(2);
  const json c = server.get("/api/repos/app/commits/" + head);
  ASSERT_TRUE(c["objects"].is_array()) << c.dump();
  EXPECT_EQ(c["objects"][0]["classification"]["rate"]["runs"], 5) << c.dump(2);
}

TEST(WebModel, Item6_BranchesQueueAndWorkersShowTheSearch) {
  constexpr int kBudget = 3;
  TempDir dir;
  GitFixtureRepo app(dir.path() + "/repos/app");
  app.write("testlooper.yml",
            "looper_version: 5\n"
            "environments: {linux: {platform: linux, image: {host: true}}}\n"
            "tests: {src/linux: {command: 'true', dependencies: {src: HEAD}}}\n");
  app.commit("one");
  for (const char* n : {"two", "three", "four"}) {
    app.write(std::string(n) + ".txt", n);
    app.commit(n);
  }
  ServerProcess server({"--repos", dir.path() + "/repos", "--data", dir.path() + "/data", "--port",
                        "0", "--workers", "0", "--poll-seconds", "0.3", "--extra-runs",
                        std::to_string(kBudget)});
  ASSERT_TRUE(eventually([&] { return server.get("/api/repos").size() == 1; }, 30));
  json b = branch_of(server, "app", "main");
  EXPECT_EQ(b["search"], "off") << b.dump();
  EXPECT_EQ(b["extra_runs_active"], 0) << b.dump();
  EXPECT_TRUE(b["head_error"].is_null()) << b.dump();

  ASSERT_EQ(server.post("/api/repos/app/branches/main/test", R"({"enabled": true})").first, 200);
  // Nothing failed yet: the head's run waits in the queue, no extra run is wanted.
  ASSERT_TRUE(eventually([&] { return server.get("/api/queue")["queued"]["test"] >= 1; }, 30))
      << server.get("/api/queue").dump();
  EXPECT_EQ(server.get("/api/queue")["queued"]["build"], 0);
  EXPECT_EQ(branch_of(server, "app", "main")["search"], "idle");

  FakeWorker worker(server.port(), fixtures::worker_token(dir.path() + "/data"), "fake");
  const auto head_run = worker.job("src/linux");
  ASSERT_TRUE(head_run.has_value());
  // The worker's running run, named with its test and commit.
  ASSERT_TRUE(eventually([&] { return worker_of(server, "fake")["runs"].size() == 1; }, 30));
  json w = worker_of(server, "fake");
  EXPECT_EQ(w["runs"][0]["id"], head_run->run_id) << w.dump(2);
  EXPECT_EQ(w["runs"][0]["name"], "src/linux") << w.dump(2);
  EXPECT_EQ(w["runs"][0]["commit"], head_run->message["commit"]) << w.dump(2);
  EXPECT_EQ(w["runs"][0]["extra"], false) << w.dump(2);
  EXPECT_EQ(server.get("/api/queue")["active"], 1);

  // A failure at the head starts the search: extra runs in flight.
  ASSERT_TRUE(worker.report(head_run->run_id, "failure"));
  const std::vector<FakeJob> jobs = worker.jobs("src/linux", 2);
  ASSERT_EQ(jobs.size(), 2u) << "no extra run after a failure";
  b = branch_of(server, "app", "main");
  EXPECT_EQ(b["search"], "searching") << b.dump();
  EXPECT_GE(b["extra_runs_active"].get<int>() + b["extra_runs_queued"].get<int>(), 1) << b.dump();
  w = worker_of(server, "fake");
  ASSERT_TRUE(w["recent"].is_array()) << w.dump(2);
  ASSERT_GE(w["recent"].size(), 1u) << w.dump(2);
  EXPECT_EQ(w["recent"][0]["id"], head_run->run_id) << w.dump(2);
  EXPECT_EQ(w["recent"][0]["state"], "failed") << w.dump(2);

  // Every extra run fails until the budget is spent and none is running.
  std::vector<std::string> reported = {head_run->run_id};
  ASSERT_TRUE(eventually(
      [&] {
        for (const FakeJob& j : worker.jobs("src/linux", reported.size() + 1, 1)) {
          if (std::find(reported.begin(), reported.end(), j.run_id) != reported.end()) continue;
          if (!worker.report(j.run_id, "failure")) return false;
          reported.push_back(j.run_id);
        }
        return branch_of(server, "app", "main")["search"] == "budget_spent";
      },
      90))
      << branch_of(server, "app", "main").dump();
  b = branch_of(server, "app", "main");
  EXPECT_EQ(b["extra_runs_used"], kBudget) << b.dump();
  EXPECT_EQ(b["extra_runs_active"], 0) << b.dump();
  EXPECT_EQ(b["extra_runs_queued"], 0) << b.dump();
  w = worker_of(server, "fake");
  EXPECT_EQ(w["runs"].size(), 0u) << w.dump(2);
  EXPECT_LE(w["recent"].size(), 5u) << w.dump(2);

  // A head whose definitions do not parse: the branch says so.
  app.write("testlooper.yml", "looper_version: 5\ntests: [\n");
  app.commit("broken definitions");
  ASSERT_TRUE(
      eventually([&] { return branch_of(server, "app", "main")["head_error"].is_string(); }, 30))
      << branch_of(server, "app", "main").dump();
  EXPECT_FALSE(branch_of(server, "app", "main")["head_error"].get<std::string>().empty());
}

}  // namespace
}  // namespace testlooper::server
