// Issue 15, deployments and terminals, through the real server and its real local worker: a
// host deployment waits for its build, runs with its inputs staged, and its terminal (a PTY on
// the worker, relayed over WebSockets) answers typed commands, follows a resize and shows the
// same screen to a second viewer; shutting it down frees the worker's cores; an idle deployment
// stops by itself; a restarted server knows its deployments as stopped.
#include <dirent.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <regex>
#include <string>

#include "server_fixture.h"
#include "terminal_reader.h"
#include "ws_client.h"

namespace testlooper::server {
namespace {

using fixtures::eventually;
using fixtures::GitFixtureRepo;
using fixtures::read_until;
using fixtures::ServerProcess;
using fixtures::TempDir;
using fixtures::WorkerProcess;
using fixtures::WsClient;
using nlohmann::json;

constexpr const char* kDefinitions = R"(looper_version: 5
environments: {linux: {platform: linux, image: {host: true}}}
builds:
  build/linux:
    dependencies: {src: HEAD}
    stages:
      - command: 'mkdir -p $TEST_BUILD_OUTPUT_DIR/bin && echo built > $TEST_BUILD_OUTPUT_DIR/bin/out.txt'
        artifacts: [{name: bin, directory: bin}]
tests:
  failing/linux:
    dependencies: {whole: build/linux}
    command: 'touch ran.txt; exit 1'
deployments:
  shell/linux:
    dependencies: {whole: build/linux}
    command: 'sleep 2; echo deployed'
)";

class DeployTest : public ::testing::Test {
 protected:
  DeployTest() : app_(dir_.path() + "/repos/app") {
    app_.write("testlooper.yml", kDefinitions);
    sha_ = app_.commit("a build and a deployment of it");
  }

  std::unique_ptr<ServerProcess> start(const std::string& idle_seconds = "3600") {
    auto server = std::make_unique<ServerProcess>(std::vector<std::string>{
        "--repos", dir_.path() + "/repos", "--data", dir_.path() + "/data", "--port", "0",
        "--workers", "1", "--worker-cores", "2", "--worker-ram-gb", "2", "--poll-seconds", "0.3",
        "--extra-runs", "0", "--deployment-idle-seconds", idle_seconds});
    EXPECT_TRUE(eventually(
        [&] { return server->get("/api/repos/app/commits/" + sha_).contains("objects"); }, 60));
    return server;
  }

  // Boots shell/linux (its name's '/' encoded) and waits until it runs; its id.
  std::string boot_running(const ServerProcess& server) {
    const auto [status, body] =
        server.post("/api/repos/app/commits/" + sha_ + "/deployments/shell%2Flinux/boot", "{}");
    EXPECT_EQ(status, 200) << body.dump();
    if (status != 200) return "";
    EXPECT_EQ(body["state"], "waiting") << body.dump();
    const std::string id = body["id"];
    EXPECT_TRUE(eventually([&] { return state(server, id) == "running"; }, 120))
        << server.get("/api/deployments/" + id).dump();
    return id;
  }

  static std::string state(const ServerProcess& server, const std::string& id) {
    const json d = server.get("/api/deployments/" + id);
    return d.is_object() && d.contains("state") ? d["state"].get<std::string>() : "";
  }

  static json worker(const ServerProcess& server) {
    const json workers = server.get("/api/workers");
    return workers.is_array() && workers.size() == 1 ? workers[0] : json();
  }

