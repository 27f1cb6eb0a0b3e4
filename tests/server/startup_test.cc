// Issue 18 (start-up and memory at 10M runs), through the real `testlooper serve`: the objects'
// definitions stay in the store and are read on demand (each commit's own, before and after a
// restart), and the check of state.db for damage (PRAGMA quick_check) runs once the API answers
// yet still stops the server, exit 2 naming the file and how to recreate it.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fake_worker.h"
#include "server_fixture.h"
#include "store/store.h"

namespace testlooper::server {
namespace {

using fixtures::eventually;
using fixtures::FakeJob;
using fixtures::FakeWorker;
using fixtures::GitFixtureRepo;
using fixtures::ServerProcess;
using fixtures::TempDir;
using nlohmann::json;

std::string definitions(const std::string& command) {
  return "looper_version: 5\n"
         "environments: {linux: {platform: linux, image: {host: true}}}\n"
         "tests: {t/linux: {command: '" +
         command + "'}, same/linux: {command: 'true'}}\n";
}

// Each object's definition as the commit endpoint shows it, by name.
std::map<std::string, json> shown_definitions(const ServerProcess& server, const std::string& sha) {
  std::map<std::string, json> out;
  const json commit = server.get("/api/repos/app/commits/" + sha);
  if (!commit.is_object() || !commit["objects"].is_array()) return out;
  for (const json& o : commit["objects"]) out[o["name"].get<std::string>()] = o["definition"];
  return out;
}

// The command of a definition (its one stage's).
std::string command_of(const json& definition) {
  const json stages = definition.is_object() ? definition.value("stages", json()) : json();
  if (!stages.is_array() || stages.empty() || !stages[0].is_object()) return "";
  const json command = stages[0].value("command", json());
  return command.is_string() ? command.get<std::string>() : "";
}
std::string command_of(const FakeJob& job) { return command_of(job.message["object"]); }

TEST(Startup, Startup_DefinitionsReadFromTheStoreAreEachCommitsOwnAcrossARestart) {
  TempDir dir;
  GitFixtureRepo app(dir.path() + "/repos/app");
  app.write("testlooper.yml", definitions("echo one"));
  const std::string one = app.commit("one");
  app.write("testlooper.yml", definitions("echo two"));
  const std::string two = app.commit("two");
  const std::vector<std::string> args = {
      "--repos", dir.path() + "/repos", "--data", dir.path() + "/data", "--port", "0", "--workers",
      "0",       "--poll-seconds",      "0.3",    "--extra-runs",       "0"};
  std::map<std::string, json> before_one;
  std::map<std::string, json> before_two;
  {
    ServerProcess server(args);
    ASSERT_TRUE(eventually([&] { return server.get("/api/repos").size() == 1; }, 30));
    FakeWorker worker(server.port(), fixtures::worker_token(dir.path() + "/data"), "fake");
    ASSERT_EQ(
        server.post("/api/repos/app/branches/main/test", R"({"enabled": true, "depth": 1})").first,
        200);
    // One run of each test at each commit, each job with its own commit's definition.
    const std::vector<FakeJob> jobs = worker.jobs("t/linux", 2);
    ASSERT_EQ(jobs.size(), 2u);
    for (const FakeJob& job : jobs) {
      const std::string sha = job.message["commit"].get<std::string>();
      EXPECT_EQ(command_of(job), sha == one ? "echo one" : "echo two") << job.message.dump();
      ASSERT_TRUE(worker.report(job.run_id, "success"));
    }
    const std::vector<FakeJob> same = worker.jobs("same/linux", 1);
    ASSERT_EQ(same.size(), 1u);  // one identity for both commits
    EXPECT_EQ(command_of(same[0]), "true");
    ASSERT_TRUE(worker.report(same[0].run_id, "success"));
    before_one = shown_definitions(server, one);
    before_two = shown_definitions(server, two);
    ASSERT_EQ(before_one.size(), 2u);
    EXPECT_EQ(command_of(before_one["t/linux"]), "echo one");
    EXPECT_EQ(command_of(before_two["t/linux"]), "echo two");
    EXPECT_NE(before_one["t/linux"]["hash"], before_two["t/linux"]["hash"]);
    EXPECT_EQ(before_one["same/linux"]["hash"], before_two["same/linux"]["hash"]);
    EXPECT_NE(before_one["same/linux"], before_two["same/linux"]);  // its full_name
  }
  // Restarted: loaded from the store, the definitions read from it again.
  ServerProcess server(args);
  ASSERT_TRUE(eventually([&] { return server.get("/api/repos").size() == 1; }, 30));
  EXPECT_EQ(shown_definitions(server, one), before_one);
  EXPECT_EQ(shown_definitions(server, two), before_two);
  FakeWorker worker(server.port(), fixtures::worker_token(dir.path() + "/data"), "fake");
  ASSERT_EQ(
      server.post("/api/repos/app/commits/" + one + "/targets", R"({"name": "t/linux", "runs": 2})")
          .first,
      200);
  const auto job = worker.job("t/linux");
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->message["commit"], one);
  EXPECT_EQ(command_of(*job), "echo one");
  EXPECT_EQ(job->message["object"], before_one["t/linux"]);
}

TEST(Startup, Startup_EachCommitsTestWaitsOnItsOwnCommitsBuildAfterARestart) {
  // The start parses each definition the commits share once: its text but for its commit's sha,
  // which a stored definition names (its full name, its builds' full names). A test is still
  // blocked by its own commit's build after a restart, as before it. The restarted server's
  // pages say so from its first answer: the plan is made at load, not at the first update after
  // the store's check (the oldest commits' pages said "not_enabled" until then, under load).
  TempDir dir;
  GitFixtureRepo app(dir.path() + "/repos/app");
  app.write("testlooper.yml",
            "looper_version: 5\n"
            "environments: {linux: {platform: linux, image: {host: true}}}\n"
            "builds: {build/linux: {command: 'true'}}\n"
            "tests: {t/linux: {command: 'true', dependencies: {build: build/linux}}}\n");
  std::vector<std::string> shas = {app.commit("one")};
  for (int i = 0; i < 2; ++i) {
    app.write("f", std::to_string(i));  // the same build and test identities at each commit
    shas.push_back(app.commit("more"));
  }
  const std::vector<std::string> args = {
      "--repos", dir.path() + "/repos", "--data", dir.path() + "/data", "--port", "0", "--workers",
      "0",       "--poll-seconds",      "0.3",    "--extra-runs",       "0"};
  // What blocks t/linux at each commit.
  auto blocking = [&](const ServerProcess& server) {
    std::vector<std::string> out;
    for (const auto& sha : shas) {
      const json commit = server.get("/api/repos/app/commits/" + sha);
      for (const json& o : commit.value("objects", json::array())) {
        if (o["name"] == "t/linux")
          out.push_back(o["status"].get<std::string>() + " " + o["reason"].get<std::string>());
      }
    }
    return out;
  };
  std::vector<std::string> expected;
  for (const auto& sha : shas) expected.push_back("waiting_on_builds app/" + sha + "/build/linux");
  {
    ServerProcess server(args);
    ASSERT_TRUE(eventually([&] { return server.get("/api/repos").size() == 1; }, 30));
    ASSERT_EQ(
        server.post("/api/repos/app/branches/main/test", R"({"enabled": true, "depth": 3})").first,
        200);
    ASSERT_TRUE(eventually([&] { return blocking(server) == expected; }, 30))
        << testing::PrintToString(blocking(server));
  }
  ServerProcess server(args);
  ASSERT_TRUE(eventually([&] { return server.get("/api/repos").size() == 1; }, 30));
  EXPECT_EQ(blocking(server), expected);
  const json build = server.get("/api/repos/app/commits/" + shas[2]);
  EXPECT_EQ(build["objects"][0]["definition"]["full_name"], "app/" + shas[2] + "/build/linux")
      << build.dump();
}

// What `serve` on `dir` (its repos/ and data/) did: its first line on stdout ("listening on ..."
// once it answers; nothing when it exited first), whether it exited (within 120 s, else it is
// killed), how, and its stderr. With `stop`, it is sent SIGTERM once it answered.
struct ServeOutcome {
  std::string said;
  bool exited = false;
  int status = -1;
  std::string errors;
};
ServeOutcome serve_until_it_exits(const TempDir& dir, bool stop) {
  ServeOutcome outcome;
  int out[2];
  if (pipe(out) != 0) return outcome;
  const std::string err = dir.path() + "/stderr.txt";
  const pid_t pid =
      fixtures::spawn_testlooper("serve",
                                 {"--repos", dir.path() + "/repos", "--data", dir.path() + "/data",
                                  "--port", "0", "--workers", "0", "--poll-seconds", "3600"},
                                 out, err);
  close(out[1]);
  char c = 0;
  while (read(out[0], &c, 1) == 1 && c != '\n') outcome.said += c;
  close(out[0]);
  if (stop) kill(pid, SIGTERM);
  outcome.exited = eventually([&] { return waitpid(pid, &outcome.status, WNOHANG) == pid; }, 120);
  if (!outcome.exited) {
    kill(-pid, SIGKILL);
    waitpid(pid, &outcome.status, 0);
  }
  std::ifstream in(err);
  outcome.errors.assign(std::istreambuf_iterator<char>(in), {});
  return outcome;
}

// A store whose runs fill many pages, one of which (a page of finished runs: nothing a start
// reads) has an invalid b-tree page type.
void damaged_store(const std::string& path) {
  {
    auto store = store::open_sqlite_store(path);
    ASSERT_TRUE(store.ok()) << store.error().to_string();
    for (int i = 0; i < 2000; ++i) {
      store::RunRow r;
      r.id = "run" + std::to_string(i);
      r.hash = "h" + std::to_string(i % 7);
      r.repo = "app";
      r.commit = std::string(40, 'a');
      r.name = "t/linux";
      r.kind = "test";
      r.worker = "w";
      r.detail = "page-filler " + std::string(200, 'x');
      ASSERT_TRUE((*store)->start_run(r).ok());
      r.state = store::RunState::kSucceeded;
      ASSERT_TRUE((*store)->finish_run(r, {}).ok());
    }
  }
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  constexpr size_t kPage = 4096;
  ASSERT_GT(bytes.size(), 20 * kPage);
  bool damaged = false;
  for (size_t at = bytes.size() / 2 / kPage * kPage; at + kPage <= bytes.size(); at += kPage) {
    // 0x0d: a leaf page of a table; this one holds runs.
    if (bytes[at] != 0x0d || bytes.substr(at, kPage).find("page-filler") == std::string::npos)
      continue;
    bytes[at] = 0x42;
    damaged = true;
    break;
  }
  ASSERT_TRUE(damaged) << "no page of runs found";
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

TEST(Startup, Startup_DamageFoundAfterTheApiAnswersStillStopsServeNamingTheFile) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() + "/repos");
  std::filesystem::create_directories(dir.path() + "/data");
  const std::string db = dir.path() + "/data/state.db";
  damaged_store(db);
  if (HasFatalFailure()) return;
  const ServeOutcome serve = serve_until_it_exits(dir, false);
  ASSERT_TRUE(serve.exited) << "serve went on on a damaged store";
  // It answered first: the store's check no longer holds the start up.
  EXPECT_NE(serve.said.find("listening on"), std::string::npos) << serve.said;
  const std::string& errors = serve.errors;
  ASSERT_TRUE(WIFEXITED(serve.status)) << serve.status;
  EXPECT_EQ(WEXITSTATUS(serve.status), 2) << errors;
  EXPECT_NE(errors.find(db), std::string::npos) << errors;
  EXPECT_NE(errors.find("PRAGMA quick_check"), std::string::npos) << errors;
  EXPECT_NE(errors.find("testlooper rebuild --data"), std::string::npos) << errors;
}

