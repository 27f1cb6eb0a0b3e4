// Issue 18 (SERVE): what makes `serve` fast must not change what it does. Results that arrive
// together are replanned and dispatched once (ServerState::update_soon): every worker that
// reported still gets its next job while runs wait, no run is given twice, and each result is
// acknowledged only once it is stored (a server killed with -9 right after the acks has them).
#include <gtest/gtest.h>

#include <fstream>
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

  void start(int local_workers = 0) {
    server_ = std::make_unique<ServerProcess>(std::vector<std::string>{
        "--repos", dir_.path() + "/repos", "--data", dir_.path() + "/data", "--port", "0",
        "--workers", std::to_string(local_workers), "--poll-seconds", "0.3", "--extra-runs", "0"});
    ASSERT_TRUE(eventually([&] { return server_->get("/api/repos").size() == 1; }, 30));
  }

  // `count` one-core fake workers, connected (as /api/workers shows); `hello` adds fields.
  void connect(size_t count, const json& hello = json::object()) {
    const std::string token = fixtures::worker_token(dir_.path() + "/data");
    for (size_t i = 0; i < count; ++i) {
      workers_.push_back(std::make_unique<FakeWorker>(server_->port(), token,
                                                      "w" + std::to_string(i), 1, 1, hello));
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

// A worker that says "job_acks" in its hello gets the ack of a result stored as it is given its
// next job inside that job (one message, not two); the last result, with no job after it, is
// acknowledged by a message of its own. One that does not say it gets every ack on its own.
TEST_F(ThroughputTest, Perf_AWorkerThatReadsAcksInJobsGetsEachAckWithItsNextJob) {
  start();
  connect(1, {{"job_acks", true}});
  want(3);
  FakeWorker& w = *workers_[0];
  std::vector<std::string> ids;
  for (size_t i = 1; i <= 3; ++i) {
    const std::vector<FakeJob> jobs = w.jobs(kTest, i);
    ASSERT_EQ(jobs.size(), i);
    const json& job = jobs.back().message;
    if (i == 1) {
      EXPECT_FALSE(job.contains("acks")) << job.dump();
    } else {
      EXPECT_EQ(job["acks"], json::array({ids.back()})) << job.dump();
    }
    ids.push_back(jobs.back().run_id);
    ASSERT_TRUE(w.report(ids.back(), "success")) << ids.back();
  }
  EXPECT_EQ(w.ack_messages(), std::set<std::string>{ids.back()});
  EXPECT_EQ(succeeded(), 3u);
}

TEST_F(ThroughputTest, Perf_AWorkerThatDoesNotReadAcksInJobsGetsThemApart) {
  start();
  connect(1);
  want(2);
  FakeWorker& w = *workers_[0];
  const std::vector<FakeJob> first = w.jobs(kTest, 1);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(w.report(first[0].run_id, "success"));
  const std::vector<FakeJob> both = w.jobs(kTest, 2);
  ASSERT_EQ(both.size(), 2u);
  EXPECT_FALSE(both[1].message.contains("acks")) << both[1].message.dump();
  EXPECT_EQ(w.ack_messages(), std::set<std::string>{first[0].run_id});
}

// A job says the server reads a result's "log": the end of the run's log that came with the
// result is appended after what came in log messages, before the run is recorded; invalid
// bytes were replaced by the worker's JSON writer, and an older worker's result without "log"
// still records its run.
TEST_F(ThroughputTest, Perf_TheEndOfARunsLogMayComeInItsResult) {
  start();
  connect(1, {{"job_acks", true}});
  want(2);
  FakeWorker& w = *workers_[0];
  const std::vector<FakeJob> first = w.jobs(kTest, 1);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].message["log_in_result"], true) << first[0].message.dump();
  const std::string id = first[0].run_id;
  ASSERT_TRUE(w.socket().send(json{{"type", "log"}, {"run_id", id}, {"data", "first\n"}}.dump()));
  ASSERT_TRUE(w.report(id, "success", 30, {{"log", "last \xE2\x82\xAC\n"}}));
  EXPECT_EQ(fixtures::capture("curl -s " + server_->url("/api/runs/" + id + "/log")),
            "first\nlast \xE2\x82\xAC\n");
  EXPECT_EQ(server_->get("/api/runs/" + id)["state"], "succeeded");
  const std::vector<FakeJob> both = w.jobs(kTest, 2);
  ASSERT_EQ(both.size(), 2u);
  ASSERT_TRUE(w.report(both[1].run_id, "success"));
  EXPECT_EQ(fixtures::capture("curl -s " + server_->url("/api/runs/" + both[1].run_id + "/log")),
            "");
  EXPECT_EQ(succeeded(), 2u);
}

// The real worker reads them: once its runs are stored, its journal of results waiting for an
// ack (worker/pending_results.h) has an ack for every result in it.
TEST_F(ThroughputTest, Perf_ALocalWorkerForgetsEveryResultOnceStored) {
  start(1);
  want(4);
  ASSERT_TRUE(eventually([&] { return succeeded() == 4; }, 60)) << runs().dump(2);
  const std::string journal = dir_.path() + "/data/workers/0/pending.jsonl";
  std::set<std::string> results, acks;
  ASSERT_TRUE(eventually(
      [&] {
        results.clear();
        acks.clear();
        std::ifstream in(journal);
        for (std::string line; std::getline(in, line);) {
          const json entry = json::parse(line, nullptr, false);
          if (entry.contains("run_id")) results.insert(entry["run_id"].get<std::string>());
          if (entry.contains("ack")) acks.insert(entry["ack"].get<std::string>());
        }
        return results.size() == 4 && acks == results;
      },
      30))
      << "results " << json(results).dump() << ", acks " << json(acks).dump();
}

}  // namespace
}  // namespace testlooper::server
