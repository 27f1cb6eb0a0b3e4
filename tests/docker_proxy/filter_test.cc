// The scoped docker's filter: what passes, what is refused, how bodies are rewritten. The fake
// engine owns the container "mine" (id c0ffee...) and the network "tl-run1-net"; the run's only
// root is /runs/run1, where /runs/run1/escape is a symlink to /etc.
#include "docker_proxy/filter.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace testlooper::docker_proxy {
namespace {

using nlohmann::json;

class FakeEngine : public Engine {
 public:
  std::optional<Owned> find_owned(Kind kind, const std::string& ref) override {
    if (kind == Kind::kContainer && (ref == "mine" || ref == "tl-run1-mine" || ref == "c0ffee")) {
      return Owned{"c0ffee", "/tl-run1-mine"};
    }
    if (kind == Kind::kNetwork && (ref == "net" || ref == "tl-run1-net")) {
      return Owned{"0e7", "tl-run1-net"};
    }
    if (kind == Kind::kExec && ref == "e1") return Owned{"e1", ""};
    return std::nullopt;
  }
  Status ensure_volume(const std::string& name) override {
    ensured.push_back(name);
    return {};
  }
  std::optional<std::string> real_path(const std::string& path) override {
    if (path.rfind("/runs/run1/escape", 0) == 0) return "/etc" + path.substr(17);
    if (path.rfind("/runs/", 0) == 0 || path.rfind("/etc", 0) == 0) return path;
    return std::nullopt;
  }
  std::optional<std::vector<std::string>> bind_sources(const std::string&) override {
    return sources;
  }
  std::vector<std::string> ensured;
  std::vector<std::string> sources = {"/runs/run1/data"};
};

class FilterTest : public ::testing::Test {
 protected:
  Plan plan(const std::string& method, const std::string& target, const json& body = nullptr) {
    return plan_request(scope_, Request{method, target, body.is_null() ? "" : body.dump()},
                        engine_);
  }
  // A create body as the docker CLI sends it, with `host` merged into its HostConfig.
  Plan create(const json& host, const json& top = json::object()) {
    json body = {{"Image", "busybox"},
                 {"Cmd", {"sleep", "1"}},
                 {"HostConfig",
                  {{"Binds", nullptr},
                   {"NetworkMode", "default"},
                   {"Privileged", false},
                   {"CapAdd", nullptr},
                   {"Devices", json::array()},
                   {"IpcMode", ""},
                   {"PidMode", ""}}}};
    body["HostConfig"].update(host);
    body.update(top);
    return plan("POST", "/v1.43/containers/create?name=web", body);
  }
  void expect_refused(const Plan& p, const std::string& words) {
    EXPECT_EQ(p.action, Plan::Action::kRefuse);
    EXPECT_NE(p.error.find(words), std::string::npos) << p.error;
  }

