// ServerState: what the watcher's batches bring (repos, branches and commits) and what branches
// under test enable (state.h).
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "server/event_log.h"
#include "server/state.h"

namespace testlooper::server {
namespace {

using nlohmann::json;

// The operator's lines of an ingested batch: how many new commits, and the definitions error of
// each new commit that has one (a known commit resolved again is not said again).
void log_ingested(const RepoBatch& batch, const std::set<std::string>& again) {
  size_t fresh = 0;
  for (const auto& row : batch.commits) {
    if (!again.count(row.sha)) ++fresh;
    if (row.error && !again.count(row.sha)) {
      log_event("warn", "definitions_error",
                {{"repo", row.repo}, {"commit", row.sha}, {"error", *row.error}});
    }
  }
  if (fresh > 0) {
    log_event("info", "new_commits", {{"repo", batch.repo.name}, {"count", std::to_string(fresh)}});
  }
}

}  // namespace

void ServerState::ingest(RepoBatch batch) {
  (void)store_.put_repo(batch.repo);
  repos_[batch.repo.name] = batch.repo.path;
  std::set<std::string> again;  // known commits resolved again (a commit they pin arrived)
  for (const auto& row : batch.commits) {
    if (commits_.count({row.repo, row.sha})) again.insert(row.sha);
  }
  // Checked before it is stored, so the store only ever holds what load() accepts: a commit
  // whose definitions the planner cannot read is kept with that error and no objects.
  for (size_t i = 0; i < batch.commits.size(); ++i) {
    store::CommitRow& row = batch.commits[i];
    try {
      add_commit(row, batch.objects[i]);
    } catch (const std::exception& e) {
      row.error = std::string("the server cannot plan this commit's definitions: ") + e.what();
      row.test_sets_json = "{}";
      row.triggered_json = "[]";
      batch.objects[i].clear();
      add_commit(row, {});
    }
  }
  if (!batch.commits.empty()) (void)store_.put_commits(batch.commits);
  log_ingested(batch, again);
  for (size_t i = 0; i < batch.commits.size(); ++i)
    (void)store_.put_definitions(batch.commits[i], batch.objects[i]);
  std::set<std::string> present;
  for (auto& b : batch.branches) {
    present.insert(b.name);
    // A branch of a repo that was gone and is back: under test as it was.
    if (auto f = forgotten_branches_.find({b.repo, b.name}); f != forgotten_branches_.end()) {
      b.under_test = f->second.under_test;
      b.depth = f->second.depth;
      if (b.under_test) enable_triggered(b.repo, b.head, b.name);
    }
    auto it = branches_.find({b.repo, b.name});
    if (it != branches_.end()) {
      const bool moved = it->second.head != b.head;
      it->second.head = b.head;
      if (!moved) continue;
      log_event("info", "branch_moved", {{"repo", b.repo}, {"branch", b.name}, {"head", b.head}});
      (void)store_.put_branch(it->second);
      if (it->second.under_test) enable_triggered(b.repo, b.head, b.name);
    } else {
      branches_[{b.repo, b.name}] = b;
      (void)store_.put_branch(b);
    }
    broadcast(
        json{{"type", "branch"}, {"repo", b.repo}, {"branch", b.name}, {"head", b.head}}.dump());
  }
  delete_branches(batch.repo.name, present);
  // The repo is here: its forgotten branches are restored above or gone.
  for (auto it = forgotten_branches_.lower_bound({batch.repo.name, ""});
       it != forgotten_branches_.end() && it->first.first == batch.repo.name;) {
    if (!present.count(it->first.second))
      (void)store_.delete_branch(it->first.first, it->first.second);
    it = forgotten_branches_.erase(it);
  }
  // A commit resolved again gets the sets its triggers select now, from the branches under test
  // that cover it (their head and `depth` first-parent ancestors).
  for (const auto& [key, b] : branches_) {
    if (again.empty() || key.first != batch.repo.name || !b.under_test) continue;
    for (const auto& sha : first_parent_history(b.repo, b.head, static_cast<size_t>(b.depth) + 1)) {
      if (again.count(sha)) enable_triggered(b.repo, sha, b.name);
    }
  }
  if (!batch.commits.empty())
    broadcast(json{{"type", "commits"}, {"repo", batch.repo.name}}.dump());
  recompute_reachable();
  update();
}

void ServerState::delete_branches(const std::string& repo, const std::set<std::string>& keep) {
  for (auto it = branches_.begin(); it != branches_.end();) {
    if (it->first.first == repo && !keep.count(it->first.second)) {
      (void)store_.delete_branch(it->first.first, it->first.second);
      it = branches_.erase(it);
    } else {
      ++it;
    }
  }
}

void ServerState::forget_missing_repos(const std::set<std::string>& present) {
  std::vector<std::string> gone;
  for (const auto& [name, path] : repos_) {
    if (!present.count(name)) gone.push_back(name);
  }
  if (gone.empty()) return;
  for (const auto& name : gone) {
    // Out of /api/repos and the planner; kept in the store (under test or not) until the repo
    // comes back or ingest finds the branch gone.
    for (auto it = branches_.lower_bound({name, ""});
         it != branches_.end() && it->first.first == name;) {
      forgotten_branches_[it->first] = it->second;
      it = branches_.erase(it);
    }
    (void)store_.delete_repo(name);
    repos_.erase(name);
    broadcast(json{{"type", "repo"}, {"repo", name}, {"deleted", true}}.dump());
  }
  recompute_reachable();
  update();
}

void ServerState::enable_triggered(const std::string& repo, const std::string& sha,
                                   const std::string& branch) {
  const CommitState* c = commit(repo, sha);
  if (c == nullptr) return;
  const json triggered = json::parse(c->row.triggered_json, nullptr, false);
  if (!triggered.is_array()) return;
  for (const auto& set : triggered) {
    if (!set.is_string()) continue;  // a damaged row enables nothing
    const std::string name = set.get<std::string>();
    if (branch_sets_[{repo, sha}][name].insert(branch).second) {
      (void)store_.set_branch_set({repo, branch, sha, name}, true);
    }
    enabled_[{repo, sha}].insert(name);
  }
}

void ServerState::disable_branch_sets(const std::string& repo, const std::string& branch) {
  for (auto& [key, sets] : branch_sets_) {
    if (key.first != repo) continue;
    for (auto it = sets.begin(); it != sets.end();) {
      const std::string set = it->first;
      if (!it->second.erase(branch)) {
        ++it;
        continue;
      }
      (void)store_.set_branch_set({repo, branch, key.second, set}, false);
      it = it->second.empty() ? sets.erase(it) : std::next(it);
      refresh_enabled(key, set);
    }
  }
}

void ServerState::refresh_enabled(const std::pair<std::string, std::string>& key,
                                  const std::string& set) {
  bool on = hand_sets_.count({key.first, key.second, set}) > 0;
  if (auto by = branch_sets_.find(key); by != branch_sets_.end()) {
    auto branches = by->second.find(set);
    on = on || (branches != by->second.end() && !branches->second.empty());
  }
  if (on) {
    enabled_[key].insert(set);
  } else if (auto e = enabled_.find(key); e != enabled_.end()) {
    e->second.erase(set);
    if (e->second.empty()) enabled_.erase(e);
  }
}

Status ServerState::set_branch_under_test(const std::string& repo, const std::string& branch,
                                          bool enabled, int depth) {
  auto it = branches_.find({repo, branch});
  if (it == branches_.end())
    return Error{repo, fmt::format("no branch '{}' in repo '{}'", branch, repo)};
  it->second.under_test = enabled;
  it->second.depth = depth;
  if (Status s = store_.put_branch(it->second); !s.ok()) {
    store_failed("branch " + branch + " of repo " + repo, s.error());
    return s;
  }
  log_event("info", enabled ? "branch_under_test" : "branch_not_under_test",
            {{"repo", repo},
             {"branch", branch},
             {"head", it->second.head},
             {"depth", std::to_string(depth)}});
  if (enabled) {
    for (const auto& sha :
         first_parent_history(repo, it->second.head, static_cast<size_t>(depth) + 1)) {
      enable_triggered(repo, sha, branch);
    }
  } else {
    disable_branch_sets(repo, branch);
  }
  broadcast(
      json{{"type", "branch"}, {"repo", repo}, {"branch", branch}, {"under_test", enabled}}.dump());
  update();
  return {};
}

}  // namespace testlooper::server
