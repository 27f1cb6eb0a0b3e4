#include "stats/classification.h"

#include <algorithm>
#include <cmath>

#include "stats/segmentation.h"

namespace testlooper::stats {
namespace {

// A change here at least this probable makes the commit "broken" or "fixed".
constexpr double kChangeHere = 0.5;

// The listed change at `index`, if any.
const ChangePoint* change_at(const ChangeAnalysis& analysis, size_t index) {
  for (const ChangePoint& change : analysis.changes) {
    if (change.index == index) return &change;
  }
  return nullptr;
}

// The probability that the rate changed exactly at `index`.
double change_here(const ChangeAnalysis& analysis, size_t index) {
  return index < analysis.posterior.size() ? analysis.posterior[index] : 0.0;
}

// broken or fixed when the rate changed at `index` with probability >= kChangeHere.
bool classify_change(const ChangeAnalysis& analysis, size_t index, const ChangeModel& model,
                     Classification& out) {
  const double here = change_here(analysis, index);
  const ChangePoint* change = change_at(analysis, index);
  const Segment* after = segment_at(analysis, index);
  if (here < kChangeHere || change == nullptr || after == nullptr) return false;
  if (rate_rose_at(analysis, index)) {
    out = {Verdict::kBroken, here};
    return true;
  }
  const RateClasses classes = rate_classes(after->failures, after->runs, model);
  if (classes.good < std::max(classes.flaky, classes.broken)) return false;
  out = {Verdict::kFixed, here * classes.good};
  return true;
}

}  // namespace

Classification classify_rate(const ChangeAnalysis& analysis, size_t index,
                             const ChangeModel& model) {
  const Segment* segment = segment_at(analysis, index);
  if (segment == nullptr || segment->runs == 0) return {};
  const RateClasses classes = rate_classes(segment->failures, segment->runs, model);
  Classification out{Verdict::kGood, classes.good};
  if (classes.flaky > out.confidence) out = {Verdict::kFlaky, classes.flaky};
  if (classes.broken > out.confidence) out = {Verdict::kBroken, classes.broken};
  out.confidence *= segment->stable;
  return out;
}

bool rate_rose_at(const ChangeAnalysis& analysis, size_t index) {
  const ChangePoint* change = change_at(analysis, index);
  return change_here(analysis, index) >= kChangeHere && change != nullptr &&
         change->after.estimate > change->before.estimate;
}

std::string_view to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::kGood:
      return "good";
    case Verdict::kFlaky:
      return "flaky";
    case Verdict::kBroken:
      return "broken";
    case Verdict::kFixed:
      return "fixed";
    case Verdict::kNew:
      return "new";
    case Verdict::kRemoved:
      return "removed";
    case Verdict::kUnknown:
      return "unknown";
  }
  return "unknown";
}

RateClasses rate_classes(int64_t failures, int64_t runs, const ChangeModel& model) {
  const double good_prior = std::max(0.0, 1.0 - model.flaky_prior - model.broken_prior);
  const BetaPrior flaky_rate{.alpha = model.flaky_alpha, .beta = model.flaky_beta};
  const double log_flaky =
      std::log(model.flaky_prior) + log_marginal_likelihood(failures, runs, flaky_rate);
  // Each deterministic class explains the runs with probability 1 or not at all.
  const double log_good = failures == 0 ? std::log(good_prior) : -INFINITY;
  const double log_broken = failures == runs ? std::log(model.broken_prior) : -INFINITY;
  const double largest = std::max({log_flaky, log_good, log_broken});
  RateClasses classes{.good = std::exp(log_good - largest),
                      .flaky = std::exp(log_flaky - largest),
                      .broken = std::exp(log_broken - largest)};
  const double total = classes.good + classes.flaky + classes.broken;
  classes.good /= total;
  classes.flaky /= total;
  classes.broken /= total;
  return classes;
}

Classification classify(std::span<const CommitEvidence> history, size_t index,
                        const ChangeAnalysis& analysis, const ChangeModel& model) {
  return classify_at(history[index].present, index > 0 && history[index - 1].present, index,
                     analysis, model);
}

Classification classify_at(bool present, bool parent_present, size_t index,
                           const ChangeAnalysis& analysis, const ChangeModel& model) {
  parent_present = parent_present && index > 0;
  if (!present) {
    return parent_present ? Classification{Verdict::kRemoved, 1.0} : Classification{};
  }
  if (index > 0 && !parent_present) return {Verdict::kNew, 1.0};
  if (!analysis.observed || index < analysis.observed_first || index > analysis.observed_last) {
    return {};
  }
  Classification out;
  if (classify_change(analysis, index, model, out)) return out;
  return classify_rate(analysis, index, model);
}

}  // namespace testlooper::stats
