// `testlooper run` keeps why each test case failed (issue 16 item 7): JUnit <failure>/<error>
// messages and text and testSummary.json's "message" per case, capped, in `run --json` and in the
// run's test_result.json, with the case's logs; the closing summary shows the first lines of a
// failed case's message.
#include <gtest/gtest.h>

#include <string>

#include "cli/case_failures_script.h"
#include "cli/run_fixture.h"

namespace testlooper::cli {
namespace {

using nlohmann::json;
using testing::object_named;
using testing::read_text;
using testing::test_result_of;
using ::testlooper::testing::kCaseDefinitions;
using ::testlooper::testing::kCaseScript;
using ::testlooper::testing::kCaseScriptPath;

using CaseFailures = testing::RunFixture;

// The case named `name` in a list of cases.
// (A copy: reading a field it lacks is then null, not undefined behaviour.)
json case_named(const json& cases, const std::string& name) {
  for (const json& c : cases) {
    if (c.value("name", "") == name) return c;
  }
  ADD_FAILURE() << "no case " << name << " in " << cases.dump(2);
  return json::object();
}

TEST_F(CaseFailures, RunJsonKeepsEachFailedCasesMessageAndLogs) {
  commit(kCaseDefinitions, {{kCaseScriptPath, kCaseScript}});
  const json report = run_json("", 1);
  json run = object_named(report, "cases/linux")["runs_detail"][0];
  const json cases = run["cases"];
  ASSERT_TRUE(cases.is_array()) << run.dump(2);
  EXPECT_EQ(case_named(cases, "pkg.C.ok")["message"], "");
  EXPECT_EQ(case_named(cases, "pkg.C.ok")["success"], true);
  EXPECT_EQ(case_named(cases, "pkg.C.bad")["message"],
            "expected 1, got 2\nat C.java:10\nat C.java:20");
  EXPECT_EQ(case_named(cases, "pkg.C.bad")["success"], false);
  EXPECT_EQ(case_named(cases, "pkg.C.boom")["message"], "NullPointerException");
  // A skipped case keeps why, and is not a run of the case.
  EXPECT_EQ(case_named(cases, "pkg.C.later")["message"], "not on Linux");
  EXPECT_EQ(case_named(cases, "pkg.C.later")["skipped"], true);
  EXPECT_EQ(case_named(cases, "pkg.C.bad")["skipped"], false);
  EXPECT_FALSE(object_named(report, "cases/linux")["cases"].contains("pkg.C.later"));
  EXPECT_EQ(read_text(run["log"]).find("5 of 8 test cases"), std::string::npos);
  EXPECT_NE(read_text(run["log"]).find("5 of 7 test cases failed"), std::string::npos);
  EXPECT_EQ(case_named(cases, "pkg.C.<i>html")["message"], "<b>not bold</b>");
  EXPECT_EQ(case_named(cases, "S::fails")["message"],
            "assertion failed\nline 2\nline 3\nline 4\nline 5\nline 6\nline 7");
  // The log named relative to $TEST_OUTPUT_DIR is kept in the run's record.
  json logs = case_named(cases, "S::fails")["logs"];
  ASSERT_EQ(logs.size(), 1u) << cases.dump(2);
  EXPECT_EQ(read_text(logs[0]), "the log of S::fails\n");
  // 10,000 bytes of message: 4 KiB kept, the cut marked.
  const std::string cut = case_named(cases, "S::long")["message"];
  EXPECT_LE(cut.size(), 4096u);
  EXPECT_EQ(cut.substr(0, 100), std::string(100, 'x'));
  EXPECT_NE(cut.find("bytes not kept]"), std::string::npos) << cut;

  // The record (what `rebuild` reads) holds the messages and the logs' record names too.
  const json record = test_result_of(run);
  bool found = false;
  for (const json& t : record["individualTests"]) {
    if (t["testName"] != "S::fails") continue;
    found = true;
    EXPECT_EQ(t["message"], case_named(cases, "S::fails")["message"]);
    ASSERT_EQ(t["logs"].size(), 1u);
    EXPECT_EQ(t["logs"][0].get<std::string>().rfind("test_logs/", 0), 0u) << t.dump();
  }
  EXPECT_TRUE(found) << record.dump(2);
}

TEST_F(CaseFailures, TheClosingSummaryShowsTheFirstLinesOfAFailedCasesMessage) {
  commit(kCaseDefinitions, {{kCaseScriptPath, kCaseScript}});
  const testing::RunOutput o = run("");
  EXPECT_EQ(o.status, 1) << o.err;
  // The JUnit report is read after the testSummary.json of the same stage, but either way the
  // first failed case with a message is shown, five lines at most.
  const size_t at = o.err.find("    case ");
  ASSERT_NE(at, std::string::npos) << o.err;
  const std::string shown = o.err.substr(at);
  EXPECT_NE(shown.find("case S::fails:\n    > assertion failed\n    > line 2\n"), std::string::npos)
      << o.err;
  EXPECT_NE(shown.find("    > line 5\n    > (+2 lines)\n"), std::string::npos) << o.err;
  EXPECT_EQ(shown.find("line 6"), std::string::npos) << o.err;
}

}  // namespace
}  // namespace testlooper::cli
