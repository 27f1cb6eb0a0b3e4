#include "runner/test_results.h"

#include <gtest/gtest.h>

#include "artifacts/temp_dir.h"

namespace testlooper::runner {
namespace {

using testing::TempDir;
using testing::write_file;

std::string outcomes(const std::vector<TestCaseResult>& results) {
  std::string out;
  for (const TestCaseResult& r : results)
    out += r.name + (r.skipped ? "~ " : r.success ? "+ " : "- ");
  return out;
}

TEST(TestSummary, ParsesTheMapOfBooleansForm) {
  Result<std::vector<TestCaseResult>> results =
      parse_test_summary(R"({"Test1": true, "Test2": false})");
  ASSERT_TRUE(results.ok());
  EXPECT_EQ(outcomes(*results), "Test1+ Test2- ");
}

TEST(TestSummary, ParsesTheMapOfObjectsForm) {
  Result<std::vector<TestCaseResult>> results = parse_test_summary(
      R"({"name": {"success": true, "logs": ["/abs/path"], "elapsed": 1.2,
                   "startTimestamp": 1512679665.0}})");
  ASSERT_TRUE(results.ok());
  ASSERT_EQ(results->size(), 1u);
  const TestCaseResult& r = (*results)[0];
  EXPECT_EQ(r.name, "name");
  EXPECT_TRUE(r.success);
  EXPECT_EQ(r.logs, std::vector<std::string>{"/abs/path"});
  EXPECT_DOUBLE_EQ(r.elapsed, 1.2);
  EXPECT_DOUBLE_EQ(r.start_timestamp, 1512679665.0);
}

TEST(TestSummary, ParsesTheListFormWithRepeatedNames) {
  Result<std::vector<TestCaseResult>> results = parse_test_summary(R"([
      {"testName": "Group::t1", "success": false, "logs": ["x"], "elapsed": 0.01},
      {"testName": "Group::t1", "success": true},
      {"testName": "Group::t2", "success": true, "startTimestamp": 1512679665.0}])");
  ASSERT_TRUE(results.ok());
  EXPECT_EQ(outcomes(*results), "Group::t1- Group::t1+ Group::t2+ ");
}

TEST(TestSummary, RejectsMalformedSummaries) {
  EXPECT_FALSE(parse_test_summary("{not json").ok());
  EXPECT_FALSE(parse_test_summary(R"({"t": 3})").ok());
  EXPECT_FALSE(parse_test_summary(R"([{"success": true}])").ok());
  EXPECT_FALSE(parse_test_summary("42").ok());
}

TEST(JunitXml, CountsEachCaseAndKeepsRerunsAsSeparateRuns) {
  std::optional<std::vector<TestCaseResult>> results = parse_junit_xml(R"(<?xml version="1.0"?>
    <testsuites>
      <testsuite name="s">
        <testcase classname="pkg.A" name="passes" time="0.5"/>
        <testcase classname="pkg.A" name="fails"><failure message="boom"/></testcase>
        <testcase classname="pkg.A" name="errors"><error/></testcase>
        <testcase classname="pkg.A" name="skipped"><skipped message="not here"/></testcase>
        <testcase classname="pkg.A" name="flaky">
          <flakyFailure message="1st"/><flakyError message="2nd"/>
        </testcase>
        <testcase classname="pkg.A" name="broken">
          <failure/><rerunFailure/><rerunError/>
        </testcase>
        <testcase name="gtest_notrun" status="notrun"/>
      </testsuite>
      <testsuite name="nested"><testsuite><testcase name="deep"/></testsuite></testsuite>
    </testsuites>)");
  ASSERT_TRUE(results.has_value());
  EXPECT_EQ(outcomes(*results),
            "pkg.A.passes+ pkg.A.fails- pkg.A.errors- pkg.A.skipped~ pkg.A.flaky- pkg.A.flaky- "
            "pkg.A.flaky+ pkg.A.broken- pkg.A.broken- pkg.A.broken- gtest_notrun~ deep+ ");
  EXPECT_DOUBLE_EQ((*results)[0].elapsed, 0.5);
  // Why each failed (or was skipped) is kept with it.
  EXPECT_EQ((*results)[1].message, "boom");
  EXPECT_EQ((*results)[3].message, "not here");
  EXPECT_EQ((*results)[4].message, "1st");
  EXPECT_EQ((*results)[2].message, "");
}

TEST(JunitXml, AcceptsASingleTestsuiteRootAndIgnoresOtherXml) {
  EXPECT_EQ(outcomes(*parse_junit_xml(R"(<testsuite><testcase name="t"/></testsuite>)")), "t+ ");
  EXPECT_FALSE(parse_junit_xml("<project><testcase name='t'/></project>").has_value());
  EXPECT_FALSE(parse_junit_xml("not xml <").has_value());
}

TEST(TestResultCollector, RemovesTheSummaryAndReadsReportsOnce) {
  TempDir dir;
  TestResultCollector collector(dir / "out", dir / "record");
  write_file(dir / "out/testSummary.json", R"({"a": true})");
  write_file(dir / "out/reports/junit.xml", R"(<testsuite><testcase name="x"/></testsuite>)");
  ASSERT_TRUE(collector.collect().ok());
  EXPECT_FALSE(std::filesystem::exists(dir / "out/testSummary.json"));
  ASSERT_TRUE(collector.collect().ok());  // nothing new: the report is not counted twice
  write_file(dir / "out/testSummary.json", R"({"a": false})");
  ASSERT_TRUE(collector.collect().ok());
  EXPECT_EQ(outcomes(collector.results()), "a+ x+ a- ");
}

TEST(TestResultCollector, CopiesNamedLogsIntoTheRecord) {
  TempDir dir;
  TestResultCollector collector(dir / "out", dir / "record");
  write_file(dir / "scratch/t1.log", "log text");
  write_file(dir / "out/testSummary.json", R"({"t/1": {"success": false, "logs": [")" +
                                               (dir / "scratch/t1.log").string() +
                                               R"(", "/missing.log"]}})");
  ASSERT_TRUE(collector.collect().ok());
  ASSERT_EQ(collector.results().size(), 1u);
  ASSERT_EQ(collector.results()[0].logs.size(), 1u);
  EXPECT_EQ(testing::read_file(dir / "record" / collector.results()[0].logs[0]), "log text");
}

TEST(TestResultCollector, ReportsAnUnreadableSummaryAndRemovesIt) {
  TempDir dir;
  TestResultCollector collector(dir / "out", dir / "record");
  write_file(dir / "out/testSummary.json", "{oops");
  EXPECT_FALSE(collector.collect().ok());
  EXPECT_FALSE(std::filesystem::exists(dir / "out/testSummary.json"));
}

}  // namespace
}  // namespace testlooper::runner
