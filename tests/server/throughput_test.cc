// Issue 18 (SERVE): what makes `serve` fast must not change what it does. Results that arrive
// together are replanned and dispatched once (ServerState::update_soon): every worker that
// reported still gets its next job while runs wait, no run is given twice, and each result is
// acknowledged only once it is stored (a server killed with -9 right after the acks has them).
#include <gtest/gtest.h>

#include <memory>
#include <set>
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

constexpr const char* kDefinitions =
    "looper_version: 5\n"
    "environments: {linux: {platform: linux, image: {host: true}}}\n"
    "tests: {t/linux: {command: 'true'}}\n";
constexpr const char* kTest = "t/linux";

class ThroughputTest : public testing::Test {
 protected:
  ThroughputTest() : app_(dir_.path() + "/repos/app") {
    app_.write("testlooper.yml", kDefinitions);
    sha_ = app_.commit("first");
  }

  void start() {
    server_ = std::make_unique<ServerProcess>(std::vector<std::string>{
        "--repos", dir_.path() + "/repos", "--data", dir_.path() + "/data", "--port", "0",
        "--workers", "0", "--poll-seconds", "0.3", "--extra-runs", "0"});
    ASSERT_TRUE(eventually([&] { return server_->get("/api/repos").size() == 1; }, 30));
  }

  // `count` one-core fake workers, connected (as /api/workers shows).
  void connect(size_t count) {
    const std::string token = fixtures::worker_token(dir_.path() + "/data");
    for (size_t i = 0; i < count; ++i) {
      workers_.push_back(
          std::make_unique<FakeWorker>(server_->port(), token, "w" + std::to_string(i), 1, 1));
      ASSERT_TRUE(workers_.back()->connected());
    }
    ASSERT_TRUE(eventually([&] {
      size_t connected = 0;
      for (const json& w : server_->get("/api/workers")) connected += w["connected"] == true;
      return connected == count;
    }));
  }

  // Puts main under test with a target of `runs` runs of the test.
  void want(int runs) {
    ASSERT_EQ(server_->post("/api/repos/app/branches/main/test", R"({"enabled": true})").first,
              200);
    ASSERT_EQ(server_
                  ->post("/api/repos/app/commits/" + sha_ + "/targets",
                         json{{"name", kTest}, {"runs", runs}}.dump())
                  .first,
              200);
  }

  json runs() const {
    return server_->get("/api/repos/app/commits/" + sha_ + "/runs?name=" + kTest);
  }
  size_t succeeded() const {
    size_t n = 0;
    for (const json& r : runs()) n += r["state"] == "succeeded";
    return n;
  }

  // Every result sent at once, each worker's as one message, without waiting in between.
  static void report_all(const std::vector<std::pair<FakeWorker*, std::string>>& jobs) {
    for (const auto& [w, run_id] : jobs) {
      ASSERT_TRUE(w->socket().send(json{
          {"type", "result"},
          {"run_id", run_id},
          {"outcome", "success"},
          {"exit_code", 0},
          {"cases", json::array()}}.dump()));
    }
  }

  TempDir dir_;
  GitFixtureRepo app_;
  std::string sha_;
  std::unique_ptr<ServerProcess> server_;
  std::vector<std::unique_ptr<FakeWorker>> workers_;
};

TEST_F(ThroughputTest, Perf_ResultsTogetherAreAllStoredAndEveryWorkerGetsItsNextJob) {
  start();
  constexpr size_t kWorkers = 4;
  constexpr int kRuns = 13;
  connect(kWorkers);
  want(kRuns);
  std::set<std::string> seen;  // every run id given, once
  size_t reported = 0;
  std::vector<size_t> held(kWorkers, 0);  // jobs each worker got so far
  while (reported < static_cast<size_t>(kRuns)) {
    // While runs wait, every worker is busy: the first jobs, then after each burst of results.
    const size_t expected = std::min<size_t>(kRuns, reported + kWorkers);
    std::vector<std::pair<FakeWorker*, std::string>> burst;
    // The server's word first (a fake worker's read that times out drops its connection): as
    // many runs running as there are workers, or runs left; then each of those workers reads
    // the job it was given.
    std::vector<std::string> given;  // the worker of each running run
    ASSERT_TRUE(eventually(
        [&] {
          given.clear();
          for (const json& r : runs()) {
            if (r["state"] == "running") given.push_back(r["worker"].get<std::string>());
          }
          return given.size() == expected - reported;
        },
        60))
        << "runs wait and a worker that reported got no job; reported " << reported;
    for (const std::string& worker : given) {
      const size_t i = std::stoul(worker.substr(1));  // "w<i>"
      ASSERT_LT(i, kWorkers) << worker;
      held[i] = workers_[i]->jobs(kTest, held[i] + 1, 30).size();
    }
    for (size_t i = 0; i < kWorkers; ++i) {
      const std::vector<FakeJob> jobs = workers_[i]->jobs(kTest, held[i], 0);
      for (const FakeJob& job : jobs) {
        if (!seen.insert(job.run_id).second) continue;
        burst.push_back({workers_[i].get(), job.run_id});
      }
    }
    ASSERT_EQ(burst.size(), expected - reported) << "a run given twice";
    report_all(burst);
    for (const auto& [w, run_id] : burst) ASSERT_TRUE(w->acked(run_id)) << run_id;
    reported += burst.size();
  }
  ASSERT_TRUE(eventually([&] { return succeeded() == static_cast<size_t>(kRuns); }))
      << runs().dump(2);
  EXPECT_EQ(runs().size(), static_cast<size_t>(kRuns)) << "no run beyond the target";
  EXPECT_EQ(seen.size(), static_cast<size_t>(kRuns));
}

TEST_F(ThroughputTest, Perf_AResultAcknowledgedIsStoredWhenTheServerIsKilledRightAfter) {
  start();
  constexpr size_t kWorkers = 6;
  connect(kWorkers);
  want(100);
  std::vector<std::pair<FakeWorker*, std::string>> burst;
  for (auto& w : workers_) {
    const auto job = w->job(kTest);
    ASSERT_TRUE(job.has_value());
    burst.push_back({w.get(), job->run_id});
  }
  report_all(burst);
  for (const auto& [w, run_id] : burst) ASSERT_TRUE(w->acked(run_id)) << run_id;
  server_->stop(SIGKILL);
  workers_.clear();
  start();
  for (const auto& [w, run_id] : burst) {
    const json run = server_->get("/api/runs/" + run_id);
    EXPECT_EQ(run["state"], "succeeded") << run.dump(2);
  }
}

}  // namespace
}  // namespace testlooper::server
