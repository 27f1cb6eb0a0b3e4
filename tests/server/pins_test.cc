// Pins that move (issue 13, docs/definitions.md "How pins move"): the real `testlooper serve`
// over real git repos in a temp dir rewrites auto pins when their branch moves, pushes one
// commit per pinning branch, redoes a push that lost a race, moves a pin on request through the
// API, and pushes nothing for a cycle of auto pins.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "hosting/fake_host.h"
#include "server_fixture.h"

namespace testlooper::server {
namespace {

using fixtures::eventually;
using fixtures::GitFixtureRepo;
using fixtures::ServerProcess;
using fixtures::TempDir;
using nlohmann::json;

constexpr const char* kLib =
    "looper_version: 5\n"
    "environments: {linux: {platform: linux, image: {host: true}}}\n"
    "builds: {libbuild/linux: {command: 'date +%s%N > $TEST_BUILD_OUTPUT_DIR/stamp'}}\n";

std::string trimmed(std::string text) {
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

class PinsTest : public testing::Test {
 protected:
  PinsTest() : lib_(path("lib")) {
    lib_.write("testlooper.yml", kLib);
    lib1_ = lib_.commit("lib 1");
  }

  std::string path(const std::string& repo) const { return dir_.path() + "/repos/" + repo; }

  std::unique_ptr<ServerProcess> start(int workers = 0, const std::string& auth = "none") {
    return std::make_unique<ServerProcess>(std::vector<std::string>{
        "--repos", dir_.path() + "/repos", "--data", dir_.path() + "/data", "--port", "0",
        "--workers", std::to_string(workers), "--worker-cores", "2", "--worker-ram-gb", "2",
        "--poll-seconds", "0.3", "--auth", auth});
  }

  // `field` of commit `rev` of `repo` (git log --format).
  static std::string log(GitFixtureRepo& repo, const std::string& rev, const std::string& format) {
    return trimmed(repo.run({"log", "-1", "--format=" + format, rev}));
  }

  // The head of `repo`'s main, once its subject is `subject` (within a minute), else "".
  static std::string wait_for_subject(GitFixtureRepo& repo, const std::string& subject) {
    std::string head;
    eventually([&] {
      if (log(repo, "refs/heads/main", "%s") != subject) return false;
      head = log(repo, "refs/heads/main", "%H");
      return true;
    });
    return head;
  }

  TempDir dir_;
  GitFixtureRepo lib_;
  std::string lib1_;
};

// Issue 13 "Must show": push to the referenced branch -> within one poll a commit `Update pin
// ...` with a one-line diff on the pinning branch, comments beside it kept, and it is tested.
TEST_F(PinsTest, AutoPinMovesWithAOneLineDiffKeepsCommentsAndTheCommitIsTested) {
  GitFixtureRepo app(path("app"));
  const std::string before =
      "looper_version: 5\n"
      "repos:\n"
      "  # lib follows its main branch\n"
      "  lib: {reference: \"lib/" +
      lib1_ +
      "\", branch: main, auto: true}  # moved by TestLooper\n"
      "environments: {linux: {platform: linux, image: {host: true}}}\n"
      "tests:\n"
      "  uses-lib/linux:\n"
      "    command: 'test -s $TEST_INPUTS/lib/stamp'\n"
      "    dependencies: {lib: lib/libbuild/linux}\n";
  app.write("testlooper.yml", before);
  const std::string app1 = app.commit("app pins lib");
  auto server = start(1);
  ASSERT_TRUE(eventually([&] { return server->get("/api/repos").size() == 2; }, 30));
  ASSERT_EQ(server->post("/api/repos/app/branches/main/test", R"({"enabled": true})").first, 200);
  // Nothing moved yet: nothing pushed (the mover has looked once the pins are listed).
  ASSERT_TRUE(eventually([&] {
    const json pins = server->get("/api/repos/app/branches/main/pins");
    return pins.is_array() && pins.size() == 1 && pins[0]["head"] == lib1_;
  }));
  EXPECT_EQ(app.head(), app1);

  lib_.write("lib.txt", "2\n");
  const std::string lib2 = lib_.commit("lib 2");
  const std::string update = wait_for_subject(app, "Update pin lib to " + lib2);
  ASSERT_FALSE(update.empty()) << app.run({"log", "--oneline", "-3", "main"});
  EXPECT_EQ(log(app, update, "%P"), app1);
  EXPECT_EQ(log(app, update, "%an <%ae>"), "TestLooper <testlooper@localhost>");
  EXPECT_NE(
      log(app, update, "%b").find("New commit in pinned branch lib/main:\n    commit " + lib2),
      std::string::npos)
      << log(app, update, "%B");
  // Exactly one line changed, and only the sha in it.
  EXPECT_EQ(app.run({"diff", "--numstat", app1, update}), "1\t1\ttestlooper.yml\n");
  std::string after = before;
  after.replace(after.find(lib1_), 40, lib2);
  EXPECT_EQ(app.run({"show", update + ":testlooper.yml"}), after);
  // The checked-out branch's clean working tree followed (receive.denyCurrentBranch=updateInstead).
  std::ifstream file(path("app") + "/testlooper.yml");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(file), {}), after);
  // Ingested and tested like any head of a branch under test.
  ASSERT_TRUE(eventually(
      [&] {
        const json h = server->get("/api/repos/app/branches/main/history?limit=5");
        if (!h.is_object() || h["head"] != update) return false;
        for (const auto& o : h["commits"][0]["objects"]) {
          if (o["name"] == "uses-lib/linux" && o["runs"] == 1 && o["failures"] == 0) return true;
        }
        return false;
      },
      120))
      << server->get("/api/repos/app/branches/main/history?limit=5").dump(2);
  ASSERT_TRUE(eventually([&] {
    const json p = server->get("/api/repos/app/branches/main/pins");
    return p.size() == 1 && p[0]["commit"] == lib2 && p[0]["behind"] == 0;
  })) << server->get("/api/repos/app/branches/main/pins").dump(2);
}

// Two referenced repos moved before the same look: one commit for both, each pin edited in the
// file that holds it (one of them an included file).
TEST_F(PinsTest, TwoPinsMovedTogetherGoInOneCommitEachInItsOwnFile) {
  GitFixtureRepo tool(path("tool"));
  tool.write("README", "tool 1\n");
  const std::string tool1 = tool.commit("tool 1");
  GitFixtureRepo app(path("app"));
  app.write("testlooper.yml",
            "looper_version: 5\n"
            "includes: [./ci/pins.yml]\n"
            "repos:\n"
            "  lib:\n"
            "    branch: main\n"
            "    auto: true\n"
            "    reference: lib/" +
                lib1_ + "\n");
  app.write("ci/pins.yml", "repos:\n  tool: {auto: true, reference: 'tool/" + tool1 +
                               "', branch: main}  # in an included file\n");
  const std::string app1 = app.commit("app pins lib and tool");
  lib_.write("lib.txt", "2\n");
  const std::string lib2 = lib_.commit("lib 2");
  tool.write("README", "tool 2\n");
  const std::string tool2 = tool.commit("tool 2");
  auto server = start();
  const std::string update =
      wait_for_subject(app, "Update pins lib to " + lib2 + ", tool to " + tool2);
  ASSERT_FALSE(update.empty()) << app.run({"log", "--oneline", "-3", "main"});
  EXPECT_EQ(log(app, update, "%P"), app1);  // one commit for both
  EXPECT_EQ(app.run({"diff", "--numstat", app1, update}),
            "1\t1\tci/pins.yml\n1\t1\ttestlooper.yml\n");
  EXPECT_EQ(app.run({"show", update + ":ci/pins.yml"}),
            "repos:\n  tool: {auto: true, reference: 'tool/" + tool2 +
                "', branch: main}  # in an included file\n");
  const std::string body = log(app, update, "%b");
  EXPECT_NE(body.find("New commit in pinned branch lib/main:"), std::string::npos) << body;
  EXPECT_NE(body.find("New commit in pinned branch tool/main:"), std::string::npos) << body;
}

// The push loses a race: the pinning branch moves between our read and our push (a pre-receive
// hook commits to it the first time). The update is made again on top of the new head.
TEST_F(PinsTest, APushThatLosesARaceIsRedoneOnTheNewHead) {
  GitFixtureRepo app(path("app"));
  app.write("testlooper.yml", "looper_version: 5\nrepos:\n  lib: {reference: lib/" + lib1_ +
                                  ", branch: main, auto: true}\n");
  const std::string app1 = app.commit("app pins lib");
  // main is not checked out (a checked-out branch moved under receive-pack would leave its
  // working tree behind).
  app.run({"checkout", "-q", "--detach"});
  const std::string marker = dir_.path() + "/raced";
  const std::string hook = path("app") + "/.git/hooks/pre-receive";
  std::ofstream(hook)
      << "#!/bin/sh\n"
         "[ -e '" +
             marker +
             "' ] && exit 0\n"
             "touch '" +
             marker +
             "'\n"
             "unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES\n"
             "c=$(git commit-tree -p refs/heads/main -m 'Won the race' 'refs/heads/main^{tree}') "
             "|| exit 1\n"
             "git update-ref refs/heads/main \"$c\"\n";
  std::filesystem::permissions(hook, std::filesystem::perms::owner_all);
  lib_.write("lib.txt", "2\n");
  const std::string lib2 = lib_.commit("lib 2");
  auto server = start();
  const std::string update = wait_for_subject(app, "Update pin lib to " + lib2);
  ASSERT_FALSE(update.empty()) << app.run({"log", "--oneline", "-3", "main"});
  EXPECT_TRUE(std::filesystem::exists(marker));  // the first push did lose
  const std::string parent = log(app, update, "%P");
  EXPECT_EQ(log(app, parent, "%s"), "Won the race");
  EXPECT_EQ(log(app, parent, "%P"), app1);
  EXPECT_EQ(app.run({"diff", "--numstat", parent, update}), "1\t1\ttestlooper.yml\n");
}

// A manual update whose every push loses the race (a hook moves the branch each time): 409
// after the attempts, and the branch holds only the other commits.
TEST_F(PinsTest, AManualUpdateThatAlwaysLosesTheRaceIs409) {
  GitFixtureRepo app(path("app"));
  app.write("testlooper.yml",
            "looper_version: 5\nrepos:\n  lib: {reference: lib/" + lib1_ + ", branch: main}\n");
  app.commit("app pins lib");
  app.run({"checkout", "-q", "--detach"});
  const std::string hook = path("app") + "/.git/hooks/pre-receive";
  std::ofstream(hook)
      << "#!/bin/sh\n"
         "unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES\n"
         "c=$(git commit-tree -p refs/heads/main -m 'Won again' 'refs/heads/main^{tree}') || exit "
         "1\n"
         "git update-ref refs/heads/main \"$c\"\n";
  std::filesystem::permissions(hook, std::filesystem::perms::owner_all);
  lib_.write("lib.txt", "2\n");
  lib_.commit("lib 2");
  auto server = start();
  ASSERT_TRUE(
      eventually([&] {
        // An array: a 404's {"error": ...} has size 1 too.
        const json pins = server->get("/api/repos/app/branches/main/pins");
        return pins.is_array() && pins.size() == 1;
      }));
  const auto [status, body] =
      server->post("/api/repos/app/branches/main/pins/lib", R"({"to": "branch-head"})");
  EXPECT_EQ(status, 409) << body.dump();
  EXPECT_EQ(trimmed(app.run({"log", "--format=%s", "main"})),
            "Won again\nWon again\nWon again\nWon again\napp pins lib");
}

// auto: false pins move on request only (POST .../pins/{name}); a HEAD pin is listed and left
// as it is.
TEST_F(PinsTest, AManualUpdateMovesAnAutoFalsePinAndAHeadPinStaysAsItIs) {
  GitFixtureRepo tool(path("tool"));
  tool.write("README", "tool 1\n");
  const std::string tool1 = tool.commit("tool 1");
  GitFixtureRepo app(path("app"));
  app.write("testlooper.yml",
            "looper_version: 5\n"
            "repos:\n"
            "  lib: {reference: lib/" +
                lib1_ +
                ", branch: main, auto: false}\n"
                "  tool: {reference: tool/HEAD, branch: main}\n");
  const std::string app1 = app.commit("app pins lib by hand");
  lib_.write("lib.txt", "2\n");
  const std::string lib2 = lib_.commit("lib 2");
  auto server = start();
  json pins;
  ASSERT_TRUE(eventually([&] {
    pins = server->get("/api/repos/app/branches/main/pins");
    return pins.is_array() && pins.size() == 2;
  })) << pins.dump();
  EXPECT_EQ(pins[0], json({{"name", "lib"},
                           {"repo", "lib"},
                           {"branch", "main"},
                           {"commit", lib1_},
                           {"auto", false},
                           {"head", lib2},
                           {"behind", 1},
                           {"file", "testlooper.yml"}}));
  EXPECT_EQ(pins[1], json({{"name", "tool"},
                           {"repo", "tool"},
                           {"branch", "main"},
                           {"commit", "HEAD"},
                           {"auto", false},
                           {"head", tool1},
                           {"behind", nullptr},
                           {"file", "testlooper.yml"}}));
  // The HEAD pin's commit is ingested as today (tests not parsed), nothing was pushed.
  ASSERT_TRUE(eventually(
      [&] { return server->get("/api/repos/app/branches/main/history")["head"] == app1; }));
  EXPECT_EQ(app.head(), app1);

  // Refusals change nothing.
  EXPECT_EQ(server->post("/api/repos/app/branches/main/pins/lib", "not json").first, 400);
  EXPECT_EQ(server->post("/api/repos/app/branches/main/pins/lib", R"({"to": "main"})").first, 400);
  EXPECT_EQ(
      server->post("/api/repos/app/branches/main/pins/nope", R"({"to": "branch-head"})").first,
      404);
  EXPECT_EQ(server->post("/api/repos/app/branches/nope/pins/lib", R"({"to": "branch-head"})").first,
            404);
  // A branch is named exactly, never as a revision expression.
  EXPECT_EQ(
      server->post("/api/repos/app/branches/main~0/pins/lib", R"({"to": "branch-head"})").first,
      404);
  EXPECT_EQ(
      server->post("/api/repos/nope/branches/main/pins/lib", R"({"to": "branch-head"})").first,
      404);
  const auto [s422, b422] = server->post("/api/repos/app/branches/main/pins/lib",
                                         R"({"to": ")" + std::string(40, 'a') + R"("})");
  EXPECT_EQ(s422, 422) << b422.dump();
  EXPECT_EQ(b422["error"].get<std::string>().find(dir_.path()), std::string::npos);
  EXPECT_EQ(app.head(), app1);

  const auto [status, body] =
      server->post("/api/repos/app/branches/main/pins/lib", R"({"to": "branch-head"})");
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body["pin"], "lib");
  EXPECT_EQ(body["to"], lib2);
  const std::string update = log(app, "refs/heads/main", "%H");
  EXPECT_EQ(body["commit"], update);  // answered after the push
  EXPECT_EQ(log(app, update, "%s"), "Update pin lib to " + lib2);
  EXPECT_EQ(app.run({"diff", "--numstat", app1, update}), "1\t1\ttestlooper.yml\n");
  EXPECT_NE(app.run({"show", update + ":testlooper.yml"})
                .find("tool: {reference: tool/HEAD, branch: main}"),
            std::string::npos);
  // Back to lib 1 by sha.
  const auto [s2, b2] =
      server->post("/api/repos/app/branches/main/pins/lib", R"({"to": ")" + lib1_ + R"("})");
  ASSERT_EQ(s2, 200) << b2.dump();
  EXPECT_EQ(log(app, "refs/heads/main", "%s"), "Update pin lib to " + lib1_);
  EXPECT_EQ(log(app, "refs/heads/main", "%P"), update);
}

