// Individual test results (FORMAT.md §12), internal to the runner: testSummary.json in its three
// forms, JUnit XML, and the collector that reads them from an output directory after each stage.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "runner/runner.h"

namespace testlooper::runner {

// Parses a testSummary.json: {"name": bool | {success, logs, elapsed, startTimestamp}} or
// [{testName, success, logs, elapsed, startTimestamp}]. Log paths are returned as written.
Result<std::vector<TestCaseResult>> parse_test_summary(std::string_view json);

// Parses a JUnit XML document (<testsuites> or <testsuite> at the root, nested suites allowed).
// Each <testcase> is one run named "classname.name" (just "name" without a classname): failed
// with <failure>/<error> (its message attribute and text kept as the case's message), skipped
// (kept with `skipped` and its <skipped message>, never counted as a run) with <skipped> or
// result/status "skipped"/"notrun". Every <flakyFailure>/<flakyError>/<rerunFailure>/<rerunError>
// is one more failed run of that case. nullopt when `xml` is not XML or not a JUnit report.
std::optional<std::vector<TestCaseResult>> parse_junit_xml(std::string_view xml);

// Collects results from a run's output directory after each stage: reads and removes
// testSummary.json, reads each *.xml report once (again only if it changed), and copies the log
// files a summary names into record_dir/test_logs/. Not thread-safe (one per run).
class TestResultCollector {
 public:
  TestResultCollector(std::filesystem::path output_dir, std::filesystem::path record_dir);

  // Reads what the stage left. Error when testSummary.json exists but cannot be parsed (it is
  // removed anyway, so the next stage starts clean).
  Status collect();

  std::vector<TestCaseResult>& results() { return results_; }

 private:
  Status collect_summary();
  void collect_junit();
  std::vector<std::string> keep_logs(const std::string& test, const std::vector<std::string>& logs);

  std::filesystem::path output_dir_;
  std::filesystem::path record_dir_;
  std::vector<TestCaseResult> results_;
  std::map<std::string, std::string> seen_reports_;  // path -> size:mtime when read
  int kept_logs_ = 0;
};

}  // namespace testlooper::runner
