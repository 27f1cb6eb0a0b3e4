// The 95% interval of failure_rate() over a whole grid of rates and sample sizes (issue 5: between
// 93% and 97% on 10,000 simulated binomial samples across rates and sizes).
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <vector>

#include "stats/failure_rate.h"

namespace testlooper::stats {
namespace {

constexpr double kRates[] = {0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.95};
constexpr int64_t kSizes[] = {5, 10, 20, 50, 100, 200, 500, 1000};
constexpr int kSamplesPerCell = 125;  // 10 rates x 8 sizes x 125 = 10,000 samples

struct Coverage {
  int covered = 0;
  int samples = 0;
  double fraction() const { return static_cast<double>(covered) / samples; }
};

TEST(FailureRate, CoverageOverTheGridOfRatesAndSizesIsNearNominal) {
  std::mt19937_64 rng(20250105);
  Coverage total;
  std::vector<Coverage> by_size(std::size(kSizes));
  for (const double rate : kRates) {
    for (size_t s = 0; s < std::size(kSizes); ++s) {
      std::binomial_distribution<int64_t> binomial(kSizes[s], rate);
      for (int i = 0; i < kSamplesPerCell; ++i) {
        const FailureRate interval = failure_rate(binomial(rng), kSizes[s]);
        const bool covered = interval.low <= rate && rate <= interval.high;
        total.covered += covered;
        ++total.samples;
        by_size[s].covered += covered;
        ++by_size[s].samples;
      }
    }
  }
  ASSERT_EQ(total.samples, 10'000);
  EXPECT_GE(total.fraction(), 0.93);
  EXPECT_LE(total.fraction(), 0.97);
  // Each size on its own, averaged over the rates (1,250 samples each), stays close too.
  for (size_t s = 0; s < std::size(kSizes); ++s) {
    EXPECT_GE(by_size[s].fraction(), 0.92) << "n=" << kSizes[s];
    EXPECT_LE(by_size[s].fraction(), 0.98) << "n=" << kSizes[s];
    std::printf("n=%-5lld coverage %.3f\n", static_cast<long long>(kSizes[s]),
                by_size[s].fraction());
  }
  std::printf("all    coverage %.4f over %d samples\n", total.fraction(), total.samples);
}

}  // namespace
}  // namespace testlooper::stats
