#include "server/stats_cache.h"

#include <algorithm>
#include <unordered_map>

#include "server/state.h"

namespace testlooper::server {
namespace {

// The analyses' changes name their commits by the window's shas (the evidence has none).
void name_changes(const WindowStats& w, stats::ChangeAnalysis& analysis) {
  for (auto& change : analysis.changes) change.commit = w.shas[w.size() - 1 - change.index];
}

// Analyses `t` along `w` again (its evidence from w.counts), its cases too when it has failures.
void analyse(ServerState& state, const WindowStats& w, WindowTest& t) {
  const std::vector<stats::CommitEvidence> evidence = w.evidence(t);
  t.failures = std::any_of(evidence.begin(), evidence.end(),
                           [](const stats::CommitEvidence& e) { return e.failures > 0; });
  t.analysis = stats::analyse_changes(evidence);
  name_changes(w, t.analysis);
  t.cases.clear();
  if (!t.failures) return;
  for (const auto& [name, e] : w.case_evidence(state, evidence)) {
    stats::ChangeAnalysis& a = t.cases[name] = stats::analyse_changes(e);
    name_changes(w, a);
  }
}

}  // namespace

WindowLayout layout_tests(const std::vector<std::string>& oldest_first,
                          const planner::ObjectsAt& objects_at) {
  WindowLayout out;
  std::unordered_map<std::string, uint32_t> identity_index;
  // Every name (of any kind: as planner::test_histories, a name that is a test somewhere is
  // followed wherever it exists), and which are tests somewhere.
  std::map<std::string, TestLayout> all;
  std::set<std::string> tests;
  // Neighbouring commits mostly hold the same objects in the same order: the previous commit's
  // k-th object's layout is tried first (a string comparison instead of a lookup).
  std::vector<std::pair<const std::string*, TestLayout*>> previous;
  std::vector<std::pair<const std::string*, TestLayout*>> current;
  for (size_t i = 0; i < oldest_first.size(); ++i) {
    const auto* objects = objects_at(oldest_first[i]);
    current.clear();
    if (objects == nullptr) {
      previous.clear();
      continue;
    }
    const auto at = static_cast<uint32_t>(i);
    for (size_t k = 0; k < objects->size(); ++k) {
      const planner::PlannedObject& o = (*objects)[k];
      if (o.kind == "test") tests.insert(o.name);
      TestLayout* layout =
          k < previous.size() && *previous[k].first == o.name ? previous[k].second : &all[o.name];
      current.emplace_back(&o.name, layout);
      auto& s = layout->stretches;
      if (!s.empty() && s.back().last + 1 == at && out.identities[s.back().identity] == o.hash) {
        s.back().last = at;
        continue;
      }
      if (!s.empty() && s.back().last == at) continue;  // a name twice in one commit: the first
      auto [it, inserted] =
          identity_index.try_emplace(o.hash, static_cast<uint32_t>(out.identities.size()));
      if (inserted) out.identities.push_back(o.hash);
      s.push_back({at, at, it->second});
    }
    std::swap(previous, current);
  }
  for (auto& [name, layout] : all) {
    if (tests.count(name)) out.tests.emplace(name, std::move(layout));
  }
  return out;
}

std::vector<stats::CommitEvidence> layout_evidence(
    const TestLayout& layout, size_t n, const std::vector<std::pair<int64_t, int64_t>>& counts) {
  std::vector<stats::CommitEvidence> out(n);
  for (auto& e : out) e.present = false;
  std::vector<uint32_t> placed;
  for (const Stretch& s : layout.stretches) {
    const std::string id = std::to_string(s.identity);
    for (uint32_t i = s.first; i <= s.last && i < n; ++i) {
      out[i].identity = id;
      out[i].present = true;
    }
    if (s.first >= n || std::find(placed.begin(), placed.end(), s.identity) != placed.end()) {
      continue;
    }
    placed.push_back(s.identity);
    out[s.first].runs = counts[s.identity].first;
    out[s.first].failures = counts[s.identity].second;
  }
  return out;
}

std::vector<stats::CommitEvidence> WindowStats::evidence(const WindowTest& t) const {
  return layout_evidence(t.layout, shas.size(), counts);
}

bool WindowStats::present(const WindowTest& t, size_t index) const {
  if (index >= shas.size()) return false;
  for (const Stretch& s : t.layout.stretches) {
    if (s.first <= index && index <= s.last) return true;
  }
  return false;
}

std::map<std::string, std::vector<stats::CommitEvidence>> WindowStats::case_evidence(
    ServerState& state, const std::vector<stats::CommitEvidence>& test) const {
  std::map<std::string, planner::CaseCounts> by_identity;
  for (const auto& e : test) {
    if (e.runs == 0 || by_identity.count(e.identity)) continue;
    by_identity[e.identity] = state.case_counts(identities[std::stoul(e.identity)]);
  }
  return planner::case_histories(test, by_identity);
}

std::shared_ptr<const WindowStats> StatsCache::window(
    ServerState& state, const std::string& repo, const std::vector<std::string>& newest_first) {
  const auto key = std::make_tuple(
      repo, newest_first.empty() ? std::string() : newest_first.front(), newest_first.size());
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    if (entries_.size() >= kMaxWindows) {
      entries_.erase(std::min_element(
          entries_.begin(), entries_.end(),
          [](const auto& a, const auto& b) { return a.second.used < b.second.used; }));
    }
    it = entries_.emplace(key, Entry{}).first;
  }
  Entry& entry = it->second;
  entry.used = ++clock_;
  if (!entry.stats || entry.stats->repo != repo || entry.stats->shas != newest_first ||
      entry.commits_generation != state.commits_generation()) {
    entry.stats = std::make_shared<WindowStats>();
    entry.stats->repo = repo;
    entry.stats->shas = newest_first;
    entry.commits_generation = state.commits_generation();
    build(state, entry);
    ++computed_;
  } else {
    refresh(state, entry);
    ++refreshed_;
  }
  return entry.stats;
}

