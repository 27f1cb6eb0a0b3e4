// Crash safety of serve and worker, for real: kill -9 the server with runs in flight, kill -9 a
// worker mid-run, wipe the database and rebuild it from the artifact store.
#include <gtest/gtest.h>

#include <memory>
#include <netinet/in.h>
#include <sys/socket.h>

#include "server_fixture.h"
#include "store/store.h"

namespace testlooper::server {
namespace {

using fixtures::capture;
using fixtures::eventually;
using fixtures::free_port;
using fixtures::GitFixtureRepo;
using fixtures::ServerProcess;
using fixtures::shell_quote;
using fixtures::TempDir;
using nlohmann::json;

// A `testlooper worker` of its own (another "host": its own directory), killed on destruction;
// `data` is its server's data dir (where the worker token is).
std::unique_ptr<fixtures::WorkerProcess> worker(int port, const std::string& dir,
                                                const std::string& id, int cores,
                                                const std::string& data) {
  return std::make_unique<fixtures::WorkerProcess>(
      std::vector<std::string>{"--server", "http://127.0.0.1:" + std::to_string(port), "--cores",
                               std::to_string(cores), "--ram-gb", "4", "--dir", dir, "--id", id,
                               "--token-file", data + "/worker.token"},
      SIGKILL);
}

json test_object(const json& history, const std::string& name) {
  if (!history.is_object() || history["commits"].empty()) return json();
  for (const auto& o : history["commits"][0]["objects"]) {
    if (o["name"] == name) return o;
  }
  return json();
}

// The id of a run the first worker is running now, or "" when it runs none.
std::string first_running_run(const ServerProcess& server) {
  const json w = server.get("/api/workers");
  if (!w.is_array() || w.empty() || w[0]["running"].empty()) return "";
  return w[0]["running"][0];
}

class CrashTest : public testing::Test {
 protected:
  CrashTest() : app_(dir_.path() + "/repos/app") {}

  std::vector<std::string> args(int port, int workers, int runs) {
    return {"--repos", dir_.path() + "/repos", "--data", data(), "--port", std::to_string(port),
            "--workers", std::to_string(workers), "--worker-cores", "2", "--worker-ram-gb", "4",
            "--poll-seconds", "0.3", "--worker-timeout", "3", "--default-runs", std::to_string(runs)};
  }
  std::string data() const { return dir_.path() + "/data"; }

  // Per hash: finished runs that count (succeeded + failed), from the database itself.
  std::map<std::string, int> counted_runs() {
    auto s = store::open_sqlite_store(data() + "/state.db");
    std::map<std::string, int> out;
    auto runs = (*s)->runs();
    if (!runs.ok()) return out;
    const std::vector<store::RunRow> rows = std::move(runs).value();
    for (const auto& r : rows) {
      if (r.state == store::RunState::kSucceeded || r.state == store::RunState::kFailed) ++out[r.hash];
    }
    return out;
  }

