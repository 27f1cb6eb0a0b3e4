// `testlooper run` with docker environments: the image is built from the Dockerfile text once
// and reused by hash; runs see their directories at the same paths; no container is left,
// also after a timeout. Skipped (with the reason) when no docker engine or base image is there:
// run scripts/docker-env first.
#include <gtest/gtest.h>

#include <random>

#include "cli/run_fixture.h"
#include "environments/docker_probe.h"

namespace testlooper::cli {
namespace {

using nlohmann::json;
using testing::object_named;
using testing::read_text;

class RunDocker : public testing::RunFixture {
 protected:
  void SetUp() override {
    const std::string reason = testlooper::testing::docker_skip_reason();
    if (!reason.empty()) GTEST_SKIP() << "docker tests skipped: " << reason;
    // A Dockerfile no earlier run has built, so the first run here must build it.
    nonce_ = std::to_string(std::random_device{}());
  }
  void TearDown() override {
    for (const std::string& tag : tags_) {
      (void)testlooper::testing::shell_output("docker rmi -f " + tag + " >/dev/null 2>&1");
    }
  }

  std::string definitions(const std::string& tests) const {
    return "looper_version: 5\n"
           "environments:\n"
           "  deb: {platform: linux, image: {dockerfile_contents: \"FROM testlooper-base:bookworm"
           "\\nENV NONCE=" +
           nonce_ +
           "\\n\"}}\n"
           "tests:\n" +
           tests;
  }

  // Every container of the runs in `report` (none should exist any more).
  static std::string containers_of(const json& report) {
    std::string found;
    for (const json& o : report["objects"]) {
      for (const json& run : o["runs_detail"]) {
        found += testlooper::testing::containers_of_run(run["id"]);
      }
    }
    return found;
  }

  std::string nonce_;
  std::vector<std::string> tags_;
};

TEST_F(RunDocker, BuildsTheImageOnceReusesItByHashAndLeavesNoContainer) {
  commit(definitions(
      "  t/deb: {command: 'grep -q ^12 /etc/debian_version && test \"$NONCE\" = " + nonce_ +
      " && test $HOSTNAME = testlooperworker && test -f src/testlooper.yml && "
      "echo out > $TEST_OUTPUT_DIR/o.txt', dependencies: {src: HEAD}}\n"));
  const json first = run_json("--runs 2", 0);
  const json& o = object_named(first, "t/deb");
  ASSERT_EQ(o["runs"], 2);
  const std::string first_log = read_text(o["runs_detail"][0]["log"]);
  const size_t tag_at = first_log.find("testlooper-env:");
  ASSERT_NE(tag_at, std::string::npos) << first_log;
  tags_.push_back(first_log.substr(tag_at, std::string("testlooper-env:").size() + 12));
  EXPECT_NE(first_log.find("(built)"), std::string::npos) << first_log;
  EXPECT_EQ(containers_of(first), "");

  const json second = run_json("", 0);
  const std::string second_log = read_text(object_named(second, "t/deb")["runs_detail"][0]["log"]);
  EXPECT_NE(second_log.find(tags_[0] + " (cached)"), std::string::npos) << second_log;
  EXPECT_EQ(containers_of(second), "");
}

TEST_F(RunDocker, TimeoutRemovesTheContainer) {
  commit(definitions("  hang/deb: {timeout: 3, command: 'sleep 1000'}\n"));
  const json report = run_json("", 1);
  const json& o = object_named(report, "hang/deb");
  EXPECT_EQ(o["failures"], 1);
  const std::string log = read_text(o["runs_detail"][0]["log"]);
  EXPECT_NE(log.find("timed out"), std::string::npos) << log;
  const size_t tag_at = log.find("testlooper-env:");
  if (tag_at != std::string::npos) tags_.push_back(log.substr(tag_at, 27));
  EXPECT_EQ(containers_of(report), "");
}

TEST_F(RunDocker, ABrokenDockerfileIsAnInfrastructureError) {
  commit(
      "looper_version: 5\n"
      "environments: {bad: {platform: linux, image: {dockerfile_contents: \"FROM "
      "testlooper-base:bookworm\\nRUN exit 3 # " +
      nonce_ +
      "\\n\"}}}\n"
      "tests: {t/bad: {command: 'true'}}\n");
  const json report = run_json("--runs 2", 1);
  const json& o = object_named(report, "t/bad");
  EXPECT_EQ(o["runs"], 0);
  EXPECT_EQ(o["infra_errors"], 2);
  EXPECT_NE(read_text(o["runs_detail"][0]["log"]).find("image build failed"), std::string::npos);
}

}  // namespace
}  // namespace testlooper::cli
