#include "server/commit_stats.h"

#include <algorithm>

#include "planner/planner.h"

namespace testlooper::server {

std::shared_ptr<const WindowStats> window_stats(ServerState& state, const std::string& repo,
                                                const std::vector<std::string>& newest_first) {
  return state.stats_cache().window(state, repo, newest_first);
}

std::vector<std::pair<std::string, std::string>> branches_to_warm(const ServerState& state) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const bool under_test : {true, false}) {
    for (const auto& [key, b] : state.branches()) {
      if (b.under_test == under_test && out.size() < StatsCache::kMaxWindows / 2)
        out.push_back(key);
    }
  }
  return out;
}

void warm_window(ServerState& state, const std::string& repo, const std::string& branch) {
  auto b = state.branches().find({repo, branch});
  if (b == state.branches().end()) return;
  window_stats(state, repo, state.first_parent_history(repo, b->second.head, kAnalysisWindow));
}

BranchStats case_stats(ServerState& state, const TestStats& t) {
  std::map<std::string, planner::CaseCounts> counts;
  for (const auto& e : t.evidence) {
    if (e.runs == 0 || counts.count(e.identity)) continue;
    counts[e.identity] = state.case_counts(e.identity);
  }
  BranchStats out;
  for (auto& [name, e] : planner::case_histories(t.evidence, counts)) {
    TestStats& cs = out[name];
    cs.analysis = stats::analyse_changes(e);
    cs.evidence = std::move(e);
  }
  return out;
}

CommitStats commit_stats(ServerState& state, const std::string& repo, const std::string& sha) {
  std::vector<std::string> around = state.first_parent_history(repo, sha, kClassifyAncestry);
  size_t index = around.empty() ? 0 : around.size() - 1;  // in oldest-first order
  bool found = false;
  for (const bool under_test : {true, false}) {
    for (const auto& [key, b] : state.branches()) {
      if (found || key.first != repo || b.under_test != under_test) continue;
      auto history = state.first_parent_history(repo, b.head, kClassifyAncestry);
      const auto at = std::find(history.begin(), history.end(), sha);
      if (at == history.end()) continue;
      index = history.size() - 1 - static_cast<size_t>(at - history.begin());
      around = std::move(history);
      found = true;
    }
  }
  return {window_stats(state, repo, around), index};
}

stats::Classification classify_in(const WindowStats& w, const WindowTest& t, size_t index) {
  return stats::classify_at(w.present(t, index), index > 0 && w.present(t, index - 1), index,
                            t.analysis);
}

StatusVerdict status_verdict(const WindowStats& w, const WindowTest& t, size_t index) {
  if (index >= w.size()) return {};
  StatusVerdict out;
  const stats::Verdict rate = stats::classify_rate(t.analysis, index).verdict;
  out.verdict = classify_in(w, t, index).verdict;
  if (out.verdict == stats::Verdict::kNew) out.verdict = rate;
  out.flaky_rising = rate == stats::Verdict::kFlaky && stats::rate_rose_at(t.analysis, index);
  return out;
}

}  // namespace testlooper::server
