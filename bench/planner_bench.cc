// Planner recompute time (issue 4's figure): 10,000 commits x 200 tests on one branch under test.
//
// The branch: a linear history of 10,000 commits, each with one build and 200 tests that depend on
// it. A test's identity changes every 50 commits (staggered, so every commit changes 4 tests), the
// build's every commit. The head has its triggered set enabled (the branch under test); every test
// identity has runs; two tests fail now and then, so the extra-run budget has histories to plan
// over (stats::plan_runs over the last 1,000 commits, as the server does).
//
// BM_MakePlan: make_plan on that input, the whole recompute the server does after each event.
// BM_MakePlanNoExtra: the same without the extra-run budget (the planner's own bookkeeping).
#include <benchmark/benchmark.h>

#include <string>

#include "planner/planner.h"

namespace testlooper::planner {
namespace {

constexpr int kCommits = 10'000;
constexpr int kTests = 200;
constexpr int kHistory = 1'000;

PlanInput make_input(bool extra) {
  PlanInput in;
  in.commits.reserve(kCommits);
  for (int c = 0; c < kCommits; ++c) {
    PlannedCommit pc;
    pc.repo = "repo";
    pc.sha = "c" + std::to_string(c);
    pc.time = 1'700'000'000 + c;
    const std::string build_hash = "b" + std::to_string(c);
    pc.objects.reserve(kTests + 1);
    pc.objects.push_back({"build/linux", "build", build_hash, {}, 2, 2, 0, 1});
    std::vector<std::string> all = {"build/linux"};
    for (int t = 0; t < kTests; ++t) {
      const std::string name = "test" + std::to_string(t) + "/linux";
      const int epoch = (c + t) / 50;
      const std::string hash = "t" + std::to_string(t) + "-" + std::to_string(epoch);
      pc.objects.push_back(
          {name, "test", hash, {{"repo/" + pc.sha + "/build/linux", build_hash}}, 1, 1, 0, 0});
      all.push_back(name);
      HashProgress& p = in.progress[hash];
      p.runs = 3;
      if (t < 2 && c > kCommits - 300) p.failures = 1;  // two tests began failing 300 commits ago
    }
    in.progress[build_hash] = {1, 0, 0};
    pc.test_sets["all"] = std::move(all);
    in.commits.push_back(std::move(pc));
  }
  in.enabled_sets[{"repo", "c" + std::to_string(kCommits - 1)}] = {"all"};
  in.targets[{"repo", "c" + std::to_string(kCommits - 1), "test0/linux"}] = 10;
  if (extra) {
    BranchBudget b{"repo", "main", {}, 500, 0, 8};
    for (int c = kCommits - kHistory; c < kCommits; ++c)
      b.history.push_back("c" + std::to_string(c));
    in.budgets.push_back(std::move(b));
  }
  return in;
}

void run(benchmark::State& state, bool extra) {
  const PlanInput in = make_input(extra);
  size_t jobs = 0;
  for (auto _ : state) {
    const Plan plan = make_plan(in);
    jobs = plan.jobs.size();
    benchmark::DoNotOptimize(plan);
  }
  state.counters["jobs"] = static_cast<double>(jobs);
  state.counters["objects"] = kCommits * (kTests + 1.0);
}

void BM_MakePlan(benchmark::State& state) { run(state, true); }
void BM_MakePlanNoExtra(benchmark::State& state) { run(state, false); }

BENCHMARK(BM_MakePlan)->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_MakePlanNoExtra)->Unit(benchmark::kMillisecond)->Iterations(5);

}  // namespace
}  // namespace testlooper::planner

BENCHMARK_MAIN();