// serve reads the commits' objects on a thread of its own, ahead of the one it adds: a malformed
// row among many commits still stops the start with the row's commit named (and the reader
// ahead of it stopped: serve exits instead of hanging), and a store with none starts.
TEST(Startup, Startup_AMalformedRowAmongManyCommitsIsNamedAndStopsTheStart) {
  for (const bool malformed : {true, false}) {
    TempDir dir;
    std::filesystem::create_directories(dir.path() + "/repos");
    std::filesystem::create_directories(dir.path() + "/data");
    const std::string db = dir.path() + "/data/state.db";
    const auto sha = [](int i) {
      std::string s = std::to_string(i);
      return std::string(40 - s.size(), 'a') + s;
    };
    {
      auto store = store::open_sqlite_store(db);
      ASSERT_TRUE(store.ok()) << store.error().to_string();
      std::vector<store::CommitRow> commits;
      for (int i = 0; i < 60; ++i) {
        store::CommitRow c;
        c.repo = "app";
        c.sha = sha(i);
        c.subject = "commit " + std::to_string(i);
        commits.push_back(c);
      }
      ASSERT_TRUE((*store)->put_commits(commits).ok());
      for (int i = 0; i < 60; ++i) {
        store::CommitRow& c = commits[i];
        c.resolved = true;
        c.test_sets_json = "{}";
        c.triggered_json = "[]";
        std::vector<store::ObjectRow> objects;
        for (int t = 0; t < 20; ++t) {
          const std::string name = "t" + std::to_string(t) + "/linux";
          const bool bad = malformed && i == 30 && t == 7;
          objects.push_back({"app", c.sha, name, "test", "h" + std::to_string(t),
                             bad ? "[not an object]" : R"({"min_cores":1})"});
        }
        ASSERT_TRUE((*store)->put_definitions(c, objects).ok());
      }
    }
    const ServeOutcome serve = serve_until_it_exits(dir, !malformed);
    ASSERT_TRUE(serve.exited) << "serve did not end";
    const std::string& errors = serve.errors;
    ASSERT_TRUE(WIFEXITED(serve.status)) << serve.status;
    if (!malformed) {
      EXPECT_NE(serve.said.find("listening on"), std::string::npos) << serve.said;
      EXPECT_EQ(WEXITSTATUS(serve.status), 0) << errors;
      continue;
    }
    EXPECT_EQ(serve.said.find("listening on"), std::string::npos) << serve.said;
    EXPECT_EQ(WEXITSTATUS(serve.status), 2) << errors;
    EXPECT_NE(errors.find("malformed row for commit " + sha(30) + " of repo 'app'"),
              std::string::npos)
        << errors;
    EXPECT_NE(errors.find("testlooper rebuild"), std::string::npos) << errors;
  }
}

}  // namespace
}  // namespace testlooper::server
