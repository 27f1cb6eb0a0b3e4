#include "stats/segmentation.h"

#include <algorithm>
#include <cmath>

#include "stats/factor_tables.h"

namespace testlooper::stats {
namespace {

// The probability of a block's outcomes given its segment so far, K failures and F passes, is
//   rising(a + K, k) * rising(b + F, f) / rising(a + b + K + F, k + f)
// for k failures and f passes, where rising(x, c) = x (x + 1) ... (x + c - 1). Blocks of up to
// kLargeBlock runs read it from tables of rising factorials (three look-ups, no division); larger
// ones, whose factorials could overflow, from log-Gamma tables and one exponential.
constexpr int64_t kLargeBlock = 8;
// Run-length weights below this fraction of their sum are dropped for good: no later data can make
// a segment that improbable (460 nats) matter again. Checked after every large block and every
// kDropEvery blocks, not in the inner loop; in between, a weight already negligible may sink
// further, at worst into denormals for a few blocks.
constexpr double kNegligible = 1e-200;
constexpr size_t kDropEvery = 16;

double log_beta(double a, double b) { return std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b); }

// Failures and passes of a stretch of blocks, packed in one word (passes in the high half) so that
// one subtraction gives both counts of a segment. 32 bits each: far more runs than a history holds.
struct Outcomes {
  uint64_t packed = 0;

  static Outcomes of(uint64_t failures, uint64_t passes) { return {passes << 32 | failures}; }
  uint32_t failures() const { return static_cast<uint32_t>(packed); }
  uint32_t passes() const { return static_cast<uint32_t>(packed >> 32); }
  // The outcomes of the blocks from `earlier` to this one. REQUIRES earlier <= *this per count.
  Outcomes since(Outcomes earlier) const { return {packed - earlier.packed}; }
};

// The forward recursion over blocks. weight[s] is P(the current segment started at block s | the
// blocks seen so far), up to the normalisation pending_scale_; blocks before `live_` have weight 0.
class ForwardPass {
 public:
  ForwardPass(std::span<const Block> blocks, BetaPrior prior)
      : blocks_(blocks), prior_(prior), weight_(blocks.size(), 0.0) {
    uint32_t failures = 0, passes = 0;
    for (const Block& block : blocks) {
      before_.push_back(Outcomes::of(failures, passes));
      failures += static_cast<uint32_t>(block.failures);
      passes += static_cast<uint32_t>(block.runs - block.failures);
    }
    // Every table gets the same size, so that asking one twice never grows it (see
    // factor_tables.h): the pointers stay valid for the whole pass.
    table_size_ = static_cast<size_t>(failures) + passes + 1;
  }

  // Runs the pass with separation_prior[e] = P(a change between blocks e-1 and e) and returns
  // log P(blocks < e) for e = 0..B.
  std::vector<double> run(std::span<const double> separation_prior) {
    std::vector<double> log_evidence(blocks_.size() + 1, 0.0);
    for (size_t e = 0; e < blocks_.size(); ++e) {
      const double q = e == 0 ? 1.0 : separation_prior[e];
      const double log_scale =
          blocks_[e].runs > kLargeBlock ? observe_large(e, q) : observe_small(e, q);
      log_evidence[e + 1] = log_evidence[e] + log_scale;
    }
    return log_evidence;
  }

  // The weights after the last block: P(the last segment starts at block s | data).
  std::vector<double> weights() const {
    std::vector<double> normalised = weight_;
    for (double& w : normalised) w *= pending_scale_;
    return normalised;
  }

 private:
  // Block e opens a segment with probability q, the running segments continue otherwise, and every
  // weight is multiplied by factor(s): the probability of block e's outcomes given the segment
  // that started at s. Returns log P(block e | blocks < e) minus log_scale, the log of the scale
  // factor() applied.
  template <typename Factor>
  double update(size_t e, double q, double log_scale, Factor factor) {
    const double stay = (1.0 - q) * pending_scale_;
    double* weight = weight_.data();
    // Two accumulators, so the sum is not bound by the latency of one addition.
    double even = 0, odd = 0;
    size_t s = live_;
    for (; s + 1 < e; s += 2) {
      even += weight[s] *= stay * factor(s);
      odd += weight[s + 1] *= stay * factor(s + 1);
    }
    if (s < e) even += weight[s] *= stay * factor(s);
    weight[e] = q * factor(e);
    const double total = even + odd + weight[e];
    pending_scale_ = 1.0 / total;
    if (e % kDropEvery == 0) drop_negligible(e, total);
    return log_scale + std::log(total);
  }

  // Sets the weights that are negligible next to their sum `total` to 0 and moves live_ past the
  // leading zeros.
  void drop_negligible(size_t e, double total) {
    const double negligible = kNegligible * total;
    for (size_t s = live_; s <= e; ++s) {
      if (weight_[s] < negligible) weight_[s] = 0;
    }
    while (live_ < e && weight_[live_] == 0) ++live_;
  }

