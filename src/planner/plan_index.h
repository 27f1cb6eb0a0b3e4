// The planner's index of commits (DESIGN.md "planner"): commits by (repo, sha), objects by name,
// builds by identity, and a compact view of each commit's objects for the extra-run budget's
// histories. Pure data, no I/O: a server keeps one and updates it as commits arrive, so that a
// replan costs what the plan needs (the enabled commits, the budget's histories) rather than a
// pass over every object of every commit (issue 18: 10,000 commits x 200 tests).
//
// Not thread-safe: lookups fill lazy caches (a commit's names, its compact view) on first use.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "planner/planner.h"

namespace testlooper::planner {

class PlanIndex {
 public:
  PlanIndex() = default;
  // The commits `commits` point to (each must outlive the index or its removal).
  explicit PlanIndex(const std::vector<const PlannedCommit*>& commits);
  PlanIndex(const PlanIndex&) = delete;
  PlanIndex& operator=(const PlanIndex&) = delete;
  PlanIndex(PlanIndex&&) = default;
  PlanIndex& operator=(PlanIndex&&) = default;

  // Indexes `commit`, replacing the commit indexed under its repo and sha, if any (call again
  // whenever a commit's objects or test sets change; `reachable` is read live and needs no call).
  // The commit must stay where it is until it is replaced or removed.
  void put(const PlannedCommit* commit);
  void remove(const std::string& repo, const std::string& sha);
  size_t size() const { return commits_.size(); }

  struct Located {
    const PlannedCommit* commit = nullptr;
    const PlannedObject* object = nullptr;
  };
  const PlannedCommit* commit(std::string_view repo, std::string_view sha) const;
  // The object `name` of commit (repo, sha), if both exist.
  std::optional<Located> locate(std::string_view repo, std::string_view sha,
                                std::string_view name) const;
  // Commit `commit`'s object `name` (the first of that name), if it has one and is indexed.
  const PlannedObject* object(const PlannedCommit& commit, std::string_view name) const;
  // The places of `commit`'s objects in commit.objects, ordered by name (a stable order), so that
  // a plan's statuses are written in their map's order without comparing keys; empty when the
  // commit is not indexed.
  const std::vector<uint32_t>& by_name(const PlannedCommit& commit) const;
  // The build whose identity is `hash`: of the commits holding one, the first in (repo, sha)
  // order, and its first build of that identity there. nullopt when no commit has it.
  std::optional<Located> build(const std::string& hash) const;

  // A commit's objects as interned ids, in the commit's order (for test histories).
  struct Entry {
    uint32_t name = 0;
    uint32_t hash = 0;
    bool test = false;
  };
  // `like`, when given, is a commit likely to hold mostly the same objects in the same places
  // (the one before it on a branch): their ids are taken from its entries where the name and
  // identity are the same, rather than interned again.
  const std::vector<Entry>& entries(const PlannedCommit& commit,
                                    const PlannedCommit* like = nullptr) const;
  // The identity `hash`'s progress changed in the PlanInput this index plans with: its copy
  // kept for the histories (failing_test_histories) is read again at the next plan. A server
  // calls it wherever it changes an identity's progress; an index is used with one PlanInput.
  void progress_changed(const std::string& hash);
  // The progress of interned identity `id` in `progress`, copied the first time it is asked for
  // (and again after progress_changed).
  const HashProgress& progress_of(uint32_t id, const ProgressMap& progress) const;

  const std::string& name_of(uint32_t id) const { return names_.text[id]; }
  const std::string& hash_of(uint32_t id) const { return hashes_.text[id]; }
  size_t hash_count() const { return hashes_.text.size(); }
  size_t name_count() const { return names_.text.size(); }

 private:
  struct CommitEntry {
    const PlannedCommit* commit = nullptr;
    // Its builds as indexed (identity, place): a commit replaced in place has other objects by
    // the time it is indexed again.
    std::vector<std::pair<std::string, size_t>> builds;
    // Filled on first use.
    mutable std::unique_ptr<std::unordered_map<std::string_view, const PlannedObject*>> names;
    mutable std::unique_ptr<std::vector<Entry>> entries;
    mutable std::unique_ptr<std::vector<uint32_t>> by_name;
  };
  // The entry of (repo, sha), or nullptr.
  const CommitEntry* entry(std::string_view repo, std::string_view sha) const;
  static const PlannedObject* object_named(const CommitEntry& e, std::string_view name);
  struct Interned {
    std::unordered_map<std::string, uint32_t> ids;
    std::vector<std::string> text;
    uint32_t id(const std::string& s);
  };
  // Looked up by views (no copy of the repo and sha per lookup: a replan makes one per needed
  // object).
  using KeyView = std::pair<std::string_view, std::string_view>;
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(KeyView k) const {
      return std::hash<std::string_view>()(k.first) * 31 + std::hash<std::string_view>()(k.second);
    }
    size_t operator()(const std::pair<std::string, std::string>& k) const {
      return (*this)(KeyView(k.first, k.second));
    }
  };
  struct KeyEq {
    using is_transparent = void;
    static KeyView view(KeyView k) { return k; }
    static KeyView view(const std::pair<std::string, std::string>& k) {
      return {k.first, k.second};
    }
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      return view(a) == view(b);
    }
  };
  // (repo, sha) -> the commit
  std::unordered_map<std::pair<std::string, std::string>, CommitEntry, KeyHash, KeyEq> commits_;
  // build identity -> (repo, sha, place in the commit) -> the build
  std::unordered_map<std::string, std::map<std::tuple<std::string, std::string, size_t>, Located>>
      builds_;
  // Grow only: ids stay valid while the index lives.
  mutable Interned names_;
  mutable Interned hashes_;
  // By hash id: the progress read for it (progress_of), and whether it is current.
  mutable std::vector<HashProgress> progress_;
  mutable std::vector<char> progress_current_;
};

// Each test's history along `oldest_first` commits of `repo` as test_histories(...,
// only_failing = true) gives it, from the index's compact view (unknown and unreachable commits
// hold nothing).
std::map<std::string, std::vector<stats::CommitEvidence>> failing_test_histories(
    const std::vector<std::string>& oldest_first, const std::string& repo, const PlanIndex& index,
    const ProgressMap& progress);

// The plan over the commits `index` holds (input.commits is ignored): what make_plan computes,
// without a pass over every commit (roots come from input.enabled_sets).
Plan make_plan(const PlanInput& input, const PlanIndex& index);

}  // namespace testlooper::planner
