// The git watcher: on its own thread, looks at every git repo directly under a folder, reads its
// branches and ingests commits it has not seen (incrementally: only the new ones are walked and
// resolved), then hands each batch to a callback. The callback runs on the watcher's thread; the
// server posts it over to its io thread.
//
// Pinned commits (FORMAT.md §4: a `repos:` reference to another repo's commit by sha) are
// ingested by sha even when no branch reaches them, in the same pass when they can be. A commit
// whose definitions could not be resolved because a commit they refer to is missing is resolved
// again (and ingested again) once that commit is in its repo, e.g. after a fetch.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"

namespace testlooper::server {

// What one look at one repo found.
struct RepoBatch {
  store::RepoRow repo;
  std::vector<store::BranchRow> branches;  // all current branches (head set; flags unset)
  std::vector<store::CommitRow> commits;   // new commits, parents first, resolved
  std::vector<std::vector<store::ObjectRow>> objects;  // per new commit
};

class Watcher {
 public:
  using Callback = std::function<void(RepoBatch batch)>;
  // After each complete look: the names of the repos it found (git repos directly under the
  // folder). A repo not among them is gone (deleted, or no longer listed by the host).
  using Present = std::function<void(std::set<std::string> names)>;

  // `known` are the commits already stored, per repo; they are not ingested again, but those in
  // `recheck` (stored with an error) are resolved again at the first look, and the commits in
  // `pinned` (named by stored definitions but not stored) are looked up by sha. `after_scan`
  // runs on the watcher's thread after each look at every repo (the pin mover's cue).
  Watcher(std::string repos_dir, double poll_seconds,
          std::map<std::string, std::set<std::string>> known, Callback callback,
          std::map<std::string, std::set<std::string>> recheck = {},
          std::map<std::string, std::set<std::string>> pinned = {}, Present present = {},
          std::function<void()> after_scan = {});
  ~Watcher();
  // Asks for a look now (thread-safe).
  void refresh();

 private:
  void loop();
  void scan();
  // False when `path` is no git repo (so not watched).
  bool scan_repo(const std::string& name, const std::string& path);
  // Moves the commits waiting on a missing commit that is now there to recheck_.
  void release_waiting();

  std::string repos_dir_;
  double poll_seconds_;
  std::map<std::string, std::set<std::string>> known_;
  // Per repo, commits to resolve again at the next look (their missing commit arrived).
  std::map<std::string, std::set<std::string>> recheck_;
  // Per repo, pinned shas not ingested yet; pins_new_: repos that got new ones in this pass.
  std::map<std::string, std::set<std::string>> pinned_;
  std::set<std::string> pins_new_;
  // Missing (repo, sha) -> the (repo, sha) commits whose resolution failed for want of it.
  std::map<std::pair<std::string, std::string>, std::set<std::pair<std::string, std::string>>>
      waiting_;
  Callback callback_;
  Present present_;
  std::function<void()> after_scan_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool refresh_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace testlooper::server
