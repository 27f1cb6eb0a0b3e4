// FailureRate: how often a test fails, with an honest 95% interval.
//
// The interval is the Jeffreys interval: the 2.5% and 97.5% quantiles of the posterior
// Beta(k + 1/2, n - k + 1/2) for k failures in n runs, with the end clamped to 0 when k = 0 and
// to 1 when k = n (Brown, Cai & DasGupta 2001). It keeps close to its nominal coverage for tiny n
// and for rates near 0 or 1, where the Wald interval collapses.
// Pure functions, no state; thread-safe.
#pragma once

#include <cstdint>

namespace testlooper::stats {

// A failure-rate estimate: `estimate` is the observed rate k/n (what users expect to read; 0 when
// there were no runs), `low`/`high` the bounds of the 95% Jeffreys interval. Always
// 0 <= low <= estimate <= high <= 1.
struct FailureRate {
  double estimate = 0;
  double low = 0;
  double high = 1;
};

// The failure rate after `failures` failures in `runs` runs. REQUIRES: 0 <= failures <= runs.
// With no runs it is {0, 0, 1}: nothing is known.
FailureRate failure_rate(int64_t failures, int64_t runs);

}  // namespace testlooper::stats
