// Per-thread caches of the tables that the segmentation's inner loop reads, so that repeated
// analyses (the value of a run needs two per candidate) do not rebuild them. Internal to tl_stats.
// A returned pointer stays valid until the next call on the same thread that asks the same table
// for more entries; the caches only grow. Thread-safe (one cache per thread).
#pragma once

#include <cstddef>
#include <cstdint>

namespace testlooper::stats {

// [j] = (x + j)(x + j + 1)...(x + j + count - 1), or 1 / that when `inverse`, for j < size.
const double* rising_factorials(double x, int64_t count, bool inverse, size_t size);

// [j] = lgamma(x + j) for j < size.
const double* log_gammas(double x, size_t size);

}  // namespace testlooper::stats
