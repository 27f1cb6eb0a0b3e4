#include "server/state.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "core/hash.h"
#include "dispatch/dispatch.h"
#include "server/protocol.h"

namespace testlooper::server {
namespace {

using nlohmann::json;

// The detail of a run cancelled because nothing wants it any more (cancel_unwanted).
constexpr const char* kNoLongerWanted =
    "no longer wanted: no enabled commit, target or branch under test wants this run";

// How far back along a branch the extra-run budget looks for changes.
constexpr size_t kExtraHistory = 1000;


// An integer field of a stored definition, or `fallback` when it is absent; throws
// std::invalid_argument when it is there but not a small integer (a malformed row).
int int_field(const json& j, const char* key, int fallback) {
  if (!j.contains(key)) return fallback;
  const json& v = j[key];
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > (int64_t{1} << 30)) {
    throw std::invalid_argument(fmt::format("'{}' is not a non-negative integer", key));
  }
  return static_cast<int>(v.get<int64_t>());
}

// The planner's view of a stored object. Throws std::invalid_argument for a malformed
// definition (the store was written by hand or damaged): load() reports it, never aborts.
// `names_commit`, when given, is set when `commit` (a sha) is in what the planner keeps of the
// definition other than its builds' names (see ParsedDefinitions).
planner::PlannedObject planned_from(const store::ObjectRow& row, const std::string& commit = "",
                                    bool* names_commit = nullptr) {
  planner::PlannedObject o;
  o.name = row.name;
  o.kind = row.kind;
  o.hash = row.hash;
  const json j = json::parse(row.definition_json, nullptr, false);
  if (!j.is_object()) throw std::invalid_argument("its definition is not a JSON object");
  o.min_cores = int_field(j, "min_cores", 1);
  o.max_cores = int_field(j, "max_cores", o.min_cores);
  o.min_ram_gb = int_field(j, "min_ram_gb", 0);
  o.max_retries = int_field(j, "max_retries", 0);
  o.retry_wait_seconds = int_field(j, "retry_wait_seconds", 0);
  if (auto platform = j.find("platform"); platform != j.end() && !platform->is_null()) {
    if (!platform->is_string()) throw std::invalid_argument("'platform' is not a string");
    if (!platform->get_ref<const std::string&>().empty()) o.platform = platform->get<std::string>();
  }
  if (auto image = j.find("image"); image != j.end() && image->is_object()) {
    o.docker = image->contains("dockerfile_contents");
    o.ami = image->contains("base_ami");
    if (auto ami = image->find("base_ami"); ami != image->end() && ami->is_string())
      o.image = ami->get<std::string>();
    // Objects on the same image share its failures (ServerState::update_holds).
    if (o.docker || o.ami) {
      const std::string text = image->dump();
      o.environment_key = "env:" + sha256_hex(o.platform + "\n" + text).substr(0, 32);
      if (names_commit != nullptr && text.find(commit) != std::string::npos) *names_commit = true;
    }
  }
  if (names_commit != nullptr && o.platform.find(commit) != std::string::npos) *names_commit = true;
  if (!j.contains("dependencies")) return o;
  if (!j["dependencies"].is_object()) throw std::invalid_argument("'dependencies' is not an object");
  for (const auto& [path, dep] : j["dependencies"].items()) {
    if (!dep.is_object()) throw std::invalid_argument("dependency '" + path + "' is not an object");
    const json kind = dep.value("kind", json(""));
    if (kind != "build") continue;
    const json name = dep.value("name", json(""));
    const json hash = dep.value("hash", json(""));
    if (!name.is_string() || !hash.is_string()) {
      throw std::invalid_argument("dependency '" + path + "' has no name or hash");
    }
    o.builds.push_back({name.get<std::string>(), hash.get<std::string>()});
    if (names_commit != nullptr && o.builds.back().hash.find(commit) != std::string::npos)
      *names_commit = true;
  }
  return o;
}

// Stands for a commit's sha in ParsedDefinitions' keys: never in JSON text (a string's control
// characters are escaped there).
constexpr char kCommitMark = '\x01';

// `text` with each `what` in it replaced by `with`, into `out`.
void replace_all(const std::string& text, std::string_view what, std::string_view with,
                 std::string& out) {
  out.clear();
  size_t from = 0;
  for (size_t at; !what.empty() && (at = text.find(what, from)) != std::string::npos;
       from = at + what.size()) {
    out.append(text, from, at - from);
    out += with;
  }
  out.append(text, from);
}

// A commit's test sets ({set: [test, ...]}) as stored; throws std::invalid_argument when
// malformed.
std::map<std::string, std::vector<std::string>> test_sets_from(const std::string& text) {
  const json sets = json::parse(text, nullptr, false);
  if (!sets.is_object()) throw std::invalid_argument("its test sets are not a JSON object");
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& [name, tests] : sets.items()) {
    if (!tests.is_array()) throw std::invalid_argument("test set '" + name + "' is not a list");
    for (const auto& t : tests) {
      if (!t.is_string()) throw std::invalid_argument("test set '" + name + "' names a non-string");
      out[name].push_back(t.get<std::string>());
    }
  }
  return out;
}

