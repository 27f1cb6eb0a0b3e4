// `testlooper run` of a docker test that uses its scoped docker (issue 15) through a tiny client
// (perl, in the base image; the docker CLI is not): it starts a long-running container, makes a
// network and a volume, is refused a bind mount of /etc, and exits. Nothing of it is left.
// Skipped (with the reason) when no docker engine or base image is there.
#include <gtest/gtest.h>

#include "cli/run_fixture.h"
#include "environments/docker_probe.h"

namespace testlooper::cli {
namespace {

using nlohmann::json;
using testing::object_named;
using testing::read_text;

// clang-format off
constexpr const char* kClient = R"PL(use strict;
use IO::Socket::UNIX;
sub call {
  my ($method, $path, $body) = @_;
  $body //= "";
  my $s = IO::Socket::UNIX->new(Peer => "/var/run/testlooper-docker.sock") or die "connect: $!";
  print $s "$method $path HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n" .
           "Content-Length: " . length($body) . "\r\nConnection: close\r\n\r\n$body";
  local $/;
  my $answer = <$s>;
  my ($status) = $answer =~ m{^HTTP/1\.1 (\d+)};
  return ($status, $answer);
}
$ENV{DOCKER_HOST} eq "unix:///var/run/testlooper-docker.sock" or die "DOCKER_HOST=$ENV{DOCKER_HOST}";
my ($status, $answer) = call("POST", "/v1.41/containers/create?name=sleeper",
                             '{"Image":"testlooper-base:bookworm","Cmd":["sleep","1000"]}');
$status == 201 or die "create: $answer";
my ($id) = $answer =~ /"Id":"(\w+)"/ or die "no id: $answer";
($status, $answer) = call("POST", "/v1.41/containers/$id/start");
$status == 204 or die "start: $answer";
($status, $answer) = call("POST", "/networks/create", '{"Name":"net"}');
$status == 201 or die "network: $answer";
($status, $answer) = call("POST", "/volumes/create", '{"Name":"data"}');
$status == 201 or die "volume: $answer";
($status, $answer) = call("POST", "/containers/create",
    '{"Image":"testlooper-base:bookworm","HostConfig":{"Binds":["/etc:/e"]}}');
$status == 403 or die "a bind mount of /etc: $answer";
($status, $answer) = call("GET", "/containers/json");
$answer =~ /tl-[^"]*-sleeper/ or die "list: $answer";
print "scoped docker ok\n";
)PL";
// clang-format on

class ScopedDockerRun : public testing::RunFixture {
 protected:
  void SetUp() override {
    const std::string reason = testlooper::testing::docker_skip_reason();
    if (!reason.empty()) GTEST_SKIP() << "docker tests skipped: " << reason;
  }
};

TEST_F(ScopedDockerRun, ATestThatStartsALongRunningContainerAndExitsLeavesNothing) {
  commit(
      "looper_version: 5\n"
      "environments:\n"
      "  deb: {platform: linux, image: {dockerfile_contents: \"FROM "
      "testlooper-base:bookworm\\n\"}}\n"
      "tests:\n"
      "  scoped/deb: {command: 'perl src/client.pl', dependencies: {src: HEAD}}\n",
      {{"client.pl", kClient}});
  const json report = run_json("", 0);
  const json& o = object_named(report, "scoped/deb");
  ASSERT_EQ(o["runs"], 1);
  const std::string log = read_text(o["runs_detail"][0]["log"]);
  EXPECT_NE(log.find("scoped docker ok"), std::string::npos) << log;
  const std::string run_id = o["runs_detail"][0]["id"];
  const std::string filter = " --quiet --filter label=testlooper.run=" + run_id;
  for (const std::string list : {"ps --all", "network ls", "volume ls"}) {
    EXPECT_EQ(testlooper::testing::shell_output("docker " + list + filter), "") << list;
  }
}

}  // namespace
}  // namespace testlooper::cli
