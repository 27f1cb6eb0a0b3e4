// The statistics cache (src/server/stats_cache.h, issue 18): the history, changes and commit
// answers of a live server, whose windows are cached and brought up to date as runs end, equal
// those of a server started afresh on the same data dir (which computes everything once); and
// each answer changes when a run ends. The layout the cache keeps gives the evidence
// planner::test_histories gives, on random histories.
#include "server/stats_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

#include "fake_worker.h"
#include "planner/planner.h"
#include "server_fixture.h"

namespace testlooper::server {
namespace {

using fixtures::eventually;
using fixtures::GitFixtureRepo;
using fixtures::ServerProcess;
using fixtures::TempDir;
using nlohmann::json;

// What the statistics decide in an answer, without what changes while runs come and go (the
// plan's status and the active runs).
json statistics_of(json answer) {
  if (answer.is_object() && answer.contains("commits")) {
    for (json& c : answer["commits"]) {
      for (json& o : c["objects"]) {
        o.erase("status");
        o.erase("active_runs");
      }
    }
  }
  if (answer.is_object() && answer.contains("objects")) {
    for (json& o : answer["objects"]) {
      for (const char* field : {"status", "active_runs", "reason", "target_runs"}) o.erase(field);
    }
    answer.erase("enabled_sets");
  }
  return answer;
}

class StatsCacheTest : public ::testing::Test {
 protected:
  StatsCacheTest() : app_(dir_.path() + "/repos/app") {
    // Its identity changes with every commit (src: HEAD); its runs report two cases.
    app_.write("testlooper.yml",
               "looper_version: 5\n"
               "environments: {linux: {platform: linux, image: {host: true}}}\n"
               "tests: {t/linux: {command: 'true', dependencies: {src: HEAD}},\n"
               "        u/linux: {command: 'true', dependencies: {src: HEAD}}}\n");
    for (int i = 0; i < 4; ++i) {
      app_.write("f", std::to_string(i));
      shas_.push_back(app_.commit("commit " + std::to_string(i)));
    }
  }
  void start() {
    server_ = std::make_unique<ServerProcess>(
        std::vector<std::string>{"--repos", dir_.path() + "/repos", "--data", data(), "--port", "0",
                                 "--workers", "0", "--poll-seconds", "0.3", "--extra-runs", "0"});
  }
  std::string data() const { return dir_.path() + "/data"; }
  std::vector<std::string> paths() const {
    return {"/api/repos/app/branches/main/history?limit=10", "/api/repos/app/branches/main/changes",
            "/api/repos/app/branches/main/changes?test=t/*", "/api/repos/app/commits/" + shas_[1],
            "/api/repos/app/commits/" + shas_.back()};
  }
  std::vector<json> answers() const {
    std::vector<json> out;
    for (const auto& path : paths()) out.push_back(statistics_of(server_->get(path)));
    return out;
  }
  // Waits for `t` jobs of t/linux and `u` of u/linux in all and reports those not reported yet:
  // t/linux fails from commit 2 on (and its case "b" with it), u/linux passes. Returns how many
  // it reported.
  size_t run_jobs(fixtures::FakeWorker& worker, size_t t, size_t u) {
    size_t done = 0;
    for (const auto& [name, count] :
         {std::pair<std::string, size_t>{"t/linux", t}, {"u/linux", u}}) {
      for (const auto& job : worker.jobs(name, count, 60)) {
        if (reported_.count(job.run_id)) continue;
        reported_.insert(job.run_id);
        const bool broken = name == "t/linux" && job.message["commit"] != shas_[0] &&
                            job.message["commit"] != shas_[1];
        const json cases = json::array(
            {{{"name", "a"}, {"success", true}}, {{"name", "b"}, {"success", !broken}}});
        EXPECT_TRUE(
            worker.report(job.run_id, broken ? "failure" : "success", 60, {{"cases", cases}}));
        ++done;
      }
    }
    return done;
  }

