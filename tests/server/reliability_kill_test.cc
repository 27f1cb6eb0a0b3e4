// Issue 11's reliability suite, kill -9: the server is killed at 10 random moments while two
// external `testlooper worker` processes run 500 tiny tests, and restarted on the same port each
// time. Every test appends its run id to a file outside the server's reach; in the end the runs
// the server counted are exactly the runs that ran, each once.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>

#include "server_fixture.h"

namespace testlooper::server {
namespace {

using fixtures::eventually;
using fixtures::free_port;
using fixtures::GitFixtureRepo;
using fixtures::ServerProcess;
using fixtures::TempDir;
using fixtures::WorkerProcess;
using nlohmann::json;

constexpr int kTests = 5;
constexpr int kRunsPerTest = 100;  // 500 runs in all
constexpr int kKills = 10;

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// Run id -> (state, name) of every run in the database at `path`.
std::map<std::string, std::pair<std::string, std::string>> stored_runs(const std::string& path) {
  sqlite3* db = nullptr;
  std::map<std::string, std::pair<std::string, std::string>> out;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(db, "SELECT id, state || ' (' || detail || ')', name FROM runs", -1, &s,
                       nullptr);
    while (s != nullptr && sqlite3_step(s) == SQLITE_ROW) {
      auto text = [&](int i) {
        return std::string(reinterpret_cast<const char*>(sqlite3_column_text(s, i)));
      };
      out[text(0)] = {text(1), text(2)};
    }
    sqlite3_finalize(s);
  }
  sqlite3_close(db);
  return out;
}

TEST(ReliabilityKill, Reliability_ServerKilledTenTimesDuring500RunsCountsEachRunOnce) {
  TempDir dir;
  GitFixtureRepo app(dir.path() + "/repos/app");
  const std::string ran = dir.path() + "/ran.txt";  // outside the server's data dir
  std::string yml =
      "looper_version: 5\n"
      "environments: {linux: {platform: linux, image: {host: true}}}\n"
      "tests:\n";
  for (int i = 0; i < kTests; ++i) {
    yml += "  t" + std::to_string(i) + "/linux: {command: 'echo $TEST_LOOPER_TEST_ID >> " + ran +
           "'}\n";
  }
  app.write("testlooper.yml", yml);
  app.commit("tiny tests");
  const std::string data = dir.path() + "/data";
  const int port = free_port();
  const std::vector<std::string> args = {"--repos",          dir.path() + "/repos",
                                         "--data",           data,
                                         "--port",           std::to_string(port),
                                         "--workers",        "0",
                                         "--poll-seconds",   "0.3",
                                         "--worker-timeout", "10",
                                         "--default-runs",   std::to_string(kRunsPerTest),
                                         "--extra-runs",     "0"};
  auto server = std::make_unique<ServerProcess>(args);
  std::vector<std::unique_ptr<WorkerProcess>> workers;
  for (const char* id : {"w1", "w2"}) {
    workers.push_back(std::make_unique<WorkerProcess>(
        std::vector<std::string>{"--server", server->url(""), "--cores", "2", "--ram-gb", "2",
                                 "--dir", dir.path() + "/" + id, "--id", id, "--token-file",
                                 data + "/worker.token"},
        SIGKILL));
  }
  ASSERT_TRUE(eventually([&] { return server->get("/api/repos").size() == 1; }, 30));
  ASSERT_EQ(server->post("/api/repos/app/branches/main/test", R"({"enabled": true})").first, 200);

  // Ten moments, random but reproducible: after so many runs have run.
  std::mt19937 random(11);
  std::set<size_t> moments;
  while (moments.size() < kKills) moments.insert(20 + random() % 440);
  std::chrono::steady_clock::duration longest_restart{};
  for (const size_t moment : moments) {
    ASSERT_TRUE(eventually([&] { return lines_of(ran).size() >= moment; }, 120))
        << lines_of(ran).size() << " runs ran, waiting for " << moment;
    server->stop(SIGKILL, false);
    const auto killed = std::chrono::steady_clock::now();
    server = std::make_unique<ServerProcess>(args);  // the same port, at once
    ASSERT_EQ(server->port(), port);
    longest_restart = std::max(longest_restart, std::chrono::steady_clock::now() - killed);
  }
  std::cout << "longest restart after kill -9 (until it listens): "
            << std::chrono::duration<double>(longest_restart).count() << " s\n";
  const auto history = [&] { return server->get("/api/repos/app/branches/main/history"); };
  ASSERT_TRUE(eventually(
      [&] {
        const json h = history();
        if (!h.is_object() || h["commits"].empty()) return false;
        int done = 0;
        for (const auto& o : h["commits"][0]["objects"]) {
          done += o["runs"] == kRunsPerTest && o["active_runs"] == 0;
        }
        return done == kTests;
      },
      240))
      << history().dump();
  server->stop(SIGTERM);

  // What ran (each id once) is exactly what the server counted; nothing counted twice, nothing
  // that ran lost (or recorded as an infrastructure failure), nothing still running.
  const std::vector<std::string> ran_ids = lines_of(ran);
  const std::set<std::string> ran_set(ran_ids.begin(), ran_ids.end());
  EXPECT_EQ(ran_set.size(), ran_ids.size()) << "a run id ran twice";
  const auto runs = stored_runs(data + "/state.db");
  std::set<std::string> counted;
  std::map<std::string, int> per_test;
  std::map<std::string, int> by_state;
  for (const auto& [id, run] : runs) {
    ++by_state[run.first.substr(0, run.first.find(' '))];
    if (run.first.rfind("succeeded", 0) == 0) {
      counted.insert(id);
      ++per_test[run.second];
    }
  }
  std::cout << "runs by state:";
  for (const auto& [state, n] : by_state) std::cout << " " << state << "=" << n;
  std::cout << "; ran " << ran_ids.size() << "\n";
  EXPECT_EQ(counted.size(), static_cast<size_t>(kTests * kRunsPerTest));
  for (const auto& [name, n] : per_test) EXPECT_EQ(n, kRunsPerTest) << name;
  EXPECT_EQ(by_state.count("running"), 0u);
  EXPECT_EQ(by_state.count("failed"), 0u);
  for (const auto& id : ran_set) {
    EXPECT_TRUE(counted.count(id))
        << "run " << id << " ran but is " << (runs.count(id) ? runs.at(id).first : "unknown");
  }
  for (const auto& id : counted) EXPECT_TRUE(ran_set.count(id)) << "run " << id << " never ran";
}

}  // namespace
}  // namespace testlooper::server