// Reads the objects of `commits`, in their order, on a thread of its own, up to kAhead commits
// ahead of next(). The store is used by that thread alone until the reader goes.
class ObjectsReader {
 public:
  ObjectsReader(store::Store& store, const std::vector<store::CommitRow>& commits)
      : thread_([this, &store, &commits] { read(store, commits); }) {}
  ~ObjectsReader() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }
  ObjectsReader(const ObjectsReader&) = delete;
  ObjectsReader& operator=(const ObjectsReader&) = delete;

  // The next commit's objects (in the order of `commits`). REQUIRES: fewer calls than commits.
  Result<std::vector<store::ObjectRow>> next() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return !ready_.empty(); });
    Result<std::vector<store::ObjectRow>> rows = std::move(ready_.front());
    ready_.pop_front();
    changed_.notify_all();
    return rows;
  }

  // Hands rows from next() back, to be freed on the reader's thread: freed here, each of their
  // strings would go back to the reader's malloc arena under its lock (+25% of the CPU).
  void done(std::vector<store::ObjectRow>&& rows) {
    std::lock_guard lock(mutex_);
    used_.push_back(std::move(rows));
  }

 private:
  static constexpr size_t kAhead = 8;

  void read(store::Store& store, const std::vector<store::CommitRow>& commits) {
    std::vector<std::vector<store::ObjectRow>> used;
    for (const store::CommitRow& c : commits) {
      {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [this] { return stop_ || ready_.size() < kAhead; });
        if (stop_) return;
        used.swap(used_);
      }
      used.clear();
      auto rows = store.objects_of(c.repo, c.sha);
      const bool failed = !rows.ok();
      {
        std::lock_guard lock(mutex_);
        ready_.push_back(std::move(rows));
      }
      changed_.notify_all();
      if (failed) return;  // the reader stops at the error it hands over
    }
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Result<std::vector<store::ObjectRow>>> ready_;
  std::vector<std::vector<store::ObjectRow>> used_;
  bool stop_ = false;
  std::thread thread_;  // last: started once the rest is made
};

}  // namespace

ServerState::ServerState(store::Store& store, StateOptions options)
    : store_(store), options_(std::move(options)) {}