  TempDir dir_;
  GitFixtureRepo app_;
  std::vector<std::string> shas_;  // oldest first
  std::unique_ptr<ServerProcess> server_;
  std::set<std::string> reported_;
};

TEST_F(StatsCacheTest, CachedAnswersFollowEveryRunAndEqualAFreshServers) {
  start();
  ASSERT_TRUE(eventually([&] { return server_->get("/api/repos").size() == 1; }, 30));
  fixtures::FakeWorker worker(server_->port(), fixtures::worker_token(data()), "fake-1", 16);
  ASSERT_TRUE(worker.connected());
  ASSERT_EQ(
      server_->post("/api/repos/app/branches/main/test", R"({"enabled": true, "depth": 3})").first,
      200);
  // One run of each test at each commit, then the answers are cached.
  ASSERT_EQ(run_jobs(worker, 4, 4), 8u);
  ASSERT_TRUE(eventually(
      [&] {
        const json h = server_->get("/api/repos/app/branches/main/history?limit=10");
        for (const json& c : h["commits"]) {
          for (const json& o : c["objects"]) {
            if (o["runs"] != 1) return false;
          }
        }
        return true;
      },
      30));
  std::vector<json> before = answers();
  EXPECT_EQ(answers(), before);  // asked again: the same (from the cache)
  // More runs, one commit at a time: every answer follows each run that ended.
  for (size_t k = 0; k < shas_.size(); ++k) {
    const std::string& sha = shas_[k];
    ASSERT_EQ(server_
                  ->post("/api/repos/app/commits/" + sha + "/targets",
                         R"({"name": "t/linux", "runs": 4})")
                  .first,
              200);
    ASSERT_EQ(run_jobs(worker, 4 + 3 * (k + 1), 4), 3u);
    const std::string commit_path = "/api/repos/app/commits/" + sha;
    ASSERT_TRUE(eventually(
        [&] {
          const json commit = server_->get(commit_path);
          for (const json& o : commit["objects"]) {
            if (o["name"] == "t/linux") return o["runs"] == 4;
          }
          return false;
        },
        30))
        << server_->get(commit_path).dump(2);
    const std::vector<json> now = answers();
    // The commit's own page and the history always show the new runs.
    EXPECT_NE(now[0], before[0]) << "history after more runs at " << sha;
    for (size_t i = 0; i < now.size(); ++i) {
      if (paths()[i].find("/commits/" + sha) != std::string::npos) {
        EXPECT_NE(now[i], before[i]) << paths()[i];
      }
    }
    before = now;
  }
  // Localised by now: the change is at commit 2, for the test and its case "b".
  const json changes = server_->get("/api/repos/app/branches/main/changes");
  ASSERT_TRUE(changes.is_array() && changes.size() >= 2) << changes.dump(2);
  for (const json& c : changes) EXPECT_EQ(c["commit"], shas_[2]) << changes.dump(2);
  // The same answers from a server that computes them afresh.
  const std::vector<json> live = answers();
  server_->stop(SIGTERM);
  start();
  ASSERT_TRUE(eventually([&] { return server_->get("/api/repos").size() == 1; }, 30));
  const std::vector<json> fresh = answers();
  for (size_t i = 0; i < fresh.size(); ++i) EXPECT_EQ(live[i], fresh[i]) << paths()[i];
}

// The window's layout and its evidence (stats_cache.h) against planner::test_histories, on
// random histories: tests that come and go, identities that change and come back, builds,
// commits unknown.
TEST(StatsCacheLayoutTest, EvidenceEqualsTestHistoriesOnRandomHistories) {
  std::mt19937 random(18);
  for (int round = 0; round < 200; ++round) {
    const size_t n = 1 + random() % 60;
    std::vector<std::string> shas;
    std::map<std::string, std::vector<planner::PlannedObject>> objects;
    std::map<std::string, planner::HashProgress> progress;
    for (size_t i = 0; i < n; ++i) {
      shas.push_back("c" + std::to_string(i));
      if (random() % 20 == 0) continue;  // unknown commit
      auto& at = objects[shas.back()];
      for (int t = 0; t < 6; ++t) {
        if (random() % 4 == 0) continue;  // absent here
        planner::PlannedObject o;
        o.name = "test" + std::to_string(t);
        o.kind = "test";
        if (t == 5) {  // a build (a name both a test and a build planner::test_histories refuses)
          o.name = "build";
          o.kind = "build";
        }
        o.hash = o.name + "-" + std::to_string(random() % 4);
        at.push_back(o);
        if (!progress.count(o.hash)) {
          const int64_t runs = random() % 5;
          progress[o.hash] = {runs, runs == 0 ? 0 : static_cast<int64_t>(random() % (runs + 1)), 0};
        }
      }
      std::shuffle(at.begin(), at.end(), random);
    }
    const planner::ObjectsAt objects_at = [&](const std::string& sha) {
      auto it = objects.find(sha);
      return it == objects.end() ? nullptr : &it->second;
    };
    const auto expected = planner::test_histories(
        shas, objects_at, [&](const std::string& hash) { return progress[hash]; }, false);
    const WindowLayout layout = layout_tests(shas, objects_at);
    std::vector<std::pair<int64_t, int64_t>> counts;
    for (const auto& hash : layout.identities) {
      counts.emplace_back(progress[hash].runs, progress[hash].failures);
    }
    ASSERT_EQ(layout.tests.size(), expected.size()) << "round " << round;
    for (const auto& [name, want] : expected) {
      ASSERT_TRUE(layout.tests.count(name)) << name;
      const auto got = layout_evidence(layout.tests.at(name), n, counts);
      ASSERT_EQ(got.size(), want.size());
      // What the commit page and the commit statuses classify by, without the evidence.
      WindowStats window;
      window.shas = shas;
      WindowTest test;
      test.layout = layout.tests.at(name);
      for (size_t i = 0; i < n; ++i) {
        EXPECT_EQ(window.present(test, i), want[i].present)
            << "round " << round << " " << name << " @" << i;
      }
      EXPECT_FALSE(window.present(test, n));
      for (size_t i = 0; i < n; ++i) {
        const std::string identity =
            got[i].identity.empty() ? "" : layout.identities.at(std::stoul(got[i].identity));
        EXPECT_EQ(identity, want[i].identity) << "round " << round << " " << name << " @" << i;
        EXPECT_EQ(got[i].present, want[i].present) << "round " << round << " " << name << " @" << i;
        EXPECT_EQ(got[i].runs, want[i].runs) << "round " << round << " " << name << " @" << i;
        EXPECT_EQ(got[i].failures, want[i].failures)
            << "round " << round << " " << name << " @" << i;
      }
    }
  }
}

}  // namespace
}  // namespace testlooper::server
