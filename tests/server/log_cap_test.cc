// Issue 11, reliability suite: a test that writes far more log than `serve --max-log-mb` keeps.
// A real `testlooper serve --max-log-mb 2` and a real `testlooper worker` (its own --dir) run
// tests that write 50 MB: the kept logs (the server's live copy and the run record the worker
// uploaded) stop near 2 MiB and end saying where they were cut, and each run is still decided
// by its exit code.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "server_fixture.h"

namespace testlooper::server {
namespace {

namespace fs = std::filesystem;
using fixtures::eventually;
using fixtures::GitFixtureRepo;
using fixtures::ServerProcess;
using fixtures::TempDir;
using fixtures::WorkerProcess;
using nlohmann::json;

constexpr int64_t kWritten = 50'000'000;
constexpr int64_t kCap = 2 << 20;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class LogCapTest : public testing::Test {
 protected:
  LogCapTest() : app_(dir_.path() + "/repos/app") {
    const std::string write = "yes a-line-of-log-output | head -c " + std::to_string(kWritten);
    app_.write("testlooper.yml",
               "looper_version: 5\n"
               "environments: {linux: {platform: linux, image: {host: true}}}\n"
               "tests:\n"
               "  big-passes/linux: {command: '" +
                   write + "'}\n" + "  big-fails/linux: {command: '" + write + "; exit 3'}\n");
    sha_ = app_.commit("first");
  }

  json only_run(const ServerProcess& server, const std::string& name) const {
    const json runs = server.get("/api/repos/app/commits/" + sha_ + "/runs?name=" + name);
    return runs.is_array() && runs.size() == 1 ? runs[0] : json();
  }

  // Checks a kept log: near the cap, and its last line says how much was not kept.
  static void expect_cut(const std::string& log, const std::string& what) {
    EXPECT_LE(static_cast<int64_t>(log.size()), kCap + (64 << 10) + 4096) << what;
    EXPECT_GE(static_cast<int64_t>(log.size()), kCap) << what;
    std::smatch match;
    static const std::regex kLast(
        R"(\[testlooper: log cut at 2 MiB; ([0-9]+) bytes not kept\]\n$)");
    ASSERT_TRUE(std::regex_search(log, match, kLast))
        << what << " ends: " << log.substr(log.size() > 300 ? log.size() - 300 : 0);
    const int64_t dropped = std::stoll(match[1]);
    EXPECT_GT(dropped, kWritten - kCap) << what;
    EXPECT_LE(dropped, kWritten) << what;
  }

  TempDir dir_;
  TempDir worker_dir_;
  GitFixtureRepo app_;
  std::string sha_;
};

TEST_F(LogCapTest, HugeLog_IsCutAtMaxLogMbSaysWhereAndTheRunKeepsItsExitCode) {
  ServerProcess server({"--repos", dir_.path() + "/repos", "--data", dir_.path() + "/data",
                        "--port", "0", "--workers", "0", "--poll-seconds", "0.3", "--max-log-mb",
                        "2"});
  ASSERT_TRUE(eventually([&] { return server.get("/api/repos").size() == 1; }, 30));
  WorkerProcess worker({"--server", server.url(""), "--dir", worker_dir_.path(), "--cores", "1",
                        "--ram-gb", "1", "--id", "w1", "--token-file",
                        dir_.path() + "/data/worker.token"});
  ASSERT_EQ(server.post("/api/repos/app/branches/main/test", R"({"enabled": true})").first, 200);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"big-passes/linux", "succeeded"}, {"big-fails/linux", "failed"}};
  for (const auto& [name, state] : expected) {
    ASSERT_TRUE(eventually(
        [&] {
          const json run = only_run(server, name);
          return run.is_object() && run["state"] != "running";
        },
        180))
        << server.get("/api/repos/app/commits/" + sha_ + "/runs").dump(2);
    const json run = only_run(server, name);
    EXPECT_EQ(run["state"], state) << run.dump(2);
    const std::string id = run["id"];
    // The server's copy (what the API serves) and the record the worker uploaded.
    expect_cut(read_file(dir_.path() + "/data/logs/" + id + ".log"), name + " server log");
    expect_cut(read_file(dir_.path() + "/data/artifacts/runs/" + id + "/log.txt"),
               name + " run record");
  }
}

}  // namespace
}  // namespace testlooper::server