  TempDir dir_;
  GitFixtureRepo app_;
  std::string sha_;
};

// `testlooper shell --server URL ID` with its stdin and stdout on pipes (no terminal: no raw
// mode), in a process group of its own.
class ShellProcess {
 public:
  ShellProcess(const std::string& url, const std::string& id) {
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], STDIN_FILENO);
      dup2(out[1], STDOUT_FILENO);
      for (int fd : {in[0], in[1], out[0], out[1]}) close(fd);
      setpgid(0, 0);
      execl(TL_BINARY, TL_BINARY, "shell", "--server", url.c_str(), id.c_str(), nullptr);
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    in_ = in[1];
    out_ = out[0];
  }
  ~ShellProcess() {
    if (in_ >= 0) close(in_);
    close(out_);
    if (pid_ > 0) {
      kill(-pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  void type(const std::string& text) { (void)!write(in_, text.data(), text.size()); }
  // Reads its stdout until it holds `text`; false after 60 s or at its end.
  bool read_until(const std::string& text) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (screen_.find(text) == std::string::npos) {
      if (std::chrono::steady_clock::now() > until) return false;
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, 200) <= 0) continue;
      char chunk[4096];
      const ssize_t n = read(out_, chunk, sizeof(chunk));
      if (n <= 0) return false;
      screen_.append(chunk, static_cast<size_t>(n));
    }
    return true;
  }
  // Ends its stdin; its exit status.
  int finish() {
    close(in_);
    in_ = -1;
    int status = -1;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  const std::string& screen() const { return screen_; }

 private:
  pid_t pid_ = -1;
  int in_ = -1;
  int out_ = -1;
  std::string screen_;
};

