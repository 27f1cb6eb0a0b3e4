// `testlooper run` end to end, the quick cases: exit statuses, selection, the JSON shape and
// the table. Slow ones (many runs, timeouts, docker) are in run_integration.cc.
#include <gtest/gtest.h>

#include "cli/run_fixture.h"

namespace testlooper::cli {
namespace {

using nlohmann::json;
using testing::object_named;
using testing::RunFixture;

constexpr char kHostEnvironment[] =
    "looper_version: 5\n"
    "environments: {linux: {platform: linux, image: {host: true}}}\n";

using RunCommand = RunFixture;

TEST_F(RunCommand, AllGreenExitsZeroWithTheJsonShape) {
  const std::string sha = commit(std::string(kHostEnvironment) +
                                 "tests:\n"
                                 "  ok/linux: {command: 'echo cores=$TEST_CORES_AVAILABLE'}\n");
  const json report = run_json("--runs 2", 0);
  EXPECT_EQ(report["commit"], sha);
  const json& o = object_named(report, "ok/linux");
  EXPECT_EQ(o["kind"], "test");
  EXPECT_EQ(o["runs"], 2);
  EXPECT_EQ(o["failures"], 0);
  EXPECT_EQ(o["infra_errors"], 0);
  EXPECT_EQ(o["failure_rate"]["estimate"], 0.0);
  EXPECT_EQ(o["failure_rate"]["low"], 0.0);
  EXPECT_GT(o["failure_rate"]["high"].get<double>(), 0.5);
  EXPECT_TRUE(o["cases"].is_object());
  ASSERT_EQ(o["runs_detail"].size(), 2u);
  for (const char* key : {"id", "success", "exit_code", "seconds", "log", "artifacts"}) {
    EXPECT_TRUE(o["runs_detail"][0].contains(key)) << key;
  }
  EXPECT_NE(testing::read_text(o["runs_detail"][0]["log"]).find("cores=1"), std::string::npos);
}

TEST_F(RunCommand, AFailingRunExitsOneAndTheTableShowsTheRate) {
  commit(std::string(kHostEnvironment) + "tests: {bad/linux: {command: 'exit 4'}}\n");
  const testing::RunOutput o = run("--runs 3");
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.out.find("bad/linux"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("100%"), std::string::npos) << o.out;
  EXPECT_NE(o.err.find("FAIL bad/linux"), std::string::npos) << o.err;
}

TEST_F(RunCommand, TheReportClassifiesEachTestAndCase) {
  // flip/linux fails every other run (a counter file outside the run's dirs); bad/linux always.
  const std::string counter = path("counter");
  commit(std::string(kHostEnvironment) +
         "tests:\n"
         "  flip/linux: {command: 'n=$(cat " + counter + " 2>/dev/null || echo 0); echo $((n+1)) > " + counter +
         "; test $((n % 2)) -eq 0'}\n"
         "  bad/linux: {command: 'exit 1'}\n"
         "  good/linux: {command: 'echo {\\\"x\\\": true} > $TEST_OUTPUT_DIR/testSummary.json'}\n");
  const json report = run_json("--runs 12 --jobs 1", 1);
  EXPECT_EQ(object_named(report, "flip/linux")["classification"]["verdict"], "flaky") << report.dump();
  EXPECT_EQ(object_named(report, "bad/linux")["classification"]["verdict"], "broken");
  EXPECT_EQ(object_named(report, "good/linux")["classification"]["verdict"], "good");
  EXPECT_GT(object_named(report, "flip/linux")["classification"]["confidence"].get<double>(), 0.9);
  EXPECT_EQ(object_named(report, "good/linux")["case_classifications"]["x"]["verdict"], "good") << report.dump();
  const testing::RunOutput table = run("--runs 2 --jobs 1 good/linux");
  EXPECT_NE(table.out.find("CLASSIFICATION"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("good ("), std::string::npos) << table.out;
}

TEST_F(RunCommand, DefinitionErrorsExitThree) {
  commit("looper_version: 5\nbogus_key: 1\n");
  const testing::RunOutput o = run("");
  EXPECT_EQ(o.status, 3);
  EXPECT_NE(o.err.find("testlooper.yml:"), std::string::npos) << o.err;
}

TEST_F(RunCommand, UsageErrorsExitTwo) {
  commit(std::string(kHostEnvironment) + "tests: {a/linux: {command: 'true'}}\n");
  EXPECT_EQ(run("--runs 0").status, 2);
  EXPECT_EQ(run("--no-such-flag").status, 2);
  EXPECT_EQ(run("nothing/matches*").status, 2);
  EXPECT_EQ(run("--set nosuchset").status, 2);
  EXPECT_EQ(run("--commit not-a-revision").status, 2);
}

TEST_F(RunCommand, PatternsAndSetsSelectTestsAndTheBuildsTheyNeed) {
  commit(std::string(kHostEnvironment) +
         "builds: {b/linux: {command: 'echo x > $TEST_BUILD_OUTPUT_DIR/x'}}\n"
         "tests:\n"
         "  one/linux: {command: 'test -f dep/x', dependencies: {dep: b/linux}}\n"
         "  two/linux: {command: 'true'}\n"
         "test_sets: {only_two: [two/*]}\n");
  json report = run_json("one/*", 0);
  ASSERT_EQ(report["objects"].size(), 2u);
  EXPECT_EQ(object_named(report, "b/linux")["runs"], 1);
  EXPECT_EQ(object_named(report, "one/linux")["runs"], 1);
  report = run_json("--set only_two", 0);
  ASSERT_EQ(report["objects"].size(), 1u);
  EXPECT_EQ(report["objects"][0]["name"], "two/linux");
}

TEST_F(RunCommand, BuildsAlreadyInTheStoreAreReused) {
  commit(std::string(kHostEnvironment) +
         "builds: {b/linux: {command: 'date +%s%N > $TEST_BUILD_OUTPUT_DIR/stamp'}}\n"
         "tests: {t/linux: {command: 'cat dep/stamp', dependencies: {dep: b/linux}}}\n");
  const json first = run_json("", 0);
  EXPECT_EQ(object_named(first, "b/linux")["runs"], 1);
  const json second = run_json("", 0);
  EXPECT_EQ(object_named(second, "b/linux")["runs"], 0);
  EXPECT_EQ(object_named(second, "b/linux")["reused"], true);
  EXPECT_EQ(object_named(second, "t/linux")["runs"], 1);
}

TEST_F(RunCommand, AnAmiEnvironmentIsAnInfrastructureErrorNotAFailure) {
  commit(
      "looper_version: 5\n"
      "environments: {cloud: {platform: linux, image: {base_ami: ami-123}}}\n"
      "tests: {t/cloud: {command: 'true'}}\n");
  const json report = run_json("--runs 2", 1);
  const json& o = object_named(report, "t/cloud");
  EXPECT_EQ(o["runs"], 0);
  EXPECT_EQ(o["failures"], 0);
  EXPECT_EQ(o["infra_errors"], 2);
  EXPECT_EQ(o["runs_detail"][0]["outcome"], "infrastructure error");
  EXPECT_NE(testing::read_text(o["runs_detail"][0]["log"]).find("not runnable locally"),
            std::string::npos);
}

TEST_F(RunCommand, OnHostRunsADockerfileEnvironmentHere) {
  commit(
      "looper_version: 5\n"
      "environments: {d: {platform: linux, image: {dockerfile_contents: 'FROM nothing'}}}\n"
      "tests: {t/d: {command: 'test $HOSTNAME = testlooperworker'}}\n");
  const json report = run_json("--on-host", 0);
  EXPECT_EQ(object_named(report, "t/d")["runs"], 1);
}

TEST_F(RunCommand, RunsGetTheCoresAndRamTheyWereGiven) {
  commit(std::string(kHostEnvironment) +
         "tests: {t/linux: {command: 'echo \"got $TEST_CORES_AVAILABLE $TEST_RAM_GB_AVAILABLE\"',"
         " min_cores: 2, max_cores: 3, min_ram_gb: 1}}\n");
  const json report = run_json("--cores 4 --ram-gb 8 --jobs 1", 0);
  const std::string log =
      testing::read_text(object_named(report, "t/linux")["runs_detail"][0]["log"]);
  EXPECT_NE(log.find("got 3 6"), std::string::npos) << log;
}

}  // namespace
}  // namespace testlooper::cli
