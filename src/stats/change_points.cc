#include "stats/change_points.h"

#include <algorithm>
#include <numeric>

#include "stats/experiments.h"
#include "stats/segmentation.h"

namespace testlooper::stats {
namespace {

// Positions less probable than this do not widen a change's range.
constexpr double kRangeFloor = 1e-3;
// One change's probability sums to at most 1; the slack absorbs untested commits, whose shares
// add up to slightly more than their gap's separation probability.
constexpr double kRangeMass = 1.05;
// Segments are cut at listed changes at least this probable (more likely than not).
constexpr double kCutProbability = 0.5;

// A change's probability spread over positions[low..high] (indices into the position list).
struct Cluster {
  size_t seed = 0;
  size_t low = 0;
  size_t high = 0;
  double mass = 0;
};

// Widens `cluster` towards its more probable unassigned neighbour while it holds about one change.
void widen(Cluster& cluster, std::span<const double> probability, std::vector<bool>& assigned) {
  const auto usable = [&](size_t i) { return !assigned[i] && probability[i] >= kRangeFloor; };
  while (true) {
    const bool left = cluster.low > 0 && usable(cluster.low - 1);
    const bool right = cluster.high + 1 < probability.size() && usable(cluster.high + 1);
    if (!left && !right) return;
    const bool go_left =
        left && (!right || probability[cluster.low - 1] >= probability[cluster.high + 1]);
    const size_t next = go_left ? cluster.low - 1 : cluster.high + 1;
    if (cluster.mass + probability[next] > kRangeMass) return;
    cluster.mass += probability[next];
    assigned[next] = true;
    (go_left ? cluster.low : cluster.high) = next;
  }
}

// Groups the positions' probabilities into changes, most probable position first.
std::vector<Cluster> cluster_changes(std::span<const double> probability) {
  std::vector<size_t> order(probability.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return probability[a] > probability[b]; });
  std::vector<bool> assigned(probability.size(), false);
  std::vector<Cluster> clusters;
  for (const size_t seed : order) {
    if (probability[seed] < kRangeFloor) break;
    if (assigned[seed]) continue;
    assigned[seed] = true;
    Cluster cluster{.seed = seed, .low = seed, .high = seed, .mass = probability[seed]};
    widen(cluster, probability, assigned);
    clusters.push_back(cluster);
  }
  return clusters;
}

// The change positions between the first and the last observed experiment, oldest first.
std::vector<size_t> observed_positions(const Experiments& experiments) {
  std::vector<size_t> positions;
  if (experiments.observed.empty()) return positions;
  for (size_t x = experiments.observed.front() + 1; x <= experiments.observed.back(); ++x) {
    positions.push_back(experiments.experiments[x].first_commit);
  }
  return positions;
}

std::vector<ChangePoint> list_changes(std::span<const CommitEvidence> history,
                                      const Experiments& experiments,
                                      std::span<const double> posterior, double threshold) {
  const std::vector<size_t> positions = observed_positions(experiments);
  std::vector<double> probability;
  for (const size_t p : positions) probability.push_back(posterior[p]);
  std::vector<ChangePoint> changes;
  for (const Cluster& cluster : cluster_changes(probability)) {
    if (cluster.mass < threshold) continue;
    ChangePoint change;
    change.index = positions[cluster.seed];
    change.commit = history[change.index].commit;
    change.probability = probability[cluster.seed];
    change.earliest = positions[cluster.low];
    change.latest = positions[cluster.high];
    change.range_probability = std::min(1.0, cluster.mass);
    changes.push_back(change);
  }
  std::stable_sort(changes.begin(), changes.end(), [](const ChangePoint& a, const ChangePoint& b) {
    return a.range_probability > b.range_probability;
  });
  return changes;
}

// The pooled runs of history[first..last].
Segment pool(std::span<const CommitEvidence> history, size_t first, size_t last) {
  Segment segment;
  segment.first = first;
  segment.last = last;
  for (size_t c = first; c <= last; ++c) {
    if (!history[c].present) continue;
    segment.runs += std::max<int64_t>(history[c].runs, 0);
    segment.failures += std::max<int64_t>(history[c].failures, 0);
  }
  segment.failures = std::min(segment.failures, segment.runs);
  segment.rate = failure_rate(segment.failures, segment.runs);
  return segment;
}

// The history cut at `starts` (sorted, first 0).
std::vector<Segment> cut(std::span<const CommitEvidence> history, std::span<const size_t> starts) {
  std::vector<Segment> segments;
  for (size_t i = 0; i < starts.size(); ++i) {
    const size_t last = i + 1 < starts.size() ? starts[i + 1] - 1 : history.size() - 1;
    segments.push_back(pool(history, starts[i], last));
  }
  return segments;
}

// The history cut at every listed change at least kCutProbability probable, with each segment's
// probability that no other change hides inside it.
std::vector<Segment> probable_segments(std::span<const CommitEvidence> history,
                                       const ChangeAnalysis& analysis) {
  std::vector<size_t> starts{0};
  for (const ChangePoint& change : analysis.changes) {
    if (change.range_probability >= kCutProbability) starts.push_back(change.index);
  }
  std::sort(starts.begin(), starts.end());
  std::vector<Segment> segments = cut(history, starts);
  for (Segment& segment : segments) {
    const size_t first = std::max(segment.first + 1, analysis.observed_first + 1);
    const size_t last = std::min(segment.last, analysis.observed_last);
    for (size_t c = first; analysis.observed && c <= last; ++c) {
      segment.stable *= 1.0 - analysis.posterior[c];
    }
  }
  return segments;
}

// Fills each change's before and after: the runs between it and its neighbouring listed changes.
void describe_changes(std::span<const CommitEvidence> history, std::vector<ChangePoint>& changes) {
  std::vector<size_t> starts{0};
  for (const ChangePoint& change : changes) starts.push_back(change.index);
  std::sort(starts.begin(), starts.end());
  const std::vector<Segment> segments = cut(history, starts);
  for (ChangePoint& change : changes) {
    const size_t after = static_cast<size_t>(
        std::lower_bound(starts.begin(), starts.end(), change.index) - starts.begin());
    change.before = segments[after - 1].rate;
    change.after = segments[after].rate;
    change.runs_used = segments[after - 1].runs + segments[after].runs;
  }
}

}  // namespace

