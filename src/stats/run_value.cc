#include "stats/run_value.h"

#include <algorithm>
#include <cmath>

#include "stats/change_points.h"
#include "stats/experiments.h"
#include "stats/segmentation.h"

namespace testlooper::stats {
namespace {

// Candidate commits of a history for plan_runs: around its most probable changes.
constexpr size_t kCandidateBoundaries = 6;
constexpr double kCandidateFloor = 1e-4;
// Last-segment weights below this do not count towards P(flaky at the newest commit).
constexpr double kNegligibleWeight = 1e-12;

// p log p, 0 at 0.
double xlogx(double p) { return p > 0 ? p * std::log(p) : 0.0; }

double binary_entropy(double p) {
  if (p <= 0 || p >= 1) return 0;
  return -p * std::log(p) - (1 - p) * std::log1p(-p);
}

// The segmentation posterior of a history's experiments and its uncertainty.
struct Uncertainty {
  SegmentationPosterior segmentation;
  double entropy = 0;
};

// P(flaky | a stretch's runs) in the three-way model of classification.h, from the log likelihood
// of its runs under the flaky class and whether they all passed or all failed.
double flaky_probability(double log_flaky_likelihood, bool all_passed, bool all_failed,
                         const ChangeModel& model) {
  if (!all_passed && !all_failed) return 1.0;  // even when the likelihood underflows
  const double flaky = model.flaky_prior * std::exp(log_flaky_likelihood);
  const double good = all_passed ? 1.0 - model.flaky_prior - model.broken_prior : 0.0;
  const double broken = all_failed ? model.broken_prior : 0.0;
  return flaky / (flaky + good + broken);
}

// P(the test is flaky at its newest commit | data): the three-way model on the segment that holds
// the newest commit, whose start is uncertain; if the rate may have changed after the last run,
// that segment may hold no runs at all and the answer is the prior.
double flaky_at_newest(const Experiments& experiments, const SegmentationPosterior& segmentation,
                       const ChangeModel& model) {
  if (experiments.observed.empty()) return model.flaky_prior;
  const BetaPrior flaky_rate{.alpha = model.flaky_alpha, .beta = model.flaky_beta};
  double flaky = 0, log_likelihood = 0;
  int64_t failures = 0, runs = 0;
  for (size_t s = experiments.blocks.size(); s-- > 0;) {
    const Block& block = experiments.blocks[s];
    log_likelihood += log_block_predictive(block.failures, block.runs, failures, runs, flaky_rate);
    failures += block.failures;
    runs += block.runs;
    const double weight = segmentation.last_segment_start[s];
    if (weight < kNegligibleWeight) continue;
    flaky += weight * flaky_probability(log_likelihood, failures == 0, failures == runs, model);
  }
  const auto after_last =
      static_cast<double>(experiments.experiments.size() - 1 - experiments.observed.back());
  const double changed_since = -std::expm1(after_last * std::log1p(-model.change_prior));
  return (1 - changed_since) * flaky + changed_since * model.flaky_prior;
}

// The entropy of where the rate changed: a distribution over "no change" and the change positions
// between the first and the last observed commits (those of one untested gap share one
// probability), the positions' probabilities scaled to sum to P(some change). Positions outside
// the observed commits are left out: only runs there could tell anything about them.
double change_entropy(const Experiments& experiments, const SegmentationPosterior& segmentation,
                      double change_prior) {
  const double log_stay = std::log1p(-change_prior);
  std::vector<double> each(experiments.blocks.size(), 0.0);
  double total = 0;
  for (size_t b = 1; b < experiments.blocks.size(); ++b) {
    const auto positions = static_cast<double>(experiments.blocks[b].positions);
    const double separation_prior = -std::expm1(positions * log_stay);
    each[b] = segmentation.separation[b] * change_prior / separation_prior;
    total += positions * each[b];
  }
  const double some_change = 1.0 - segmentation.no_change;
  const double scale = total > 0 ? some_change / total : 0.0;
  double entropy = -xlogx(segmentation.no_change);
  for (size_t b = 1; b < experiments.blocks.size(); ++b) {
    entropy -= static_cast<double>(experiments.blocks[b].positions) * xlogx(each[b] * scale);
  }
  return entropy;
}

Uncertainty uncertainty(const Experiments& experiments, const ChangeModel& model) {
  Uncertainty out;
  out.segmentation = segment_blocks(experiments.blocks, model.change_prior,
                                    {.alpha = model.rate_alpha, .beta = model.rate_beta});
  out.entropy = change_entropy(experiments, out.segmentation, model.change_prior) +
                binary_entropy(flaky_at_newest(experiments, out.segmentation, model));
  return out;
}

struct RunValue {
  double value = 0;
  double failure_probability = 0;  // posterior predictive P(the run fails)
};

// The value of one more run of experiment `x`, given the current uncertainty `now`.
RunValue value_of_run(const Experiments& experiments, size_t x, const Uncertainty& now,
                      const ChangeModel& model) {
  double entropy[2], log_evidence[2];
  for (const int failed : {0, 1}) {
    Experiments with_run = experiments;
    with_run.experiments[x].runs += 1;
    with_run.experiments[x].failures += failed;
    rebuild_blocks(with_run);
    const Uncertainty after = uncertainty(with_run, model);
    entropy[failed] = after.entropy;
    log_evidence[failed] = after.segmentation.log_evidence;
  }
  // P(outcome | data) = P(data, outcome) / P(data); normalised against rounding.
  const double pass = std::exp(log_evidence[0] - now.segmentation.log_evidence);
  const double fail = std::exp(log_evidence[1] - now.segmentation.log_evidence);
  const double p_fail = fail / (pass + fail);
  const double expected = (1 - p_fail) * entropy[0] + p_fail * entropy[1];
  return {.value = std::max(0.0, now.entropy - expected), .failure_probability = p_fail};
}

void add_middle(size_t low, size_t high, std::vector<size_t>& out) {
  if (high > low + 1) out.push_back(low + (high - low) / 2);
}

// Experiments worth valuing: the newest, the last with runs, and around the most probable
// changes: the experiments with runs on both sides and the middle of the untested gap between.
std::vector<size_t> candidates(const Experiments& experiments, const Uncertainty& now) {
  std::vector<size_t> out;
  if (experiments.experiments.empty()) return out;
  const size_t newest = experiments.experiments.size() - 1;
  out.push_back(newest);
  if (experiments.observed.empty()) return out;
  const std::vector<size_t>& observed = experiments.observed;
  out.push_back(observed.back());
  add_middle(observed.back(), newest, out);
  if (observed.front() > 0) add_middle(0, observed.front() + 1, out);
  std::vector<size_t> boundaries;
  for (size_t b = 1; b < observed.size(); ++b) {
    if (now.segmentation.separation[b] >= kCandidateFloor) boundaries.push_back(b);
  }
  const auto more_probable = [&](size_t a, size_t b) {
    return now.segmentation.separation[a] > now.segmentation.separation[b];
  };
  const size_t kept = std::min(boundaries.size(), kCandidateBoundaries);
  std::partial_sort(boundaries.begin(), boundaries.begin() + static_cast<ptrdiff_t>(kept),
                    boundaries.end(), more_probable);
  for (size_t i = 0; i < kept; ++i) {
    const size_t b = boundaries[i];
    out.push_back(observed[b - 1]);
    out.push_back(observed[b]);
    add_middle(observed[b - 1], observed[b], out);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// A history being planned: its evidence so far (with the planned runs' most probable outcomes)
// and its best next run.
struct PlannedHistory {
  std::vector<CommitEvidence> history;
  bool done = false;
  PlannedRun best;
  double failure_probability = 0;
};

void choose_best(PlannedHistory& planned, const RunBudget& budget, const ChangeModel& model) {
  planned.best.value = 0;
  if (changes_localised(planned.history, budget.confidence, model)) {
    planned.done = true;
    return;
  }
  const Experiments experiments = group_experiments(planned.history);
  const Uncertainty now = uncertainty(experiments, model);
  for (const size_t x : candidates(experiments, now)) {
    const RunValue run = value_of_run(experiments, x, now, model);
    if (run.value <= planned.best.value) continue;
    planned.best.value = run.value;
    planned.best.index = experiments.experiments[x].first_commit;
    planned.failure_probability = run.failure_probability;
  }
}

}  // namespace

bool changes_localised(std::span<const CommitEvidence> history, double confidence,
                       const ChangeModel& model) {
  const ChangeAnalysis analysis = analyse_changes(history, model);
  if (analysis.changes.empty()) return false;
  return std::all_of(analysis.changes.begin(), analysis.changes.end(),
                     [&](const ChangePoint& change) { return change.probability >= confidence; });
}

std::optional<HeadRate> head_rate(std::span<const CommitEvidence> history, double width) {
  if (history.empty()) return std::nullopt;
  const Experiments experiments = group_experiments(history);
  const size_t x = experiments.experiment_of_commit.back();
  if (x == kNoExperiment) return std::nullopt;
  const Experiment& head = experiments.experiments[x];
  HeadRate out{head.first_commit, head.runs, head.failures, failure_rate(head.failures, head.runs)};
  out.bounded = out.rate.high - out.rate.low <= width;
  return out;
}

double value_of_one_more_run(std::span<const CommitEvidence> history, size_t index,
                             const ChangeModel& model) {
  const Experiments experiments = group_experiments(history);
  const size_t x = experiments.experiment_of_commit[index];
  if (x == kNoExperiment) return 0;
  const Uncertainty now = uncertainty(experiments, model);
  return value_of_run(experiments, x, now, model).value;
}

std::vector<PlannedRun> plan_runs(std::span<const std::vector<CommitEvidence>> histories,
                                  const RunBudget& budget, const ChangeModel& model) {
  std::vector<PlannedHistory> planned(histories.size());
  for (size_t h = 0; h < histories.size(); ++h) {
    planned[h].history = histories[h];
    planned[h].best.history = h;
    choose_best(planned[h], budget, model);
  }
  std::vector<PlannedRun> runs;
  while (static_cast<int64_t>(runs.size()) < budget.runs) {
    PlannedHistory* next = nullptr;
    for (PlannedHistory& candidate : planned) {
      if (candidate.done) continue;
      if (next == nullptr || candidate.best.value > next->best.value) next = &candidate;
    }
    if (next == nullptr || next->best.value < budget.min_value) break;
    runs.push_back(next->best);
    CommitEvidence& commit = next->history[next->best.index];
    commit.runs += 1;
    if (next->failure_probability > 0.5) commit.failures += 1;
    choose_best(*next, budget, model);
  }
  return runs;
}

}  // namespace testlooper::stats
