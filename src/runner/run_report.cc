#include "runner/run_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/glob.h"
#include "stats/change_points.h"
#include "stats/classification.h"

namespace testlooper::runner {
namespace {

using nlohmann::json;

// How much of a failed case's message the closing summary shows.
constexpr size_t kSummaryMessageLines = 5;

bool counted(const RunResult& run) {
  return run.outcome == Outcome::kSuccess || run.outcome == Outcome::kFailure;
}

json rate_json(const stats::FailureRate& rate) {
  return {{"estimate", rate.estimate}, {"low", rate.low}, {"high", rate.high}};
}

json run_json(const RunResult& run) {
  json cases = json::array();
  for (const TestCaseResult& test : run.tests) {
    json logs = json::array();
    for (const std::string& log : test.logs) {
      logs.push_back(run.record_dir.empty() ? log : (run.record_dir / log).string());
    }
    cases.push_back({{"name", test.name},
                     {"success", test.success},
                     {"elapsed", test.elapsed},
                     {"message", test.message},
                     {"skipped", test.skipped},
                     {"logs", logs}});
  }
  return {{"id", run.run_id},
          {"success", run.outcome == Outcome::kSuccess},
          {"outcome", to_string(run.outcome)},
          {"exit_code", run.exit_code},
          {"seconds", run.seconds()},
          {"log", run.log_path.string()},
          {"artifacts", run.artifacts},
          {"cases", cases}};
}

// The first `max_lines` lines of `text`, each as "<indent><line>\n", then "(+N lines)" when more.
std::string first_lines(const std::string& text, size_t max_lines, const std::string& indent) {
  std::string out;
  size_t start = 0, shown = 0;
  while (start < text.size() && shown < max_lines) {
    const size_t end = std::min(text.find('\n', start), text.size());
    out += indent + text.substr(start, end - start) + "\n";
    ++shown;
    start = end + 1;
  }
  size_t more = 0;
  for (size_t i = start; i < text.size(); ++i) more += text[i] == '\n';
  if (start < text.size()) more += text.back() == '\n' ? 0 : 1;
  if (more > 0) out += indent + fmt::format("(+{} lines)\n", more);
  return out;
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
      if (test.skipped) continue;  // not a run of the case
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

std::optional<Gate::FailOn> parse_fail_on(const std::string& word) {
  if (word == "broken") return Gate::FailOn::kBroken;
  if (word == "flaky") return Gate::FailOn::kFlaky;
  if (word == "any") return Gate::FailOn::kAny;
  return std::nullopt;
}

namespace {

const char* fail_on_word(Gate::FailOn f) {
  switch (f) {
    case Gate::FailOn::kBroken:
      return "broken";
    case Gate::FailOn::kFlaky:
      return "flaky";
    case Gate::FailOn::kAny:
      return "any";
  }
  return "any";
}

bool allowed_flaky(const Gate& gate, const std::string& name) {
  return std::any_of(gate.allow_flaky.begin(), gate.allow_flaky.end(),
                     [&](const std::string& glob) { return glob_match(glob, name); });
}

// Why `report` fails `gate`, or "".
std::string gate_failure(const ObjectReport& report, const Gate& gate) {
  if (report.blocked) return "not run: " + *report.blocked;
  const definitions::ResolvedObject& o = *report.object;
  if (o.kind != definitions::ObjectKind::kTest) {
    // A build is judged by its last attempt: retries exist to absorb its failures.
    if (!report.runs.empty() && report.runs.back().outcome != Outcome::kSuccess)
      return "the build failed: " + report.runs.back().message;
    return "";
  }
  const ObjectTotals t = totals(report);
  if (t.runs == 0 && !report.runs.empty()) return "no run finished: infrastructure errors only";
  const stats::Verdict verdict = classify_alone(o.hash, t.runs, t.failures).verdict;
  if (t.failures > 0 && verdict == stats::Verdict::kFlaky && allowed_flaky(gate, o.name)) return "";
  const std::string rate = fmt::format("{} of {} runs failed", t.failures, t.runs);
  switch (gate.fail_on) {
    case Gate::FailOn::kBroken:
      return verdict == stats::Verdict::kBroken ? "broken: " + rate : "";
    case Gate::FailOn::kFlaky:
      return t.failures > 0 ? std::string(stats::to_string(verdict)) + ": " + rate : "";
    case Gate::FailOn::kAny:
      if (t.failures > 0) return std::string(stats::to_string(verdict)) + ": " + rate;
      return t.infra_errors > 0 ? fmt::format("{} infrastructure errors", t.infra_errors) : "";
  }
  return "";
}

}  // namespace

std::vector<std::string> gate_failures(const std::vector<ObjectReport>& reports, const Gate& gate) {
  std::vector<std::string> out;
  for (const ObjectReport& report : reports) {
    const std::string why = gate_failure(report, gate);
    if (!why.empty()) out.push_back(report.object->name + ": " + why);
  }
  return out;
}

int exit_status(const std::vector<ObjectReport>& reports, const Gate& gate) {
  return gate_failures(reports, gate).empty() ? 0 : 1;
}

std::string report_summary(const std::vector<ObjectReport>& reports, const Gate& gate,
                           double seconds,
                           const std::function<std::string(const std::string&)>& read_tail) {
  int64_t runs = 0, failures = 0, infra = 0, tests = 0;
  std::string details;
  for (const ObjectReport& report : reports) {
    const ObjectTotals t = totals(report);
    runs += t.runs;
    failures += t.failures;
    infra += t.infra_errors;
    const definitions::ResolvedObject& o = *report.object;
    if (o.kind == definitions::ObjectKind::kTest) ++tests;
    if (t.failures == 0) continue;
    const auto first = std::find_if(report.runs.begin(), report.runs.end(), [](const RunResult& r) {
      return r.outcome == Outcome::kFailure;
    });
    const std::string verdict =
        o.kind == definitions::ObjectKind::kTest
            ? std::string(stats::to_string(classify_alone(o.hash, t.runs, t.failures).verdict))
            : "failed";
    std::string label = verdict;
    std::transform(label.begin(), label.end(), label.begin(), ::toupper);
    details += fmt::format(
        "{:<7} {}: {} of {} runs failed, {} {}{}\n", label, o.name, t.failures, t.runs,
        percent(t.rate.estimate), interval(t.rate),
        verdict == "flaky" && allowed_flaky(gate, o.name) ? " (allowed by --allow-flaky)" : "");
    if (first == report.runs.end()) continue;
    details += fmt::format("    first failure: run {}: {}\n", first->run_id, first->message);
    // The first failed case that says why (JUnit's <failure>, testSummary.json's "message").
    const auto failed_case =
        std::find_if(first->tests.begin(), first->tests.end(),
                     [](const TestCaseResult& c) { return !c.success && !c.message.empty(); });
    if (failed_case != first->tests.end()) {
      details += "    case " + failed_case->name + ":\n";
      details += first_lines(failed_case->message, kSummaryMessageLines, "    > ");
    }
    if (first->log_path.empty()) continue;
    details += "    log: " + first->log_path.string() + "\n";
    std::string tail = read_tail(first->log_path.string());
    if (!tail.empty() && tail.back() == '\n') tail.pop_back();
    size_t start = 0;
    while (!tail.empty() && start <= tail.size()) {
      const size_t end = tail.find('\n', start);
      details += "    | " + tail.substr(start, end - start) + "\n";
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
  std::string out =
      fmt::format("=== summary: {} runs of {} objects ({} tests) in {:.1f} s: {} failed{}\n", runs,
                  reports.size(), tests, seconds, failures,
                  infra ? fmt::format(", {} infrastructure errors", infra) : "");
  out += details;
  const std::vector<std::string> failing = gate_failures(reports, gate);
  if (failing.empty()) {
    out += fmt::format("=== PASSED (--fail-on {})\n", fail_on_word(gate.fail_on));
  } else {
    out += fmt::format("=== FAILED (--fail-on {}): {} failing\n", fail_on_word(gate.fail_on),
                       failing.size());
    for (const std::string& line : failing) out += "    " + line + "\n";
  }
  return out;
}

}  // namespace testlooper::runner
