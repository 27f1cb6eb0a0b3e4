#include "runner/run_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "stats/change_points.h"
#include "stats/classification.h"

namespace testlooper::runner {
namespace {

using nlohmann::json;

bool counted(const RunResult& run) {
  return run.outcome == Outcome::kSuccess || run.outcome == Outcome::kFailure;
}

json rate_json(const stats::FailureRate& rate) {
  return {{"estimate", rate.estimate}, {"low", rate.low}, {"high", rate.high}};
}

json run_json(const RunResult& run) {
  return {{"id", run.run_id},
          {"success", run.outcome == Outcome::kSuccess},
          {"outcome", to_string(run.outcome)},
          {"exit_code", run.exit_code},
          {"seconds", run.seconds()},
          {"log", run.log_path.string()},
          {"artifacts", run.artifacts}};
}

// `testlooper run` runs one commit: the classification of a history of that commit alone (no
// change can be seen, so good, flaky, broken or unknown).
stats::Classification classify_alone(const std::string& identity, int64_t runs, int64_t failures) {
  const std::vector<stats::CommitEvidence> history = {{"HEAD", identity, true, runs, failures}};
  return stats::classify(history, 0, stats::analyse_changes(history));
}

json classification_json(const stats::Classification& c) {
  return {{"verdict", std::string(stats::to_string(c.verdict))}, {"confidence", c.confidence}};
}

std::string classification_text(const stats::Classification& c) {
  return fmt::format("{} ({:.0f}%)", stats::to_string(c.verdict), c.confidence * 100);
}

std::string interval(const stats::FailureRate& rate) {
  return "[" + percent(rate.low) + ", " + percent(rate.high) + "]";
}

std::string object_line(const ObjectReport& report, const ObjectTotals& t, size_t width) {
  const definitions::ResolvedObject& o = *report.object;
  std::string line =
      fmt::format("{:<{}}  {:<5}  {:>5}  {:>6}  {:>5}", o.name, width,
                  definitions::to_string(o.kind), t.runs, t.failures, t.infra_errors);
  if (report.reused) return line + "  reused from the store";
  if (report.blocked && t.runs == 0) return line + "  not run: " + *report.blocked;
  if (t.runs == 0) return line;
  line += fmt::format("  {:>7}  {:<16}", percent(t.rate.estimate), interval(t.rate));
  if (o.kind != definitions::ObjectKind::kTest) return line;
  return line + "  " + classification_text(classify_alone(o.hash, t.runs, t.failures));
}

}  // namespace

std::string percent(double rate) {
  const double p = rate * 100;
  if (p == 0 || p == 100) return fmt::format("{:.0f}%", p);
  return p < 1 ? fmt::format("{:.2f}%", p) : fmt::format("{:.1f}%", p);
}

ObjectTotals totals(const ObjectReport& report) {
  ObjectTotals t;
  for (const RunResult& run : report.runs) {
    if (!counted(run)) {
      if (run.outcome == Outcome::kInfraError) ++t.infra_errors;
      continue;
    }
    ++t.runs;
    if (run.outcome == Outcome::kFailure) ++t.failures;
    for (const TestCaseResult& test : run.tests) {
      CaseCount& count = t.cases[test.name];
      ++count.runs;
      if (!test.success) ++count.failures;
    }
  }
  t.rate = stats::failure_rate(t.failures, t.runs);
  return t;
}

std::string report_json(const std::string& commit, const std::vector<ObjectReport>& reports,
                        const std::string& working_tree) {
  json objects = json::array();
  for (const ObjectReport& report : reports) {
    const ObjectTotals t = totals(report);
    json cases = json::object();
    json case_classifications = json::object();
    for (const auto& [name, count] : t.cases) {
      cases[name] = {{"runs", count.runs}, {"failures", count.failures}};
      case_classifications[name] = classification_json(classify_alone(name, count.runs, count.failures));
    }
    json runs = json::array();
    for (const RunResult& run : report.runs) runs.push_back(run_json(run));
    objects.push_back({{"name", report.object->name},
                       {"kind", definitions::to_string(report.object->kind)},
                       {"hash", report.object->hash},
                       {"runs", t.runs},
                       {"failures", t.failures},
                       {"infra_errors", t.infra_errors},
                       {"failure_rate", rate_json(t.rate)},
                       {"classification", report.object->kind == definitions::ObjectKind::kTest
                                              ? classification_json(classify_alone(report.object->hash, t.runs, t.failures))
                                              : json(nullptr)},
                       {"cases", cases},
                       {"case_classifications", case_classifications},
                       {"reused", report.reused},
                       {"blocked", report.blocked ? json(*report.blocked) : json(nullptr)},
                       {"runs_detail", runs}});
  }
  return json{{"commit", commit},
              {"dirty", !working_tree.empty()},
              {"working_tree", working_tree.empty() ? json(nullptr) : json(working_tree)},
              {"objects", objects}}
      .dump(2);
}

std::string report_table(const std::vector<ObjectReport>& reports) {
  size_t width = 4;
  for (const ObjectReport& r : reports) width = std::max(width, r.object->name.size());
  std::string out = fmt::format("{:<{}}  {:<5}  {:>5}  {:>6}  {:>5}  {:>7}  {:<16}  {}\n", "NAME", width,
                                "KIND", "RUNS", "FAILED", "INFRA", "RATE", "95% INTERVAL", "CLASSIFICATION");
  for (const ObjectReport& report : reports) {
    const ObjectTotals t = totals(report);
    out += object_line(report, t, width) + "\n";
    for (const auto& [name, count] : t.cases) {
      if (count.failures == 0) continue;
      const stats::FailureRate rate = stats::failure_rate(count.failures, count.runs);
      out += fmt::format("    case {}: {} of {} failed, {} {}, {}\n", name, count.failures, count.runs,
                         percent(rate.estimate), interval(rate),
                         classification_text(classify_alone(name, count.runs, count.failures)));
    }
  }
  return out;
}

int exit_status(const std::vector<ObjectReport>& reports) {
  for (const ObjectReport& report : reports) {
    if (report.blocked) return 1;
    // A build is judged by its last attempt: retries exist to absorb its failures.
    if (report.object->kind == definitions::ObjectKind::kBuild && !report.runs.empty()) {
      if (report.runs.back().outcome != Outcome::kSuccess) return 1;
      continue;
    }
    for (const RunResult& run : report.runs) {
      if (run.outcome != Outcome::kSuccess) return 1;
    }
  }
  return 0;
}

}  // namespace testlooper::runner