Status ServerState::load() {
  auto repos = store_.repos();
  if (!repos.ok()) return repos.error();
  for (const auto& r : *repos) repos_[r.name] = r.path;
  auto branches = store_.branches();
  if (!branches.ok()) return branches.error();
  for (const auto& b : *branches) {
    // A gone repo's branches wait for it to come back (forget_missing_repos).
    (repos_.count(b.repo) ? branches_ : forgotten_branches_)[{b.repo, b.name}] = b;
  }
  auto commits = store_.commits();
  if (!commits.ok()) return commits.error();
  // One commit's objects at a time, each distinct definition parsed once; none is kept. The
  // rows are read on a thread of their own, a few commits ahead of the one being added (the
  // store's reads and the parsing cost about the same: issue 18, start-up).
  ParsedDefinitions parsed;
  {
    // Ends (its thread joined) before the store is used here again.
    ObjectsReader reader(store_, *commits);
    for (auto& c : *commits) {
      auto key = std::make_pair(c.repo, c.sha);
      const std::string where = fmt::format("commit {} of repo '{}'", c.sha, c.repo);
      auto objects = reader.next();
      if (!objects.ok()) return objects.error();
      try {
        add_commit(std::move(c), *objects, &parsed);
        reader.done(std::move(*objects));
      } catch (const std::exception& e) {
        // A damaged row: say which, and how to recover, instead of aborting (issue 10, item 16).
        plan_index_.remove(key.first, key.second);
        commits_.erase(key);
        return Error{"state.db",
                     fmt::format("malformed row for {}: {}; the database is damaged: move it "
                                 "away and run `testlooper rebuild` to recreate it",
                                 where, e.what())};
      }
    }
  }
  auto targets = store_.targets();
  if (!targets.ok()) return targets.error();
  targets_ = *targets;
  auto sets = store_.commit_sets();
  if (!sets.ok()) return sets.error();
  for (const auto& [key, enabled] : *sets) {
    if (!enabled) continue;
    enabled_[{std::get<0>(key), std::get<1>(key)}].insert(std::get<2>(key));
    hand_sets_.insert(key);
  }
  auto by_branch = store_.branch_sets();
  if (!by_branch.ok()) return by_branch.error();
  for (const auto& r : *by_branch) {
    branch_sets_[{r.repo, r.sha}][r.set].insert(r.branch);
    enabled_[{r.repo, r.sha}].insert(r.set);
  }
  // Aggregates only: a store may hold millions of runs.
  auto counts = store_.run_counts();
  if (!counts.ok()) return counts.error();
  for (const auto& [hash, c] : *counts) progress_[hash] = {c.runs, c.failures, c.active};
  auto spent = store_.purpose_counts();
  if (!spent.ok()) return spent.error();
  extra_used_ = *spent;
  auto active = store_.active_runs();
  if (!active.ok()) return active.error();
  for (const auto& r : *active) {
    active_runs_[r.id] = r;
    if (!r.upload_token_hash.empty()) upload_tokens_[r.id] = r.upload_token_hash;
    // Its worker has until the timeout to come back and claim it.
    WorkerState& w = workers_[r.worker];
    w.id = r.worker;
    w.last_seen = now_seconds();
    w.running[r.id] = {0, 0};
  }
  auto holds = store_.holds();
  if (!holds.ok()) return holds.error();
  for (auto& h : *holds) holds_[h.key] = std::move(h);
  auto total = store_.run_count();
  if (!total.ok()) return total.error();
  run_counter_ = *total;
  TL_RETURN_IF_ERROR(load_deployments());
  recompute_reachable();
  // The API answers before the first update (which waits for the store's check): the statuses
  // it shows are the plan's from the start, not "not_enabled" until then.
  replan();
  return {};
}

std::map<std::string, std::set<std::string>> ServerState::known_commits() const {
  std::map<std::string, std::set<std::string>> out;
  for (const auto& [key, c] : commits_) out[key.first].insert(key.second);
  return out;
}

std::map<std::string, std::set<std::string>> ServerState::commits_with_errors() const {
  std::map<std::string, std::set<std::string>> out;
  for (const auto& [key, c] : commits_) {
    if (c.row.error) out[key.first].insert(key.second);
  }
  return out;
}

