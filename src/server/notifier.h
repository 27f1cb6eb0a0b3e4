// Notifications of changes (docs/configuration.md "Notifications"): when a change of a test's
// failure rate on a branch under test reaches the confidence threshold, the server logs a line
// (change_localised) and POSTs a JSON payload to each `notify` target, signed as GitHub signs
// its webhooks: `X-TestLooper-Signature: sha256=<hex HMAC-SHA256 of the body with the target's
// secret>`, with `X-TestLooper-Delivery: <id>` and `X-TestLooper-Event: change`.
//
// Each change is announced once: the changes seen and the deliveries made are appended to a file
// in the data dir (`notified`), read back at start, so a restarted server neither logs nor sends
// them again. A delivery's id is fixed by its target and change, so a delivery that succeeded just
// before a crash, before it was written down, is sent again with the same id: receivers may
// deduplicate by it. Deliveries run on the notifier's own thread, never the io thread: each with
// a timeout, retried on failure (no answer, or a status other than 2xx) with exponential back-off,
// from a bounded queue; a change that finds the queue full, or whose tries all failed, is not
// written down, so it is tried again when seen again (after a restart at the latest).
//
// Notifier: notify() from one thread (the io thread); it owns its delivery thread, stopped by its
// destructor.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace testlooper::server {

class ServerState;

// A webhook a change is posted to (the config's `notify: [{url, secret}]`).
struct NotifyTarget {
  std::string url;     // http:// or https:// (notify_url_error)
  std::string secret;  // the HMAC-SHA256 key of X-TestLooper-Signature
};

// Why `url` cannot be a notification target ("" when it can): an http:// or https:// URL with a
// host, at most 2,048 bytes, no spaces or control characters.
std::string notify_url_error(const std::string& url);

struct NotifierOptions {
  double timeout_seconds = 10;     // per delivery
  double first_retry_seconds = 1;  // doubled after each failure of a delivery...
  double max_retry_seconds = 600;  // ...up to this
  int max_attempts = 10;           // then it is given up (and logged)
  size_t max_queue = 1000;         // deliveries waiting at most; more are refused
};

class Notifier {
 public:
  // `record_path`: the file of changes seen and deliveries made (created when missing).
  Notifier(std::vector<NotifyTarget> targets, std::string record_path,
           NotifierOptions options = {});
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Announces the change `key` (repo, test and commit) with `payload` (a JSON object without its
  // "delivery" field): logs `log` once ever, and queues a delivery to each target that has not
  // had it and is not about to. `log` is called at most once per key.
  void notify(const std::string& key, const std::string& payload, const std::function<void()>& log);

  // The delivery id of change `key` to `target_url`: 32 hex characters, the same after a restart.
  static std::string delivery_id(const std::string& target_url, const std::string& key);

 private:
  struct Delivery {
    size_t target = 0;
    std::string id;
    std::string body;
    int attempts = 0;
    double due = 0;  // steady seconds
  };
  void run();
  bool deliver(const Delivery& d);
  void record(const std::string& line);

  const std::vector<NotifyTarget> targets_;
  const std::string record_path_;
  const NotifierOptions options_;
  std::set<std::string> seen_;  // change keys logged (io thread)
  std::mutex mutex_;
  std::condition_variable wake_;
  std::set<std::string> done_;  // delivery ids sent, or waiting in queue_ (guarded by mutex_)
  std::deque<Delivery> queue_;  // guarded by mutex_
  bool stop_ = false;           // guarded by mutex_
  std::atomic<bool> stopping_{false};  // ends a delivery under way (the destructor)
  std::thread thread_;
};

// Announces, through `notifier`, each change of a test's (or case's) failure rate on the
// branches under test that is at least `confidence` probable at its commit
// (branch_changes). `ui_url`: the server's address for people (public_url, else where it
// listens), for the payload's link to the branch's changes. Io thread.
using CommitLinkFn = std::function<std::string(const std::string& repo, const std::string& sha)>;
void notify_changes(ServerState& state, Notifier& notifier, double confidence,
                    const std::string& ui_url, const CommitLinkFn& commit_link);

}  // namespace testlooper::server
