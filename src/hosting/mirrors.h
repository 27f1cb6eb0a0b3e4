// The server's bare mirrors of a host's repositories (docs/configuration.md "Git hosting").
//
// Keeps <repos_dir>/<name> a bare mirror of each repository the host lists: at start it lists
// and clones (into <repos_dir>.tmp/, renamed into place when complete, so a watcher never sees
// half a repo) or fetches each; every poll_seconds, and on refresh(), it lists again and fetches
// all; fetch(name) fetches one at once. A fetch is
//   git fetch --prune <clone_url> +refs/heads/*:refs/heads/* +refs/tags/*:refs/tags/*
// so deleted branches go, force-pushed ones move, and GitHub's refs/pull/* stay out. Repos gone
// from a listing are removed (moved to <repos_dir>.trash/, then deleted).
//
// Threads: one lists and schedules, a few (MirrorOptions::parallel) fetch; the callers' calls
// only enqueue and never wait for the network. One fetch per repo at a time: a request made
// while it runs makes it run once more after. A failure (host down, bad token) is logged once
// per attempt on stderr and retried with back-off (5 s doubling up to poll_seconds), never in
// a tight loop.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "hosting/hosting.h"

namespace testlooper::hosting {

struct MirrorOptions {
  double poll_seconds = 300;   // list and fetch everything this often
  double fetch_timeout = 600;  // one git clone or fetch
  int parallel = 3;            // fetches at once
  double first_retry = 5;      // back-off after a failure: doubles up to poll_seconds
};

class Mirrors {
 public:
  // Called on a mirrors thread after a repo was cloned, fetched or removed (its name).
  using OnChange = std::function<void(const std::string& name)>;

  // Starts the threads; the first listing begins at once. `host` must outlive this.
  Mirrors(Host& host, std::string repos_dir, MirrorOptions options, OnChange on_change);
  // Stops the threads; a git run in progress is killed (within a second).
  ~Mirrors();
  Mirrors(const Mirrors&) = delete;
  Mirrors& operator=(const Mirrors&) = delete;

  // Lists again and fetches every repo, now (thread-safe, returns at once).
  void refresh();
  // Fetches repo `name` now; a name not in the last listing makes a new listing first
  // (thread-safe, returns at once).
  void fetch(const std::string& name);

  // The last listing's entry for `name`, or nullopt (thread-safe).
  std::optional<HostedRepo> repo(const std::string& name) const;
  // The last listing, sorted by name (thread-safe).
  std::vector<HostedRepo> repos() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct RepoState {
    bool queued = false;           // in queue_
    bool running = false;          // a fetch runs now
    bool again = false;            // asked for while running: once more after
    int failures = 0;              // consecutive
    Clock::time_point retry_at{};  // with failures > 0: when the next attempt is due
  };

  void control_loop();
  void fetch_loop();
  // Lists the repos; on success replaces listing_, removes mirrors of repos gone, and enqueues
  // `all` repos (or only those in wanted_). Holds no lock while it talks to the host.
  void list_and_schedule(bool all);
  // Clones or fetches `repo`; Error says why (logged by the caller).
  Status sync(const HostedRepo& repo);
  void remove_mirror(const std::string& name);
  // Under mutex_.
  void enqueue_locked(const std::string& name);
  Clock::duration backoff(int failures) const;

  Host& host_;
  std::string repos_dir_;
  MirrorOptions options_;
  OnChange on_change_;

  mutable std::mutex mutex_;
  std::condition_variable control_wake_;
  std::condition_variable fetch_wake_;
  bool stop_ = false;
  std::atomic<bool> cancel_{false};  // stop_, for the git runs in progress
  bool list_now_ = true;             // refresh() or start: list and fetch all
  bool reschedule_ = false;          // a fetch failed: the control thread schedules its retry
  std::set<std::string> unknown_;    // fetch() of names not in the listing: list, then fetch them
  bool listed_ = false;              // a listing succeeded once
  int list_failures_ = 0;
  Clock::time_point list_retry_at_{};
  std::map<std::string, HostedRepo> listing_;
  std::map<std::string, RepoState> state_;
  std::deque<std::string> queue_;
  std::thread control_;
  std::vector<std::thread> fetchers_;
};

}  // namespace testlooper::hosting
