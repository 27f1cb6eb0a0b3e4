// The git watcher: on its own thread, looks at every git repo directly under a folder, reads its
// branches and ingests commits it has not seen (incrementally: only the new ones are walked and
// resolved), then hands each batch to a callback. The callback runs on the watcher's thread; the
// server posts it over to its io thread.
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

  // `known` are the commits already stored, per repo; they are not ingested again.
  Watcher(std::string repos_dir, double poll_seconds,
          std::map<std::string, std::set<std::string>> known, Callback callback);
  ~Watcher();
  // Asks for a look now (thread-safe).
  void refresh();

 private:
  void loop();
  void scan();
  void scan_repo(const std::string& name, const std::string& path);

  std::string repos_dir_;
  double poll_seconds_;
  std::map<std::string, std::set<std::string>> known_;
  Callback callback_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool refresh_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace testlooper::server
