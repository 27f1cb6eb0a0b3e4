// The fleet end to end (issue 14 "Tests"): a real `testlooper serve` whose machine_management
// points at moto_server, and tests/fleet/instance_harness.py playing the instances moto reports
// with real `testlooper worker`s, so waiting job -> boot -> worker connects -> job runs -> idle
// -> terminate is real. One moto per test binary; each test has its own worker_name.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "fleet/moto.h"
#include "server_fixture.h"

namespace testlooper::server {
namespace {

using fixtures::eventually;
using fixtures::GitFixtureRepo;
using fixtures::ServerProcess;
using fixtures::TempDir;
using nlohmann::json;

// The instance types of every test: [cores, ram_gb] by name (real EC2 names, as moto wants).
const json kTypes = {{"t3.small", {2, 2}},
                     {"m5.xlarge", {4, 16}},
                     {"m5.2xlarge", {8, 32}},
                     {"m5.8xlarge", {32, 128}}};

// In a directory of its own: one named by the pid could hold the moto.log of an earlier test
// process with the same pid (pid_max is 32,768 here), whose "Running on" line was read before this
// moto_server truncated it: a port nobody listened on.
fixtures::Moto& moto() {
  static TempDir dir;
  static fixtures::Moto m(dir.path() + "/moto");
  return m;
}

// tests/fleet/instance_harness.py for one worker_name; stopped (its workers first) at the end.
class Harness {
 public:
  Harness(const std::string& worker_name, const std::string& dir) : dir_(dir) {
    std::filesystem::create_directories(dir);
    const std::string moto_url = moto().url(), types = kTypes.dump();
    pid_ = fork();
    if (pid_ == 0) {
      const std::string log = dir + "/harness.err";
      if (!freopen(log.c_str(), "w", stderr) || !freopen(log.c_str(), "a", stdout)) _exit(126);
      execlp("python3", "python3", TL_HARNESS, "--moto", moto_url.c_str(), "--worker-name",
             worker_name.c_str(), "--testlooper", TL_BINARY, "--dir", dir.c_str(), "--types",
             types.c_str(), nullptr);
      _exit(127);
    }
  }
  ~Harness() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  std::string log() const {
    std::ifstream in(dir_ + "/harness.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  std::string dir_;
  pid_t pid_ = -1;
};

class FleetTest : public testing::Test {
 protected:
  FleetTest()
      : worker_name_("tl-" +
                     std::string(testing::UnitTest::GetInstance()->current_test_info()->name())),
        app_(dir_.path() + "/repos/app") {
    moto();
  }

  // Writes config.json: the Aws form on moto, with `extra` merged into machine_management.
  std::string config(const json& extra) const {
    json types = json::array();
    for (const auto& [name, size] : kTypes.items())
      types.push_back({{{"cores", size[0]}, {"ram_gb", size[1]}}, name});
    json mm = {{"worker_name", worker_name_},          {"region", "us-east-1"},
               {"endpoint_url", moto().url()},         {"instance_types", types},
               {"linux_ami", "ami-0a1b2c3d4e5f60718"}, {"idle_shutdown_seconds", 600},
               {"boot_timeout_seconds", 600}};
    if (extra.is_object()) mm.update(extra);
    const std::string path = dir_.path() + "/config.json";
    std::ofstream(path) << json{{"machine_management", mm},
                                {"source_control", {{"path_to_repos", dir_.path() + "/repos"}}}}
                               .dump(2);
    return path;
  }

  std::unique_ptr<ServerProcess> serve(const json& extra, std::vector<std::string> more = {},
                                       int port = 0) {
    std::vector<std::string> args = {"--config",       config(extra),
                                     "--repos",        dir_.path() + "/repos",
                                     "--data",         dir_.path() + "/data",
                                     "--port",         std::to_string(port),
                                     "--poll-seconds", "0.3"};
    args.insert(args.end(), more.begin(), more.end());
    auto server = std::make_unique<ServerProcess>(args, dir_.path() + "/serve.err");
    EXPECT_TRUE(eventually([&] { return server->get("/api/repos").size() == 1; }, 60));
    return server;
  }

  void test_main(ServerProcess& server) {
    const auto [status, body] =
        server.post("/api/repos/app/branches/main/test", R"({"enabled": true})");
    ASSERT_EQ(status, 200) << body.dump();
  }

  // Our instances as moto has them: [{"id", "type", "state", "machine"}], and another tag's.
  json instances(const std::string& worker_name = "") const {
    return json::parse(moto().boto3(
        "out = []\n"
        "for r in ec2.describe_instances(Filters=[{'Name': 'tag:testlooper-worker-name', "
        "'Values': ['" +
        (worker_name.empty() ? worker_name_ : worker_name) +
        "']}])['Reservations']:\n"
        "  for i in r['Instances']:\n"
        "    tags = {t['Key']: t['Value'] for t in i.get('Tags', [])}\n"
        "    out.append({'id': i['InstanceId'], 'type': i['InstanceType'], "
        "'state': i['State']['Name'], 'machine': tags.get('testlooper-machine', ''), "
        "'image': i['ImageId']})\n"
        "print(json.dumps(out))"));
  }
  static int count_state(const json& list, const std::string& state) {
    int n = 0;
    for (const auto& i : list) n += i["state"] == state;
    return n;
  }

  json runs(ServerProcess& server, const std::string& name) const {
    return server.get("/api/repos/app/commits/" + sha_ + "/runs?name=" + name);
  }
  std::string serve_log() const {
    std::ifstream in(dir_.path() + "/serve.err");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  TempDir dir_;
  std::string worker_name_;
  GitFixtureRepo app_;
  std::string sha_;
};

TEST_F(FleetTest, AWaitingJobBootsAMachineWhoseWorkerRunsItThenIdleItIsTerminated) {
  app_.write("testlooper.yml", R"(looper_version: 5
environments: {linux: {platform: linux, image: {host: true}}}
tests:
  quick/linux:
    stages:
      - command: 'echo ran on the fleet'
)");
  sha_ = app_.commit("first");
  Harness harness(worker_name_, dir_.path() + "/harness");
  auto server = serve({{"idle_shutdown_seconds", 2}});
  const json off = server->get("/api/machines");
  EXPECT_EQ(off["enabled"], true) << off.dump();
  EXPECT_EQ(off["provider"], "ec2");
  test_main(*server);
  json run;
  ASSERT_TRUE(eventually(
      [&] {
        const json r = runs(*server, "quick/linux");
        if (r.is_array() && r.size() == 1 && r[0]["state"] == "succeeded") run = r[0];
        return run.is_object();
      },
      120))
      << runs(*server, "quick/linux").dump() << serve_log() << harness.log();
  json ours = instances();
  ASSERT_EQ(ours.size(), 1u) << ours.dump();
  EXPECT_EQ(ours[0]["type"], "t3.small");  // the cheapest type fits a 1-core run
  EXPECT_EQ(run["worker"], ours[0]["machine"]);
  // Idle for more than idle_shutdown_seconds: terminated, and the harness stops its worker.
  ASSERT_TRUE(eventually([&] { return count_state(instances(), "terminated") == 1; }, 60))
      << instances().dump() << serve_log();
  EXPECT_TRUE(eventually([&] { return harness.log().find("stopped") != std::string::npos; }, 30));
  EXPECT_NE(serve_log().find("fleet: terminated " + ours[0]["id"].get<std::string>()),
            std::string::npos)
      << serve_log();
  const json machines = server->get("/api/machines");
  EXPECT_EQ(machines["error"], "") << machines.dump();
  // Its worker token (it connected with it) is revoked.
  EXPECT_TRUE(eventually([&] {
    const json tokens = server->get("/api/tokens");
    if (!tokens.is_array()) return false;
    for (const auto& t : tokens)
      if (t["name"] == ours[0]["machine"]) return false;
    return true;
  })) << server->get("/api/tokens").dump();
}

// A booted deployment waits like a run of its environment: it boots a machine, starts there, and
// the machine is busy (never terminated as idle) until the deployment is shut down.
TEST_F(FleetTest, ABootedDeploymentBootsAMachineThatStaysBusyWhileItLives) {
  app_.write("testlooper.yml", R"(looper_version: 5
environments: {linux: {platform: linux, image: {host: true}}}
deployments:
  shell/linux:
    command: 'echo deployed'
)");
  sha_ = app_.commit("first");
  Harness harness(worker_name_, dir_.path() + "/harness");
  auto server = serve({{"idle_shutdown_seconds", 2}});
  ASSERT_TRUE(eventually(
      [&] { return server->get("/api/repos/app/commits/" + sha_).contains("objects"); }, 60));
  const auto [status, body] =
      server->post("/api/repos/app/commits/" + sha_ + "/deployments/shell%2Flinux/boot", "{}");
  ASSERT_EQ(status, 200) << body.dump();
  const std::string id = body["id"];
  ASSERT_TRUE(
      eventually([&] { return server->get("/api/deployments/" + id)["state"] == "running"; }, 180))
      << server->get("/api/deployments/" + id).dump() << server->get("/api/machines").dump()
      << serve_log() << harness.log();
  const json ours = instances();
  ASSERT_EQ(ours.size(), 1u) << ours.dump();
  EXPECT_EQ(server->get("/api/deployments/" + id)["worker"], ours[0]["machine"]);
  // Its machine is busy with it (an idle one would be terminated after idle_shutdown_seconds).
  auto busy_with_it = [&] {
    const json m = server->get("/api/machines")["machines"];
    return m.is_array() && m.size() == 1 && m[0]["state"] == "busy" && m[0]["runs"].size() == 1 &&
           m[0]["runs"][0]["run_id"] == id;
  };
  ASSERT_TRUE(eventually(busy_with_it, 60)) << server->get("/api/machines").dump();
  EXPECT_EQ(count_state(instances(), "terminated"), 0) << instances().dump();
  EXPECT_EQ(server->get("/api/deployments/" + id)["state"], "running");
  // Shut down, it frees the machine, which goes once idle.
  EXPECT_EQ(server->post("/api/deployments/" + id + "/shutdown", "{}").first, 200);
  ASSERT_TRUE(eventually([&] { return count_state(instances(), "terminated") == 1; }, 60))
      << instances().dump() << serve_log();
}

TEST_F(FleetTest, ThirtyWaitingFourCoreRunsWithMaxCores16NeverBootMoreThan16Cores) {
  app_.write("testlooper.yml", R"(looper_version: 5
environments: {linux: {platform: linux, image: {host: true}}}
tests:
  four/linux:
    min_cores: 4
    stages:
      - command: 'sleep 1'
)");
  sha_ = app_.commit("first");
  Harness harness(worker_name_, dir_.path() + "/harness");
  auto server =
      serve({{"max_cores", 16}, {"idle_shutdown_seconds", 600}}, {"--default-runs", "30"});
  test_main(*server);
  int most_cores = 0, most_api = 0;
  std::set<std::string> types;
  ASSERT_TRUE(eventually(
      [&] {
        int cores = 0;
        for (const auto& i : instances()) {
          if (i["state"] == "terminated") continue;
          types.insert(i["type"]);
          cores += kTypes[i["type"].get<std::string>()][0].get<int>();
        }
        most_cores = std::max(most_cores, cores);
        const json m = server->get("/api/machines");
        if (m.is_object()) most_api = std::max(most_api, m["used"]["cores"].get<int>());
        const json r = runs(*server, "four/linux");
        int done = 0;
        for (const auto& x : r) done += x["state"] == "succeeded";
        return done >= 30;
      },
      240))
      << server->get("/api/machines").dump() << serve_log();
  EXPECT_LE(most_cores, 16);
  EXPECT_LE(most_api, 16);
  EXPECT_EQ(most_cores, 16);  // the limit is used
  EXPECT_EQ(types, std::set<std::string>{"m5.xlarge"});
  const json m = server->get("/api/machines");
  EXPECT_EQ(m["limits"]["max_cores"], 16);
}

TEST_F(FleetTest, A32CoreBuildBootsThe32CoreType) {
  app_.write("testlooper.yml", R"(looper_version: 5
environments: {linux: {platform: linux, image: {host: true}}}
builds:
  big/linux:
    min_cores: 32
    stages:
      - command: 'echo big'
)");
  sha_ = app_.commit("first");
  auto server = serve({});
  test_main(*server);
  ASSERT_TRUE(eventually([&] { return instances().size() == 1; }, 60)) << serve_log();
  EXPECT_EQ(instances()[0]["type"], "m5.8xlarge");
  // It waits for its machine, no more is booted for it.
  ASSERT_TRUE(eventually(
      [&] {
        const json m = server->get("/api/machines");
        return m["machines"].size() == 1 && m["machines"][0]["cores"] == 32 &&
               m["machines"][0]["cost_class"] == 4 && m["waiting"].size() == 1 &&
               m["waiting"][0]["cores"] == 32;
      },
      30))
      << server->get("/api/machines").dump();
  EXPECT_EQ(instances().size(), 1u);
}

TEST_F(FleetTest, AnAmiTestsMachineIsTerminatedAfterItsOneJob) {
  app_.write("testlooper.yml", R"(looper_version: 5
environments:
  cloud: {platform: linux, image: {base_ami: ami-0feedfacecafe0001, setup_script_contents: 'echo setup'}}
tests:
  one/cloud:
    stages:
      - command: 'echo on the ami'
  two/cloud:
    stages:
      - command: 'echo on the ami too'
)");
  sha_ = app_.commit("first");
  Harness harness(worker_name_, dir_.path() + "/harness");
  // The boot scripts go through the bootstrap bucket (the harness fetches them as the stub would).
  moto().boto3("s3.create_bucket(Bucket='tl-boot-ami')");
  auto server = serve({{"bootstrap_bucket", "tl-boot-ami"}, {"bootstrap_key_prefix", "boots"}});
  // idle_shutdown_seconds 600: only one_job ends them
  test_main(*server);
  ASSERT_TRUE(eventually(
      [&] {
        const json a = runs(*server, "one/cloud"), b = runs(*server, "two/cloud");
        return a.size() == 1 && b.size() == 1 && a[0]["state"] == "succeeded" &&
               b[0]["state"] == "succeeded";
      },
      120))
      << runs(*server, "one/cloud").dump() << runs(*server, "two/cloud").dump() << serve_log()
      << harness.log();
  EXPECT_NE(runs(*server, "one/cloud")[0]["worker"], runs(*server, "two/cloud")[0]["worker"]);
  ASSERT_TRUE(eventually([&] { return count_state(instances(), "terminated") == 2; }, 60))
      << instances().dump() << serve_log();
  const json ours = instances();
  ASSERT_EQ(ours.size(), 2u);  // one machine per job, none booted again
  for (const auto& i : ours) EXPECT_EQ(i["image"], "ami-0feedfacecafe0001");
  EXPECT_NE(serve_log().find("a one-job machine that ran its job"), std::string::npos);
  const json scripts = json::parse(moto().boto3(
      "out = {}\n"
      "for o in s3.list_objects_v2(Bucket='tl-boot-ami', Prefix='boots/')['Contents']:\n"
      "  out[o['Key']] = s3.get_object(Bucket='tl-boot-ami', "
      "Key=o['Key'])['Body'].read().decode()\n"
      "print(json.dumps(out))"));
  ASSERT_EQ(scripts.size(), 2u) << scripts.dump();
  for (const auto& i : ours) {
    const std::string key = "boots/" + i["machine"].get<std::string>() + ".sh";
    ASSERT_TRUE(scripts.contains(key)) << scripts.dump();
    const std::string script = scripts[key];
    EXPECT_NE(script.find("TL_AMI='ami-0feedfacecafe0001'"), std::string::npos) << script;
    EXPECT_LT(script.find("echo setup"), script.find("exec testlooper worker")) << script;
  }
  // The user data only fetches it: the token is not in the instance's attributes.
  const std::string user_data = moto().boto3(
      "import base64\n"
      "a = ec2.describe_instance_attribute(InstanceId='" +
      ours[0]["id"].get<std::string>() +
      "', Attribute='userData')\n"
      "print(base64.b64decode(a['UserData']['Value']).decode(), end='')");
  EXPECT_NE(user_data.find("# testlooper-bootstrap: s3://tl-boot-ami/boots/"), std::string::npos)
      << user_data;
  EXPECT_EQ(user_data.find("TL_TOKEN"), std::string::npos) << user_data;
}

TEST_F(FleetTest, ARestartedServerAdoptsItsInstancesAndTerminatesNoneOfAnotherWorkerName) {
  app_.write("testlooper.yml", fixtures::kBuildAndEndlessTest);
  sha_ = app_.commit("first");
  const std::string other = worker_name_ + "-other";
  const std::string theirs = moto().boto3(
      "r = ec2.run_instances(ImageId='ami-0a1b2c3d4e5f60718', InstanceType='t3.small', "
      "MinCount=1, MaxCount=1, TagSpecifications=[{'ResourceType': 'instance', 'Tags': "
      "[{'Key': 'testlooper-worker-name', 'Value': '" +
      other +
      "'}, "
      "{'Key': 'testlooper-machine', 'Value': 'm-theirs'}]}])\n"
      "print(r['Instances'][0]['InstanceId'], end='')");
  Harness harness(worker_name_, dir_.path() + "/harness");
  const int port = fixtures::free_port();
  auto server = serve({{"idle_shutdown_seconds", 1}, {"boot_timeout_seconds", 30}}, {}, port);
  test_main(*server);
  // The build ran and the endless test runs on a booted machine (the build's may be gone).
  ASSERT_TRUE(eventually(
      [&] {
        const json r = runs(*server, "slow/linux");
        return r.size() == 1 && r[0]["state"] == "running";
      },
      120))
      << serve_log() << harness.log();
  const std::string busy = runs(*server, "slow/linux")[0]["worker"];
  server->stop(SIGTERM, false);
  server = serve({{"idle_shutdown_seconds", 1}, {"boot_timeout_seconds", 30}}, {}, port);
  ASSERT_TRUE(eventually(
      [&] {
        const json m = server->get("/api/machines");
        for (const auto& x : m["machines"])
          if (x["id"] == busy && x["state"] == "busy") return true;
        return false;
      },
      60))
      << server->get("/api/machines").dump() << serve_log();
  EXPECT_NE(serve_log().find("fleet: adopted"), std::string::npos) << serve_log();
  // Another worker_name's instance is never touched, nor listed.
  // Kept in a variable: a range-for over a temporary's member would read freed memory.
  const json listed = server->get("/api/machines");
  for (const auto& x : listed["machines"]) EXPECT_NE(x["id"], "m-theirs");
  const json their_list = instances(other);
  ASSERT_EQ(their_list.size(), 1u);
  EXPECT_EQ(their_list[0]["id"], theirs);
  EXPECT_EQ(their_list[0]["state"], "running");
  for (const auto& i : instances())
    if (i["machine"] == busy) {
      EXPECT_EQ(i["state"], "running");
    }
}

TEST_F(FleetTest, AWindowsEnvironmentBootsWindowsAmiWithAPowerShellScript) {
  app_.write("testlooper.yml", R"(looper_version: 5
environments:
  win: {platform: windows, image: {host: true}}
tests:
  w/win:
    stages:
      - command: 'echo windows'
)");
  sha_ = app_.commit("first");
  Harness harness(worker_name_, dir_.path() + "/harness");
  auto server = serve({{"windows_ami", "ami-0bbbbbbbbbbbbbbb1"}});
  test_main(*server);
  ASSERT_TRUE(eventually([&] { return instances().size() == 1; }, 60))
      << serve_log() << server->get("/api/machines").dump()
      << server->get("/api/repos/app/commits/" + sha_).dump();
  const json i = instances()[0];
  EXPECT_EQ(i["image"], "ami-0bbbbbbbbbbbbbbb1");
  const std::string user_data = moto().boto3(
      "import base64\n"
      "a = ec2.describe_instance_attribute(InstanceId='" +
      i["id"].get<std::string>() +
      "', Attribute='userData')\n"
      "print(base64.b64decode(a['UserData']['Value']).decode(), end='')");
  EXPECT_TRUE(user_data.starts_with("<powershell>\n")) << user_data;
  EXPECT_TRUE(user_data.ends_with("</powershell>\n")) << user_data;
  EXPECT_NE(user_data.find("# testlooper-platform: windows"), std::string::npos);
  EXPECT_NE(user_data.find("$TL_MACHINE = '" + i["machine"].get<std::string>() + "'"),
            std::string::npos);
  // setup_script_contents before the worker: tests/fleet/boot_script_test.cc (a host image has
  // none).
  EXPECT_NE(user_data.find("& testlooper.exe @TL_ARGS"), std::string::npos) << user_data;
  // No worker is started for it.
  ASSERT_TRUE(eventually([&] { return harness.log().find("windows ") != std::string::npos; }, 30));
  EXPECT_EQ(harness.log().find("started "), std::string::npos);
}

TEST_F(FleetTest, AMachineThatNeverConnectsIsTerminatedAndItsRunStillWaits) {
  app_.write("testlooper.yml", R"(looper_version: 5
environments: {linux: {platform: linux, image: {host: true}}}
tests:
  quick/linux:
    stages:
      - command: 'echo never runs'
)");
  sha_ = app_.commit("first");
  // No harness: no worker ever connects.
  auto server = serve({{"boot_timeout_seconds", 1}});
  test_main(*server);
  ASSERT_TRUE(eventually([&] { return count_state(instances(), "terminated") >= 1; }, 60))
      << instances().dump() << serve_log();
  EXPECT_NE(serve_log().find("its worker did not connect within boot_timeout_seconds"),
            std::string::npos)
      << serve_log();
  // Boots back off, the run is never recorded (no failure of the test), and it still waits.
  ASSERT_TRUE(eventually([&] {
    const json m = server->get("/api/machines");
    return m["waiting"].size() == 1 && m["waiting"][0]["runs"] == 1 &&
           m["error"].get<std::string>().find("did not connect") != std::string::npos;
  })) << server->get("/api/machines").dump();
  EXPECT_TRUE(runs(*server, "quick/linux").empty()) << runs(*server, "quick/linux").dump();
}

TEST_F(FleetTest, NoAwsCredentialsStopServeWithAClearMessage) {
  app_.write("testlooper.yml", "looper_version: 5\n");
  sha_ = app_.commit("first");
  const std::string out = fixtures::capture(
      "env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE "
      "AWS_SHARED_CREDENTIALS_FILE=" +
      dir_.path() + "/none HOME=" + dir_.path() + " " + TL_BINARY + " serve --config " +
      config(json::object()) + " --data " + dir_.path() + "/data --port 0 2>&1; echo \"rc=$?\"");
  EXPECT_NE(out.find("testlooper serve: machine_management:"), std::string::npos) << out;
  EXPECT_NE(out.find("rc=2"), std::string::npos) << out;
  EXPECT_EQ(out.find("listening"), std::string::npos) << out;
}

}  // namespace
}  // namespace testlooper::server
