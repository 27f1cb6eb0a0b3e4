// Issue 15, deployments of docker environments, through the real server, its real local worker
// and the real Docker engine: the terminal is an exec in the deployment's container (a file only
// its image has, its inputs staged as for a test, resizes), the container stays up while the
// deployment lives and is removed when it is shut down, and an exposed port of the container
// answers through the server. Skipped, saying why, without an engine or the base image
// (scripts/docker-env prepares both).
#include <gtest/gtest.h>

#include <string>

#include "environments/docker_probe.h"
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
using fixtures::WsClient;
using nlohmann::json;
using testing::containers_of_run;
using testing::docker_skip_reason;

// An image with a file the worker's machine does not have; a build whose file the deployment
// gets in its inputs; a deployment whose command ends at once, and one serving HTTP on a port
// it exposes (perl, which the minimal base image has), listening on all the container's
// addresses as a published port needs.
std::string definitions(int port) {
  return R"(looper_version: 5
environments:
  deb:
    platform: linux
    image:
      dockerfile_contents: "FROM testlooper-base:bookworm\nRUN echo only-in-the-image > /etc/testlooper-mark\n"
builds:
  build/deb:
    dependencies: {src: HEAD}
    stages:
      - command: 'mkdir -p $TEST_BUILD_OUTPUT_DIR/bin && echo built > $TEST_BUILD_OUTPUT_DIR/bin/out.txt'
        artifacts: [{name: bin, directory: bin}]
deployments:
  shell/deb:
    dependencies: {whole: build/deb}
    command: 'echo deployed > started-by-the-command.txt'
  web/deb:
    portExpose: {http: )" +
         std::to_string(port) + R"(}
    command: |
      exec perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalAddr => "0.0.0.0", LocalPort => )" +
         std::to_string(port) +
         R"(, Listen => 5, ReuseAddr => 1) or die "listen: $!"; while ($c = $s->accept) { while (<$c>) { last if /^\r?$/ } print $c "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello-from-the-container\n"; close $c }'
)";
}

class DeployDockerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = docker_skip_reason(); !why.empty()) {
      GTEST_SKIP() << "docker deployment tests skipped: " << why;
    }
    app_.write("testlooper.yml", definitions(port_));
    sha_ = app_.commit("a docker image, a build and deployments in it");
    server_ = std::make_unique<ServerProcess>(std::vector<std::string>{
        "--repos", dir_.path() + "/repos", "--data", dir_.path() + "/data", "--port", "0",
        "--workers", "1", "--worker-cores", "2", "--worker-ram-gb", "2", "--poll-seconds", "0.3",
        "--extra-runs", "0"});
    ASSERT_TRUE(eventually(
        [&] { return server_->get("/api/repos/app/commits/" + sha_).contains("objects"); }, 60));
  }

  // Boots deployment `name` (its '/' encoded) and waits until it runs (the image is built
  // first); its id.
  std::string boot_running(const std::string& encoded_name) {
    const auto [status, body] = server_->post(
        "/api/repos/app/commits/" + sha_ + "/deployments/" + encoded_name + "/boot", "{}");
    EXPECT_EQ(status, 200) << body.dump();
    if (status != 200) return "";
    const std::string id = body["id"];
    EXPECT_TRUE(eventually([&] { return state(id) == "running"; }, 240))
        << server_->get("/api/deployments/" + id).dump();
    return id;
  }

  std::string state(const std::string& id) const {
    const json d = server_->get("/api/deployments/" + id);
    return d.is_object() && d.contains("state") ? d["state"].get<std::string>() : "";
  }

  json worker() const {
    const json workers = server_->get("/api/workers");
    return workers.is_array() && workers.size() == 1 ? workers[0] : json();
  }

  TempDir dir_;
  GitFixtureRepo app_{dir_.path() + "/repos/app"};
  int port_ = fixtures::free_port();
  std::string sha_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(DeployDockerTest, ADockerDeploymentsTerminalRunsInsideItsImage) {
  const std::string id = boot_running("shell%2Fdeb");
  ASSERT_FALSE(id.empty());
  EXPECT_FALSE(containers_of_run(id).empty()) << "no container of the deployment runs";

  WsClient viewer(server_->port(), "/api/deployments/" + id + "/terminal");
  ASSERT_TRUE(viewer.connected());
  std::string screen;
  // The image's own file (upper-cased: the typed line echoed back does not match); its inputs
  // staged as for a test, its working directory; the build's file; what its command left.
  viewer.send_binary(
      "tr a-z A-Z < /etc/testlooper-mark; echo \"in:$TEST_INPUTS:end\"; [ \"$PWD\" = "
      "\"$TEST_INPUTS\" ] && echo \"same:$((1+1))\"; find \"$TEST_INPUTS\" -name out.txt -exec "
      "cat {} + | tr a-z A-Z; until [ -e started-by-the-command.txt ]; do sleep 0.1; done; tr a-z "
      "A-Z "
      "< started-by-the-command.txt\n");
  ASSERT_TRUE(read_until(viewer, screen, "ONLY-IN-THE-IMAGE")) << screen;
  ASSERT_TRUE(read_until(viewer, screen, "in:/[^:\\r\\n]+:end")) << screen;
  ASSERT_TRUE(read_until(viewer, screen, "same:2")) << screen;
  ASSERT_TRUE(read_until(viewer, screen, "[^A-Z]BUILT\\r?\\n")) << screen;
  // A resize reaches the exec's terminal (sent at the prompt: see deploy_test.cc).
  ASSERT_TRUE(read_until(viewer, screen, "[^A-Z]DEPLOYED\\r?\\n[^\\n]*[#$] ")) << screen;
  ASSERT_TRUE(viewer.send(R"({"type": "resize", "cols": 100, "rows": 40})"));
  viewer.send_binary("stty size\n");
  ASSERT_TRUE(read_until(viewer, screen, "[^0-9]40 100\\r?\\n")) << screen;
  // A resize the shell undoes right after (what readline does when a resize comes as it starts
  // a line) is made again.
  ASSERT_TRUE(viewer.send(R"({"type": "resize", "cols": 90, "rows": 30})"));
  viewer.send_binary(
      "stty cols 80 rows 24; for i in $(seq 100); do s=$(stty size); [ \"$s\" = '30 90' ] && "
      "break; sleep 0.05; done; echo \"size:$s:\"\n");
  ASSERT_TRUE(read_until(viewer, screen, "size:[0-9 ]+:")) << screen;
  EXPECT_NE(screen.find("size:30 90:"), std::string::npos) << screen;
  EXPECT_EQ(worker()["cores_used"], 1) << worker().dump();
  // Still up, its container too, until it is shut down: then the container is gone.
  EXPECT_EQ(state(id), "running");
  EXPECT_FALSE(containers_of_run(id).empty());
  const auto [status, body] = server_->post("/api/deployments/" + id + "/shutdown", "{}");
  EXPECT_EQ(status, 200) << body.dump();
  EXPECT_TRUE(eventually([&] { return containers_of_run(id).empty(); }, 60))
      << containers_of_run(id);
  EXPECT_TRUE(eventually([&] { return worker()["cores_used"] == 0; }, 30)) << worker().dump();
}

TEST_F(DeployDockerTest, AnExposedPortOfADockerDeploymentAnswersThroughTheServer) {
  const std::string id = boot_running("web%2Fdeb");
  ASSERT_FALSE(id.empty());
  const std::string url = server_->url("/api/deployments/" + id + "/ports/http/page.txt");
  ASSERT_TRUE(eventually(
      [&] {
        return fixtures::capture("curl -s " + url).find("hello-from-the-container") !=
               std::string::npos;
      },
      60))
      << fixtures::capture("curl -s " + url);
  // The terminal is in the same container as the server: it reaches the port on localhost.
  WsClient viewer(server_->port(), "/api/deployments/" + id + "/terminal");
  ASSERT_TRUE(viewer.connected());
  std::string screen;
  viewer.send_binary("exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(port_) +
                     " && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && tr a-z A-Z <&3\n");
  ASSERT_TRUE(read_until(viewer, screen, "HELLO-FROM-THE-CONTAINER")) << screen;
  server_->post("/api/deployments/" + id + "/shutdown", "{}");
  EXPECT_TRUE(eventually([&] { return containers_of_run(id).empty(); }, 60))
      << containers_of_run(id);
  EXPECT_EQ(fixtures::capture("curl -s -o /dev/null -w '%{http_code}' " + url), "404");
}

}  // namespace
}  // namespace testlooper::server
