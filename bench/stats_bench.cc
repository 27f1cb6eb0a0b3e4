// Statistics benchmarks (figures in the statistics issue's note and docs/statistics.md).
//
// 1. A simulation, printed first: 200 commits of one test whose failure rate goes from 0% to 5% at
//    a random commit. Runs until the most probable change is >= 95% likely, counted two ways:
//     - adaptive: 2 runs on every 10th commit and the newest, then one run at a time wherever
//       plan_runs() says it teaches most;
//     - uniform: k runs on every commit, k = 1, 2, ... until confident.
//    Median over --trials trials (default 50), and the fraction of confident answers that named
//    the right commit. Deterministic seeds.
// 2. Google Benchmark timings: analyse_changes on 2,000 commits, value_of_one_more_run on 200.
//
// Usage: stats_bench [--trials=N] [Google Benchmark flags]; --trials=0 skips the simulation.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "stats/change_points.h"
#include "stats/run_value.h"

namespace testlooper::stats {
namespace {

constexpr size_t kCommits = 200;
constexpr double kFlakeRate = 0.05;
constexpr double kConfidence = 0.95;
constexpr int64_t kMaxRuns = 40'000;

// One simulated test: its history so far and the commit where it starts failing 5% of the time.
class SimulatedTest {
 public:
  SimulatedTest(size_t culprit, uint64_t seed) : culprit_(culprit), rng_(seed) {
    for (size_t i = 0; i < kCommits; ++i) {
      history_.push_back({.commit = "c" + std::to_string(i), .identity = "h" + std::to_string(i)});
    }
  }

  void run(size_t index) {
    history_[index].runs += 1;
    const bool flaky = index >= culprit_;
    if (flaky && std::bernoulli_distribution(kFlakeRate)(rng_)) history_[index].failures += 1;
    ++runs_;
  }

  // The most probable change's commit once it is confident.
  std::optional<size_t> confident_answer() const {
    const ChangeAnalysis analysis = analyse_changes(history_);
    if (analysis.changes.empty() || analysis.changes[0].probability < kConfidence) return {};
    return analysis.changes[0].index;
  }

  const std::vector<CommitEvidence>& history() const { return history_; }
  size_t culprit() const { return culprit_; }
  int64_t runs() const { return runs_; }

 private:
  size_t culprit_;
  std::mt19937_64 rng_;
  std::vector<CommitEvidence> history_;
  int64_t runs_ = 0;
};

struct Outcome {
  int64_t runs = 0;
  bool confident = false;
  bool right = false;
};

Outcome finish(const SimulatedTest& test, std::optional<size_t> answer) {
  return {.runs = test.runs(), .confident = answer.has_value(), .right = answer == test.culprit()};
}

Outcome adaptive(size_t culprit, uint64_t seed) {
  SimulatedTest test(culprit, seed);
  for (size_t i = 0; i < kCommits; i += 10) test.run(i), test.run(i);
  test.run(kCommits - 1), test.run(kCommits - 1);
  std::optional<size_t> answer = test.confident_answer();
  while (!answer && test.runs() < kMaxRuns) {
    const std::vector<std::vector<CommitEvidence>> histories = {test.history()};
    const std::vector<PlannedRun> plan = plan_runs(histories, {.runs = 1, .min_value = 0});
    if (plan.empty()) break;
    test.run(plan[0].index);
    answer = test.confident_answer();
  }
  return finish(test, answer);
}

Outcome uniform(size_t culprit, uint64_t seed) {
  SimulatedTest test(culprit, seed);
  std::optional<size_t> answer;
  while (!answer && test.runs() < kMaxRuns) {
    for (size_t i = 0; i < kCommits; ++i) test.run(i);
    answer = test.confident_answer();
  }
  return finish(test, answer);
}

struct Summary {
  std::vector<int64_t> runs;
  int confident = 0;
  int right = 0;

  void add(const Outcome& outcome) {
    runs.push_back(outcome.runs);
    confident += outcome.confident;
    right += outcome.right;
  }
  int64_t percentile(double p) {
    std::sort(runs.begin(), runs.end());
    return runs[static_cast<size_t>(p * static_cast<double>(runs.size() - 1) + 0.5)];
  }
  void print(const char* name) {
    std::printf(
        "%-9s median %6lld runs (p10 %6lld, p90 %6lld); confident %d/%zu, right commit %d/%d\n",
        name, static_cast<long long>(percentile(0.5)), static_cast<long long>(percentile(0.1)),
        static_cast<long long>(percentile(0.9)), confident, runs.size(), right, confident);
  }
};

void simulate(int trials) {
  std::printf(
      "Simulation: %zu commits, failure rate 0%% -> %.0f%% at a random commit, until the "
      "most probable change is >= %.0f%% likely; %d trials\n",
      kCommits, kFlakeRate * 100, kConfidence * 100, trials);
  std::mt19937_64 rng(20250105);
  Summary adaptive_runs, uniform_runs;
  const auto start = std::chrono::steady_clock::now();
  for (int trial = 0; trial < trials; ++trial) {
    const size_t culprit = std::uniform_int_distribution<size_t>(1, kCommits - 1)(rng);
    const uint64_t seed = rng();
    adaptive_runs.add(adaptive(culprit, seed));
    uniform_runs.add(uniform(culprit, seed));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  adaptive_runs.print("adaptive");
  uniform_runs.print("uniform");
  std::printf("uniform / adaptive median runs: %.1fx (target >= 5x); %.1f s\n\n",
              static_cast<double>(uniform_runs.percentile(0.5)) /
                  static_cast<double>(adaptive_runs.percentile(0.5)),
              seconds);
}

// 2,000 commits, 1-5 runs each, a 5% flake over the middle third.
std::vector<CommitEvidence> long_history() {
  std::mt19937_64 rng(7);
  std::vector<CommitEvidence> history;
  for (size_t i = 0; i < 2000; ++i) {
    const int64_t runs = std::uniform_int_distribution<int64_t>(1, 5)(rng);
    const double rate = i >= 700 && i < 1400 ? 0.05 : 0.0;
    history.push_back({.commit = "c" + std::to_string(i),
                       .identity = "h" + std::to_string(i),
                       .runs = runs,
                       .failures = std::binomial_distribution<int64_t>(runs, rate)(rng)});
  }
  return history;
}

void BM_AnalyseChanges2000Commits(benchmark::State& state) {
  const std::vector<CommitEvidence> history = long_history();
  for (auto _ : state) benchmark::DoNotOptimize(analyse_changes(history));
}
BENCHMARK(BM_AnalyseChanges2000Commits)->Unit(benchmark::kMillisecond);

void BM_ValueOfOneMoreRun(benchmark::State& state) {
  SimulatedTest test(120, 1);
  for (size_t i = 0; i < kCommits; i += 5) test.run(i), test.run(i), test.run(i);
  for (auto _ : state) benchmark::DoNotOptimize(value_of_one_more_run(test.history(), 117));
}
BENCHMARK(BM_ValueOfOneMoreRun)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace testlooper::stats

int main(int argc, char** argv) {
  int trials = 50;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--trials=", 9) == 0) {
      trials = std::atoi(argv[i] + 9);
    } else {
      rest.push_back(argv[i]);
    }
  }
  if (trials > 0) testlooper::stats::simulate(trials);
  std::fflush(stdout);
  int count = static_cast<int>(rest.size());
  benchmark::Initialize(&count, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
