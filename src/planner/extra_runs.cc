#include "planner/extra_runs.h"

#include <algorithm>
#include <set>

#include "stats/run_value.h"

namespace testlooper::planner {
namespace {

// The scaffold of runs a failing test gets before the statistics choose (see pick_extra_runs).
constexpr size_t kSeedCommits = 16;
constexpr int64_t kSeedRuns = 2;
// The least value (nats) of a run that localises a change.
constexpr double kBisectMinValue = 1e-6;

// After pick_extra_runs' search: the runs left of `room` go to the head, one at a time to each
// test in turn whose changes are localised and whose head's own rate is not yet bounded.
void add_head_confirmations(const BranchBudget& budget, const PlanInput& input,
                            const std::vector<std::string>& names,
                            const std::vector<std::vector<stats::CommitEvidence>>& evidence,
                            int64_t room, const std::string& purpose, std::vector<ExtraRun>& out) {
  std::vector<size_t> unconfirmed;
  for (size_t h = 0; h < evidence.size(); ++h) {
    const auto head = stats::head_rate(evidence[h], input.head_width);
    if (head && !head->bounded && stats::changes_localised(evidence[h], input.extra_confidence))
      unconfirmed.push_back(h);
  }
  for (size_t k = 0; !unconfirmed.empty() && static_cast<int64_t>(out.size()) < room; ++k) {
    const size_t h = unconfirmed[k % unconfirmed.size()];
    out.push_back({budget.repo, evidence[h].back().commit, names[h], purpose});
  }
}

}  // namespace

std::map<std::string, std::vector<stats::CommitEvidence>> test_histories(
    const std::vector<std::string>& oldest_first, const ObjectsAt& objects_at,
    const ProgressOf& progress_of, bool only_failing, const std::string& only_name) {
  const size_t n = oldest_first.size();
  std::vector<const std::vector<PlannedObject>*> objects(n);
  for (size_t i = 0; i < n; ++i) objects[i] = objects_at(oldest_first[i]);
  std::set<std::string> wanted;  // with only_failing: the tests with a failure
  std::map<std::string, HashProgress> seen;
  for (size_t i = 0; i < n; ++i) {
    if (objects[i] == nullptr) continue;
    for (const auto& o : *objects[i]) {
      if (only_name.empty() ? o.kind != "test" : o.name != only_name) continue;
      auto [it, inserted] = seen.emplace(o.hash, HashProgress{});
      if (inserted) it->second = progress_of(o.hash);
      if (!only_failing || it->second.failures > 0) wanted.insert(o.name);
    }
  }
  std::map<std::string, std::vector<stats::CommitEvidence>> out;
  std::map<std::string, std::set<std::string>> placed;  // name -> identities already placed
  for (size_t i = 0; i < n; ++i) {
    if (objects[i] == nullptr) continue;
    for (const auto& o : *objects[i]) {
      // As in the first pass: another kind of object of a test's name is not that test.
      if ((only_name.empty() && o.kind != "test") || !wanted.count(o.name)) continue;
      auto& e = out[o.name];
      if (e.empty()) {
        e.resize(n);
        for (size_t j = 0; j < n; ++j) e[j] = {oldest_first[j], "", false, 0, 0};
      }
      e[i].identity = o.hash;
      e[i].present = true;
      if (placed[o.name].insert(o.hash).second) {
        const HashProgress& p = seen.at(o.hash);
        e[i].runs = p.runs;
        e[i].failures = p.failures;
      }
    }
  }
  return out;
}

std::map<std::string, std::vector<stats::CommitEvidence>> case_histories(
    const std::vector<stats::CommitEvidence>& test,
    const std::map<std::string, CaseCounts>& counts_by_identity) {
  std::map<std::string, std::vector<stats::CommitEvidence>> out;
  for (const auto& [identity, counts] : counts_by_identity) {
    for (const auto& [name, rf] : counts) out[name];
  }
  for (auto& [name, e] : out) {
    e.resize(test.size());
    for (size_t i = 0; i < test.size(); ++i) {
      const stats::CommitEvidence& t = test[i];
      e[i] = {t.commit, t.identity, t.present, 0, 0};
      if (!t.present) continue;
      auto counts = counts_by_identity.find(t.identity);
      if (counts == counts_by_identity.end() || counts->second.empty()) continue;  // nothing known
      auto c = counts->second.find(name);
      if (c == counts->second.end()) {
        e[i].present = false;  // the test ran here and never reported this case
        continue;
      }
      if (t.runs > 0 || t.failures > 0) {
        e[i].runs = c->second.first;
        e[i].failures = c->second.second;
      }
    }
  }
  return out;
}

std::vector<ExtraRun> pick_extra_runs(const BranchBudget& budget, const PlanInput& input,
                                      const PlanIndex& index) {
  const int64_t room =
      std::min<int64_t>(budget.extra_left, budget.extra_parallel - budget.extra_active);
  if (room <= 0) return {};
  auto progress_of = [&input](const std::string& hash) {
    auto it = input.progress.find(hash);
    return it == input.progress.end() ? HashProgress{} : it->second;
  };
  auto histories = failing_test_histories(budget.history, budget.repo, index, input.progress);
  if (histories.empty()) return {};
  std::vector<ExtraRun> out;
  const std::string purpose = extra_purpose(budget.repo, budget.branch, budget.history.back());
  // First a scaffold: kSeedRuns runs at kSeedCommits commits spread over the stretch where the test
  // exists (the head aside), so that the statistics see where it passed and where it failed (a
  // run next to one other run teaches little about where a change is; plan_runs refines from
  // there).
  std::vector<std::string> names;
  std::vector<std::vector<stats::CommitEvidence>> evidence;
  for (auto& [name, e] : histories) {
    std::vector<size_t> present;
    for (size_t i = 0; i < e.size(); ++i) {
      if (e[i].present) present.push_back(i);
    }
    bool seeding = false;
    const size_t seeds = std::min(present.size(), kSeedCommits);
    std::set<std::string> seeded;
    for (size_t s = 0; s < seeds; ++s) {
      const size_t at =
          seeds == 1 ? present.back() : present[s * (present.size() - 1) / (seeds - 1)];
      // The head's runs are the ones users target: the scaffold leaves it alone.
      if (at == e.size() - 1 || !seeded.insert(e[at].identity).second) continue;
      // Commits users already ran keep the counts they asked for; only untested ones are seeded.
      const HashProgress p = progress_of(e[at].identity);
      if (p.runs > 0) continue;
      for (int64_t k = p.active; k < kSeedRuns; ++k) {
        seeding = true;
        if (static_cast<int64_t>(out.size()) < room)
          out.push_back({budget.repo, e[at].commit, name, purpose});
      }
    }
    if (seeding) continue;
    // A test that never passed here has no change to localise either: it is broken throughout.
    int64_t passes = 0;
    for (const auto& c : e) passes += c.runs - c.failures;
    if (passes == 0) continue;
    names.push_back(name);
    evidence.push_back(std::move(e));
  }
  const int64_t left = room - static_cast<int64_t>(out.size());
  if (left > 0 && !evidence.empty()) {
    const auto picks = stats::plan_runs(
        evidence,
        {.runs = left, .confidence = input.extra_confidence, .min_value = kBisectMinValue});
    for (const auto& pick : picks) {
      out.push_back(
          {budget.repo, evidence[pick.history][pick.index].commit, names[pick.history], purpose});
    }
  }
  add_head_confirmations(budget, input, names, evidence, room, purpose, out);
  return out;
}

}  // namespace testlooper::planner
