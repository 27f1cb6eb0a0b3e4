// Issue 10, the worker protocol and worker authentication, attacked through a real `testlooper
// serve` on loopback: WebSocket messages and HTTP requests crafted here, as a rogue would send
// them. Each test asserts the refusal and that nothing in the store or on disk changed.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "fake_worker.h"
#include "server_fixture.h"
#include "ws_client.h"

namespace testlooper::server {
namespace {

namespace fs = std::filesystem;
using fixtures::capture;
using fixtures::eventually;
using fixtures::FakeJob;
using fixtures::FakeWorker;
using fixtures::GitFixtureRepo;
using fixtures::ServerProcess;
using fixtures::shell_quote;
using fixtures::TempDir;
using fixtures::WorkerProcess;
using fixtures::WsClient;
using nlohmann::json;

constexpr const char* kDefinitions = fixtures::kBuildAndEndlessTest;

class SecurityWorkerTest : public testing::Test {
 protected:
  SecurityWorkerTest() : app_(dir_.path() + "/repos/app") {
    app_.write("testlooper.yml", kDefinitions);
    sha_ = app_.commit("first");
  }

  void start(int local_workers, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--repos",         dir_.path() + "/repos",
                                     "--data",          data(),
                                     "--port",          "0",
                                     "--workers",       std::to_string(local_workers),
                                     "--worker-cores",  "2",
                                     "--worker-ram-gb", "2",
                                     "--poll-seconds",  "0.3"};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<ServerProcess>(args);
    ASSERT_TRUE(eventually([&] { return server_->get("/api/repos").size() == 1; }, 30));
  }

  std::string data() const { return dir_.path() + "/data"; }
  std::string token() const { return fixtures::worker_token(data()); }

  // A worker without the server's disk, with the token (from the environment, which
  // remote_worker_test.cc does not cover; it passes --token-file).
  std::unique_ptr<WorkerProcess> remote_worker(const std::string& id) const {
    setenv("TESTLOOPER_WORKER_TOKEN", token().c_str(), 1);
    auto worker = std::make_unique<WorkerProcess>(
        std::vector<std::string>{"--server", server_->url(""), "--dir", worker_dir_.path(),
                                 "--cores", "2", "--ram-gb", "2", "--id", id});
    unsetenv("TESTLOOPER_WORKER_TOKEN");
    return worker;
  }

  // POSTs the file at `file` to `path` as a worker's upload, with the worker token and
  // `upload_token`: the HTTP status.
  int upload(const std::string& path, const std::string& file,
             const std::string& upload_token) const {
    return fixtures::upload_file(server_->url(path), file, token(), upload_token).first;
  }

  // Starts the server with a local worker, puts the branch under test, and returns the id of
  // its build's run once that succeeded ("" if it did not within 90 s).
  std::string finished_build() {
    start(1);
    if (server_->post("/api/repos/app/branches/main/test", R"({"enabled": true})").first != 200)
      return "";
    const bool done = eventually(
        [&] {
          const json b = runs("build/linux");
          return b.size() == 1 && b[0]["state"] == "succeeded";
        },
        90);
    return done ? runs("build/linux")[0]["id"].get<std::string>() : "";
  }

  // The runs of `name` at the commit.
  json runs(const std::string& name) const {
    return server_->get("/api/repos/app/commits/" + sha_ + "/runs?name=" + name);
  }
  // The one running run of `name`, once there is one.
  json running_run(const std::string& name) const {
    json found;
    eventually(
        [&] {
          for (const json& r : runs(name)) {
            if (r["state"] == "running") found = r;
          }
          return found.is_object();
        },
        90);
    return found;
  }

  // `curl` with `args`; returns the HTTP status.
  int curl(const std::string& args) const {
    return std::stoi(capture("curl -s -o /dev/null -w '%{http_code}' " + args));
  }

  json workers() const { return server_->get("/api/workers"); }
  json worker(const std::string& id) const {
    for (const json& w : workers()) {
      if (w["id"] == id) return w;
    }
    return json();
  }

