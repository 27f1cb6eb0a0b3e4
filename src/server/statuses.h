// StatusReporter: what the server tells the host about each commit under test (docs/
// configuration.md "Commit statuses"). For every commit with enabled test sets, one commit
// status per enabled set, context "testlooper/<set>": pending while the plan still wants runs of
// the set's tests (or their builds), then success or failure by the verdicts listed in
// ServerOptions::status_fail_on, with a description such as
// "412 runs · 2 flaky · 1 broken: net/linux 33%" and a link to the commit's page.
//
// Owned by run_server; every method runs on the io thread and reads ServerState there. It only
// hands statuses over (to hosting::StatusPoster, which posts them on its own thread), so posting
// never blocks nor changes testing.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "hosting/hosting.h"
#include "server/commit_stats.h"
#include "server/state.h"

namespace testlooper::server {

class StatusReporter {
 public:
  using Post = std::function<void(const std::string& repo, const std::string& sha,
                                  hosting::CommitStatus status)>;
  struct Options {
    std::vector<std::string> fail_on = {"broken", "flaky_rising"};
    std::string base_url;  // target_url: <base_url>/repos/{repo}/commits/{sha}
    size_t description_limit = 140;
    // Commits whose statuses need the statistics are judged for at most this long per update()
    // (at least one; the others wait for the next), so that many commits finishing at once
    // never stall the io thread.
    double judging_seconds_per_update = 0.05;
  };

  StatusReporter(ServerState& state, Options options, Post post);

  // Hands over the statuses of every wanted commit that is new or whose sets, plan states or
  // counts changed since the last call. Called periodically (once a second).
  void update();

 private:
  // What the statuses of commit `key` depend on: its sets, their objects' plan states and
  // counts, and the counts of the same tests at its first parent (farther neighbours, which
  // the statistics read too, are not watched).
  std::string fingerprint(const std::pair<std::string, std::string>& key,
                          const std::set<std::string>& sets) const;
  // The status of `set` of commit `c`, after a pending one when `pending_first` and it is not
  // pending any more. `stats` (the commit's tests classified) is computed when first needed, if
  // `may_judge`; when it is needed and may not be computed now, `deferred` is set.
  std::vector<hosting::CommitStatus> statuses_of(const CommitState& c, const std::string& set,
                                                 std::optional<CommitStats>& stats, bool may_judge,
                                                 bool pending_first, bool& deferred);
  // The status of `set` once the plan wants no more runs of it: success or failure by the
  // verdicts of its tests (Options::fail_on); `out` has its context and target_url.
  hosting::CommitStatus judged(const CommitState& c, const std::string& set, int64_t runs,
                               const CommitStats& stats, hosting::CommitStatus out) const;

  ServerState& state_;
  Options options_;
  Post post_;
  std::map<std::pair<std::string, std::string>, std::string> seen_;  // (repo, sha) -> fingerprint
  // Commits wanted when the server started and not seen since.
  std::set<std::pair<std::string, std::string>> initial_;
};

}  // namespace testlooper::server