// Moving a pin pushes a commit: editors only. Viewers may list pins.
TEST_F(PinsTest, AViewerMayListPinsButOnlyAnEditorMovesOne) {
  GitFixtureRepo app(path("app"));
  app.write("testlooper.yml",
            "looper_version: 5\nrepos:\n  lib: {reference: lib/" + lib1_ + ", branch: main}\n");
  const std::string app1 = app.commit("app pins lib");
  lib_.write("lib.txt", "2\n");
  const std::string lib2 = lib_.commit("lib 2");
  const std::string data = dir_.path() + "/data";
  auto token = [&](const std::string& name, const std::string& role) {
    const std::string out = fixtures::capture(std::string(TL_BINARY) + " token create --data " +
                                              fixtures::shell_quote(data) + " --name " + name +
                                              " --role " + role + " 2>/dev/null");
    return out.substr(0, out.find('\n'));
  };
  const std::string viewer = token("v", "viewer");
  const std::string editor = token("e", "editor");
  ASSERT_FALSE(viewer.empty());
  auto server = start(0, "token");
  auto call = [&](const std::string& method, const std::string& what, const std::string& bearer) {
    return trimmed(fixtures::capture(
        "curl -s -o /dev/null -w '%{http_code}' -X " + method + " -H 'Authorization: Bearer " +
        bearer + "' -H 'Content-Type: application/json' " +
        (method == "POST" ? "-d '{\"to\": \"branch-head\"}' " : "") +
        fixtures::shell_quote(server->url("/api/repos/app/branches/main/" + what))));
  };
  ASSERT_TRUE(eventually([&] { return call("GET", "pins", viewer) == "200"; }));
  EXPECT_EQ(call("POST", "pins/lib", viewer), "403");
  EXPECT_EQ(call("POST", "pins/lib", ""), "401");
  EXPECT_EQ(app.head(), app1);
  EXPECT_EQ(call("POST", "pins/lib", editor), "200");
  EXPECT_EQ(log(app, "refs/heads/main", "%s"), "Update pin lib to " + lib2);
}