std::map<std::string, std::set<std::string>> ServerState::unstored_pins() const {
  std::map<std::string, std::set<std::string>> out;
  for (const auto& [key, c] : commits_) {
    for (const auto& o : c.planned.objects) {
      for (const auto& dep : o.builds) {
        auto full = planner::split_full_name(dep.name);
        if (full && !commits_.count({std::get<0>(*full), std::get<1>(*full)})) {
          out[std::get<0>(*full)].insert(std::get<1>(*full));
        }
      }
    }
  }
  return out;
}

void ServerState::add_commit(store::CommitRow row, const std::vector<store::ObjectRow>& objects,
                             ParsedDefinitions* parsed) {
  // Parsed first: a malformed row (planned_from and test_sets_from throw) changes nothing.
  planner::PlannedCommit planned{
      row.repo, row.sha, row.time, reachable_.count({row.repo, row.sha}) > 0, {}, {}};
  planned.objects.reserve(objects.size());
  const std::string mark(1, kCommitMark);
  for (const auto& o : objects) {
    if (parsed == nullptr || o.definition_json.find(kCommitMark) != std::string::npos) {
      planned.objects.push_back(planned_from(o));
      continue;
    }
    replace_all(o.definition_json, row.sha, mark, parsed->key);
    auto it = parsed->by_text.find(parsed->key);
    if (it == parsed->by_text.end()) {
      ParsedDefinitions::Entry entry;
      entry.object = planned_from(o, row.sha, &entry.names_commit);
      entry.object.name.clear();
      entry.object.kind.clear();
      entry.object.hash.clear();
      for (auto& b : entry.object.builds) {
        std::string name = std::move(b.name);
        replace_all(name, row.sha, mark, b.name);
      }
      it = parsed->by_text.emplace(parsed->key, std::move(entry)).first;
    }
    if (it->second.names_commit) {  // its sha matters beyond its builds' names: parsed each time
      planned.objects.push_back(planned_from(o));
      continue;
    }
    // The definition's text, its commit's sha aside, decides all but the row's own columns.
    planner::PlannedObject p = it->second.object;
    p.name = o.name;
    p.kind = o.kind;
    p.hash = o.hash;
    for (auto& b : p.builds) {
      if (b.name.find(kCommitMark) == std::string::npos) continue;
      std::string name = std::move(b.name);
      replace_all(name, mark, row.sha, b.name);
    }
    planned.objects.push_back(std::move(p));
  }
  planned.test_sets = test_sets_from(row.test_sets_json);
  // Its definitions are (about to be) stored anew.
  definitions_.erase(definitions_.lower_bound({row.repo, row.sha, ""}),
                     definitions_.lower_bound({row.repo, row.sha + '\0', ""}));
  ++commits_generation_;
  CommitState& c = commits_[{row.repo, row.sha}];
  c.row = std::move(row);
  c.planned = std::move(planned);
  plan_index_.put(&c.planned);  // re-indexed: its objects may have changed
}

std::string ServerState::definition(const std::string& repo, const std::string& sha,
                                    const std::string& name) const {
  const auto key = std::make_tuple(repo, sha, name);
  if (auto it = definitions_.find(key); it != definitions_.end()) return it->second;
  auto row = store_.object(repo, sha, name);
  if (!row.ok() || !row->has_value()) return "";
  if (definitions_.size() >= kCachedDefinitions) definitions_.clear();
  return definitions_[key] = (*row)->definition_json;
}

