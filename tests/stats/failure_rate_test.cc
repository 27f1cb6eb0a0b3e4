#include "stats/failure_rate.h"

#include <gtest/gtest.h>

#include <random>

namespace testlooper::stats {
namespace {

TEST(FailureRate, NoRunsKnowsNothing) {
  const FailureRate rate = failure_rate(0, 0);
  EXPECT_EQ(rate.estimate, 0);
  EXPECT_EQ(rate.low, 0);
  EXPECT_EQ(rate.high, 1);
}

TEST(FailureRate, ZeroFailuresHasLowZeroAndHighShrinkingWithRuns) {
  const FailureRate few = failure_rate(0, 10);
  const FailureRate many = failure_rate(0, 1000);
  EXPECT_EQ(few.low, 0);
  EXPECT_EQ(few.estimate, 0);
  EXPECT_GT(few.high, many.high);
  EXPECT_GT(many.high, 0);
  EXPECT_LT(many.high, 0.005);
}

TEST(FailureRate, AllFailuresHasHighOne) {
  const FailureRate rate = failure_rate(7, 7);
  EXPECT_EQ(rate.high, 1);
  EXPECT_EQ(rate.estimate, 1);
  EXPECT_LT(rate.low, 1);
  EXPECT_GT(rate.low, 0.5);
}

TEST(FailureRate, MatchesPublishedJeffreysBounds) {
  // Brown, Cai & DasGupta (2001), table 5 style check: k=3, n=10 -> (0.093, 0.606).
  const FailureRate rate = failure_rate(3, 10);
  EXPECT_DOUBLE_EQ(rate.estimate, 0.3);
  EXPECT_NEAR(rate.low, 0.093, 0.001);
  EXPECT_NEAR(rate.high, 0.606, 0.001);
}

TEST(FailureRate, IntervalIsOrderedForEveryK) {
  for (int64_t k = 0; k <= 50; ++k) {
    const FailureRate rate = failure_rate(k, 50);
    EXPECT_LE(0, rate.low);
    EXPECT_LE(rate.low, rate.estimate);
    EXPECT_LE(rate.estimate, rate.high);
    EXPECT_LE(rate.high, 1);
  }
}

// Coverage on simulated binomial samples: the 95% interval should contain the true rate close to
// 95% of the time; 93%..97% is the accepted band. Pointwise coverage of any exact-style interval
// oscillates where n*p is small (e.g. p=0.05, n=50 is near 0.89), so rates there are checked on
// average over p, which is how Brown, Cai & DasGupta judge Jeffreys.
double simulated_coverage(double p, int64_t n, int samples, std::mt19937_64& rng) {
  std::binomial_distribution<int64_t> binomial(n, p);
  int covered = 0;
  for (int i = 0; i < samples; ++i) {
    const FailureRate rate = failure_rate(binomial(rng), n);
    if (rate.low <= p && p <= rate.high) ++covered;
  }
  return static_cast<double>(covered) / samples;
}

TEST(FailureRate, CoverageIsNearNominalAtModerateRates) {
  std::mt19937_64 rng(20240601);
  for (const double p : {0.1, 0.2, 0.3, 0.5}) {
    for (const int64_t n : {200, 1000}) {
      const double coverage = simulated_coverage(p, n, 4000, rng);
      EXPECT_GE(coverage, 0.93) << "p=" << p << " n=" << n;
      EXPECT_LE(coverage, 0.97) << "p=" << p << " n=" << n;
    }
  }
}

TEST(FailureRate, CoverageAveragedOverRatesIsNearNominalForSmallN) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> uniform(0.005, 0.995);
  for (const int64_t n : {20, 50, 200}) {
    int covered = 0;
    constexpr int kSamples = 20000;
    for (int i = 0; i < kSamples; ++i) {
      const double p = uniform(rng);
      const FailureRate rate = failure_rate(std::binomial_distribution<int64_t>(n, p)(rng), n);
      if (rate.low <= p && p <= rate.high) ++covered;
    }
    const double coverage = static_cast<double>(covered) / kSamples;
    EXPECT_GE(coverage, 0.93) << "n=" << n;
    EXPECT_LE(coverage, 0.97) << "n=" << n;
  }
}

}  // namespace
}  // namespace testlooper::stats