  TempDir dir_;
  TempDir worker_dir_;
  GitFixtureRepo app_;
  std::string sha_;
  std::unique_ptr<ServerProcess> server_;
};

const std::string kHello = R"({"type":"hello","worker":"probe","cores":1,"ram_gb":1,"host":"h"})";

TEST_F(SecurityWorkerTest, Item6_EachBadMessageClosesOnlyItsConnection) {
  start(1);
  ASSERT_TRUE(eventually([&] { return worker("local-0")["connected"] == true; }, 30));
  // Messages that killed the server (nlohmann type errors), and their cousins.
  const std::vector<std::pair<bool, std::string>> bad = {
      {false, R"({"type":5})"},
      {false, R"({"type":"hello","worker":"p","cores":"many","ram_gb":1})"},
      {false, R"({"type":"hello","worker":"p","cores":1,"ram_gb":1,"running":[1]})"},
      {false, R"({"type":"hello","worker":"p","cores":-3,"ram_gb":1})"},
      {false, R"({"type":"hello","worker":"p","cores":1e300,"ram_gb":1})"},
      {false, R"({"type":"hello","worker":"p","cores":18446744073709551615,"ram_gb":1})"},
      {false, R"({"type":"hello","cores":1,"ram_gb":1})"},
      {false, R"({"type":"hello","worker":"p","cores":1,"ram_gb":1,"finished":[5]})"},
      {false,
       R"({"type":"hello","worker":"p","cores":1,"ram_gb":1,"finished":[{"run_id":"0123456789abcdef","outcome":"success","cases":[{"name":1}]}]})"},
      {false, R"({"type":"hello","worker":"p","cores":1,"ram_gb":1,"shared_disk":"yes"})"},
      {false, R"({"type":"hello","worker":"p","cores":1,"ram_gb":1,"job_acks":1})"},
      {false, R"([1,2])"},
      {false, R"(not json)"},
      {false, R"({"type":"log","run_id":"0123456789abcdef","data":"x"})"},  // before hello
      {true, R"({"type":"log","run_id":"0123456789abcdef","data":5})"},
      {true, R"({"type":"log","run_id":"../../x","data":"x"})"},
      {true, R"({"type":"result","run_id":5,"outcome":"success"})"},
      {true,
       R"({"type":"result","run_id":"0123456789abcdef","outcome":"success","exit_code":"0"})"},
      {true,
       R"({"type":"result","run_id":"0123456789abcdef","outcome":"success","cases":{"a":1}})"},
      {true, R"({"type":"result","run_id":"0123456789abcdef","outcome":"success","end":-1})"},
      {true, R"({"type":"result","run_id":"0123456789abcdef","outcome":"success","log":5})"},
      {true, R"({"type":"nope"})"},
      {true, kHello},  // a second hello
  };
  int n = 0;
  for (const auto& [hello_first, message] : bad) {
    WsClient client(server_->port(), "/api/worker", token());
    ASSERT_TRUE(client.connected());
    if (hello_first) {
      json hello = json::parse(kHello);
      hello["worker"] = "probe-" + std::to_string(n++);
      ASSERT_TRUE(client.send(hello.dump()));
    }
    ASSERT_TRUE(client.send(message));
    const auto reason = client.close_reason();
    ASSERT_TRUE(reason.has_value()) << message;
    EXPECT_FALSE(reason->empty()) << message;
  }
  // The server still serves, and its own worker is still connected and unchanged.
  ASSERT_EQ(server_->get("/api/repos").size(), 1u);
  const json local = worker("local-0");
  EXPECT_EQ(local["connected"], true);
  EXPECT_EQ(local["cores"], 2);
  EXPECT_FALSE(fs::exists(dir_.path() + "/x.log"));
}

TEST_F(SecurityWorkerTest, Item7_WithoutTheTokenNoJobNoDownloadNoUpload) {
  start(0);
  struct stat st {};
  ASSERT_EQ(::stat((data() + "/worker.token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(token().size(), 64u);
  ASSERT_EQ(server_->post("/api/repos/app/branches/main/test", R"({"enabled": true})").first, 200);
  for (const std::string& given : {std::string(), std::string(64, 'a'), token() + "x"}) {
    // Refused before the upgrade: 401, never a WebSocket.
    WsClient rogue(server_->port(), "/api/worker", given);
    EXPECT_FALSE(rogue.connected());
    const std::string auth = given.empty() ? "" : "-H 'Authorization: Bearer " + given + "' ";
    EXPECT_EQ(
        curl(auth +
             "-H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' "
             "-H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' " +
             shell_quote(server_->url("/api/worker"))),
        401);
  }
  EXPECT_TRUE(workers().empty()) << workers().dump();
  EXPECT_TRUE(runs("").empty());
  const std::string build = "/api/artifacts/builds/" + std::string(64, 'c');
  for (const std::string& auth :
       {std::string(), "-H 'Authorization: Bearer " + std::string(64, 'a') + "'"}) {
    EXPECT_EQ(curl(auth + " " + shell_quote(server_->url("/api/source/app/" + sha_))), 401);
    EXPECT_EQ(curl(auth + " " + shell_quote(server_->url(build))), 401);
    EXPECT_EQ(curl(auth + " " + shell_quote(server_->url(build + "/bin.tar"))), 401);
    EXPECT_EQ(curl(auth + " --data-binary x " + shell_quote(server_->url(build + "/bin.tar"))),
              401);
    EXPECT_EQ(curl(auth + " --data-binary x " +
                   shell_quote(server_->url("/api/artifacts/runs/0123456789abcdef"))),
              401);
  }
  EXPECT_FALSE(fs::exists(data() + "/artifacts/builds/" + std::string(64, 'c')));
  EXPECT_FALSE(fs::exists(data() + "/artifacts/sources"));
}

TEST_F(SecurityWorkerTest, Item7_ReportsOnAnotherWorkersRunChangeNothing) {
  start(0);
  auto good = remote_worker("good");
  ASSERT_EQ(server_->post("/api/repos/app/branches/main/test", R"({"enabled": true})").first, 200);
  const json run = running_run("slow/linux");
  ASSERT_TRUE(run.is_object()) << runs("").dump(2);
  ASSERT_EQ(run["worker"], "good");
  const std::string id = run["id"];
  ASSERT_TRUE(eventually([&] {
    return capture("curl -s " + server_->url("/api/runs/" + id + "/log")).find("started") !=
           std::string::npos;
  }));

  // An insider with the token, as another worker: a forged result and log for good's run, in
  // its hello and as messages.
  const json forged = {{"type", "result"},
                       {"run_id", id},
                       {"outcome", "success"},
                       {"exit_code", 0},
                       {"message", "forged"},
                       {"cases", json::array()},
                       {"log", "INJECTED in a result\n"}};
  FakeWorker fake(server_->port(), token(), "rogue", 1, 0,
                  {{"running", json::array({id})}, {"finished", json::array({forged})}});
  ASSERT_TRUE(fake.connected());
  WsClient& rogue = fake.socket();
  rogue.send(json{{"type", "log"}, {"run_id", id}, {"data", "INJECTED\n"}}.dump());
  rogue.send(forged.dump());
  rogue.send(R"({"type":"heartbeat"})");
  ASSERT_TRUE(eventually([&] { return worker("rogue")["connected"] == true; }, 30));
  // No ack and no cancel for a run that is not its own.
  while (auto message = rogue.read(2)) {
    EXPECT_EQ(message->find(id), std::string::npos) << *message;
  }
  const json after = server_->get("/api/runs/" + id);
  EXPECT_EQ(after["state"], "running") << after.dump(2);
  EXPECT_EQ(after["worker"], "good");
  EXPECT_EQ(after["detail"], "");
  EXPECT_EQ(capture("curl -s " + server_->url("/api/runs/" + id + "/log")).find("INJECTED"),
            std::string::npos);
  EXPECT_EQ(worker("good")["running"], json({id}));
}

TEST_F(SecurityWorkerTest, Item7_HelloWithAConnectedWorkersIdIsRefused) {
  start(1);
  ASSERT_TRUE(eventually([&] { return worker("local-0")["connected"] == true; }, 30));
  const json before = worker("local-0");
  WsClient rogue(server_->port(), "/api/worker", token());
  ASSERT_TRUE(rogue.connected());
  rogue.send(R"({"type":"hello","worker":"local-0","cores":64,"ram_gb":64,"host":"evil"})");
  EXPECT_NE(rogue.close_reason().value_or("").find("already connected"), std::string::npos);
  const json after = worker("local-0");
  EXPECT_EQ(after["connected"], true);
  EXPECT_EQ(after["host"], before["host"]);
  EXPECT_EQ(after["cores"], 2);
  // local-0 still works: it runs the branch's build.
  ASSERT_EQ(server_->post("/api/repos/app/branches/main/test", R"({"enabled": true})").first, 200);
  ASSERT_TRUE(eventually(
      [&] {
        const json b = runs("build/linux");
        return b.size() == 1 && b[0]["state"] == "succeeded" && b[0]["worker"] == "local-0";
      },
      90))
      << runs("").dump(2);
}

TEST_F(SecurityWorkerTest, Item7_RunsEndAfterTheMaximumDuration) {
  // 0.005 hours: 18 s, enough for the build, not for the test that sleeps.
  start(1, {"--max-run-hours", "0.005"});
  ASSERT_EQ(server_->post("/api/repos/app/branches/main/test", R"({"enabled": true})").first, 200);
  const json run = running_run("slow/linux");
  ASSERT_TRUE(run.is_object()) << runs("").dump(2);
  const std::string id = run["id"];
  ASSERT_TRUE(
      eventually([&] { return server_->get("/api/runs/" + id)["state"] != "running"; }, 60));
  const json after = server_->get("/api/runs/" + id);
  EXPECT_EQ(after["state"], "infra_failed");
  EXPECT_NE(after["detail"].get<std::string>().find("maximum run duration"), std::string::npos);
  EXPECT_EQ(runs("build/linux")[0]["state"], "succeeded");
}

TEST_F(SecurityWorkerTest, Item4_UploadsOnlyFromTheRunsWorkerWhileItIsActive) {
  start(0);
  auto good = remote_worker("good");
  ASSERT_EQ(server_->post("/api/repos/app/branches/main/test", R"({"enabled": true})").first, 200);
  const json test = running_run("slow/linux");
  ASSERT_TRUE(test.is_object());
  const json build = runs("build/linux")[0];
  ASSERT_EQ(build["state"], "succeeded") << build.dump(2);
  const std::string hash = build["hash"];
  const std::string payload = worker_dir_.path() + "/payload";
  std::ofstream(payload) << "not what the build made";
  const std::string stored = data() + "/artifacts/builds/" + hash;
  const auto listing_before = capture("ls -la " + shell_quote(stored));
  // With the worker token but no (or a made-up) upload token: the finished build, a build no
  // run is making, the running test's record, and a finished run's record.
  for (const std::string& t : {std::string(), std::string(64, 'f')}) {
    EXPECT_EQ(upload("/api/artifacts/builds/" + hash + "/extra.tar", payload, t), 403);
    EXPECT_EQ(upload("/api/artifacts/builds/" + hash + "/complete.json", payload, t), 403);
    EXPECT_EQ(upload("/api/artifacts/builds/" + std::string(64, 'd') + "/bin.tar", payload, t),
              403);
    EXPECT_EQ(upload("/api/artifacts/runs/" + test["id"].get<std::string>(), payload, t), 403);
    EXPECT_EQ(upload("/api/artifacts/runs/" + build["id"].get<std::string>(), payload, t), 403);
  }
  EXPECT_EQ(capture("ls -la " + shell_quote(stored)), listing_before);
  EXPECT_FALSE(fs::exists(data() + "/artifacts/builds/" + std::string(64, 'd')));
  EXPECT_FALSE(fs::exists(data() + "/artifacts/runs/" + test["id"].get<std::string>()));
  // The web UI downloads the build's artifacts without the token, under the run.
  const json artifacts = server_->get("/api/runs/" + build["id"].get<std::string>() + "/artifacts");
  ASSERT_EQ(artifacts.size(), 1u) << artifacts.dump();
  EXPECT_EQ(artifacts[0]["url"],
            "/api/runs/" + build["id"].get<std::string>() + "/artifacts/bin.tar");
  EXPECT_EQ(curl(shell_quote(server_->url(artifacts[0]["url"]))), 200);
}

TEST_F(SecurityWorkerTest, Item4_AnUploadTokenOpensOnlyItsOwnActiveRun) {
  start(0);
  // An insider with the worker token that really gets jobs: the build's, then the test's.
  FakeWorker rogue(server_->port(), token(), "rogue");
  ASSERT_TRUE(rogue.connected());
  ASSERT_EQ(server_->post("/api/repos/app/branches/main/test", R"({"enabled": true})").first, 200);
  const std::optional<FakeJob> build = rogue.job("build/linux");
  ASSERT_TRUE(build.has_value());
  const std::string hash = server_->get("/api/runs/" + build->run_id)["hash"];
  const std::string payload = worker_dir_.path() + "/payload";
  std::ofstream(payload) << "not what the build made";
  const std::string other_hash(64, 'd');
  const std::string other_run = "0123456789abcdef";
  // The build's token, while the build is active: not for another build, nor another run.
  EXPECT_EQ(
      upload("/api/artifacts/builds/" + other_hash + "/bin.tar", payload, build->upload_token),
      403);
  EXPECT_EQ(upload("/api/artifacts/runs/" + other_run, payload, build->upload_token), 403);
  ASSERT_TRUE(rogue.report(build->run_id, "success"));
  const std::optional<FakeJob> test = rogue.job("slow/linux");
  ASSERT_TRUE(test.has_value());
  // The test's token: not for the build (of its dependency) nor for the build's record; the
  // ended build's token: nothing, not even its own record any more.
  EXPECT_EQ(upload("/api/artifacts/builds/" + hash + "/bin.tar", payload, test->upload_token), 403);
  EXPECT_EQ(upload("/api/artifacts/runs/" + build->run_id, payload, test->upload_token), 403);
  EXPECT_EQ(upload("/api/artifacts/builds/" + hash + "/bin.tar", payload, build->upload_token),
            403);
  EXPECT_EQ(upload("/api/artifacts/runs/" + build->run_id, payload, build->upload_token), 403);
  EXPECT_EQ(upload("/api/artifacts/runs/" + test->run_id, payload, build->upload_token), 403);
  EXPECT_FALSE(fs::exists(data() + "/artifacts/builds/" + hash));
  EXPECT_FALSE(fs::exists(data() + "/artifacts/builds/" + other_hash));
  EXPECT_FALSE(fs::exists(data() + "/artifacts/runs"));
  // The test's own token opens its own record: the refusals above were about the token.
  const std::string record = worker_dir_.path() + "/record";
  fs::create_directories(record);
  std::ofstream(record + "/test_result.json") << "{}";
  ASSERT_EQ(capture("tar -C " + shell_quote(record) + " -cf " + shell_quote(payload) +
                    " test_result.json && echo ok"),
            "ok\n");
  EXPECT_EQ(upload("/api/artifacts/runs/" + test->run_id, payload, test->upload_token), 200);
  EXPECT_TRUE(fs::exists(data() + "/artifacts/runs/" + test->run_id + "/test_result.json"));
}

TEST_F(SecurityWorkerTest, Item2_LiveLogTakesOnlyRunIds) {
  start(0);
  std::ofstream(data() + "/secret.log") << "SECRET";
  for (const std::string path :
       {"/api/runs/..%2Fsecret/log/live", "/api/runs/..%2F..%2Fdata%2Fworker.token%00/log/live",
        "/api/runs/..%2Fstate.db%00/log/live", "/api/runs/ABCDEF0123456789/log/live"}) {
    // Refused before the upgrade: 400 (a NUL by the HTTP layer, anything else by its grammar).
    WsClient viewer(server_->port(), path);
    EXPECT_FALSE(viewer.connected()) << path;
    while (auto message = viewer.read(10))
      ADD_FAILURE() << path << " sent " << message->substr(0, 80);
    EXPECT_EQ(
        curl("--path-as-is -H 'Connection: Upgrade' -H 'Upgrade: websocket' "
             "-H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' " +
             shell_quote(server_->url(path))),
        400)
        << path;
  }
  EXPECT_EQ(server_->get("/api/repos").size(), 1u);
}

// VmRSS of `pid` in KiB.
long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

TEST_F(SecurityWorkerTest, Item13_LargeLogViewerKeepsMemoryBoundedAndOthersFast) {
  const std::string id = finished_build();
  ASSERT_FALSE(id.empty());
  // The finished build's log made 200 MB long.
  constexpr size_t kMiB = 1 << 20, kSize = 200 * kMiB;
  {
    std::ofstream log(data() + "/logs/" + id + ".log", std::ios::binary | std::ios::trunc);
    const std::string line = std::string(1023, 'x') + "\n";
    std::string block;
    for (size_t i = 0; i < kMiB / line.size(); ++i) block += line;
    for (size_t i = 0; i < kSize / kMiB; ++i) log << block;
  }
  const pid_t pid = std::stoi(capture("pgrep -f -o -- '--data " + data() + "'"));
  const long before = rss_kib(pid);
  // A viewer that reads nothing for a while, then everything.
  WsClient viewer(server_->port(), "/api/runs/" + id + "/log/live");
  ASSERT_TRUE(viewer.connected());
  long peak = 0;
  // Other requests are served meanwhile (how fast is a benchmark's business, not a test's).
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(server_->get("/api/repos").size(), 1u);
    peak = std::max(peak, rss_kib(pid));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  size_t received = 0;
  while (auto chunk = viewer.read(30)) {
    received += chunk->size();
    if (received % (20 * kMiB) < chunk->size()) peak = std::max(peak, rss_kib(pid));
  }
  EXPECT_EQ(received, kSize);
  EXPECT_EQ(viewer.close_reason(), "");
  if (!fixtures::kSanitized) {
    EXPECT_LT(peak - before, 64 * 1024) << "KiB before " << before << ", peak " << peak;
  }
}

// Whether `text` is valid UTF-8 (what a browser requires of each text message).
bool is_utf8(const std::string& text) {
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > text.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

TEST_F(SecurityWorkerTest, Item13_LogChunksEndOnWholeCharacters) {
  const std::string id = finished_build();
  ASSERT_FALSE(id.empty());
  // Characters of 2, 3 and 4 bytes across the 64 KiB chunk boundaries.
  std::string log = std::string(65535, 'x') + "\u00e9" + std::string(65533, 'y') + "\u20ac" +
                    std::string(65534, 'z') + "\U0001F600" + "\n";
  std::ofstream(data() + "/logs/" + id + ".log", std::ios::binary | std::ios::trunc) << log;
  WsClient viewer(server_->port(), "/api/runs/" + id + "/log/live");
  ASSERT_TRUE(viewer.connected());
  std::string received;
  while (auto chunk = viewer.read(30)) {
    EXPECT_TRUE(is_utf8(*chunk)) << "a chunk of " << chunk->size() << " bytes after "
                                 << received.size();
    received += *chunk;
  }
  EXPECT_EQ(received, log);
}

}  // namespace
}  // namespace testlooper::server
