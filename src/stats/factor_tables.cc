#include "stats/factor_tables.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace testlooper::stats {
namespace {

enum class Kind { kRising, kInverseRising, kLogGamma };

struct Table {
  Kind kind;
  double x;
  int64_t count;
  std::vector<double> values;
};

double entry(const Table& table, size_t j) {
  const double base = table.x + static_cast<double>(j);
  if (table.kind == Kind::kLogGamma) return std::lgamma(base);
  double product = 1;
  for (int64_t i = 0; i < table.count; ++i) product *= base + static_cast<double>(i);
  return table.kind == Kind::kInverseRising ? 1.0 / product : product;
}

// The table (kind, x, count) with at least `size` entries, grown geometrically.
const double* cached(Kind kind, double x, int64_t count, size_t size) {
  thread_local std::vector<Table> tables;
  auto found = std::find_if(tables.begin(), tables.end(), [&](const Table& table) {
    return table.kind == kind && table.x == x && table.count == count;
  });
  if (found == tables.end()) {
    tables.push_back({kind, x, count, {}});
    found = std::prev(tables.end());
  }
  std::vector<double>& values = found->values;
  if (values.size() < size) {
    const size_t old = values.size();
    values.resize(std::max(size, 2 * old));
    for (size_t j = old; j < values.size(); ++j) values[j] = entry(*found, j);
  }
  return values.data();
}

}  // namespace

const double* rising_factorials(double x, int64_t count, bool inverse, size_t size) {
  return cached(inverse ? Kind::kInverseRising : Kind::kRising, x, count, size);
}

const double* log_gammas(double x, size_t size) { return cached(Kind::kLogGamma, x, 0, size); }

}  // namespace testlooper::stats
