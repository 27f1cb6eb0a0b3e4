// `testlooper run` in CI (issue 16, "The CLI"): failures print their log tail inline when stderr
// is not a terminal, every run ends with a summary (failing and flaky tests with rates, the
// first failure's output, totals, the gate's verdict), and --fail-on / --allow-flaky gate the exit
// status by verdict. Real runs of the real binary over a git repo in a temp dir.
#include <gtest/gtest.h>

#include "cli/run_fixture.h"

namespace testlooper::cli {
namespace {

using RunGate = testing::RunFixture;

// Three tests: `ok` passes, `broken` always fails (printing "boom-line"), `flaky` fails exactly
// its 3rd run of 6 (a counter in the temp dir), printing "flake-here".
class RunGateTest : public RunGate {
 protected:
  void SetUp() override {
    const std::string counter = path("counter");
    commit(
        "looper_version: 5\n"
        "environments:\n  linux: {platform: linux, image: {host: true}}\n"
        "tests:\n"
        "  ok: {environment: linux, command: 'true'}\n"
        "  broken: {environment: linux, command: 'echo boom-line; exit 3'}\n"
        "  flaky: {environment: linux, command: 'c=$(cat " +
        counter + " 2>/dev/null || echo 0); echo $((c+1)) > " + counter +
        "; if [ $c = 2 ]; then echo flake-here; exit 1; fi'}\n");
  }
  testing::RunOutput gate(const std::string& args) {
    std::remove(path("counter").c_str());
    return run("--runs 6 --jobs 1 " + args);
  }
};

TEST_F(RunGateTest, FailuresShowTheirLogTailInlineAndTheRunEndsWithASummary) {
  const testing::RunOutput o = gate("");
  EXPECT_EQ(o.status, 1) << o.err;
  // Inline, as each failure happens (stderr is a file here, not a terminal).
  const size_t first_fail = o.err.find("FAIL broken #1");
  ASSERT_NE(first_fail, std::string::npos) << o.err;
  const size_t tail = o.err.find("    | boom-line", first_fail);
  ASSERT_NE(tail, std::string::npos) << o.err;
  EXPECT_LT(tail, o.err.find("=== summary")) << o.err;
  // The summary: totals, each failing or flaky test with its rate and first failure's output.
  const size_t summary = o.err.find("=== summary: 18 runs of 3 objects (3 tests) in ");
  ASSERT_NE(summary, std::string::npos) << o.err;
  const std::string s = o.err.substr(summary);
  EXPECT_NE(s.find(": 7 failed\n"), std::string::npos) << s;
  EXPECT_NE(s.find("BROKEN  broken: 6 of 6 runs failed, 100% [67.0%, 100%]"), std::string::npos)
      << s;
  EXPECT_NE(s.find("FLAKY   flaky: 1 of 6 runs failed, 16.7% [1.9%, 55.8%]"), std::string::npos)
      << s;
  EXPECT_NE(s.find("    | flake-here"), std::string::npos) << s;
  EXPECT_EQ(s.find("ok:"), std::string::npos) << s;  // passing tests are not listed
  EXPECT_NE(s.find("=== FAILED (--fail-on any): 2 failing\n    broken: broken: 6 of 6 runs failed\n"
                   "    flaky: flaky: 1 of 6 runs failed"),
            std::string::npos)
      << s;
}

TEST_F(RunGateTest, FailOnBrokenLetsAFlakyTestPassButNotABrokenOne) {
  testing::RunOutput o = gate("--fail-on broken");
  EXPECT_EQ(o.status, 1) << o.err;
  EXPECT_NE(o.err.find("=== FAILED (--fail-on broken): 1 failing\n    broken: broken:"),
            std::string::npos)
      << o.err;
  // Only the flaky and passing tests: the gate passes.
  o = gate("--fail-on broken ok flaky");
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_NE(o.err.find("=== PASSED (--fail-on broken)"), std::string::npos) << o.err;
  o = gate("--fail-on flaky ok flaky");
  EXPECT_EQ(o.status, 1) << o.err;
}

TEST_F(RunGateTest, AllowFlakyAcceptsMatchingFlakyTestsOnly) {
  testing::RunOutput o = gate("--allow-flaky 'fla*' ok flaky");
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_NE(o.err.find("flaky: 1 of 6 runs failed, 16.7% [1.9%, 55.8%] (allowed by --allow-flaky)"),
            std::string::npos)
      << o.err;
  // A glob that matches the broken test does not excuse it: it is not flaky.
  o = gate("--allow-flaky '*'");
  EXPECT_EQ(o.status, 1) << o.err;
  EXPECT_NE(o.err.find("=== FAILED (--fail-on any): 1 failing\n    broken:"), std::string::npos)
      << o.err;
  o = gate("--allow-flaky other ok flaky");
  EXPECT_EQ(o.status, 1) << o.err;
}

TEST_F(RunGateTest, AnUnknownFailOnWordIsAUsageError) {
  const testing::RunOutput o = gate("--fail-on sometimes");
  EXPECT_EQ(o.status, 2) << o.err;
  EXPECT_NE(o.err.find("--fail-on: sometimes not in {broken,flaky,any}"), std::string::npos)
      << o.err;
}

}  // namespace
}  // namespace testlooper::cli
