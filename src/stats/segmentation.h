// Segmentation: the exact Bayesian product-partition posterior over where a failure rate changes
// along a sequence of experiments ("blocks"). Internal to tl_stats; callers use change_points.h.
//
// Model: the blocks are cut into segments; every segment has its own failure rate p ~ Beta(a, b),
// and its runs are Bernoulli(p). Between block j-1 and block j lie `positions` commits where the
// rate may change, each independently with the change prior pi, so the two blocks are in different
// segments with probability q_j = 1 - (1 - pi)^positions. Rates are integrated out (Beta-Binomial
// marginal likelihoods), and the sum over all segmentations is done exactly by a forward pass over
// the blocks and the same pass over the reversed blocks: O(B^2) for B blocks, with no logarithms or
// exponentials in the inner loop for blocks of up to 8 runs.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace testlooper::stats {

// An experiment with runs: consecutive commits that share one identity.
struct Block {
  int64_t runs = 0;      // > 0
  int64_t failures = 0;  // 0 <= failures <= runs
  // Commits between the previous block and this one (this block's first commit included) where
  // the rate may change. Ignored for the first block; > 0 for the others.
  int64_t positions = 0;
};

// The Beta prior of a segment's failure rate.
struct BetaPrior {
  double alpha = 0.5;
  double beta = 0.5;
};

// The posterior of a segmentation of B blocks.
struct SegmentationPosterior {
  double log_evidence = 0;  // log P(every run's outcome), up to the binomial coefficients
  // separation[j] = P(blocks j-1 and j are in different segments | data), for 1 <= j < B;
  // separation[0] = 0.
  std::vector<double> separation;
  // last_segment_start[s] = P(the segment holding the last block starts at block s | data).
  std::vector<double> last_segment_start;
  double no_change = 1;  // P(all blocks are one segment | data)
};

// The posterior of segmentations of `blocks` (oldest first). REQUIRES 0 < change_prior < 1.
SegmentationPosterior segment_blocks(std::span<const Block> blocks, double change_prior,
                                     BetaPrior prior);

// log P(`failures` in `runs` more runs, in one given order | a stretch that already holds
// `failures_before` in `runs_before`) under Beta(alpha, beta): what one block adds to
// log_marginal_likelihood.
double log_block_predictive(int64_t failures, int64_t runs, int64_t failures_before,
                            int64_t runs_before, BetaPrior prior);

// log of the Beta-Binomial marginal likelihood of `failures` in `runs` under Beta(alpha, beta)
// (the probability of one particular sequence of outcomes).
double log_marginal_likelihood(int64_t failures, int64_t runs, BetaPrior prior);

}  // namespace testlooper::stats