// a pins b and b pins a, both auto: each push would move the other's pin, forever. Nothing is
// pushed for them, while a pin outside the cycle still moves (after them: repos are looked at
// in name order, so its update shows that the cycle was looked at and passed over).
TEST_F(PinsTest, ACycleOfAutoPinsPushesNothing) {
  GitFixtureRepo a(path("a"));
  a.write("testlooper.yml", "looper_version: 5\n");
  const std::string a0 = a.commit("a 0");
  GitFixtureRepo b(path("b"));
  b.write("testlooper.yml",
          "looper_version: 5\nrepos:\n  a: {reference: a/" + a0 + ", branch: main, auto: true}\n");
  const std::string b1 = b.commit("b pins a");
  a.write("testlooper.yml",
          "looper_version: 5\nrepos:\n  b: {reference: b/" + b1 + ", branch: main, auto: true}\n");
  const std::string a1 = a.commit("a pins b");  // b's pin of a is now behind
  GitFixtureRepo zz(path("zz"));
  zz.write("testlooper.yml", "looper_version: 5\nrepos:\n  lib: {reference: lib/" + lib1_ +
                                 ", branch: main, auto: true}\n");
  zz.commit("zz pins lib");
  lib_.write("lib.txt", "2\n");
  const std::string lib2 = lib_.commit("lib 2");
  auto server = start();
  ASSERT_FALSE(wait_for_subject(zz, "Update pin lib to " + lib2).empty());
  EXPECT_EQ(a.head(), a1);
  EXPECT_EQ(b.head(), b1);
  const json pins = server->get("/api/repos/b/branches/main/pins");
  ASSERT_EQ(pins.size(), 1u);
  EXPECT_EQ(pins[0]["head"], a1);
  EXPECT_EQ(pins[0]["behind"], 1);
}

}  // namespace
}  // namespace testlooper::server

