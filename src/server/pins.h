// The pin mover (docs/definitions.md "How pins move"): on its own thread, after every watcher
// scan and at start, looks at the head of every branch of every repo under the repos dir, and
// for each `repos:` pin with `branch:` and `auto: true` whose referenced branch moved, writes one
// commit on the pinning branch that rewrites the pins' shas in place (definitions::list_pins'
// offsets: comments, order, quoting kept) and pushes it with `git push` (hosting::run_git): to the
// repo itself in local mode, to the host's clone URL with its token in hosted mode. A push that
// loses a race is redone on the new head. Also moves one pin on request (the API's manual
// update) and keeps, per branch, what its pins point at for GET .../pins. The git work never runs
// on the io thread; what the API reads is a snapshot under a mutex.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "definitions/pins.h"
#include "hosting/hosting.h"

namespace testlooper::server {

// One pin of a branch's head, as GET /api/repos/{repo}/branches/{branch}/pins shows it.
struct PinInfo {
  std::string name;
  std::string repo;    // the referenced repo
  std::string branch;  // the referenced branch (a pin without `branch:`: the pinning branch's name)
  std::string commit;  // where it points: 40-hex or "HEAD"
  bool auto_update = false;
  std::optional<std::string> head;  // the referenced branch's head; nullopt when unknown
  std::optional<size_t> behind;     // commits from `commit` to `head`; nullopt when unknown
  std::string file;                 // the file of the pinning repo that writes it
};

// How a manual update ended: status 200 (commit = the pinning branch's new head, or its
// unchanged head when the pin already pointed there), 404 (no such repo, branch or pin), 400
// ("branch-head" for a pin that follows no branch), 422 (not a commit of the referenced repo),
// 409 (every attempt lost a race), 502 (the push failed otherwise), 503 (the server stops).
struct PinUpdateResult {
  int status = 200;
  std::string error;
  std::string commit;
  std::string to;
};

struct PinMoverOptions {
  std::string repos_dir;
  std::string author_name = "TestLooper";
  std::string author_email = "testlooper@localhost";
  // Hosted mode when `lookup` is set: the HostedRepo of a repo name (its clone URL; nullopt when
  // unknown), the credentials to push with, and `fetch`, which brings the repo's mirror up to
  // date before it returns (after a push, and after a push that lost a race).
  std::function<std::optional<hosting::HostedRepo>(const std::string& repo)> lookup;
  hosting::GitCredentials credentials;
  std::function<void(const std::string& repo)> fetch;
  // Called after each successful push (asks the watcher to look); from the mover's thread.
  std::function<void()> pushed;
  double push_timeout_seconds = 120;
  int max_attempts = 4;                // pushes per update, the first included
  double first_backoff_seconds = 0.5;  // doubled after each failed attempt
};

class PinMover {
 public:
  explicit PinMover(PinMoverOptions options);
  // Answers the updates still waiting (503) and joins the thread.
  ~PinMover();
  PinMover(const PinMover&) = delete;
  PinMover& operator=(const PinMover&) = delete;

  // Asks for a look at every branch now (thread-safe; the watcher calls it after each scan).
  void wake();

  // The pins of the branch's head as of the last look; nullopt when the last look saw no such
  // repo or branch. Thread-safe, never touches git.
  std::optional<std::vector<PinInfo>> pins(const std::string& repo,
                                           const std::string& branch) const;

  // Moves pin `name` of `repo`'s `branch` to `to` (a 40-hex sha or "branch-head"), on the
  // mover's thread; `done` is called once, from that thread, with the result.
  using Done = std::function<void(PinUpdateResult)>;
  void update(std::string repo, std::string branch, std::string name, std::string to, Done done);

 private:
  struct Request {
    std::string repo, branch, name, to;
    Done done;
  };
  // What an update changes: pin name -> its new sha, or nullopt for its branch's head.
  using Wanted = std::map<std::string, std::optional<std::string>>;
  using BranchKey = std::pair<std::string, std::string>;  // repo, branch

  void loop();
  void scan();
  void handle(const Request& request);
  // Writes and pushes one commit moving `wanted` on `repo`'s `branch`, with retries.
  PinUpdateResult move(const std::string& repo, const std::string& branch, const Wanted& wanted);
  // The pins written at `repo`'s commit `sha` (cached per head sha).
  const std::vector<definitions::PinLocation>& pins_at(const std::string& repo,
                                                       const std::string& sha);
  // The head of `repo`'s `branch`, or nullopt.
  std::optional<std::string> head_of(const std::string& repo, const std::string& branch) const;
  // Waits `seconds` unless the mover stops meanwhile (then false).
  bool pause(double seconds);
  bool stopping() const;
  std::string repo_dir(const std::string& repo) const;

  PinMoverOptions options_;
  // Mover thread only.
  std::map<BranchKey, std::vector<definitions::PinLocation>> cache_;  // (repo, head sha)
  std::map<std::pair<std::string, std::string>, std::optional<size_t>> behind_cache_;
  // (repo, branch) -> the head and targets of an auto update whose attempts ran out: not tried
  // again until one of them changes.
  std::map<BranchKey, std::string> failed_;
  std::set<BranchKey> cycles_logged_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool woken_ = true;  // a look at start
  bool stop_ = false;
  std::deque<Request> requests_;
  std::map<BranchKey, std::vector<PinInfo>> snapshot_;
  std::thread thread_;
};

}  // namespace testlooper::server
