// Planner recompute time (issues 4 and 18): 10,000 commits x 200 tests on one branch under test.
//
// The branch: a linear history of 10,000 commits, each with one build and 200 tests that depend on
// it. A test's identity changes every 50 commits (staggered, so every commit changes 4 tests), the
// build's every commit. The head has its triggered set enabled (the branch under test); every test
// identity has runs; two tests fail now and then, so the extra-run budget has histories to plan
// over (stats::plan_runs over the last 1,000 commits, as the server does).
//
// BM_MakePlan: make_plan from scratch (its index of the 2M objects built too): what the server
// did after each event before issue 18, and now once at start-up. Goal < 50 ms.
// BM_MakePlanNoExtra: the same without the extra-run budget (the planner's own bookkeeping).
// BM_FirstPlanAfterLoad: what the server does at start-up instead: each commit indexed as it is
// made (ServerState::add_commit puts it while its objects are fresh: `index_ms` is their sum over
// the 10,000 commits), then the first plan over that index, its lazy caches (a commit's names,
// its compact view, the identities' progress) all cold. Goal < 50 ms.
// BM_ReplanAfterPush: the server's replan after one push: a new head is indexed (PlanIndex::put),
// its triggered set enabled, the budget's history moves by one and its new head's budget is whole;
// make_plan over the kept index. Goal < 5 ms. /0: the older heads' sets disabled (one commit
// enabled, as in BM_MakePlan); /1: they stay enabled, as a branch under test leaves them (51
// commits by the end). BM_ReplanAfterRunEnds: the replan after a run of a head test ends (its
// identity's progress). Each prints its mean wall time per replan (ms), the goal and their ratio.
#include <benchmark/benchmark.h>

#include <chrono>
#include <deque>
#include <string>

#include "planner/plan_index.h"
#include "planner/planner.h"

namespace testlooper::planner {
namespace {

constexpr int kCommits = 10'000;
constexpr int kTests = 200;
constexpr int kHistory = 1'000;

// Commit `c` of the branch; its identities' progress in `in` (3 runs each; two tests failing in
// the last 300 commits).
PlannedCommit make_commit(int c, PlanInput& in) {
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
  return pc;
}

// With `commits` false, in.commits stays empty (and the identities' progress with it: make_commit
// adds both).
PlanInput make_input(bool extra, bool commits = true) {
  PlanInput in;
  in.commits.reserve(commits ? kCommits : 0);
  for (int c = 0; commits && c < kCommits; ++c) in.commits.push_back(make_commit(c, in));
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

void report(benchmark::State& state, double seconds, double goal_ms) {
  const double ms = seconds * 1e3 / static_cast<double>(state.iterations());
  state.counters["ms"] = ms;
  state.counters["goal_ms"] = goal_ms;
  state.counters["x_goal"] = ms / goal_ms;
}

void run(benchmark::State& state, bool extra) {
  const PlanInput in = make_input(extra);
  size_t jobs = 0;
  double seconds = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    const Plan plan = make_plan(in);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    jobs = plan.jobs.size();
    benchmark::DoNotOptimize(plan);
  }
  state.counters["jobs"] = static_cast<double>(jobs);
  state.counters["objects"] = kCommits * (kTests + 1.0);
  report(state, seconds, 50);
}

void BM_MakePlan(benchmark::State& state) { run(state, true); }

void BM_FirstPlanAfterLoad(benchmark::State& state) {
  double seconds = 0;
  double index_seconds = 0;
  for (auto _ : state) {
    state.PauseTiming();
    PlanInput in = make_input(true, false);
    std::deque<PlannedCommit> commits;
    PlanIndex index;
    for (int c = 0; c < kCommits; ++c) {
      commits.push_back(make_commit(c, in));
      const auto start = std::chrono::steady_clock::now();
      index.put(&commits.back());
      index_seconds +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    state.ResumeTiming();
    const auto start = std::chrono::steady_clock::now();
    const Plan plan = make_plan(in, index);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    benchmark::DoNotOptimize(plan);
    state.PauseTiming();  // the commits and their index freed outside the figure
    commits.clear();
    state.ResumeTiming();
  }
  state.counters["index_ms"] = index_seconds * 1e3 / static_cast<double>(state.iterations());
  report(state, seconds, 50);
}
void BM_MakePlanNoExtra(benchmark::State& state) { run(state, false); }

// The server's side: commits kept where they are, their index kept up to date.
struct Kept {
  PlanInput in = make_input(true);
  std::deque<PlannedCommit> commits;  // stable addresses
  PlanIndex index;
  int next = kCommits;

  Kept() {
    for (auto& c : in.commits) commits.push_back(std::move(c));
    in.commits.clear();
    for (const auto& c : commits) index.put(&c);
  }
};

void BM_ReplanAfterPush(benchmark::State& state) {
  Kept k;
  double seconds = 0;
  size_t jobs = 0;
  for (auto _ : state) {
    k.commits.push_back(make_commit(k.next, k.in));  // fetched and resolved before the replan
    const auto start = std::chrono::steady_clock::now();
    const PlannedCommit& head = k.commits.back();
    k.index.put(&head);
    // Arg 0: the new head alone under test (the older head's set disabled, as in BM_MakePlan).
    if (state.range(0) == 0) k.in.enabled_sets.erase({head.repo, "c" + std::to_string(k.next - 1)});
    k.in.enabled_sets[{head.repo, head.sha}] = {"all"};
    BranchBudget& b = k.in.budgets.front();
    b.history.erase(b.history.begin());
    b.history.push_back(head.sha);
    b.extra_left = 500;
    b.extra_active = 0;
    const Plan plan = make_plan(k.in, k.index);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    jobs = plan.jobs.size();
    benchmark::DoNotOptimize(plan);
    ++k.next;
  }
  state.counters["jobs"] = static_cast<double>(jobs);
  report(state, seconds, 5);
}

void BM_ReplanAfterRunEnds(benchmark::State& state) {
  Kept k;
  double seconds = 0;
  int t = 0;
  for (auto _ : state) {
    const std::string hash =
        "t" + std::to_string(t) + "-" + std::to_string((kCommits - 1 + t) / 50);
    const auto start = std::chrono::steady_clock::now();
    ++k.in.progress[hash].runs;  // a run of head test t ended
    k.index.progress_changed(hash);
    const Plan plan = make_plan(k.in, k.index);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    benchmark::DoNotOptimize(plan);
    t = (t + 1) % kTests;
  }
  report(state, seconds, 5);
}

BENCHMARK(BM_MakePlan)->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_MakePlanNoExtra)->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_FirstPlanAfterLoad)->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_ReplanAfterPush)->Unit(benchmark::kMillisecond)->Iterations(50)->Arg(0)->Arg(1);
BENCHMARK(BM_ReplanAfterRunEnds)->Unit(benchmark::kMillisecond)->Iterations(50);

}  // namespace
}  // namespace testlooper::planner

BENCHMARK_MAIN();