namespace testlooper::server {
namespace {

using fixtures::FakeHost;

// Hosted mode (source_control's GitHub form): the update is pushed to the host over HTTPS-like
// git HTTP with the token (never in argv), and the server's mirror is fetched after it.
TEST(PinsHosted, AnAutoPinUpdateIsPushedToTheHostWithTheTokenAndTheMirrorFetched) {
  TempDir dir;
  const std::string root = dir.path() + "/host";
  const std::string token = "s3cret-token";
  std::filesystem::create_directories(root + "/acme");
  GitFixtureRepo lib(dir.path() + "/work/lib");
  lib.write("testlooper.yml", kLib);
  const std::string lib1 = lib.commit("lib 1");
  GitFixtureRepo app(dir.path() + "/work/app");
  app.write("testlooper.yml", "looper_version: 5\nrepos:\n  lib: {reference: lib/" + lib1 +
                                  ", branch: main, auto: true}  # follows lib\n");
  const std::string app1 = app.commit("app pins lib");
  lib.write("lib.txt", "2\n");
  const std::string lib2 = lib.commit("lib 2");
  for (const std::string name : {"lib", "app"}) {
    const std::string bare = root + "/acme/" + name + ".git";
    fixtures::capture("git init -q --bare " + fixtures::shell_quote(bare) + " && git -C " +
                      fixtures::shell_quote(dir.path() + "/work/" + name) + " push -q " +
                      fixtures::shell_quote(bare) + " main 2>&1");
  }
  FakeHost host(root, token);
  const std::string config = dir.path() + "/config.json";
  std::ofstream(config)
      << json({{"source_control",
                {{"access_token", token},
                 {"owner", "acme"},
                 {"github_url", host.url()},
                 {"github_api_url", host.url() + "/api/v3"}}},
               {"server", {{"path_to_local_data", dir.path() + "/data"}, {"poll_seconds", 0.3}}},
               {"server_ports", {{"server_port", 0}}},
               {"machine_management", {{"max_workers", 0}}}})
             .dump();
  ServerProcess server({"--config", config});
  const std::string bare_app = root + "/acme/app.git";
  auto host_head = [&](const std::string& format) {
    return trimmed(fixtures::capture("git -C " + fixtures::shell_quote(bare_app) +
                                     " log -1 --format=" + format + " main"));
  };
  ASSERT_TRUE(eventually([&] { return host_head("%s") == "Update pin lib to " + lib2; }))
      << host_head("%s");
  const std::string update = host_head("%H");
  EXPECT_EQ(host_head("%P"), app1);
  EXPECT_EQ(fixtures::capture("git -C " + fixtures::shell_quote(bare_app) + " diff --numstat " +
                              app1 + " " + update),
            "1\t1\ttestlooper.yml\n");
  // The push went through git HTTP with the token as Basic auth.
  const json requests = host.requests();
  bool pushed = false;
  for (const auto& r : requests) {
    if (r["path"] == "/git/acme/app.git/git-receive-pack" && r["method"] == "POST") {
      pushed = r["authorization"].get<std::string>().rfind("Basic ", 0) == 0;
    }
  }
  EXPECT_TRUE(pushed) << requests.dump(1);
  // The mirror was fetched: the server ingests its own update.
  ASSERT_TRUE(eventually([&] {
    return server.get("/api/repos/app/branches/main/history")["head"] == update;
  })) << server.get("/api/repos/app/branches/main/history").dump(1);
}

}  // namespace
}  // namespace testlooper::server
