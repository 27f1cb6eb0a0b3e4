// The statistics of the tests along a first-parent window, kept between requests (issue 18). The
// history, changes and commit pages, the branches' `search`, the commit statuses and the
// notifications ask for the same windows (a branch head's last kAnalysisWindow or kChangesWindow
// commits) again and again, and computing them took 160-800 ms at 1,000 commits x 500 tests.
//
// A window keeps, per test, where it exists with which identity (stretches: a few per test, not
// a cell per commit) and its analyses; its evidence is rebuilt when needed (it would take about
// 200 bytes per commit and test). A test is analysed again when the progress (runs, failures) of
// one of its identities changed (a run of it ended), every test when a commit was added or
// resolved again (ServerState::commits_generation). Io thread (ServerState's).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "planner/planner.h"
#include "stats/change_points.h"
#include "stats/evidence.h"

namespace testlooper::server {

class ServerState;

// Where one test exists along a window (oldest first): maximal stretches of consecutive commits
// holding it with one identity (an index into TestLayout's owner's identities).
struct Stretch {
  uint32_t first = 0;
  uint32_t last = 0;
  uint32_t identity = 0;
};
struct TestLayout {
  std::vector<Stretch> stretches;
};
struct WindowLayout {
  std::vector<std::string> identities;      // by index
  std::map<std::string, TestLayout> tests;  // every object of kind "test", by name
};

// The layout of the tests along `oldest_first` (objects_at as planner::test_histories). Pure.
WindowLayout layout_tests(const std::vector<std::string>& oldest_first,
                          const planner::ObjectsAt& objects_at);
// A test's evidence along a window of `n` commits, as planner::test_histories gives it (an
// identity's runs placed once, at its oldest commit), but with `commit` empty and `identity` its
// index in decimal (equal where the identities are; no allocation per cell). `counts[i]`:
// identity i's (runs, failures). Pure.
std::vector<stats::CommitEvidence> layout_evidence(
    const TestLayout& layout, size_t n, const std::vector<std::pair<int64_t, int64_t>>& counts);

// One test along a window.
struct WindowTest {
  TestLayout layout;
  stats::ChangeAnalysis analysis;  // its changes' `commit` are the real shas
  bool failures = false;           // one of its identities here has a failure
  // With failures only: each case's analysis (planner::case_histories over the test's evidence
  // and its identities' store::Store::case_counts).
  std::map<std::string, stats::ChangeAnalysis> cases;
};

// The statistics of every test along a window.
struct WindowStats {
  std::string repo;
  std::vector<std::string> shas;  // newest first
  std::vector<std::string> identities;
  std::vector<std::pair<int64_t, int64_t>> counts;  // by identity: (runs, failures) analysed
  std::map<std::string, WindowTest> tests;

  size_t size() const { return shas.size(); }
  // `t`'s evidence, oldest first (layout_evidence: compact identities, no commits).
  std::vector<stats::CommitEvidence> evidence(const WindowTest& t) const;
  // Whether `t` exists at `index` of the window (oldest first): evidence(t)[index].present.
  bool present(const WindowTest& t, size_t index) const;
  // Its cases' evidence, from `test` = evidence(t) (planner::case_histories).
  std::map<std::string, std::vector<stats::CommitEvidence>> case_evidence(
      ServerState& state, const std::vector<stats::CommitEvidence>& test) const;
};

// The windows asked for recently (at most kMaxWindows, the least recently used forgotten).
class StatsCache {
 public:
  static constexpr size_t kMaxWindows = 8;
  // The statistics along `newest_first` of `repo` (first-parent commits from a head), current:
  // computed, or brought up to date. Valid until the next change of the state.
  std::shared_ptr<const WindowStats> window(ServerState& state, const std::string& repo,
                                            const std::vector<std::string>& newest_first);
  // How many windows were computed whole, and how many brought up to date, since the start.
  uint64_t computed() const { return computed_; }
  uint64_t refreshed() const { return refreshed_; }

 private:
  struct Entry {
    std::shared_ptr<WindowStats> stats;
    uint64_t commits_generation = 0;
    uint64_t used = 0;
    // identity index -> the tests holding it
    std::vector<std::vector<std::string>> tests_of;
  };
  void build(ServerState& state, Entry& entry);
  void refresh(ServerState& state, Entry& entry);
  // (repo, head, length) -> window
  std::map<std::tuple<std::string, std::string, size_t>, Entry> entries_;
  uint64_t clock_ = 0;
  uint64_t computed_ = 0;
  uint64_t refreshed_ = 0;
};

}  // namespace testlooper::server