  TempDir dir_;
  GitFixtureRepo app_;
};

TEST_F(CrashTest, Serve_KilledWithRunsInFlightLosesAndDoublesNothing) {
  app_.write("testlooper.yml",
             "looper_version: 5\n"
             "environments: {linux: {platform: linux, image: {host: true}}}\n"
             "tests: {t/linux: {command: 'sleep 0.05; test $((RANDOM % 4)) != 0'}}\n");
  app_.commit("flaky test");
  const int port = free_port();
  auto server = std::make_unique<ServerProcess>(args(port, 0, 120));
  const auto w1 = worker(port, dir_.path() + "/w1", "w1", 2, data());
  const auto w2 = worker(port, dir_.path() + "/w2", "w2", 2, data());
  ASSERT_TRUE(eventually([&] { return server->get("/api/repos").size() == 1; }, 30));
  server->post("/api/repos/app/branches/main/test", R"({"enabled": true})");
  ASSERT_TRUE(eventually([&] {
    return test_object(server->get("/api/repos/app/branches/main/history"), "t/linux")["runs"] >= 20;
  }));
  server->stop(SIGKILL, false);
  server = std::make_unique<ServerProcess>(args(port, 0, 120));
  ASSERT_TRUE(eventually([&] {
    const json t = test_object(server->get("/api/repos/app/branches/main/history"), "t/linux");
    return t["runs"] == 120 && t["active_runs"] == 0;
  }, 120)) << server->get("/api/repos/app/branches/main/history").dump();
  const json workers = server->get("/api/workers");
  EXPECT_EQ(workers.size(), 2u) << workers.dump();
  for (const auto& w : workers) EXPECT_TRUE(w["connected"].get<bool>()) << w.dump();
  server->stop(SIGTERM);
  const auto before = counted_runs();
  ASSERT_EQ(before.size(), 1u);
  EXPECT_EQ(before.begin()->second, 120);

  // Wipe the database: the artifact store alone gives back the same counts.
  std::filesystem::remove(data() + "/state.db");
  std::filesystem::remove(data() + "/state.db-wal");
  std::filesystem::remove(data() + "/state.db-shm");
  const std::string out = capture(std::string(TL_BINARY) + " rebuild --trust-unknown-runs --data " + shell_quote(data()));
  EXPECT_NE(out.find("restored"), std::string::npos) << out;
  EXPECT_EQ(counted_runs(), before);
}

TEST_F(CrashTest, Worker_KilledMidRunIsAnInfrastructureFailureAndRunsAgain) {
  app_.write("testlooper.yml",
             "looper_version: 5\n"
             "environments: {linux: {platform: linux, image: {host: true}}}\n"
             "tests: {t/linux: {command: 'sleep 3'}}\n");
  app_.commit("slow test");
  auto server = std::make_unique<ServerProcess>(args(0, 1, 1));
  ASSERT_TRUE(eventually([&] { return server->get("/api/repos").size() == 1; }, 30));
  server->post("/api/repos/app/branches/main/test", R"({"enabled": true})");
  std::string run_id;
  ASSERT_TRUE(eventually([&] { return !(run_id = first_running_run(*server)).empty(); }));
  capture("pkill -9 -f " + shell_quote("worker --server http://127.0.0.1:" + std::to_string(server->port())));
  ASSERT_TRUE(eventually([&] { return server->get("/api/runs/" + run_id)["state"] == "infra_failed"; }));
  ASSERT_TRUE(eventually([&] {
    const json t = test_object(server->get("/api/repos/app/branches/main/history"), "t/linux");
    return t["runs"] == 1 && t["failures"] == 0;
  }));
}

TEST_F(CrashTest, Serve_ForcePushCancelsOrphanedRuns) {
  app_.write("testlooper.yml",
             "looper_version: 5\n"
             "environments: {linux: {platform: linux, image: {host: true}}}\n"
             "tests: {t/linux: {command: 'sleep 30', dependencies: {src: HEAD}}}\n");
  const std::string first = app_.commit("first");
  app_.write("x", "y");
  const std::string second = app_.commit("second");
  auto server = std::make_unique<ServerProcess>(args(0, 1, 1));
  ASSERT_TRUE(eventually([&] { return server->get("/api/repos").size() == 1; }, 30));
  server->post("/api/repos/app/branches/main/test", R"({"enabled": true})");
  std::string run_id;
  ASSERT_TRUE(eventually([&] { return !(run_id = first_running_run(*server)).empty(); }));
  EXPECT_EQ(server->get("/api/runs/" + run_id)["commit"], second);
  app_.run({"reset", "-q", "--hard", first});
  server->post("/api/refresh", "{}");
  ASSERT_TRUE(eventually([&] { return server->get("/api/runs/" + run_id)["state"] == "cancelled"; }, 30))
      << server->get("/api/runs/" + run_id).dump();
}

TEST_F(CrashTest, Dispatch_PacksABuildAndTwoTestsOnAFourCoreWorker) {
  app_.write("testlooper.yml",
             "looper_version: 5\n"
             "environments: {linux: {platform: linux, image: {host: true}}}\n"
             "builds: {b/linux: {command: 'sleep 2', min_cores: 2}}\n"
             "tests:\n"
             "  t1/linux: {command: 'sleep 2'}\n"
             "  t2/linux: {command: 'sleep 2'}\n"
             "  t3/linux: {command: 'sleep 2'}\n");
  app_.commit("packing");
  const int port = free_port();
  auto server = std::make_unique<ServerProcess>(args(port, 0, 1));
  const auto w = worker(port, dir_.path() + "/w", "four", 4, data());
  ASSERT_TRUE(eventually([&] { return server->get("/api/workers").size() == 1; }, 30));
  server->post("/api/repos/app/branches/main/test", R"({"enabled": true})");
  int most = 0;
  bool over = false;
  eventually([&] {
    const json ws = server->get("/api/workers");
    if (ws.empty()) return false;
    const int used = ws[0]["cores_used"];
    most = std::max(most, used);
    over = over || used > 4;
    const json h = server->get("/api/repos/app/branches/main/history");
    return test_object(h, "t3/linux")["runs"] == 1 && test_object(h, "b/linux")["runs"] == 1 &&
           test_object(h, "t1/linux")["runs"] == 1 && test_object(h, "t2/linux")["runs"] == 1;
  }, 60);
  EXPECT_EQ(most, 4);
  EXPECT_FALSE(over);
}

}  // namespace
}  // namespace testlooper::server