void StatsCache::build(ServerState& state, Entry& entry) {
  WindowStats& w = *entry.stats;
  const std::vector<std::string> oldest_first(w.shas.rbegin(), w.shas.rend());
  WindowLayout layout = layout_tests(oldest_first, [&](const std::string& sha) {
    const CommitState* c = state.commit(w.repo, sha);
    return c == nullptr ? nullptr : &c->planned.objects;
  });
  w.identities = std::move(layout.identities);
  w.counts.clear();
  for (const std::string& hash : w.identities) {
    const planner::HashProgress p = state.progress(hash);
    w.counts.emplace_back(p.runs, p.failures);
  }
  entry.tests_of.assign(w.identities.size(), {});
  for (auto& [name, test_layout] : layout.tests) {
    WindowTest& t = w.tests[name];
    t.layout = std::move(test_layout);
    for (const Stretch& s : t.layout.stretches) {
      auto& names = entry.tests_of[s.identity];
      if (names.empty() || names.back() != name) names.push_back(name);
    }
    analyse(state, w, t);
  }
}

void StatsCache::refresh(ServerState& state, Entry& entry) {
  std::vector<std::pair<size_t, std::pair<int64_t, int64_t>>> changed;
  const WindowStats& seen = *entry.stats;
  for (size_t i = 0; i < seen.identities.size(); ++i) {
    const planner::HashProgress p = state.progress(seen.identities[i]);
    if (std::make_pair(p.runs, p.failures) != seen.counts[i]) {
      changed.push_back({i, {p.runs, p.failures}});
    }
  }
  if (changed.empty()) return;
  // A request may still hold the statistics it was given: it keeps them as they were.
  if (entry.stats.use_count() > 1) entry.stats = std::make_shared<WindowStats>(*entry.stats);
  WindowStats& w = *entry.stats;
  std::set<std::string> dirty;
  for (const auto& [i, counts] : changed) {
    w.counts[i] = counts;
    dirty.insert(entry.tests_of[i].begin(), entry.tests_of[i].end());
  }
  for (const std::string& name : dirty) analyse(state, w, w.tests.at(name));
}

}  // namespace testlooper::server
