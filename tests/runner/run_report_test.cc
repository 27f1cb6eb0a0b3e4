#include "runner/run_report.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace testlooper::runner {
namespace {

using definitions::ObjectKind;
using definitions::ResolvedObject;

RunResult run(Outcome outcome, std::vector<TestCaseResult> tests = {}) {
  RunResult r;
  r.run_id = "r";
  r.outcome = outcome;
  r.tests = std::move(tests);
  r.start_timestamp = 10;
  r.end_timestamp = 12.5;
  r.log_path = "/store/runs/r/log.txt";
  return r;
}

ResolvedObject object(const std::string& name, ObjectKind kind) {
  ResolvedObject o;
  o.name = name;
  o.kind = kind;
  o.hash = "h-" + name;
  return o;
}

TEST(Totals, InfrastructureErrorsAndCancelledRunsAreNotRuns) {
  const ResolvedObject t = object("t", ObjectKind::kTest);
  const ObjectReport report{
      &t,
      false,
      std::nullopt,
      {run(Outcome::kSuccess, {{"c", true, 0, 0, {}}}),
       run(Outcome::kFailure, {{"c", false, 0, 0, {}}}),
       run(Outcome::kInfraError, {{"c", false, 0, 0, {}}}), run(Outcome::kCancelled)}};
  const ObjectTotals totals_ = totals(report);
  EXPECT_EQ(totals_.runs, 2);
  EXPECT_EQ(totals_.failures, 1);
  EXPECT_EQ(totals_.infra_errors, 1);
  EXPECT_EQ(totals_.cases.at("c").runs, 2);
  EXPECT_EQ(totals_.cases.at("c").failures, 1);
  EXPECT_DOUBLE_EQ(totals_.rate.estimate, 0.5);
}

TEST(ReportJson, HasTheDocumentedShape) {
  const ResolvedObject t = object("t/linux", ObjectKind::kTest);
  const std::string text = report_json(
      "abc",
      {ObjectReport{&t, false, std::nullopt, {run(Outcome::kFailure, {{"x", false, 0, 0, {}}})}}});
  const nlohmann::json j = nlohmann::json::parse(text);
  EXPECT_EQ(j["commit"], "abc");
  const nlohmann::json& o = j["objects"][0];
  EXPECT_EQ(o["name"], "t/linux");
  EXPECT_EQ(o["kind"], "test");
  EXPECT_EQ(o["hash"], "h-t/linux");
  EXPECT_EQ(o["runs"], 1);
  EXPECT_EQ(o["failures"], 1);
  EXPECT_EQ(o["infra_errors"], 0);
  EXPECT_EQ(o["failure_rate"]["estimate"], 1.0);
  EXPECT_EQ(o["failure_rate"]["high"], 1.0);
  EXPECT_EQ(o["cases"]["x"]["runs"], 1);
  EXPECT_EQ(o["cases"]["x"]["failures"], 1);
  const nlohmann::json& detail = o["runs_detail"][0];
  EXPECT_EQ(detail["id"], "r");
  EXPECT_EQ(detail["success"], false);
  EXPECT_EQ(detail["seconds"], 2.5);
  EXPECT_EQ(detail["log"], "/store/runs/r/log.txt");
  EXPECT_TRUE(detail["artifacts"].is_array());
}

TEST(ReportTable, ListsObjectsAndTheCasesThatFailed) {
  const ResolvedObject b = object("b/linux", ObjectKind::kBuild);
  const ResolvedObject t = object("t/linux", ObjectKind::kTest);
  const ResolvedObject blocked = object("x/linux", ObjectKind::kTest);
  const std::string table = report_table(
      {ObjectReport{&b, true, std::nullopt, {}},
       ObjectReport{&t,
                    false,
                    std::nullopt,
                    {run(Outcome::kSuccess, {{"good", true, 0, 0, {}}, {"bad", false, 0, 0, {}}}),
                     run(Outcome::kSuccess, {{"good", true, 0, 0, {}}, {"bad", true, 0, 0, {}}})}},
       ObjectReport{&blocked, false, std::string("build b/linux failed"), {}}});
  EXPECT_NE(table.find("b/linux  build      0       0      0  reused from the store"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("t/linux  test       2       0      0       0%  [0%, 66.7%]"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("    case bad: 1 of 2 failed, 50.0% [6.1%, 93.9%]"), std::string::npos)
      << table;
  EXPECT_EQ(table.find("case good"), std::string::npos) << table;
  EXPECT_NE(table.find("not run: build b/linux failed"), std::string::npos) << table;
}

TEST(ExitStatus, RetriedBuildsAreJudgedByTheirLastAttempt) {
  const ResolvedObject b = object("b", ObjectKind::kBuild);
  const ResolvedObject t = object("t", ObjectKind::kTest);
  EXPECT_EQ(exit_status({ObjectReport{
                &b, false, std::nullopt, {run(Outcome::kFailure), run(Outcome::kSuccess)}}}),
            0);
  EXPECT_EQ(exit_status({ObjectReport{
                &b, false, std::nullopt, {run(Outcome::kSuccess), run(Outcome::kFailure)}}}),
            1);
  EXPECT_EQ(exit_status({ObjectReport{
                &t, false, std::nullopt, {run(Outcome::kFailure), run(Outcome::kSuccess)}}}),
            1);
  EXPECT_EQ(exit_status({ObjectReport{&t, false, std::nullopt, {run(Outcome::kInfraError)}}}), 1);
  EXPECT_EQ(exit_status({ObjectReport{&t, false, std::string("blocked"), {}}}), 1);
}

TEST(Percent, ShowsSmallRatesWithMoreDigits) {
  EXPECT_EQ(percent(0), "0%");
  EXPECT_EQ(percent(1), "100%");
  EXPECT_EQ(percent(0.305), "30.5%");
  EXPECT_EQ(percent(0.0013), "0.13%");
}

}  // namespace
}  // namespace testlooper::runner
