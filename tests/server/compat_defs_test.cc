// Issue 17, definitions: the real `testlooper serve` over real git repos in a temp dir.
// A commit whose definitions fail still reports its `repos:` entries, so the server fetches the
// commit a pin names, lists the pin and moves it like any other.
#include <gtest/gtest.h>

#include "server_fixture.h"

namespace testlooper::server {
namespace {

using fixtures::eventually;
using fixtures::GitFixtureRepo;
using fixtures::ServerProcess;
using fixtures::TempDir;
using nlohmann::json;

TEST(CompatDefinitions, ABrokenCommitStillHasItsPinsFetchedListedAndMovable) {
  TempDir dir;
  const std::string repos = dir.path() + "/repos";
  GitFixtureRepo lib(repos + "/lib");
  lib.write("README", "lib 1\n");
  const std::string lib1 = lib.commit("lib 1");
  // A commit of lib that no branch reaches: the server only learns of it through the pin.
  lib.run({"checkout", "-q", "-b", "side"});
  lib.write("README", "lib side\n");
  const std::string side = lib.commit("lib side");
  lib.run({"checkout", "-q", "main"});
  lib.run({"branch", "-q", "-D", "side"});
  GitFixtureRepo app(repos + "/app");
  app.write("testlooper.yml",
            "looper_version: 5\n"
            "repos:\n"
            "  lib: {reference: lib/" +
                side +
                ", branch: main, auto: false}\n"
                "includes: [./missing.yml]\n");
  const std::string app1 = app.commit("app pins lib, includes a file that is not there");
  ServerProcess server({"--repos", repos, "--data", dir.path() + "/data", "--port", "0",
                        "--workers", "0", "--poll-seconds", "0.3", "--auth", "none"});

  json commit;
  // Its error may first be another (the pinned commit not looked at yet), then the include's.
  ASSERT_TRUE(eventually([&] {
    commit = server.get("/api/repos/app/commits/" + app1);
    return commit.is_object() && commit.contains("error") && commit["error"].is_string() &&
           commit["error"].get<std::string>().find("missing.yml") != std::string::npos;
  })) << commit.dump();
  // The pinned commit is fetched although the pinning commit is broken.
  json pinned;
  EXPECT_TRUE(eventually([&] {
    pinned = server.get("/api/repos/lib/commits/" + side);
    return pinned.is_object() && pinned.value("sha", "") == side;
  })) << pinned.dump();
  // Listed, and moved by hand.
  json pins;
  ASSERT_TRUE(eventually([&] {
    pins = server.get("/api/repos/app/branches/main/pins");
    return pins.is_array() && pins.size() == 1;
  })) << pins.dump();
  EXPECT_EQ(pins[0]["commit"], side);
  EXPECT_EQ(pins[0]["head"], lib1);
  const auto [status, body] =
      server.post("/api/repos/app/branches/main/pins/lib", R"({"to": "branch-head"})");
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body["to"], lib1);
  EXPECT_NE(app.run({"show", "main:testlooper.yml"}).find("lib/" + lib1), std::string::npos);
}

// A test with neither command nor stages, run by a real worker of the server: one run, a success.
// Its sibling comes from a foreach around an include (the variable reaches the included file).
TEST(CompatDefinitions, AWorkerRunsATestWithoutCommandAsASuccess) {
  TempDir dir;
  const std::string repos = dir.path() + "/repos";
  GitFixtureRepo app(repos + "/app");
  app.write("testlooper.yml",
            "looper_version: 5\n"
            "environments: {linux: {platform: linux, image: {host: true}}}\n"
            "includes:\n"
            "  - foreach: {flavour: [nothing]}\n"
            "    repeat: [./more.yml]\n"
            "tests:\n"
            "  also/linux: {command: 'true'}\n");
  app.write("more.yml", "looper_version: 5\ntests: {\"${flavour}/linux\": {}}\n");
  const std::string sha = app.commit("a test without command");
  ServerProcess server({"--repos", repos, "--data", dir.path() + "/data", "--port", "0",
                        "--workers", "1", "--worker-cores", "2", "--worker-ram-gb", "2",
                        "--poll-seconds", "0.3", "--auth", "none"});
  ASSERT_TRUE(eventually([&] { return server.get("/api/repos").size() == 1; }));
  const auto [status, body] =
      server.post("/api/repos/app/branches/main/test", R"({"enabled": true})");
  ASSERT_EQ(status, 200) << body.dump();
  json nothing;
  ASSERT_TRUE(eventually([&] {
    const json commit = server.get("/api/repos/app/commits/" + sha);
    if (!commit.is_object() || !commit.contains("objects")) return false;
    for (const auto& o : commit["objects"]) {
      if (o["name"] == "nothing/linux") nothing = o;
    }
    return nothing.is_object() && nothing["runs"] == 1;
  })) << server.get("/api/repos/app/commits/" + sha).dump(2);
  EXPECT_EQ(nothing["failures"], 0);
  EXPECT_EQ(nothing["status"], "done");
}

}  // namespace
}  // namespace testlooper::server