  // Product form: two table look-ups per segment start when the block's runs all passed or all
  // failed (the commonest blocks), three otherwise.
  double observe_small(size_t e, double q) {
    const Block& block = blocks_[e];
    const double* failures = rising_factorials(prior_.alpha, block.failures, false, table_size_);
    const double* passes =
        rising_factorials(prior_.beta, block.runs - block.failures, false, table_size_);
    const double* inverse_runs =
        rising_factorials(prior_.alpha + prior_.beta, block.runs, true, table_size_);
    const Outcomes* before = before_.data();
    const Outcomes now = before[e];
    if (block.failures == 0) {
      return update(e, q, 0.0, [=](size_t s) {
        const Outcomes segment = now.since(before[s]);
        const uint32_t k = segment.failures(), f = segment.passes();
        return passes[f] * inverse_runs[k + f];
      });
    }
    if (block.failures == block.runs) {
      return update(e, q, 0.0, [=](size_t s) {
        const Outcomes segment = now.since(before[s]);
        const uint32_t k = segment.failures(), f = segment.passes();
        return failures[k] * inverse_runs[k + f];
      });
    }
    return update(e, q, 0.0, [=](size_t s) {
      const Outcomes segment = now.since(before[s]);
      const uint32_t k = segment.failures(), f = segment.passes();
      return failures[k] * passes[f] * inverse_runs[k + f];
    });
  }

  // Log-Gamma form for large blocks, scaled by its largest term to stay in range.
  double observe_large(size_t e, double q) {
    const Block& block = blocks_[e];
    const auto k = static_cast<size_t>(block.failures);
    const auto f = static_cast<size_t>(block.runs - block.failures);
    const double* lgamma_failures = log_gammas(prior_.alpha, table_size_);
    const double* lgamma_passes = log_gammas(prior_.beta, table_size_);
    const double* lgamma_runs = log_gammas(prior_.alpha + prior_.beta, table_size_);
    scratch_.assign(e + 1, 0.0);
    double largest = -INFINITY;
    for (size_t s = live_; s <= e; ++s) {
      const Outcomes segment = before_[e].since(before_[s]);
      const size_t fails = segment.failures(), passes = segment.passes();
      const size_t runs = fails + passes;
      scratch_[s] = lgamma_failures[fails + k] - lgamma_failures[fails] +
                    lgamma_passes[passes + f] - lgamma_passes[passes] - lgamma_runs[runs + k + f] +
                    lgamma_runs[runs];
      largest = std::max(largest, scratch_[s]);
    }
    const double log_total =
        update(e, q, largest, [&](size_t s) { return std::exp(scratch_[s] - largest); });
    drop_negligible(e, 1.0 / pending_scale_);  // the exponentials can be arbitrarily small
    return log_total;
  }

  std::span<const Block> blocks_;
  BetaPrior prior_;
  std::vector<Outcomes> before_;  // the totals of the blocks before each block
  std::vector<double> weight_;
  size_t table_size_ = 0;
  std::vector<double> scratch_;
  double pending_scale_ = 1;
  size_t live_ = 0;
};

}  // namespace

double log_marginal_likelihood(int64_t failures, int64_t runs, BetaPrior prior) {
  const auto k = static_cast<double>(failures);
  const auto f = static_cast<double>(runs - failures);
  return log_beta(prior.alpha + k, prior.beta + f) - log_beta(prior.alpha, prior.beta);
}

double log_block_predictive(int64_t failures, int64_t runs, int64_t failures_before,
                            int64_t runs_before, BetaPrior prior) {
  const double a = prior.alpha + static_cast<double>(failures_before);
  const double b = prior.beta + static_cast<double>(runs_before - failures_before);
  const double n = prior.alpha + prior.beta + static_cast<double>(runs_before);
  if (runs > kLargeBlock) {
    const auto k = static_cast<double>(failures), f = static_cast<double>(runs - failures);
    return std::lgamma(a + k) - std::lgamma(a) + std::lgamma(b + f) - std::lgamma(b) -
           std::lgamma(n + k + f) + std::lgamma(n);
  }
  double product = 1;
  for (int64_t i = 0; i < failures; ++i) product *= (a + i) / (n + i);
  for (int64_t i = 0; i < runs - failures; ++i) product *= (b + i) / (n + failures + i);
  return std::log(product);
}

SegmentationPosterior segment_blocks(std::span<const Block> blocks, double change_prior,
                                     BetaPrior prior) {
  SegmentationPosterior out;
  const size_t count = blocks.size();
  if (count == 0) return out;
  const double log_stay = std::log1p(-change_prior);
  std::vector<double> separation_prior(count, 0.0), reversed_prior(count, 0.0);
  double log_all_stay = 0;
  int64_t failures = 0, runs = 0;
  for (size_t j = 0; j < count; ++j) {
    failures += blocks[j].failures;
    runs += blocks[j].runs;
    if (j == 0) continue;
    const auto positions = static_cast<double>(blocks[j].positions);
    separation_prior[j] = -std::expm1(positions * log_stay);
    reversed_prior[count - j] = separation_prior[j];
    log_all_stay += positions * log_stay;
  }
  ForwardPass forward(blocks, prior);
  const std::vector<double> prefix = forward.run(separation_prior);
  std::vector<Block> reversed(blocks.rbegin(), blocks.rend());
  ForwardPass backward(reversed, prior);
  const std::vector<double> suffix = backward.run(reversed_prior);

  out.log_evidence = prefix[count];
  out.separation.assign(count, 0.0);
  for (size_t j = 1; j < count; ++j) {
    const double log_joint = prefix[j] + std::log(separation_prior[j]) + suffix[count - j];
    out.separation[j] = std::min(1.0, std::exp(log_joint - out.log_evidence));
  }
  out.last_segment_start = forward.weights();
  const double log_one_segment = log_all_stay + log_marginal_likelihood(failures, runs, prior);
  out.no_change = std::min(1.0, std::exp(log_one_segment - out.log_evidence));
  return out;
}

}  // namespace testlooper::stats
