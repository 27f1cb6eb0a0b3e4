// StatusPoster: posts commit statuses to the host on a thread of its own, so that the server's
// io thread only hands them over (post() never blocks on the network).
//
// Per (repo, sha, context) only the newest status handed over is posted, and never the same
// state and description twice in a row; but the first status of a key is always posted (a
// commit's "pending" shows on the host even when its result follows at once). A failed post is
// retried with exponential back-off (first_backoff_seconds doubling up to max_backoff_seconds) per
// key, while other keys go on. At most max_pending statuses wait: on overflow the oldest waiting
// one is dropped with a warning on stderr. Destruction stops the thread: waiting statuses are
// dropped; a post under way ends first (it lasts at most HostOptions::timeout_seconds).
//
// Thread-safe. The lookup is called on the poster's thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>

#include "hosting/hosting.h"

namespace testlooper::hosting {

class StatusPoster {
 public:
  // The hosted repository of a repo name (hosting::Mirrors::repo), or nullopt when unknown.
  using RepoLookup = std::function<std::optional<HostedRepo>(const std::string&)>;

  struct Options {
    double first_backoff_seconds = 2;
    double max_backoff_seconds = 300;
    size_t max_pending = 10000;
  };

  // Posts through `host` (not null). Without `lookup`, or when it says nothing, a repo is
  // HostedRepo{name, options.owner + "/" + name}.
  StatusPoster(std::shared_ptr<Host> host, HostOptions options, RepoLookup lookup,
               Options poster_options);
  StatusPoster(std::shared_ptr<Host> host, HostOptions options, RepoLookup lookup = nullptr)
      : StatusPoster(std::move(host), std::move(options), std::move(lookup), Options{}) {}
  ~StatusPoster();
  StatusPoster(const StatusPoster&) = delete;
  StatusPoster& operator=(const StatusPoster&) = delete;

  // Wants `status` posted for commit `sha` of `repo`; returns at once.
  void post(const std::string& repo, const std::string& sha, CommitStatus status);
  // Statuses waiting to be posted (a post under way included).
  size_t pending() const;
  // Posts that failed so far (each retry counts).
  int64_t failures() const;

 private:
  using Key = std::tuple<std::string, std::string, std::string>;  // repo, sha, context
  struct Entry {
    std::optional<CommitStatus> wanted;  // waiting to be posted
    std::optional<CommitStatus> then;    // the newest, behind a first `wanted` that is kept
    std::optional<CommitStatus> posted;  // the last one the host accepted
    uint64_t order = 0;                  // when `wanted` was handed over (oldest first)
    double backoff = 0;                  // the current back-off; 0 after a success
    double next_try = 0;                 // no post before this (seconds, steady clock)
    bool busy = false;                   // being posted now
  };

  void run();
  // The waiting key to post now, or nullopt and how long to wait. REQUIRES mu_ held.
  std::optional<Key> next_ready(double now, double& wait_seconds);
  void posted(const Key& key, const CommitStatus& sent, const Status& result);
  HostedRepo repo_of(const std::string& name) const;
  // Forgets the oldest entries that wait for nothing. REQUIRES mu_ held.
  void trim_done();

  std::shared_ptr<Host> host_;
  HostOptions host_options_;
  RepoLookup lookup_;
  Options options_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::map<Key, Entry> entries_;     // GUARDED_BY(mu_)
  std::map<uint64_t, Key> waiting_;  // GUARDED_BY(mu_): order -> key with `wanted`
  std::deque<Key> done_;             // GUARDED_BY(mu_): posted, oldest first (trim_done)
  uint64_t order_ = 0;               // GUARDED_BY(mu_)
  int64_t failures_ = 0;             // GUARDED_BY(mu_)
  size_t busy_ = 0;                  // GUARDED_BY(mu_): posts under way
  bool stop_ = false;                // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace testlooper::hosting
