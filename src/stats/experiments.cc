#include "stats/experiments.h"

#include <algorithm>
#include <cmath>

namespace testlooper::stats {
namespace {

// Whether `next` runs a different experiment than `previous` (both present commits).
bool starts_experiment(const CommitEvidence& previous, const CommitEvidence& next) {
  return next.identity.empty() || previous.identity != next.identity;
}

}  // namespace

Experiments group_experiments(std::span<const CommitEvidence> history) {
  Experiments out;
  out.experiment_of_commit.assign(history.size(), kNoExperiment);
  const CommitEvidence* previous = nullptr;
  for (size_t i = 0; i < history.size(); ++i) {
    const CommitEvidence& commit = history[i];
    if (!commit.present) continue;
    if (previous == nullptr || starts_experiment(*previous, commit)) {
      out.experiments.push_back({.first_commit = i, .last_commit = i});
    }
    Experiment& experiment = out.experiments.back();
    experiment.last_commit = i;
    experiment.runs += std::max<int64_t>(commit.runs, 0);
    experiment.failures +=
        std::clamp<int64_t>(commit.failures, 0, std::max<int64_t>(commit.runs, 0));
    out.experiment_of_commit[i] = out.experiments.size() - 1;
    previous = &commit;
  }
  rebuild_blocks(out);
  return out;
}

void rebuild_blocks(Experiments& experiments) {
  experiments.observed.clear();
  experiments.blocks.clear();
  for (size_t x = 0; x < experiments.experiments.size(); ++x) {
    const Experiment& experiment = experiments.experiments[x];
    if (experiment.runs == 0) continue;
    const int64_t positions =
        experiments.observed.empty() ? 0 : static_cast<int64_t>(x - experiments.observed.back());
    experiments.observed.push_back(x);
    experiments.blocks.push_back(
        {.runs = experiment.runs, .failures = experiment.failures, .positions = positions});
  }
}

std::vector<double> change_posterior(const Experiments& experiments,
                                     const SegmentationPosterior& segmentation, size_t commits,
                                     double change_prior) {
  std::vector<double> posterior(commits, 0.0);
  const std::vector<Experiment>& all = experiments.experiments;
  for (size_t x = 1; x < all.size(); ++x) posterior[all[x].first_commit] = change_prior;
  const double log_stay = std::log1p(-change_prior);
  for (size_t b = 1; b < experiments.observed.size(); ++b) {
    const int64_t positions = experiments.blocks[b].positions;
    // Given that the blocks are separated, each position changed with probability pi / q.
    const double separation_prior = -std::expm1(static_cast<double>(positions) * log_stay);
    const double each = segmentation.separation[b] * change_prior / separation_prior;
    for (size_t x = experiments.observed[b - 1] + 1; x <= experiments.observed[b]; ++x) {
      posterior[all[x].first_commit] = std::min(1.0, each);
    }
  }
  return posterior;
}

}  // namespace testlooper::stats
