#include "server/statuses.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iterator>

#include "planner/planner.h"

namespace testlooper::server {
namespace {

using hosting::CommitStatus;

// The objects of `c` by name.
std::map<std::string, const planner::PlannedObject*> objects_by_name(const CommitState& c) {
  std::map<std::string, const planner::PlannedObject*> out;
  for (const auto& o : c.planned.objects) out[o.name] = &o;
  return out;
}

bool listed(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

// A test that failed here, and whether its verdict fails the status.
struct WorstTest {
  std::string name;
  double rate = -1;
  bool failing = false;
};

}  // namespace

StatusReporter::StatusReporter(ServerState& state, Options options, Post post)
    : state_(state), options_(std::move(options)), post_(std::move(post)) {
  while (!options_.base_url.empty() && options_.base_url.back() == '/')
    options_.base_url.pop_back();
}

void StatusReporter::update() {
  std::map<std::pair<std::string, std::string>, std::string> seen;
  // Judging a commit reads its tests' history (160 ms for 500 tests x 200 commits with 10M runs,
  // bench/README.md "one commit"): at least one per update, then more while the budget lasts.
  const auto start = std::chrono::steady_clock::now();
  bool judged_one = false;
  auto may_judge = [&] {
    return !judged_one ||
           std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() <
               options_.judging_seconds_per_update;
  };
  for (const auto& [key, sets] : state_.enabled_sets()) {
    const CommitState* c = state_.commit(key.first, key.second);
    if (c == nullptr || sets.empty()) continue;
    std::string print = fingerprint(key, sets);
    if (auto it = seen_.find(key); it != seen_.end() && it->second == print) {
      seen[key] = std::move(print);
      continue;
    }
    // A commit wanted since the last update gets pending first, even when its runs are over
    // already: the host shows that it was tested. Those wanted at the start do not.
    const bool is_new = !seen_.count(key) && !initial_.count(key);
    initial_.erase(key);
    std::optional<CommitStats> stats;
    bool deferred = false;
    for (const auto& set : sets) {
      const auto statuses = statuses_of(*c, set, stats, may_judge(), is_new, deferred);
      for (const auto& status : statuses) post_(key.first, key.second, status);
    }
    judged_one = judged_one || stats.has_value();
    // A commit deferred for lack of budget is looked at again at the next update (no
    // fingerprint is empty: each names its sets).
    seen[key] = deferred ? std::string() : std::move(print);
  }
  seen_ = std::move(seen);
}

std::string StatusReporter::fingerprint(const std::pair<std::string, std::string>& key,
                                        const std::set<std::string>& sets) const {
  const CommitState* c = state_.commit(key.first, key.second);
  std::string out;
  auto to = std::back_inserter(out);
  const auto objects = objects_by_name(*c);
  // The first parent's counts too: whether a test's rate rose here depends on them most.
  const CommitState* parent =
      c->row.parents.empty() ? nullptr : state_.commit(key.first, c->row.parents[0]);
  const auto parent_objects = parent == nullptr
                                  ? std::map<std::string, const planner::PlannedObject*>{}
                                  : objects_by_name(*parent);
  for (const auto& set : sets) {
    fmt::format_to(to, "[{}]", set);
    auto names = c->planned.test_sets.find(set);
    if (names == c->planned.test_sets.end()) continue;
    for (const auto& name : names->second) {
      auto st = state_.plan().statuses.find({key.first, key.second, name});
      if (st != state_.plan().statuses.end())
        fmt::format_to(to, "{}:{}:{}", static_cast<int>(st->second.state), st->second.target,
                       st->second.reason);
      if (auto o = objects.find(name); o != objects.end()) {
        const auto p = state_.progress(o->second->hash);
        fmt::format_to(to, ":{}:{}:{};", p.runs, p.failures, p.active);
      }
      if (auto o = parent_objects.find(name); o != parent_objects.end()) {
        const auto p = state_.progress(o->second->hash);
        fmt::format_to(to, "^{}:{};", p.runs, p.failures);
      }
    }
  }
  return out;
}

std::vector<CommitStatus> StatusReporter::statuses_of(const CommitState& c, const std::string& set,
                                                      std::optional<CommitStats>& stats,
                                                      bool may_judge, bool pending_first,
                                                      bool& deferred) {
  CommitStatus out;
  out.context = "testlooper/" + set;
  out.target_url =
      options_.base_url + "/repos/" + hosting::path_segment(c.row.repo) + "/commits/" + c.row.sha;
  auto names = c.planned.test_sets.find(set);
  if (names == c.planned.test_sets.end()) return {};  // its definitions did not resolve
  const auto objects = objects_by_name(c);
  int64_t runs = 0;
  int64_t target = 0;
  bool pending = false;
  int blocked = 0;
  std::string failed_dependency;
  for (const auto& name : names->second) {
    auto st = state_.plan().statuses.find({c.row.repo, c.row.sha, name});
    const auto state =
        st == state_.plan().statuses.end() ? planner::ObjectState::kNotEnabled : st->second.state;
    if (state == planner::ObjectState::kDependencyFailed) {
      failed_dependency = st->second.reason;
    } else if (state == planner::ObjectState::kInfraBlocked) {
      ++blocked;
    } else if (state != planner::ObjectState::kDone) {
      pending = true;  // runs still wanted (or not planned yet)
    }
    auto o = objects.find(name);
    if (o == objects.end() || o->second->kind != "test") continue;
    runs += state_.progress(o->second->hash).runs;
    if (st != state_.plan().statuses.end()) target += st->second.target;
  }
  std::vector<CommitStatus> all;
  if (pending || pending_first) {
    out.description = fmt::format("running: {}/{} runs", runs, std::max(runs, target));
    all.push_back(out);
    if (pending) return all;
  }
  if (!failed_dependency.empty()) {
    out.state = CommitStatus::State::kFailure;
    out.description = fmt::format("{} runs · build failed: {}", runs, failed_dependency);
  } else if (blocked > 0) {
    out.state = CommitStatus::State::kError;
    out.description = fmt::format("{} runs · {} blocked by infrastructure failures", runs, blocked);
  } else {
    if (!stats) {
      if (!may_judge) {
        deferred = true;
        return all;
      }
      stats = commit_stats(state_, c.row.repo, c.row.sha);
    }
    all.push_back(judged(c, set, runs, *stats, std::move(out)));
    return all;
  }
  out.description = hosting::fit_description(out.description, options_.description_limit);
  all.push_back(std::move(out));
  return all;
}

CommitStatus StatusReporter::judged(const CommitState& c, const std::string& set, int64_t runs,
                                    const CommitStats& stats, CommitStatus out) const {
  const auto objects = objects_by_name(c);
  int broken = 0;
  int flaky = 0;
  bool failing = false;
  WorstTest worst;
  for (const auto& name : c.planned.test_sets.at(set)) {
    auto o = objects.find(name);
    auto t = stats.window->tests.find(name);
    if (o == objects.end() || o->second->kind != "test" || t == stats.window->tests.end()) continue;
    const StatusVerdict v = status_verdict(*stats.window, t->second, stats.index);
    broken += v.verdict == stats::Verdict::kBroken;
    flaky += v.verdict == stats::Verdict::kFlaky;
    const bool fails =
        (v.verdict == stats::Verdict::kBroken && listed(options_.fail_on, "broken")) ||
        (v.verdict == stats::Verdict::kFlaky && listed(options_.fail_on, "flaky")) ||
        (v.flaky_rising && listed(options_.fail_on, "flaky_rising"));
    failing = failing || fails;
    const auto p = state_.progress(o->second->hash);
    if (p.failures == 0) continue;
    const double rate = static_cast<double>(p.failures) / static_cast<double>(p.runs);
    if ((fails && !worst.failing) || (fails == worst.failing && rate > worst.rate))
      worst = {name, rate, fails};
  }
  out.state = failing ? CommitStatus::State::kFailure : CommitStatus::State::kSuccess;
  std::string text = fmt::format("{} runs", runs);
  if (flaky > 0) text += fmt::format(" · {} flaky", flaky);
  if (broken > 0) text += fmt::format(" · {} broken", broken);
  if (worst.rate < 0 && flaky == 0 && broken == 0) text += " · all passed";
  const size_t limit = options_.description_limit;
  if (worst.rate >= 0) {
    // The worst test's name is what gives way when the description is too long, not its rate.
    const std::string rate = fmt::format(" {}%", std::lround(worst.rate * 100));
    const size_t used = hosting::code_points(text) + 2 + hosting::code_points(rate);
    if (used + 4 <= limit) text += ": " + hosting::fit_description(worst.name, limit - used) + rate;
  }
  out.description = hosting::fit_description(text, limit);
  return out;
}

}  // namespace testlooper::server
