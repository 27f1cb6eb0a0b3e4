#include "stats/failure_rate.h"

#include <algorithm>
#include <boost/math/special_functions/beta.hpp>

namespace testlooper::stats {
namespace {

constexpr double kLowerTail = 0.025;
constexpr double kUpperTail = 0.975;

// Computed in double precision: Boost's default promotes to long double, which is 10x slower and
// buys digits an interval does not need (the history API computes tens of thousands of them).
using DoublePolicy = boost::math::policies::policy<boost::math::policies::promote_double<false>>;

// The q-quantile of Beta(a, b).
double beta_quantile(double a, double b, double q) { return boost::math::ibeta_inv(a, b, q, DoublePolicy()); }

}  // namespace

FailureRate failure_rate(int64_t failures, int64_t runs) {
  if (runs <= 0) return {};
  const int64_t k = std::clamp<int64_t>(failures, 0, runs);
  const double a = static_cast<double>(k) + 0.5;
  const double b = static_cast<double>(runs - k) + 0.5;
  FailureRate rate;
  rate.estimate = static_cast<double>(k) / static_cast<double>(runs);
  rate.low = k == 0 ? 0.0 : beta_quantile(a, b, kLowerTail);
  rate.high = k == runs ? 1.0 : beta_quantile(a, b, kUpperTail);
  // The quantiles bracket k/n for every n >= 1; the clamps only guard rounding.
  rate.low = std::min(rate.low, rate.estimate);
  rate.high = std::max(rate.high, rate.estimate);
  return rate;
}

}  // namespace testlooper::stats
