// The statistics of tests along first-parent histories, as the API's history, changes and commit
// pages show them and the commit statuses posted to the host judge them: one computation for
// both (api.cc, statuses.cc). Io thread, over ServerState.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "server/state.h"
#include "server/stats_cache.h"
#include "stats/change_points.h"
#include "stats/classification.h"
#include "stats/evidence.h"

namespace testlooper::server {

// How far back a commit's ancestry is read to classify its tests.
constexpr size_t kClassifyAncestry = 200;
// The statistics of a branch's pages see at least this many first-parent commits, however few a
// page shows (`limit`), so that a test's verdict at a commit does not depend on the request.
constexpr size_t kAnalysisWindow = kClassifyAncestry;

// One test's (or test case's) evidence along a history (oldest first, an identity's runs placed
// once, at its oldest commit) and the analysis of its changes.
struct TestStats {
  std::vector<stats::CommitEvidence> evidence;
  stats::ChangeAnalysis analysis;
};
using BranchStats = std::map<std::string, TestStats>;  // by test name

// The statistics of every test along `newest_first` of `repo` (first-parent commits from a
// head), from the state's cache (stats_cache.h): computed once, then brought up to date.
std::shared_ptr<const WindowStats> window_stats(ServerState& state, const std::string& repo,
                                                const std::vector<std::string>& newest_first);
// The branches whose pages' window (kAnalysisWindow commits from the head: the history, the
// commit pages and the branch list's `search` share it) is worth computing before anyone asks,
// as (repo, branch): those under test first, then the others by name, at most half of
// StatsCache::kMaxWindows (the notifications' changes windows of the branches under test take
// the other half; more would push each other out of the cache).
std::vector<std::pair<std::string, std::string>> branches_to_warm(const ServerState& state);
// Computes `repo`'s `branch`'s window into the cache, if the branch is still there.
void warm_window(ServerState& state, const std::string& repo, const std::string& branch);

// The per-case statistics of a test with `t`'s history (its evidence naming real identities):
// its cases' histories and analyses.
BranchStats case_stats(ServerState& state, const TestStats& t);

// The tests of one commit classified in context: along the first-parent history of a branch
// holding the commit (one under test first), so later commits count too; else along its own
// ancestry (kClassifyAncestry commits at most).
struct CommitStats {
  std::shared_ptr<const WindowStats> window;
  size_t index = 0;  // the commit's place in each test's evidence (oldest first)
};
CommitStats commit_stats(ServerState& state, const std::string& repo, const std::string& sha);

// stats::classify of `t`, a test of `w`, at `index` of its history (oldest first), from where the
// test exists (WindowStats::present) rather than from its evidence built whole.
stats::Classification classify_in(const WindowStats& w, const WindowTest& t, size_t index);

// What the commit statuses count of a test at history index `index` of `t` (a test of `w`).
struct StatusVerdict {
  // stats::classify, but the rate's verdict (classify_rate) where classify says only "new": a
  // test added broken is broken.
  stats::Verdict verdict = stats::Verdict::kUnknown;
  // Flaky here (classify_rate) and its failure rate rose at this commit (stats::rate_rose_at).
  bool flaky_rising = false;
};
StatusVerdict status_verdict(const WindowStats& w, const WindowTest& t, size_t index);

}  // namespace testlooper::server