ChangeAnalysis analyse_changes(std::span<const CommitEvidence> history, const ChangeModel& model) {
  ChangeAnalysis analysis;
  if (history.empty()) return analysis;
  const Experiments experiments = group_experiments(history);
  const SegmentationPosterior segmentation = segment_blocks(
      experiments.blocks, model.change_prior, {.alpha = model.rate_alpha, .beta = model.rate_beta});
  analysis.no_change_probability = segmentation.no_change;
  analysis.posterior =
      change_posterior(experiments, segmentation, history.size(), model.change_prior);
  analysis.changes = list_changes(history, experiments, analysis.posterior, model.report_threshold);
  if (!experiments.observed.empty()) {
    analysis.observed = true;
    analysis.observed_first = experiments.experiments[experiments.observed.front()].first_commit;
    analysis.observed_last = experiments.experiments[experiments.observed.back()].last_commit;
  }
  describe_changes(history, analysis.changes);
  analysis.segments = probable_segments(history, analysis);
  return analysis;
}

const Segment* segment_at(const ChangeAnalysis& analysis, size_t index) {
  const auto after =
      std::upper_bound(analysis.segments.begin(), analysis.segments.end(), index,
                       [](size_t i, const Segment& segment) { return i < segment.first; });
  if (after == analysis.segments.begin()) return nullptr;
  return &*std::prev(after);
}

}  // namespace testlooper::stats
