// What `testlooper run` shows: per object, the runs it had, their failure rate with a 95%
// interval, and the individual test cases; as a table for people or as JSON for programs.
// Pure functions over results; no I/O. Thread-compatible.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "definitions/definitions.h"
#include "runner/runner.h"
#include "stats/failure_rate.h"

namespace testlooper::runner {

// One object's part of a `testlooper run`.
struct ObjectReport {
  const definitions::ResolvedObject* object = nullptr;
  bool reused = false;                 // a build found complete in the store, not run
  std::optional<std::string> blocked;  // why it did not run
  std::vector<RunResult> runs;         // in the order they finished
};

// Runs and failures of one individual test case.
struct CaseCount {
  int64_t runs = 0;
  int64_t failures = 0;
};

// Counts over an object's runs. Infrastructure errors and cancelled runs are not runs: they
// say nothing about the test. Cases are counted from counted runs only.
struct ObjectTotals {
  int64_t runs = 0;
  int64_t failures = 0;
  int64_t infra_errors = 0;
  std::map<std::string, CaseCount> cases;
  stats::FailureRate rate;
};

ObjectTotals totals(const ObjectReport& report);

// {"commit", "dirty", "working_tree", "objects": [{"name", "kind", "hash", "runs", "failures",
// "infra_errors", "failure_rate": {"estimate", "low", "high"}, "cases": {name: {"runs",
// "failures"}}, "reused", "blocked", "runs_detail": [{"id", "success", "outcome", "exit_code",
// "seconds", "log", "artifacts", "cases": [{"name", "success", "elapsed", "message", "skipped",
// "logs": [path]}]}]}]}, pretty-printed. Skipped cases are listed per run but never counted.
// `working_tree` is the id of the working tree run (git/working_tree.h) when it had uncommitted
// changes: then "dirty" is true, "commit" is the commit they are on top of, and "working_tree" is
// that id (null when clean).
std::string report_json(const std::string& commit, const std::vector<ObjectReport>& reports,
                        const std::string& working_tree = "");

// The table: one line per object (runs, failed, infra, failure rate, 95% interval), then for
// each object the cases that failed at least once, with their rates.
std::string report_table(const std::vector<ObjectReport>& reports);

// What makes `testlooper run` exit 1 (`--fail-on`, `--allow-flaky`), for CI gating by verdict.
// Whatever the gate, a blocked object, a build whose last attempt failed and a test with no
// counted run (only infrastructure errors) fail it: nothing vouches for them.
struct Gate {
  enum class FailOn {
    kBroken,  // tests whose verdict is broken (fails every time, as far as the runs tell)
    kFlaky,   // tests that failed at least once (flaky or broken)
    kAny,     // any run that did not succeed, infrastructure errors included (the default)
  };
  FailOn fail_on = FailOn::kAny;
  // Tests (names, globs as core/glob.h) whose flakiness is accepted: a test matching one whose
  // verdict is flaky does not fail the gate, whatever fail_on says.
  std::vector<std::string> allow_flaky;
};

// "broken" | "flaky" | "any" to a FailOn; nullopt for another word.
std::optional<Gate::FailOn> parse_fail_on(const std::string& word);

// Why each object fails `gate` ("<name>: <why>"), in report order; empty when it passes.
std::vector<std::string> gate_failures(const std::vector<ObjectReport>& reports, const Gate& gate);

// 0 when nothing fails `gate` (gate_failures), else 1. With the default gate: 0 when every test
// run and the last attempt of every build succeeded and nothing was blocked.
int exit_status(const std::vector<ObjectReport>& reports, const Gate& gate = {});

// The closing summary for CI logs (as pytest's and nextest's): totals and time; each failing or
// flaky test with its failure rate and interval, its verdict, and the first failure's message,
// the first lines of its first failed case's message (when a case said why), its log path and
// last `tail_lines` lines (read by `read_tail(log path)`); then the gate's result
// and why. Plain text, no colour.
std::string report_summary(const std::vector<ObjectReport>& reports, const Gate& gate,
                           double seconds,
                           const std::function<std::string(const std::string&)>& read_tail);

// "12.5%" style percentage of a rate in [0, 1].
std::string percent(double rate);

}  // namespace testlooper::runner