  Scope scope_{"run1", "slot3", {"/runs/run1"}};
  FakeEngine engine_;
};

TEST_F(FilterTest, PingVersionAndInfoPassWithTheirVersion) {
  EXPECT_EQ(plan("GET", "/_ping").action, Plan::Action::kForward);
  EXPECT_EQ(plan("HEAD", "/v1.43/_ping").target, "/v1.43/_ping");
  EXPECT_EQ(plan("GET", "/v1.24/version").action, Plan::Action::kForward);
  EXPECT_EQ(plan("GET", "/info").action, Plan::Action::kForward);
}

TEST_F(FilterTest, EndpointsOutsideTheListAreRefused) {
  for (const auto& [method, target] :
       std::vector<std::pair<std::string, std::string>>{{"POST", "/build"},
                                                        {"GET", "/events"},
                                                        {"POST", "/containers/prune"},
                                                        {"POST", "/volumes/prune"},
                                                        {"POST", "/swarm/init"},
                                                        {"GET", "/plugins"},
                                                        {"POST", "/images/busybox/push"},
                                                        {"POST", "/containers/mine/update"},
                                                        {"PUT", "/containers/mine/archive"},
                                                        {"POST", "/containers/mine/exec/extra"},
                                                        {"POST", "/images/create?fromSrc=-"},
                                                        {"GET", "/secrets"}}) {
    EXPECT_EQ(plan(method, target).action, Plan::Action::kRefuse) << method << " " << target;
  }
}

TEST_F(FilterTest, MalformedTargetsAreRefused) {
  for (const std::string target :
       {"/containers/../json", "/containers/%2e%2e/json", "//containers/json", "/v1.x/info",
        "/containers/json?all=1&all=0", "/containers/mine/json?x=%zz", "containers/json",
        "/v1.43"}) {
    EXPECT_EQ(plan("GET", target).status, 400) << target;
  }
}

TEST_F(FilterTest, ListsAreFilteredAndAnswersKeepOnlyTheRunsObjects) {
  const Plan p = plan("GET", "/v1.43/containers/json?all=1");
  EXPECT_EQ(p.action, Plan::Action::kFilterList);
  const json listed = json::array({{{"Id", "a"}, {"Labels", {{"testlooper.scope", "run1"}}}},
                                   {{"Id", "b"}, {"Labels", {{"testlooper.scope", "run2"}}}},
                                   {{"Id", "c"}, {"Labels", nullptr}},
                                   {{"Id", "d"}}});
  Result<std::string> kept = filter_list(scope_, Kind::kContainer, listed.dump());
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(json::parse(*kept), json::array({listed[0]}));
  Result<std::string> volumes = filter_list(
      scope_, Kind::kVolume,
      json{{"Volumes", {{{"Name", "x"}, {"Labels", {{"testlooper.scope", "run2"}}}}}}}.dump());
  ASSERT_TRUE(volumes.ok());
  EXPECT_EQ(json::parse(*volumes)["Volumes"], json::array());
  EXPECT_FALSE(filter_list(scope_, Kind::kNetwork, "{not json").ok());
  EXPECT_EQ(plan("GET", "/networks").list_kind, Kind::kNetwork);
  EXPECT_EQ(plan("GET", "/volumes").list_kind, Kind::kVolume);
}

TEST_F(FilterTest, AnotherRunsContainerIsNotFoundByIdOrName) {
  for (const std::string target :
       {"/containers/theirs/json", "/containers/tl-run2-web/stop", "/containers/deadbeef/kill"}) {
    const Plan p = plan("POST", target);
    EXPECT_EQ(p.action, Plan::Action::kRefuse) << target;
  }
  EXPECT_EQ(plan("GET", "/containers/theirs/json").status, 404);
  EXPECT_EQ(plan("DELETE", "/containers/theirs?force=1").status, 404);
  EXPECT_EQ(plan("GET", "/exec/theirs/json").status, 404);
}

TEST_F(FilterTest, OwnObjectsAreNamedByIdAndRemovedWithTheirVolumes) {
  EXPECT_EQ(plan("POST", "/v1.43/containers/mine/stop?t=1").target,
            "/v1.43/containers/c0ffee/stop?t=1");
  EXPECT_EQ(plan("DELETE", "/containers/mine?force=1").target, "/containers/c0ffee?force=1&v=1");
  EXPECT_EQ(plan("POST", "/containers/mine/attach?stream=1").action, Plan::Action::kHijack);
  EXPECT_EQ(plan("POST", "/exec/e1/start", json::object()).action, Plan::Action::kHijack);
  EXPECT_EQ(plan("GET", "/networks/net").target, "/networks/0e7");
}

TEST_F(FilterTest, CreateLabelsAndPrefixes) {
  const Plan p = create(json::object(), {{"Labels", {{"app", "x"}, {"testlooper.scope", "run2"}}}});
  ASSERT_EQ(p.action, Plan::Action::kForward) << p.error;
  EXPECT_TRUE(p.creates);
  EXPECT_EQ(p.target, "/v1.43/containers/create?name=tl-run1-web");
  const json body = json::parse(p.body);
  EXPECT_EQ(body["Labels"], (json{{"app", "x"},
                                  {"testlooper.scope", "run1"},
                                  {"testlooper.run", "run1"},
                                  {"testlooper.owner", "slot3"}}));
}

TEST_F(FilterTest, CreateRefusesWhatEscapesTheSandbox) {
  expect_refused(create({{"Privileged", true}}), "Privileged");
  expect_refused(create({{"CapAdd", {"SYS_ADMIN"}}}), "CapAdd");
  expect_refused(create({{"NetworkMode", "host"}}), "host network");
  expect_refused(create({{"PidMode", "host"}}), "PidMode");
  expect_refused(create({{"IpcMode", "host"}}), "IpcMode");
  expect_refused(create({{"UTSMode", "host"}}), "UTSMode");
  expect_refused(create({{"UsernsMode", "host"}}), "UsernsMode");
  expect_refused(create({{"CgroupnsMode", "host"}}), "CgroupnsMode");
  expect_refused(create({{"Devices", {{{"PathOnHost", "/dev/sda"}}}}}), "Devices");
  expect_refused(create({{"DeviceRequests", {{{"Count", -1}}}}}), "DeviceRequests");
  expect_refused(create({{"SecurityOpt", {"seccomp=unconfined"}}}), "SecurityOpt");
  expect_refused(create({{"SecurityOpt", {"apparmor=unconfined"}}}), "SecurityOpt");
  expect_refused(create({{"MaskedPaths", json::array()}}), "MaskedPaths");
  expect_refused(create({{"Sysctls", {{"kernel.core_pattern", "|/tmp/x"}}}}), "sysctl");
  expect_refused(create({{"CgroupParent", "/"}}), "CgroupParent");
  expect_refused(create({{"Runtime", "runsc-debug"}}), "Runtime");
  expect_refused(create({{"VolumesFrom", {"theirs"}}}), "VolumesFrom");
  expect_refused(create({{"VolumeDriver", "evil"}}), "VolumeDriver");
  expect_refused(create({{"OomScoreAdj", -1000}}), "OomScoreAdj");
  expect_refused(create({{"LogConfig", {{"Type", "syslog"}}}}), "LogConfig");
  expect_refused(create({{"SomethingNew", true}}), "SomethingNew");
  expect_refused(create({{"RestartPolicy", {{"Name", "always"}}}}), "RestartPolicy");
  expect_refused(create(json::object(), {{"Unknown", 1}}), "Unknown");
  expect_refused(create({{"NetworkMode", "container:theirs"}}), "No such container");
  expect_refused(create({{"NetworkMode", "their-net"}}), "No such network");
  EXPECT_EQ(plan("POST", "/containers/create", "[1]").action, Plan::Action::kRefuse);
  EXPECT_EQ(
      plan_request(scope_, {"POST", "/containers/create", std::string(100, '[')}, engine_).action,
      Plan::Action::kRefuse);
}

TEST_F(FilterTest, BindMountsOnlyFromTheRunsDirectories) {
  expect_refused(create({{"Binds", {"/etc:/host-etc"}}}), "bind mount of '/etc'");
  expect_refused(create({{"Binds", {"/:/host"}}}), "bind mount");
  expect_refused(create({{"Binds", {"/runs/run1/escape:/x"}}}), "bind mount");
  expect_refused(create({{"Binds", {"/runs/run10:/x"}}}), "bind mount");
  expect_refused(create({{"Binds", {"/runs/run1:/x:rshared"}}}), "rshared");
  expect_refused(create({{"Mounts", {{{"Type", "bind"}, {"Source", "/etc"}, {"Target", "/x"}}}}}),
                 "bind mount");
  expect_refused(
      create({{"Mounts",
               {{{"Type", "volume"},
                 {"Target", "/x"},
                 {"VolumeOptions",
                  {{"DriverConfig",
                    {{"Name", "local"},
                     {"Options", {{"type", "none"}, {"o", "bind"}, {"device", "/"}}}}}}}}}}}),
      "DriverConfig");
  expect_refused(create({{"Mounts", {{{"Type", "npipe"}, {"Source", "x"}, {"Target", "/x"}}}}}),
                 "npipe");
  const Plan ok =
      create({{"Binds", {"/runs/run1/data:/data:ro", "cache:/cache"}}, {"NetworkMode", "net"}},
             {{"NetworkingConfig", {{"EndpointsConfig", {{"net", json::object()}}}}}});
  ASSERT_EQ(ok.action, Plan::Action::kForward) << ok.error;
  const json body = json::parse(ok.body);
  EXPECT_EQ(body["HostConfig"]["Binds"],
            (json{"/runs/run1/data:/data:ro", "tl-run1-cache:/cache"}));
  EXPECT_EQ(engine_.ensured, std::vector<std::string>{"tl-run1-cache"});
  EXPECT_EQ(body["HostConfig"]["NetworkMode"], "tl-run1-net");
  EXPECT_TRUE(body["NetworkingConfig"]["EndpointsConfig"].contains("tl-run1-net"));
}

TEST_F(FilterTest, NetworksVolumesAndExecsAreCheckedToo) {
  expect_refused(plan("POST", "/volumes/create",
                      {{"Name", "v"}, {"DriverOpts", {{"type", "none"}, {"device", "/"}}}}),
                 "DriverOpts");
  expect_refused(plan("POST", "/networks/create", {{"Name", "n"}, {"Driver", "macvlan"}}),
                 "macvlan");
  expect_refused(
      plan("POST", "/networks/create",
           {{"Name", "n"}, {"Options", {{"com.docker.network.bridge.name", "docker0"}}}}),
      "bridge.name");
  expect_refused(plan("POST", "/containers/mine/exec", {{"Cmd", {"sh"}}, {"Privileged", true}}),
                 "Privileged");
  expect_refused(plan("POST", "/networks/net/connect", {{"Container", "theirs"}}),
                 "No such container");
  const Plan network = plan("POST", "/networks/create", {{"Name", "n"}, {"Driver", "bridge"}});
  ASSERT_EQ(network.action, Plan::Action::kForward) << network.error;
  EXPECT_EQ(json::parse(network.body)["Name"], "tl-run1-n");
  const Plan volume = plan("POST", "/volumes/create", json::object());
  ASSERT_EQ(volume.action, Plan::Action::kForward) << volume.error;
  EXPECT_EQ(json::parse(volume.body)["Labels"]["testlooper.scope"], "run1");
}

TEST_F(FilterTest, AStartChecksTheBindSourcesAgain) {
  EXPECT_EQ(plan("POST", "/containers/mine/start").action, Plan::Action::kForward);
  engine_.sources = {"/runs/run1/escape"};  // a directory at create, a symlink to /etc now
  expect_refused(plan("POST", "/containers/mine/start"), "no longer leads inside");
  expect_refused(plan("POST", "/containers/mine/restart"), "no longer leads inside");
  EXPECT_EQ(plan("POST", "/containers/mine/stop").action, Plan::Action::kForward);
}

}  // namespace
}  // namespace testlooper::docker_proxy
