// `testlooper run` end to end with real git repos and real processes: the behaviour the issue
// asks to be shown (dependency order and stage-granular artifacts, retries, a 30% flaky test
// over 200 runs, testSummary.json and JUnit XML per case, timeouts killing the whole tree,
// cleanup after a failure). Labelled "slow".
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/run_fixture.h"
#include "environments/process_probe.h"

namespace testlooper::cli {
namespace {

using nlohmann::json;
using testing::object_named;
using testing::read_text;
using testing::test_result_of;

constexpr char kHostEnvironment[] =
    "looper_version: 5\n"
    "environments: {linux: {platform: linux, image: {host: true}}}\n";

using RunIntegration = testing::RunFixture;

TEST_F(RunIntegration, RunsInDependencyOrderWithStageGranularArtifacts) {
  // The build's second stage waits until the consumer of its first-stage artifact has run, so
  // this only finishes if that consumer starts while the build is still going.
  const std::string mark = path("consumer-ran");
  commit(std::string(kHostEnvironment) +
         "builds:\n"
         "  b/linux:\n"
         "    stages:\n"
         "      - {command: 'mkdir -p $TEST_BUILD_OUTPUT_DIR/one && echo 1 > "
         "$TEST_BUILD_OUTPUT_DIR/one/f', artifacts: [{name: first, directory: one}]}\n"
         "      - {order: 2, command: 'for i in $(seq 3000); do [ -f " +
         mark + " ] && break; sleep 0.01; done; [ -f " + mark +
         " ] && echo 2 > "
         "$TEST_BUILD_OUTPUT_DIR/second.txt', artifacts: [{name: second}]}\n"
         "tests:\n"
         "  early/linux: {command: 'test \"$(cat one/f)\" = 1 && touch " +
         mark +
         "', dependencies: {one: b/linux/first}}\n"
         "  late/linux: {command: 'test -f whole/one/f && test -f whole/second.txt && "
         "test -f src/.git_commit && test -f src/testlooper.yml', "
         "dependencies: {whole: b/linux, src: HEAD}}\n");
  const json report = run_json("", 0);
  const json& build = object_named(report, "b/linux");
  const json& early = object_named(report, "early/linux");
  const json& late = object_named(report, "late/linux");
  ASSERT_EQ(build["runs"], 1);
  ASSERT_EQ(early["runs"], 1);
  ASSERT_EQ(late["runs"], 1);
  EXPECT_EQ(build["failures"], 0);
  const json build_record = test_result_of(build["runs_detail"][0]);
  const json early_record = test_result_of(early["runs_detail"][0]);
  const json late_record = test_result_of(late["runs_detail"][0]);
  EXPECT_LT(early_record["end_timestamp"], build_record["end_timestamp"]);
  EXPECT_GE(late_record["start_timestamp"], build_record["end_timestamp"]);
}

TEST_F(RunIntegration, RetriesAFailingBuild) {
  const std::string counter = path("attempts");
  commit(std::string(kHostEnvironment) + "builds: {b/linux: {command: 'echo x >> " + counter +
         "; [ $(wc -l < " + counter +
         ") -ge 3 ]', max_retries: 3, retry_wait_seconds: 1}}\n"
         "tests: {t/linux: {command: 'true', dependencies: {b: b/linux}}}\n");
  const json report = run_json("", 0);
  const json& build = object_named(report, "b/linux");
  EXPECT_EQ(build["runs"], 3);
  EXPECT_EQ(build["failures"], 2);
  EXPECT_EQ(build["runs_detail"][2]["success"], true);
  EXPECT_EQ(object_named(report, "t/linux")["runs"], 1);
}

TEST_F(RunIntegration, ABuildOutOfRetriesBlocksItsConsumers) {
  commit(std::string(kHostEnvironment) +
         "builds: {b/linux: {command: 'exit 1', max_retries: 1}}\n"
         "tests: {t/linux: {command: 'true', dependencies: {b: b/linux}}}\n");
  const json report = run_json("", 1);
  EXPECT_EQ(object_named(report, "b/linux")["runs"], 2);
  EXPECT_EQ(object_named(report, "t/linux")["runs"], 0);
  EXPECT_EQ(object_named(report, "t/linux")["blocked"], "build b/linux failed");
}

TEST_F(RunIntegration, ThirtyPercentFlakyTestOverTwoHundredRuns) {
  // Failure with probability 0.3, made exact: a shared counter fails runs 0, 1, 2 of every ten,
  // so the test checks the interval, not luck.
  const std::string counter = path("counter");
  commit(std::string(kHostEnvironment) + "tests: {flaky/linux: {command: 'n=$(flock " + counter +
         ".lock sh -c \"n=\\$(cat " + counter + " 2>/dev/null || echo 0); echo \\$((n+1)) > " +
         counter + "; echo \\$n\"); [ $((n % 10)) -ge 3 ]'}}\n");
  const json report = run_json("--runs 200 --jobs 2", 1);
  const json& o = object_named(report, "flaky/linux");
  EXPECT_EQ(o["runs"], 200);
  EXPECT_EQ(o["failures"], 60);
  EXPECT_DOUBLE_EQ(o["failure_rate"]["estimate"].get<double>(), 0.3);
  EXPECT_LT(o["failure_rate"]["low"].get<double>(), 0.3);
  EXPECT_GT(o["failure_rate"]["high"].get<double>(), 0.3);
}

TEST_F(RunIntegration, CountsTestSummaryFormsAndJunitCasesPerCase) {
  const std::string junit =
      "<testsuites><testsuite name=\"s\">"
      "<testcase classname=\"pkg.C\" name=\"ok\" time=\"0.1\"/>"
      "<testcase classname=\"pkg.C\" name=\"flaky\"><flakyFailure message=\"first\"/></testcase>"
      "<testcase classname=\"pkg.C\" name=\"skip\"><skipped/></testcase>"
      "</testsuite></testsuites>\n";
  commit(
      std::string(kHostEnvironment) +
          "tests:\n"
          "  cases/linux:\n"
          "    stages:\n"
          "      - {command: 'echo \"{\\\"bools_ok\\\": true, \\\"bools_bad\\\": false}\" > "
          "$TEST_OUTPUT_DIR/testSummary.json'}\n"
          "      - {order: 1, command: 'echo \"{\\\"obj\\\": {\\\"success\\\": false, "
          "\\\"logs\\\": "
          "[\\\"$TEST_SCRATCH_DIR/obj.log\\\"], \\\"elapsed\\\": 1.5}}\" > "
          "$TEST_OUTPUT_DIR/testSummary.json; echo detail > $TEST_SCRATCH_DIR/obj.log'}\n"
          "      - {order: 2, command: 'echo \"[{\\\"testName\\\": \\\"G::t\\\", \\\"success\\\": "
          "true}, {\\\"testName\\\": \\\"G::t\\\", \\\"success\\\": false}]\" > "
          "$TEST_OUTPUT_DIR/testSummary.json'}\n"
          "      - {order: 3, command: 'cp src/report.xml $TEST_OUTPUT_DIR/junit.xml'}\n"
          "    dependencies: {src: HEAD}\n",
      {{"report.xml", junit}});
  // Cases failed, so each run failed although every command exited 0 (issue 16).
  const json report = run_json("--runs 3", 1);
  EXPECT_EQ(object_named(report, "cases/linux")["failures"], 3);
  const json& cases = object_named(report, "cases/linux")["cases"];
  EXPECT_EQ(cases["bools_ok"], json({{"failures", 0}, {"runs", 3}}));
  EXPECT_EQ(cases["bools_bad"], json({{"failures", 3}, {"runs", 3}}));
  EXPECT_EQ(cases["obj"], json({{"failures", 3}, {"runs", 3}}));
  EXPECT_EQ(cases["G::t"], json({{"failures", 3}, {"runs", 6}}));
  EXPECT_EQ(cases["pkg.C.ok"], json({{"failures", 0}, {"runs", 3}}));
  EXPECT_EQ(cases["pkg.C.flaky"], json({{"failures", 3}, {"runs", 6}}));
  EXPECT_FALSE(cases.contains("pkg.C.skip"));
  const json record = test_result_of(object_named(report, "cases/linux")["runs_detail"][0]);
  for (const json& t : record["individualTests"]) {
    if (t["testName"] != "obj") continue;
    const std::string log = object_named(report, "cases/linux")["runs_detail"][0]["log"];
    EXPECT_EQ(read_text(log.substr(0, log.rfind('/')) + "/" + t["logs"][0].get<std::string>()),
              "detail\n");
  }
}

TEST_F(RunIntegration, TimeoutKillsTheWholeProcessTree) {
  const std::string pids = path("pids");
  commit(std::string(kHostEnvironment) +
         "tests: {hang/linux: {timeout: 2, command: 'sleep 1000 & echo $! >> " + pids +
         "; (sleep 1000 & echo $! >> " + pids + "; wait) & setsid sleep 1000 & echo $! >> " + pids +
         "; echo $$ >> " + pids + "; wait'}}\n");
  const json report = run_json("", 1);
  const json& o = object_named(report, "hang/linux");
  EXPECT_EQ(o["failures"], 1);
  EXPECT_EQ(o["runs_detail"][0]["exit_code"], -1);
  EXPECT_NE(read_text(o["runs_detail"][0]["log"]).find("timed out after 2 s"), std::string::npos);
  const std::vector<int> started = testlooper::testing::wait_for_pids(pids, 4);
  for (const int pid : started) {
    EXPECT_TRUE(testlooper::testing::eventually_gone(pid)) << "pid " << pid << " survived";
  }
}

TEST_F(RunIntegration, CleanupAndAlwaysRunStagesRunAfterAFailure) {
  commit(std::string(kHostEnvironment) +
         "tests:\n"
         "  t/linux:\n"
         "    stages:\n"
         "      - {command: 'exit 5', cleanup: 'touch " +
         path("cleaned") +
         "'}\n"
         "      - {order: 1, command: 'touch " +
         path("skipped") +
         "'}\n"
         "      - {order: 2, always_run: true, command: 'touch " +
         path("always") + "'}\n");
  const json report = run_json("", 1);
  EXPECT_EQ(object_named(report, "t/linux")["runs_detail"][0]["exit_code"], 5);
  EXPECT_TRUE(std::filesystem::exists(path("cleaned")));
  EXPECT_TRUE(std::filesystem::exists(path("always")));
  EXPECT_FALSE(std::filesystem::exists(path("skipped")));
}

TEST_F(RunIntegration, ListsTestsThenRunsThemWithIndividualResults) {
  commit(std::string(kHostEnvironment) +
         "tests:\n"
         "  listed/linux:\n"
         "    stages:\n"
         "      - list_tests_command: 'printf \"a\\nb\\n\" > $TEST_LOOPER_TEST_LIST_OUTPUT'\n"
         "        run_tests_command: 'for t in $(cat $TEST_LOOPER_TESTS_TO_RUN); do "
         "echo \"{\\\"testName\\\": \\\"$t\\\", \\\"success\\\": true}\"; done | paste -sd, | "
         "sed \"s/^/[/; s/$/]/\" > $TEST_OUTPUT_DIR/testSummary.json'\n");
  const json report = run_json("", 0);
  const json& cases = object_named(report, "listed/linux")["cases"];
  EXPECT_EQ(cases["a"]["runs"], 1);
  EXPECT_EQ(cases["b"]["runs"], 1);
}

TEST_F(RunIntegration, InterruptKillsTheRunningCommandsAndExits130) {
  const std::string pids = path("pids");
  commit(std::string(kHostEnvironment) + "tests: {hang/linux: {command: 'echo $$ >> " + pids +
         "; sleep 1000'}}\n");
  const pid_t looper = ::fork();
  if (looper == 0) {
    ::freopen("/dev/null", "w", stdout);
    ::freopen("/dev/null", "w", stderr);
    ::execl(TL_BINARY, TL_BINARY, "run", "--repo", app_.path().c_str(), "--store", store().c_str(),
            "--runs", "2", "--jobs", "2", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const std::vector<int> started = testlooper::testing::wait_for_pids(pids, 2);
  ::kill(looper, SIGINT);
  int status = 0;
  ::waitpid(looper, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  for (const int pid : started) EXPECT_TRUE(testlooper::testing::eventually_gone(pid));
}

}  // namespace
}  // namespace testlooper::cli