// The pids of the processes that carry run `id`'s marker in their environment: its commands'
// (TESTLOOPER_RUN_ID) or its terminal's (TESTLOOPER_TERMINAL).
std::vector<pid_t> marked(const std::string& id, const std::string& marker = "TESTLOOPER_RUN_ID") {
  const std::string entry = marker + "=" + id;
  std::vector<pid_t> out;
  DIR* proc = opendir("/proc");
  while (dirent* d = proc ? readdir(proc) : nullptr) {
    const pid_t pid = atoi(d->d_name);
    if (pid <= 0) continue;
    std::ifstream in("/proc/" + std::to_string(pid) + "/environ");
    const std::string env{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (("\0" + env + std::string(1, '\0')).find('\0' + entry + '\0') != std::string::npos)
      out.push_back(pid);
  }
  if (proc) closedir(proc);
  return out;
}

TEST_F(DeployTest, TerminalOfAHostDeploymentSharedByTwoViewersUntilShutdown) {
  auto server = start();
  // Bad names and ids are refused before anything happens.
  EXPECT_EQ(server->post("/api/repos/app/commits/" + sha_ + "/deployments/nope/boot", "{}").first,
            404);
  EXPECT_EQ(server->post("/api/repos/app/commits/1234/deployments/shell%2Flinux/boot", "{}").first,
            400);
  EXPECT_EQ(server->post("/api/deployments/XYZ/shutdown", "{}").first, 400);
  EXPECT_EQ(server->post("/api/deployments/0123456789abcdef/shutdown", "{}").first, 404);

  const std::string id = boot_running(*server);
  ASSERT_FALSE(id.empty());
  const json d = server->get("/api/deployments/" + id);
  EXPECT_EQ(d["repo"], "app");
  EXPECT_EQ(d["commit"], sha_);
  EXPECT_EQ(d["name"], "shell/linux");
  EXPECT_FALSE(d["worker"].get<std::string>().empty());
  EXPECT_GT(d["started"].get<double>(), 0);
  EXPECT_EQ(server->get("/api/deployments")["deployments"][0]["id"], id);
  // Its build ran first; it holds its core on the worker.
  json w = worker(*server);
  EXPECT_EQ(w["cores_used"], 1) << w.dump();
  EXPECT_EQ(w["deployments"], json::array({id})) << w.dump();

  WsClient one(server->port(), "/api/deployments/" + id + "/terminal");
  ASSERT_TRUE(one.connected());
  std::string screen;
  // The shell outlives the deployment's command (which ends while this runs), and so does a
  // job it started; the job ends with the deployment.
  one.send_binary("sleep 3600 & sleep 3; echo \"W$((4+4))W\"\n");
  ASSERT_TRUE(read_until(one, screen, "W8W")) << screen;
  EXPECT_EQ(marked(id, "TESTLOOPER_TERMINAL").size(), 2u);  // the shell and its job
  // Its inputs are staged as for a test: the build's file is under $TEST_INPUTS.
  one.send_binary(
      "echo \"in:$TEST_INPUTS:end\"; find \"$TEST_INPUTS\" -name out.txt -exec cat {} + | tr a-z "
      "A-Z\n");
  ASSERT_TRUE(read_until(one, screen, "in:/[^:\\r\\n]+:end")) << screen;
  // A resize reaches the shell's terminal. Sent at the prompt: readline writes back the size it
  // read as it starts a line (the worker makes a resize undone so again, worker/terminal.h), and
  // its prompt comes after that.
  ASSERT_TRUE(read_until(one, screen, "[^A-Z]BUILT\\r?\\n[^\\n]*[#$] ")) << screen;
  ASSERT_TRUE(one.send(R"({"type": "resize", "cols": 100, "rows": 40})"));
  one.send_binary("stty size\n");
  ASSERT_TRUE(read_until(one, screen, "[^0-9]40 100\\r?\\n")) << screen;
  one.send_binary("echo \"pid:$$:\"\n");
  ASSERT_TRUE(read_until(one, screen, "pid:[0-9]+:")) << screen;
  std::smatch pid_match;
  const std::string after_echo = screen;
  std::regex_search(after_echo, pid_match, std::regex("pid:([0-9]+):"));
  const pid_t shell = std::stoi(pid_match[1]);

  // A second viewer gets the screen so far, then what either types.
  WsClient two(server->port(), "/api/deployments/" + id + "/terminal");
  ASSERT_TRUE(two.connected());
  std::string screen_two;
  ASSERT_TRUE(read_until(two, screen_two, "[^0-9]40 100\\r?\\n")) << screen_two;
  ASSERT_TRUE(read_until(two, screen_two, "[^A-Z]BUILT\\r?\\n")) << screen_two;
  two.send_binary("echo \"X$((6*7))Y\"\n");
  ASSERT_TRUE(read_until(one, screen, "X42Y")) << screen;
  ASSERT_TRUE(read_until(two, screen_two, "X42Y")) << screen_two;
  EXPECT_EQ(server->get("/api/deployments/" + id)["viewers"], 2);
  {
    // `testlooper shell` is one more viewer; it ends with its stdin.
    ShellProcess cli(server->url(""), id);
    ASSERT_TRUE(cli.read_until("X42Y")) << cli.screen();
    cli.type("echo \"S$((3+4))S\"\n");
    ASSERT_TRUE(cli.read_until("S7S")) << cli.screen();
    ASSERT_TRUE(read_until(one, screen, "S7S")) << screen;
    const int status = cli.finish();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  EXPECT_TRUE(eventually([&] { return server->get("/api/deployments/" + id)["viewers"] == 2; }));

  // Shut down: the viewers are told, the shell is gone and the core is free again.
  const auto [status, body] = server->post("/api/deployments/" + id + "/shutdown", "{}");
  EXPECT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body["state"], "stopped");
  const auto reason = one.close_reason(30);
  ASSERT_TRUE(reason.has_value());
  EXPECT_NE(reason->find("stopped"), std::string::npos) << *reason;
  EXPECT_TRUE(eventually([&] { return worker(*server)["cores_used"] == 0; }, 30))
      << worker(*server).dump();
  EXPECT_EQ(worker(*server)["deployments"], json::array());
  EXPECT_TRUE(eventually([&] { return kill(shell, 0) != 0; }, 30)) << "the shell still runs";
  EXPECT_TRUE(eventually([&] { return marked(id, "TESTLOOPER_TERMINAL").empty(); }, 30))
      << "the shell's job still runs";
  EXPECT_TRUE(eventually([&] { return marked(id).empty(); }, 30))
      << "the deployment's commands still run";
  // A stopped deployment has no terminal.
  WsClient late(server->port(), "/api/deployments/" + id + "/terminal");
  EXPECT_FALSE(late.read(30).has_value());
}

TEST_F(DeployTest, AnIdleDeploymentStopsAndARestartedServerKnowsItsDeployments) {
  auto server = start("1");
  const std::string id = boot_running(*server);
  ASSERT_FALSE(id.empty());
  {
    // Attached, it is not idle: it still runs after a command that takes longer than the limit.
    WsClient viewer(server->port(), "/api/deployments/" + id + "/terminal");
    ASSERT_TRUE(viewer.connected());
    std::string screen;
    viewer.send_binary("sleep 2.5; echo \"D$((1+1))D\"\n");
    ASSERT_TRUE(read_until(viewer, screen, "D2D")) << screen;
    EXPECT_EQ(state(*server, id), "running");
  }
  // Detached, it stops once idle for a second.
  ASSERT_TRUE(eventually([&] { return state(*server, id) == "stopped"; }, 60));
  const json d = server->get("/api/deployments/" + id);
  EXPECT_NE(d["detail"].get<std::string>().find("idle"), std::string::npos) << d.dump();
  EXPECT_TRUE(eventually([&] { return worker(*server)["cores_used"] == 0; }, 30));

  // A server killed outright (its worker with it) knows its deployment as stopped when it comes
  // back, and the deployment's shell went with the worker.
  server.reset();
  server = start();
  const std::string second = boot_running(*server);
  ASSERT_FALSE(second.empty());
  pid_t shell = 0;
  {
    WsClient viewer(server->port(), "/api/deployments/" + second + "/terminal");
    std::string screen;
    viewer.send_binary("echo \"pid:$$:\"\n");
    ASSERT_TRUE(read_until(viewer, screen, "pid:[0-9]+:")) << screen;
    std::smatch m;
    std::regex_search(screen, m, std::regex("pid:([0-9]+):"));
    shell = std::stoi(m[1]);
    server->stop(SIGKILL);
  }
  server = start();
  const json again = server->get("/api/deployments/" + second);
  EXPECT_EQ(again["state"], "stopped") << again.dump();
  EXPECT_EQ(again["detail"], "the server restarted") << again.dump();
  EXPECT_EQ(server->get("/api/deployments/" + id)["state"], "stopped");
  EXPECT_TRUE(eventually([&] { return kill(shell, 0) != 0; }, 30)) << "the shell still runs";
  EXPECT_TRUE(eventually([&] { return marked(id, "TESTLOOPER_TERMINAL").empty(); }, 30))
      << "the shell's job still runs";
  EXPECT_TRUE(eventually([&] { return marked(id).empty(); }, 30))
      << "the deployment's commands still run";
}

// "Debug this run": a deployment of a failed run's test, its inputs staged as for the run and its
// command not run, with a terminal to run it by hand.
TEST_F(DeployTest, DebuggingAFailedRunStagesItsInputs) {
  auto server = start();
  EXPECT_EQ(server->post("/api/runs/nope/debug", "{}").first, 400);
  EXPECT_EQ(server->post("/api/runs/0123456789abcdef/debug", "{}").first, 404);
  server->post("/api/repos/app/branches/main/test", R"({"enabled": true})");
  std::string run_id;
  ASSERT_TRUE(eventually(
      [&] {
        const json runs =
            server->get("/api/repos/app/commits/" + sha_ + "/runs?name=failing/linux");
        if (!runs.is_array()) return false;
        for (const auto& r : runs) {
          if (r["state"] == "failed") run_id = r["id"];
        }
        return !run_id.empty();
      },
      120));
  const auto [status, body] = server->post("/api/runs/" + run_id + "/debug", "{}");
  ASSERT_EQ(status, 200) << body.dump();
  const std::string id = body["id"];
  ASSERT_TRUE(eventually([&] { return state(*server, id) == "running"; }, 120))
      << server->get("/api/deployments/" + id).dump();
  const json d = server->get("/api/deployments/" + id);
  EXPECT_EQ(d["debug_run"], run_id);
  EXPECT_EQ(d["name"], "failing/linux");

  WsClient viewer(server->port(), "/api/deployments/" + id + "/terminal");
  ASSERT_TRUE(viewer.connected());
  std::string screen;
  // The build it depends on is staged; the test's own command (which makes ran.txt in its
  // working directory, the inputs) did not run.
  viewer.send_binary(
      "find \"$TEST_INPUTS\" -name out.txt -exec cat {} + | tr a-z A-Z; echo \"R$(test -e "
      "ran.txt; echo $?)R in:$PWD\"\n");
  ASSERT_TRUE(read_until(viewer, screen, "[^A-Z]BUILT\\r?\\n")) << screen;
  ASSERT_TRUE(read_until(viewer, screen, "R1R in:/")) << screen;
  EXPECT_EQ(server->post("/api/deployments/" + id + "/shutdown", "{}").first, 200);
  EXPECT_TRUE(eventually([&] { return worker(*server)["deployments"] == json::array(); }, 30));
}

// A deployment's processes (the stage that keeps it alive, its terminal's shell) die with a
// worker killed outright: the worker's lifeline ends them.
TEST_F(DeployTest, ADeploymentsProcessesDieWithAKilledWorker) {
  auto server = std::make_unique<ServerProcess>(std::vector<std::string>{
      "--repos", dir_.path() + "/repos", "--data", dir_.path() + "/data", "--port", "0",
      "--workers", "0", "--poll-seconds", "0.3", "--extra-runs", "0"});
  ASSERT_TRUE(eventually(
      [&] { return server->get("/api/repos/app/commits/" + sha_).contains("objects"); }, 60));
  auto worker = std::make_unique<WorkerProcess>(
      std::vector<std::string>{"--server", server->url(""), "--token-file",
                               dir_.path() + "/data/worker.token", "--dir", dir_.path() + "/w",
                               "--id", "killed", "--cores", "2", "--ram-gb", "2", "--shared-disk"},
      SIGKILL);
  const std::string id = boot_running(*server);
  ASSERT_FALSE(id.empty());
  {
    WsClient viewer(server->port(), "/api/deployments/" + id + "/terminal");
    std::string screen;
    // A job of the shell's own (a process group the shell's death does not end).
    viewer.send_binary("sleep 3600 & echo \"T$((2+3))T\"\n");
    ASSERT_TRUE(read_until(viewer, screen, "T5T")) << screen;
  }
  // Its command ended: the stage that keeps it alive runs, and its shell and the shell's job.
  ASSERT_TRUE(eventually([&] { return marked(id).size() >= 2; }, 30)) << marked(id).size();
  ASSERT_TRUE(eventually([&] { return marked(id, "TESTLOOPER_TERMINAL").size() >= 2; }, 30))
      << marked(id, "TESTLOOPER_TERMINAL").size();
  worker.reset();  // SIGKILL to the worker's process group
  const bool gone = eventually(
      [&] { return marked(id).empty() && marked(id, "TESTLOOPER_TERMINAL").empty(); }, 60);
  for (const pid_t pid : marked(id)) kill(pid, SIGKILL);  // what it left, not to leak
  for (const pid_t pid : marked(id, "TESTLOOPER_TERMINAL")) kill(pid, SIGKILL);
  EXPECT_TRUE(gone) << "processes of the deployment outlived its worker";
}

// A port a deployment exposes (portExpose) answers through the server.
TEST_F(DeployTest, AnExposedPortAnswersThroughTheServer) {
  const int port = fixtures::free_port();
  app_.write("testlooper.yml", std::string(kDefinitions) + R"(  web/linux:
    portExpose: {http: )" + std::to_string(port) +
                                   R"(}
    command: 'echo hello-through-the-server > page.txt && exec python3 -m http.server --bind 127.0.0.1 )" +
                                   std::to_string(port) + R"('
)");
  sha_ = app_.commit("a deployment serving a page");
  auto server = start();
  const auto [status, body] =
      server->post("/api/repos/app/commits/" + sha_ + "/deployments/web%2Flinux/boot", "{}");
  ASSERT_EQ(status, 200) << body.dump();
  const std::string id = body["id"];
  ASSERT_TRUE(eventually([&] { return state(*server, id) == "running"; }, 120));
  EXPECT_EQ(server->get("/api/deployments/" + id)["ports"], json::array({"http"}));
  const std::string url = server->url("/api/deployments/" + id + "/ports/http/page.txt");
  ASSERT_TRUE(eventually(
      [&] {
        return fixtures::capture("curl -s " + url).find("hello-through-the-server") !=
               std::string::npos;
      },
      60))
      << fixtures::capture("curl -s " + url);
  // Only the ports it declares, of running deployments.
  EXPECT_NE(fixtures::capture("curl -s -o /dev/null -w '%{http_code}' " +
                              server->url("/api/deployments/" + id + "/ports/nope/")),
            "200");
  EXPECT_EQ(fixtures::capture("curl -s -o /dev/null -w '%{http_code}' " +
                              server->url("/api/deployments/" + id + "/ports/nope/")),
            "404");
  server->post("/api/deployments/" + id + "/shutdown", "{}");
  EXPECT_EQ(fixtures::capture("curl -s -o /dev/null -w '%{http_code}' " + url), "404");
}

}  // namespace
}  // namespace testlooper::server