const planner::PlannedObject* ServerState::object(const std::string& repo, const std::string& sha,
                                                  const std::string& name) const {
  const CommitState* c = commit(repo, sha);
  if (c == nullptr) return nullptr;
  for (const auto& o : c->planned.objects) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

const CommitState* ServerState::commit(const std::string& repo, const std::string& sha) const {
  auto it = commits_.find({repo, sha});
  return it == commits_.end() ? nullptr : &it->second;
}

std::vector<std::string> ServerState::first_parent_history(const std::string& repo, const std::string& sha,
                                                           size_t limit) const {
  std::vector<std::string> out;
  std::string at = sha;
  while (out.size() < limit) {
    const CommitState* c = commit(repo, at);
    if (c == nullptr) break;
    out.push_back(at);
    if (c->row.parents.empty()) break;
    at = c->row.parents.front();
  }
  return out;
}

int64_t ServerState::extra_used(const std::string& repo, const std::string& branch) const {
  auto b = branches_.find({repo, branch});
  if (b == branches_.end()) return 0;
  auto it = extra_used_.find(planner::extra_purpose(repo, branch, b->second.head));
  return it == extra_used_.end() ? 0 : it->second;
}

ServerState::ExtraInFlight ServerState::extra_in_flight(const std::string& repo,
                                                        const std::string& branch) const {
  ExtraInFlight out;
  auto b = branches_.find({repo, branch});
  if (b == branches_.end()) return out;
  const std::string purpose = planner::extra_purpose(repo, branch, b->second.head);
  for (const auto& [id, run] : active_runs_) out.active += run.purpose == purpose ? 1 : 0;
  for (const auto& job : plan_.jobs) out.queued += job.purpose == purpose ? job.runs : 0;
  return out;
}

std::map<std::string, int64_t> ServerState::queued_runs() const {
  std::map<std::string, int64_t> waiting = {{"build", 0}, {"test", 0}};
  for (const auto& job : plan_.jobs) waiting[job.kind] += job.runs;
  return waiting;
}

const store::RunRow* ServerState::active_run(const std::string& id) const {
  auto it = active_runs_.find(id);
  return it == active_runs_.end() ? nullptr : &it->second;
}

const planner::CaseCounts& ServerState::case_counts(const std::string& hash) {
  constexpr size_t kMaxCached = 100'000;
  auto it = case_cache_.find(hash);
  if (it != case_cache_.end()) return it->second;
  if (case_cache_.size() >= kMaxCached) case_cache_.clear();
  auto counts = store_.case_counts(hash);
  return case_cache_[hash] = counts.ok() ? std::move(*counts) : planner::CaseCounts{};
}

planner::HashProgress ServerState::progress(const std::string& hash) const {
  auto it = progress_.find(hash);
  return it == progress_.end() ? planner::HashProgress{} : it->second;
}

Status ServerState::set_target(const std::string& repo, const std::string& sha, const std::string& name, int runs) {
  if (Status s = store_.set_target(repo, sha, name, runs); !s.ok()) {
    store_failed("a target of commit " + sha, s.error());
    return s;
  }
  targets_[{repo, sha, name}] = runs;
  broadcast(json{{"type", "commit"}, {"repo", repo}, {"commit", sha}}.dump());
  update();
  return {};
}

Status ServerState::set_commit_set(const std::string& repo, const std::string& sha, const std::string& set,
                                   bool enabled) {
  if (Status s = store_.set_commit_set(repo, sha, set, enabled); !s.ok()) {
    store_failed("a test set of commit " + sha, s.error());
    return s;
  }
  const auto key = std::make_pair(repo, sha);
  if (enabled) {
    hand_sets_.insert({repo, sha, set});
  } else {
    // A user's disable wins over the branches that enabled the set.
    hand_sets_.erase({repo, sha, set});
    if (auto by = branch_sets_.find(key); by != branch_sets_.end()) {
      if (auto branches = by->second.find(set); branches != by->second.end()) {
        for (const auto& b : branches->second)
          (void)store_.set_branch_set({repo, b, sha, set}, false);
        by->second.erase(branches);
      }
    }
  }
  refresh_enabled(key, set);
  broadcast(json{{"type", "commit"}, {"repo", repo}, {"commit", sha}}.dump());
  update();
  return {};
}

void ServerState::recompute_reachable() {
  reachable_.clear();
  std::vector<std::pair<std::string, std::string>> stack;
  for (const auto& [key, b] : branches_) stack.emplace_back(b.repo, b.head);
  while (!stack.empty()) {
    auto key = stack.back();
    stack.pop_back();
    if (!reachable_.insert(key).second) continue;
    const CommitState* c = commit(key.first, key.second);
    if (c == nullptr) continue;
    for (const auto& p : c->row.parents) stack.emplace_back(key.first, p);
  }
  for (auto& [key, c] : commits_) c.planned.reachable = reachable_.count(key) > 0;
}

void ServerState::plan_and_dispatch() {
  replan();
  cancel_unwanted();
  if (!dispatch_held_) dispatch();
}

void ServerState::replan() {
  planner::PlanInput& in = plan_input_;
  in.default_target = options_.default_target_runs;
  in.budgets.clear();
  in.extra_confidence = options_.extra_confidence;
  std::map<std::string, int64_t> extra_active;
  for (const auto& [id, run] : active_runs_) {
    if (!run.purpose.empty()) ++extra_active[run.purpose];
  }
  for (const auto& [key, b] : branches_) {
    if (!b.under_test || options_.extra_runs <= 0) continue;
    const std::string purpose = planner::extra_purpose(b.repo, b.name, b.head);
    auto history = first_parent_history(b.repo, b.head, kExtraHistory);
    std::reverse(history.begin(), history.end());
    in.budgets.push_back({b.repo, b.name, std::move(history), options_.extra_runs - extra_used(b.repo, b.name),
                          extra_active[purpose], options_.extra_parallel});
  }
  plan_holds(now_seconds());
  // Over the kept index: the cost is the enabled commits' objects and the budgets' histories, not
  // every commit (issue 18).
  plan_ = planner::make_plan(in, plan_index_);
}

void ServerState::update() {
  // Results that waited for a write no new run made are stored after the dispatch. Those stored
  // during a pass (with a new run, or after it) were not in its plan: a worker it left idle may
  // be wanted now, so one more pass.
  for (int pass = 0; pass < 2; ++pass) {
    results_stored_late_ = false;
    plan_and_dispatch();
    if (!pending_results_.empty()) (void)store_pending(nullptr);
    if (!results_stored_late_) return;
  }
}

void ServerState::cancel_unwanted() {
  // A run is wanted through its identity, whatever commit it was started for: several commits
  // share an identity, and a build a wanted commit needs may live at a commit no branch reaches
  // (issue 11 item 4: cancelling those by their commit started them again in a loop).
  std::map<std::string, std::vector<const store::RunRow*>> by_hash;  // runs users want
  std::vector<std::string> unwanted;
  for (const auto& [id, run] : active_runs_) {
    if (cancels_.count(id)) continue;  // being stopped already
    if (run.purpose.empty()) {
      by_hash[run.hash].push_back(&run);
      continue;
    }
    const bool under_test = std::any_of(branches_.begin(), branches_.end(), [&](const auto& b) {
      return b.second.under_test &&
             planner::is_extra_purpose_of(run.purpose, b.second.repo, b.second.name);
    });
    if (!under_test) unwanted.push_back(id);
  }
  for (auto& [hash, runs] : by_hash) {
    auto keep = plan_.keep.find(hash);
    const size_t wanted =
        keep == plan_.keep.end() ? 0 : static_cast<size_t>(std::max<int64_t>(0, keep->second));
    if (runs.size() <= wanted) continue;
    std::sort(runs.begin(), runs.end(), [](const store::RunRow* a, const store::RunRow* b) {
      return a->started != b->started ? a->started > b->started : a->id > b->id;
    });
    for (size_t i = 0; i < runs.size() - wanted; ++i) unwanted.push_back(runs[i]->id);
  }
  for (const auto& id : unwanted) stop_run(id, kNoLongerWanted);
}

}  // namespace testlooper::server
