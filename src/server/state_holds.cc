// ServerState: holds. Infrastructure failures back off and, after enough in a row, block their
// identity (or, when the environment itself could not be prepared, every object on that
// environment) until a user retries it; a failed build waits retry_wait_seconds before its next
// try. Holds are stored (store::HoldRow), so a restarted server keeps them.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "server/protocol.h"
#include "server/state.h"

namespace testlooper::server {
namespace {

using nlohmann::json;

constexpr size_t kMaxReason = 2000;

bool is_clear(const store::HoldRow& h) {
  return h.infra_failures == 0 && h.not_before == 0 && h.reason.empty() && h.forgiven_failures == 0;
}

// Forgets a hold's infrastructure failures and wait; true when there was any.
bool clear_failures(store::HoldRow& h) {
  const bool had = h.infra_failures > 0 || h.not_before > 0;
  h.infra_failures = 0;
  h.not_before = 0;
  h.reason.clear();
  return had;
}

}  // namespace

void ServerState::put_hold(const store::HoldRow& hold) {
  (void)store_.put_hold(hold);
  if (is_clear(hold)) {
    holds_.erase(hold.key);
  } else {
    holds_[hold.key] = hold;
  }
}

bool ServerState::may_set_hold(const store::RunRow& run) {
  return run.state == store::RunState::kInfraFailed ||
         (run.kind == "build" && run.state == store::RunState::kFailed);
}

void ServerState::update_holds(const store::RunRow& run, bool environment_failed) {
  const planner::PlannedObject* o = object(run.repo, run.commit, run.name);
  const std::string environment = o == nullptr ? "" : o->environment_key;
  const double now = now_seconds();
  auto hold_of = [this](const std::string& key) {
    auto it = holds_.find(key);
    return it == holds_.end() ? store::HoldRow{key} : it->second;
  };
  if (run.state == store::RunState::kInfraFailed) {
    store::HoldRow h = hold_of(environment_failed && !environment.empty() ? environment : run.hash);
    ++h.infra_failures;
    h.reason = run.detail.substr(0, kMaxReason);
    if (h.reason.empty()) h.reason = "an infrastructure failure";
    const double delay =
        std::min(options_.infra_backoff_max_seconds,
                 options_.infra_backoff_seconds * std::pow(2.0, h.infra_failures - 1));
    h.not_before = std::max(h.not_before, now + delay);
    put_hold(h);
    return;
  }
  if (run.state != store::RunState::kSucceeded && run.state != store::RunState::kFailed) return;
  // A run that counted: its identity and its environment work again.
  for (const std::string& key : {run.hash, environment}) {
    if (key.empty() || !holds_.count(key)) continue;
    store::HoldRow h = hold_of(key);
    if (clear_failures(h)) put_hold(h);
  }
  if (o != nullptr && run.kind == "build" && run.state == store::RunState::kFailed &&
      o->retry_wait_seconds > 0) {
    store::HoldRow h = hold_of(run.hash);
    h.not_before = now + o->retry_wait_seconds;
    h.reason = fmt::format("the build failed; it is tried again after retry_wait_seconds ({} s)",
                           o->retry_wait_seconds);
    put_hold(h);
  }
}

void ServerState::plan_holds(double now) {
  std::map<std::string, planner::Hold>& out = plan_input_.holds;
  out.clear();
  next_wake_ = 0;
  for (const auto& [key, h] : holds_) {
    planner::Hold p;
    p.forgiven_failures = h.forgiven_failures;
    p.one_at_a_time = h.infra_failures > 0;
    const std::string what = key.starts_with("env:") ? "of its environment " : "";
    if (h.infra_failures >= options_.infra_max_failures) {
      p.blocked = true;
      p.reason =
          fmt::format("{} infrastructure failures {}in a row (retry it once fixed); the last: {}",
                      h.infra_failures, what, h.reason);
    } else if (h.not_before > now) {
      p.waiting = true;
      p.reason = h.infra_failures == 0 ? h.reason
                                       : fmt::format(
                                             "backing off for {:.0f} s after {} infrastructure "
                                             "failure{} {}in a row; the last: {}",
                                             std::ceil(h.not_before - now), h.infra_failures,
                                             h.infra_failures == 1 ? "" : "s", what, h.reason);
      next_wake_ = next_wake_ == 0 ? h.not_before : std::min(next_wake_, h.not_before);
    }
    if (p.blocked || p.waiting || p.one_at_a_time || p.forgiven_failures > 0)
      out[key] = std::move(p);
  }
}

Result<bool> ServerState::retry(const std::string& repo, const std::string& sha,
                                const std::string& name) {
  const planner::PlannedObject* o = object(repo, sha, name);
  if (o == nullptr) return Error{name, "commit has no object named '" + name + "'"};
  bool retried = false;
  for (const std::string& key : {o->hash, o->environment_key}) {
    auto it = holds_.find(key);
    if (key.empty() || it == holds_.end()) continue;
    store::HoldRow h = it->second;
    if (clear_failures(h)) {
      retried = true;
      put_hold(h);
    }
  }
  // A build that failed all its tries: those failures no longer count towards max_retries.
  const planner::HashProgress p = progress(o->hash);
  if (o->kind == "build" && p.runs <= p.failures) {
    auto it = holds_.find(o->hash);
    store::HoldRow h = it == holds_.end() ? store::HoldRow{o->hash} : it->second;
    if (p.failures - h.forgiven_failures > o->max_retries) {
      h.forgiven_failures = p.failures;
      retried = true;
      put_hold(h);
    }
  }
  if (retried) {
    broadcast(json{{"type", "commit"}, {"repo", repo}, {"commit", sha}}.dump());
    update();
  }
  return retried;
}

}  // namespace testlooper::server
