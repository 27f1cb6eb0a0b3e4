// Experiments: a test's first-parent history cut where its identity changes. Internal to tl_stats.
//
// An experiment is a maximal stretch of consecutive present commits with one known identity (or a
// single commit whose identity is unknown); commits where the test is absent belong to none. Runs
// of one experiment are pooled: the failure rate can only change where an experiment starts, and
// every experiment but the first starts at such a change position.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "stats/evidence.h"
#include "stats/segmentation.h"

namespace testlooper::stats {

inline constexpr size_t kNoExperiment = std::numeric_limits<size_t>::max();

struct Experiment {
  size_t first_commit = 0;  // history index of its first commit: a change position, unless first
  size_t last_commit = 0;   // history index of its last present commit
  int64_t runs = 0;
  int64_t failures = 0;
};

// A history cut into experiments, and the experiments with runs as segmentation blocks.
struct Experiments {
  std::vector<Experiment> experiments;       // oldest first
  std::vector<size_t> experiment_of_commit;  // per history index; kNoExperiment where absent
  std::vector<size_t> observed;              // indices of the experiments with runs, oldest first
  std::vector<Block> blocks;                 // one per observed experiment
};

// Cuts `history` (oldest first) into experiments.
Experiments group_experiments(std::span<const CommitEvidence> history);

// Rebuilds `observed` and `blocks` from `experiments` (after their runs were changed).
void rebuild_blocks(Experiments& experiments);

// Per history index (`commits` of them), P(the rate changed at this commit | data): the exact
// marginal of the per-commit change model, given the segmentation posterior of `experiments`'
// blocks. Between the first and the last observed experiment a gap's separation probability is
// shared by its change positions; outside, where nothing is observed, it is the prior; commits that
// are not change positions get 0. REQUIRES 0 < change_prior < 1.
std::vector<double> change_posterior(const Experiments& experiments,
                                     const SegmentationPosterior& segmentation, size_t commits,
                                     double change_prior);

}  // namespace testlooper::stats
