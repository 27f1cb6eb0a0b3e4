// Issue 11 items 4 and 5, through the real `testlooper serve`: a commit is wanted when anything
// wanted needs it (a build pinned by sha in a commit no branch reaches runs once, never started
// and cancelled in a loop), and a run nobody wants any more is cancelled (recorded `cancelled`,
// never a failure) when a branch is taken off test, a test set is disabled or a target lowered.
#include <gtest/gtest.h>

#include <memory>
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

constexpr const char* kNoLongerWanted = "no longer wanted";

// The runs of object `name` of `repo` at `sha` (of its identity), newest first.
json runs_of(const ServerProcess& server, const std::string& repo, const std::string& sha,
             const std::string& name) {
  return server.get("/api/repos/" + repo + "/commits/" + sha + "/runs?name=" + name);
}

// The object `name` of `repo`'s commit `sha` as the commit endpoint shows it.
json object_of(const ServerProcess& server, const std::string& repo, const std::string& sha,
               const std::string& name) {
  const json commit = server.get("/api/repos/" + repo + "/commits/" + sha);
  if (!commit.is_object() || !commit["objects"].is_array()) return json();
  for (const json& o : commit["objects"]) {
    if (o["name"] == name) return o;
  }
  return json();
}

size_t count_state(const json& runs, const std::string& state) {
  size_t n = 0;
  for (const json& r : runs) n += r["state"] == state ? 1 : 0;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Item 4: commits pinned by sha that no branch reaches. The pinned repo, "alib", is looked at
// before "app" in each pass: a pin found in app is ingested by another look at alib.

// lib's build, slow enough that a server cancelling it for its commit would do so mid-run.
constexpr const char* kLibDefinitions =
    "looper_version: 5\n"
    "environments: {linux: {platform: linux, image: {host: true}}}\n"
    "builds: {libbuild/linux: {command: 'sleep 1; date +%s%N > $TEST_BUILD_OUTPUT_DIR/stamp'}}\n";

class PinnedTest : public testing::Test {
 protected:
  PinnedTest() : app_(dir_.path() + "/repos/app"), lib_(dir_.path() + "/repos/alib") {
    lib_.write("README", "lib\n");
    lib_.commit("lib base");
  }

  // lib's commit X, with its build, on branch "side" (main does not reach it); main checked out.
  std::string commit_lib_on_side_branch() {
    lib_.branch("side");
    lib_.checkout("side");
    lib_.write("testlooper.yml", kLibDefinitions);
    const std::string x = lib_.commit("lib at X");
    lib_.checkout("main");
    return x;
  }

  // app's commit pinning lib at `lib_sha`, with a test that needs lib's build there.
  std::string commit_app(const std::string& lib_sha) {
    app_.write("testlooper.yml",
               "looper_version: 5\n"
               "repos: {lib: alib/" +
                   lib_sha +
                   "}\n"
                   "environments: {linux: {platform: linux, image: {host: true}}}\n"
                   "tests:\n"
                   "  uses-lib/linux:\n"
                   "    command: 'test -s $TEST_INPUTS/lib/stamp'\n"
                   "    dependencies: {lib: lib/libbuild/linux}\n");
    return app_.commit("uses lib");
  }

  void start() {
    server_ = std::make_unique<ServerProcess>(std::vector<std::string>{
        "--repos", dir_.path() + "/repos", "--data", dir_.path() + "/data", "--port", "0",
        "--workers", "1", "--worker-cores", "2", "--worker-ram-gb", "2", "--poll-seconds", "0.3"});
    ASSERT_TRUE(eventually([&] { return server_->get("/api/repos").size() == 2; }, 30));
  }

  // Puts app's main under test and waits until its test ran once; then the pinned build must
  // have run exactly once, succeeded, and never been cancelled.
  void expect_build_runs_once_and_test_runs(const std::string& app_sha,
                                            const std::string& lib_sha) {
    ASSERT_EQ(server_->post("/api/repos/app/branches/main/test", R"({"enabled": true})").first,
              200);
    ASSERT_TRUE(eventually(
        [&] { return object_of(*server_, "app", app_sha, "uses-lib/linux")["runs"] == 1; }, 90))
        << server_->get("/api/repos/app/commits/" + app_sha).dump(2) << "\n"
        << runs_of(*server_, "alib", lib_sha, "libbuild/linux").dump(2);
    EXPECT_EQ(object_of(*server_, "app", app_sha, "uses-lib/linux")["failures"], 0);
    const json builds = runs_of(*server_, "alib", lib_sha, "libbuild/linux");
    ASSERT_TRUE(builds.is_array()) << builds.dump();
    EXPECT_EQ(builds.size(), 1u) << builds.dump(2);
    EXPECT_EQ(count_state(builds, "cancelled"), 0u) << builds.dump(2);
    EXPECT_EQ(count_state(builds, "succeeded"), 1u) << builds.dump(2);
    const json commit = server_->get("/api/repos/alib/commits/" + lib_sha);
    EXPECT_EQ(commit["sha"], lib_sha) << "the pinned commit is ingested by sha";
  }

  TempDir dir_;
  GitFixtureRepo app_;
  GitFixtureRepo lib_;
  std::unique_ptr<ServerProcess> server_;
};

// lib's commit X was made on a branch deleted before the server ever saw it: no branch head
// reaches X, only app's pin names it.
TEST_F(PinnedTest, Item4_APinnedCommitNoBranchReachesIsIngestedAndItsBuildRunsOnce) {
  const std::string x = commit_lib_on_side_branch();
  lib_.run({"branch", "-q", "-D", "side"});
  const std::string app_sha = commit_app(x);
  start();
  expect_build_runs_once_and_test_runs(app_sha, x);
}

// X was on a branch the server ingested, then that branch went away: X is known but unreachable,
// and its build, needed by app's pin, was started and cancelled in a loop.
TEST_F(PinnedTest, Item4_ABuildAtACommitNoLongerReachedIsNotStartedAndCancelledInALoop) {
  const std::string x = commit_lib_on_side_branch();
  const std::string app_sha = commit_app(x);
  start();
  ASSERT_TRUE(
      eventually([&] { return server_->get("/api/repos/alib/commits/" + x)["sha"] == x; }, 30));
  lib_.run({"branch", "-q", "-D", "side"});
  server_->post("/api/refresh", "{}");
  ASSERT_TRUE(eventually([&] { return server_->get("/api/repos/alib/branches").size() == 1; }, 30));
  expect_build_runs_once_and_test_runs(app_sha, x);
}

// X is not in lib at all when app's commit is first seen (its definitions cannot be resolved);
// a later fetch brings X into lib without any branch: app's commit is resolved again and runs.
TEST_F(PinnedTest, Item4_ACommitPinningAShaFetchedLaterIsResolvedAgainAndRuns) {
  GitFixtureRepo upstream(dir_.path() + "/upstream");
  upstream.write("testlooper.yml", kLibDefinitions);
  const std::string x = upstream.commit("lib at X, upstream");
  const std::string app_sha = commit_app(x);
  start();
  ASSERT_TRUE(eventually(
      [&] {
        const json c = server_->get("/api/repos/app/commits/" + app_sha);
        return c.is_object() && c["error"].is_string();
      },
      30))
      << server_->get("/api/repos/app/commits/" + app_sha).dump(2);
  ASSERT_EQ(server_->post("/api/repos/app/branches/main/test", R"({"enabled": true})").first, 200);
  lib_.run({"fetch", "-q", upstream.path(), "main"});  // X only in FETCH_HEAD: no branch
  server_->post("/api/refresh", "{}");
  ASSERT_TRUE(eventually(
      [&] { return object_of(*server_, "app", app_sha, "uses-lib/linux")["runs"] == 1; }, 90))
      << server_->get("/api/repos/app/commits/" + app_sha).dump(2);
  EXPECT_EQ(object_of(*server_, "app", app_sha, "uses-lib/linux")["failures"], 0);
  EXPECT_TRUE(server_->get("/api/repos/app/commits/" + app_sha)["error"].is_null());
  const json builds = runs_of(*server_, "alib", x, "libbuild/linux");
  EXPECT_EQ(builds.size(), 1u) << builds.dump(2);
  EXPECT_EQ(count_state(builds, "succeeded"), 1u) << builds.dump(2);
}

// The same when X arrives while the server is down: at its start it resolves again the commits
// stored with an error.
TEST_F(PinnedTest, Item4_ACommitPinningAShaFetchedWhileTheServerWasDownIsResolvedAtItsStart) {
  GitFixtureRepo upstream(dir_.path() + "/upstream");
  upstream.write("testlooper.yml", kLibDefinitions);
  const std::string x = upstream.commit("lib at X, upstream");
  const std::string app_sha = commit_app(x);
  start();
  ASSERT_EQ(server_->post("/api/repos/app/branches/main/test", R"({"enabled": true})").first, 200);
  ASSERT_TRUE(eventually(
      [&] { return server_->get("/api/repos/app/commits/" + app_sha)["error"].is_string(); }, 30));
  server_->stop(SIGTERM);
  lib_.run({"fetch", "-q", upstream.path(), "main"});
  start();
  ASSERT_TRUE(eventually(
      [&] { return object_of(*server_, "app", app_sha, "uses-lib/linux")["runs"] == 1; }, 90))
      << server_->get("/api/repos/app/commits/" + app_sha).dump(2);
  EXPECT_EQ(runs_of(*server_, "alib", x, "libbuild/linux").size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Item 5: runs nobody wants any more are cancelled.

// A build and two tests that run until stopped (the fake worker never ends them by itself). No
// test depends on the sources, so each keeps its identity across commits. Changes trigger the
// set `slow`; the root commit triggers `all`.
constexpr const char* kSlowDefinitions =
    "looper_version: 5\n"
    "environments: {linux: {platform: linux, image: {host: true}}}\n"
    "builds: {build/linux: {command: 'true'}}\n"
    "tests:\n"
    "  slow/linux: {command: 'sleep 600', dependencies: {b: build/linux}}\n"
    "  hand/linux: {command: 'sleep 600'}\n"
    "test_sets: {slow: [slow/linux], hand: [hand/linux]}\n"
    "triggers: [{name: any, paths: ['**'], test_sets: [slow]}]\n";

class UnwantedTest : public testing::Test {
 protected:
  UnwantedTest() : app_(dir_.path() + "/repos/app") {
    app_.write("testlooper.yml", kSlowDefinitions);
    root_ = app_.commit("root");
    app_.write("src.txt", "change\n");
    head_ = app_.commit("a change");
    server_ = std::make_unique<ServerProcess>(
        std::vector<std::string>{"--repos", dir_.path() + "/repos", "--data", dir_.path() + "/data",
                                 "--port", "0", "--workers", "0", "--poll-seconds", "0.3"});
  }

  void SetUp() override {
    ASSERT_TRUE(eventually([&] { return server_->get("/api/repos").size() == 1; }, 30));
    worker_ = std::make_unique<FakeWorker>(server_->port(),
                                           fixtures::worker_token(dir_.path() + "/data"), "fake");
    ASSERT_TRUE(worker_->connected());
  }

  // Puts main under test with `depth`, lets the build succeed, and returns slow/linux's run.
  FakeJob start_slow(int depth) {
    const auto [status, body] = server_->post("/api/repos/app/branches/main/test",
                                              json{{"enabled", true}, {"depth", depth}}.dump());
    EXPECT_EQ(status, 200) << body.dump();
    const auto build = worker_->job("build/linux");
    EXPECT_TRUE(build.has_value());
    if (!build) return {};
    EXPECT_TRUE(worker_->report(build->run_id, "success"));
    const auto slow = worker_->job("slow/linux");
    EXPECT_TRUE(slow.has_value());
    return slow.value_or(FakeJob{});
  }

  // The worker obeys the cancel of `run_id`; the run is then recorded cancelled, as no longer
  // wanted, and counted neither as a run nor as a failure.
  void expect_cancelled_as_unwanted(const std::string& run_id, const std::string& sha,
                                    const std::string& name) {
    ASSERT_TRUE(worker_->cancelled(run_id)) << "no cancel for " << run_id;
    ASSERT_TRUE(worker_->report(run_id, "cancelled"));
    const json run = server_->get("/api/runs/" + run_id);
    EXPECT_EQ(run["state"], "cancelled") << run.dump();
    EXPECT_NE(run["detail"].get<std::string>().find(kNoLongerWanted), std::string::npos)
        << run.dump();
    const json o = object_of(*server_, "app", sha, name);
    EXPECT_EQ(o["failures"], 0) << o.dump();
    EXPECT_EQ(o["runs"], 0) << o.dump();
  }

  json enabled_sets(const std::string& sha) const {
    return server_->get("/api/repos/app/commits/" + sha)["enabled_sets"];
  }

  TempDir dir_;
  GitFixtureRepo app_;
  std::string root_;
  std::string head_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<FakeWorker> worker_;
};

TEST_F(UnwantedTest, Item5_TakingABranchOffTestCancelsItsRunsAndDisablesOnlyTheSetsItEnabled) {
  // A set a user enables by hand stays, and so does its run.
  ASSERT_EQ(
      server_
          ->post("/api/repos/app/commits/" + head_ + "/sets", R"({"set": "hand", "enabled": true})")
          .first,
      200);
  const auto hand = worker_->job("hand/linux");
  ASSERT_TRUE(hand.has_value());
  const FakeJob slow = start_slow(0);
  ASSERT_FALSE(slow.run_id.empty());
  EXPECT_EQ(enabled_sets(head_), json::array({"hand", "slow"}));
  ASSERT_EQ(server_->post("/api/repos/app/branches/main/test", R"({"enabled": false})").first, 200);
  expect_cancelled_as_unwanted(slow.run_id, head_, "slow/linux");
  EXPECT_EQ(enabled_sets(head_), json::array({"hand"}));
  EXPECT_FALSE(worker_->cancel_seen(hand->run_id));
  EXPECT_EQ(server_->get("/api/runs/" + hand->run_id)["state"], "running");
  // Cancelled, not wanted: no replacement is started (the next job the worker gets is the one a
  // user asks for now).
  ASSERT_EQ(server_
                ->post("/api/repos/app/commits/" + head_ + "/targets",
                       R"({"name": "hand/linux", "runs": 2})")
                .first,
            200);
  ASSERT_EQ(worker_->jobs("hand/linux", 2).size(), 2u);
  EXPECT_EQ(worker_->jobs("slow/linux", 1).size(), 1u);
  EXPECT_FALSE(worker_->cancel_seen(hand->run_id));
}

TEST_F(UnwantedTest, Item5_DisablingATestSetCancelsARunOnlyWhenNoEnabledCommitWantsItsIdentity) {
  // depth 1: the root commit gets `all`, the head `slow`; slow/linux has one identity in both.
  const FakeJob slow = start_slow(1);
  ASSERT_FALSE(slow.run_id.empty());
  EXPECT_EQ(enabled_sets(root_), json::array({"all"}));
  ASSERT_EQ(server_
                ->post("/api/repos/app/commits/" + head_ + "/sets",
                       R"({"set": "slow", "enabled": false})")
                .first,
            200);
  // The root still wants that identity: the run goes on. (Messages come in order: the cancel
  // would have come before the job the next request makes.)
  const auto hand = worker_->job("hand/linux");  // the root's `all` has it
  ASSERT_TRUE(hand.has_value());
  ASSERT_EQ(
      server_
          ->post("/api/repos/app/commits/" + head_ + "/sets", R"({"set": "hand", "enabled": true})")
          .first,
      200);
  ASSERT_EQ(server_
                ->post("/api/repos/app/commits/" + head_ + "/targets",
                       R"({"name": "hand/linux", "runs": 2})")
                .first,
            200);
  ASSERT_EQ(worker_->jobs("hand/linux", 2).size(), 2u);
  EXPECT_FALSE(worker_->cancel_seen(slow.run_id));
  EXPECT_EQ(server_->get("/api/runs/" + slow.run_id)["state"], "running");
  // hand/linux is wanted by the root's `all` too; disabling it there leaves the head's hand set.
  ASSERT_EQ(
      server_
          ->post("/api/repos/app/commits/" + root_ + "/sets", R"({"set": "all", "enabled": false})")
          .first,
      200);
  expect_cancelled_as_unwanted(slow.run_id, root_, "slow/linux");
  EXPECT_FALSE(worker_->cancel_seen(hand->run_id));
  EXPECT_EQ(server_->get("/api/runs/" + hand->run_id)["state"], "running");
}

TEST_F(UnwantedTest, Item5_LoweringATargetCancelsTheRunsBeyondIt) {
  start_slow(0);
  ASSERT_EQ(server_
                ->post("/api/repos/app/commits/" + head_ + "/targets",
                       R"({"name": "slow/linux", "runs": 3})")
                .first,
            200);
  const std::vector<FakeJob> jobs = worker_->jobs("slow/linux", 3);
  ASSERT_EQ(jobs.size(), 3u);
  EXPECT_EQ(object_of(*server_, "app", head_, "slow/linux")["active_runs"], 3);
  ASSERT_EQ(server_
                ->post("/api/repos/app/commits/" + head_ + "/targets",
                       R"({"name": "slow/linux", "runs": 1})")
                .first,
            200);
  // Exactly two of the three are cancelled: the third one's cancel would come before the job the
  // next request makes.
  const auto cancelled = [&] {
    std::vector<std::string> ids;
    for (const FakeJob& j : jobs) {
      if (worker_->cancel_seen(j.run_id)) ids.push_back(j.run_id);
    }
    return ids;
  };
  ASSERT_TRUE(worker_->read_until([&] { return cancelled().size() >= 2; }));
  ASSERT_EQ(
      server_
          ->post("/api/repos/app/commits/" + head_ + "/sets", R"({"set": "hand", "enabled": true})")
          .first,
      200);
  ASSERT_TRUE(worker_->job("hand/linux").has_value());
  ASSERT_EQ(cancelled().size(), 2u);
  for (const std::string& id : cancelled()) expect_cancelled_as_unwanted(id, head_, "slow/linux");
  const json runs = runs_of(*server_, "app", head_, "slow/linux");
  EXPECT_EQ(count_state(runs, "running"), 1u) << runs.dump(2);
  EXPECT_EQ(count_state(runs, "cancelled"), 2u) << runs.dump(2);
  EXPECT_EQ(object_of(*server_, "app", head_, "slow/linux")["status"], "runnable");
}

// A test reading the sources has an identity per commit, so a failure at the head makes the
// statistical bisection spend extra runs on older commits: they stop with the branch's test.
TEST(UnwantedExtraRuns, Item5_TakingABranchOffTestCancelsItsExtraRuns) {
  TempDir dir;
  GitFixtureRepo app(dir.path() + "/repos/app");
  app.write("testlooper.yml",
            "looper_version: 5\n"
            "environments: {linux: {platform: linux, image: {host: true}}}\n"
            "tests: {src/linux: {command: 'sleep 600', dependencies: {src: HEAD}}}\n");
  app.commit("one");
  for (const char* n : {"two", "three", "four"}) {
    app.write(std::string(n) + ".txt", n);
    app.commit(n);
  }
  ServerProcess server({"--repos", dir.path() + "/repos", "--data", dir.path() + "/data", "--port",
                        "0", "--workers", "0", "--poll-seconds", "0.3"});
  ASSERT_TRUE(eventually([&] { return server.get("/api/repos").size() == 1; }, 30));
  FakeWorker worker(server.port(), fixtures::worker_token(dir.path() + "/data"), "fake");
  ASSERT_EQ(server.post("/api/repos/app/branches/main/test", R"({"enabled": true})").first, 200);
  const auto head_run = worker.job("src/linux");
  ASSERT_TRUE(head_run.has_value());
  ASSERT_TRUE(worker.report(head_run->run_id, "failure"));
  const std::vector<FakeJob> jobs = worker.jobs("src/linux", 2);
  ASSERT_EQ(jobs.size(), 2u) << "no extra run after a failure";
  const std::string extra = jobs[1].run_id;
  ASSERT_EQ(server.post("/api/repos/app/branches/main/test", R"({"enabled": false})").first, 200);
  ASSERT_TRUE(worker.cancelled(extra));
  ASSERT_TRUE(worker.report(extra, "cancelled"));
  const json run = server.get("/api/runs/" + extra);
  EXPECT_EQ(run["state"], "cancelled") << run.dump();
  EXPECT_NE(run["detail"].get<std::string>().find(kNoLongerWanted), std::string::npos)
      << run.dump();
  // Every other extra run is cancelled too, and none counts as a failure.
  ASSERT_TRUE(eventually([&] {
    for (const json& b : server.get("/api/repos/app/branches")) {
      if (b["name"] == "main" && b["under_test"] == false) return true;
    }
    return false;
  }));
  for (const FakeJob& j : worker.jobs("src/linux", 1)) {
    if (j.run_id == head_run->run_id) continue;
    ASSERT_TRUE(worker.cancelled(j.run_id)) << j.run_id;
    ASSERT_TRUE(worker.report(j.run_id, "cancelled"));
    EXPECT_EQ(server.get("/api/runs/" + j.run_id)["state"], "cancelled");
  }
}

}  // namespace
}  // namespace testlooper::server
