#include "planner/planner.h"

#include <algorithm>
#include <optional>
#include <unordered_map>

#include "planner/extra_runs.h"
#include "planner/plan_index.h"

namespace testlooper::planner {
namespace {

using Key = std::tuple<std::string, std::string, std::string>;

using Located = PlanIndex::Located;

class Planner {
 public:
  Planner(const PlanInput& input, const PlanIndex& index) : in_(input), index_(index) {}

  Plan run() {
    Plan plan;
    // The roots: the enabled sets of reachable commits (the order does not matter: `need` keeps
    // each object's highest priority).
    for (const auto& [key, sets] : in_.enabled_sets) {
      const PlannedCommit* c = index_.commit(key.first, key.second);
      if (c != nullptr) enable_commit(*c, sets);
    }
    // A person waits for a deployment: its builds come before every other run.
    for (const auto& key : in_.deployments) need(key, kDeploymentPriority);
    std::map<std::string, Job> jobs;
    // Extra runs: their builds are needed (after everything users want), and they become jobs
    // of their own once nothing blocks them.
    std::vector<ExtraRun> extra;
    for (const auto& budget : in_.budgets) {
      auto picked = pick_extra_runs(budget, in_, index_);
      extra.insert(extra.end(), picked.begin(), picked.end());
    }
    for (size_t i = 0; i < extra.size(); ++i) {
      auto found = locate({extra[i].repo, extra[i].sha, extra[i].name});
      if (!found) continue;
      for (const auto& dep : found->object->builds) need_build(dep.hash, kExtraPriority - static_cast<double>(i));
    }
    plan_needed(plan, jobs);
    for (auto& [hash, job] : jobs) plan.jobs.push_back(job);
    std::map<std::pair<std::string, std::string>, Job> extra_jobs;  // (purpose, hash)
    for (size_t i = 0; i < extra.size(); ++i) {
      auto found = locate({extra[i].repo, extra[i].sha, extra[i].name});
      if (!found || blocked(*found->object) || held(*found->object)) continue;
      const PlannedObject& o = *found->object;
      Job& job = extra_jobs[{extra[i].purpose, o.hash}];
      if (job.hash.empty()) {
        job = job_of(o, extra[i].repo, extra[i].sha, kExtraPriority - static_cast<double>(i));
        job.purpose = extra[i].purpose;
      }
      ++job.runs;
    }
    for (auto& [key, job] : extra_jobs) plan.jobs.push_back(job);
    std::stable_sort(plan.jobs.begin(), plan.jobs.end(),
                     [](const Job& a, const Job& b) { return a.priority > b.priority; });
    return plan;
  }

 private:
  // Below every wanted job (their priority is a commit time, >= 0).
  static constexpr double kExtraPriority = -1;
  // Above every wanted job (a commit time in seconds).
  static constexpr double kDeploymentPriority = 1e18;

  void need_build(const std::string& hash, double priority) {
    if (auto b = index_.build(hash)) need(*b->commit, *b->object, priority);
  }

  static Job job_of(const PlannedObject& o, const std::string& repo, const std::string& sha,
                    double priority) {
    Job job{o.hash,      repo,        sha,          o.name,     o.kind,   0,     priority,
            o.min_cores, o.max_cores, o.min_ram_gb, o.platform, o.docker, o.ami, ""};
    job.image = o.image;
    return job;
  }

  const Hold* hold(const std::string& key) const {
    if (key.empty()) return nullptr;
    auto it = in_.holds.find(key);
    return it == in_.holds.end() ? nullptr : &it->second;
  }

  // What holds the object back (its identity's or its environment's hold; a block before a
  // wait), if anything does.
  const Hold* held(const PlannedObject& o) const {
    const Hold* mine = hold(o.hash);
    const Hold* env = hold(o.environment_key);
    for (const Hold* h : {mine, env}) {
      if (h != nullptr && h->blocked) return h;
    }
    for (const Hold* h : {mine, env}) {
      if (h != nullptr && h->waiting) return h;
    }
    return nullptr;
  }

  int64_t forgiven(const std::string& hash) const {
    const Hold* h = hold(hash);
    return h == nullptr ? 0 : h->forgiven_failures;
  }

  HashProgress progress(const std::string& hash) const {
    auto it = in_.progress.find(hash);
    return it == in_.progress.end() ? HashProgress{} : it->second;
  }

  void enable_commit(const PlannedCommit& c, const std::set<std::string>& sets) {
    if (!c.reachable) return;
    for (const auto& set : sets) {
      auto members = c.test_sets.find(set);
      if (members == c.test_sets.end()) continue;
      for (const auto& name : members->second) {
        if (const PlannedObject* o = index_.object(c, name))
          need(c, *o, static_cast<double>(c.time));
        else
          need({c.repo, c.sha, name}, static_cast<double>(c.time));  // maybe another commit's
      }
    }
  }

  // The commit and object `key` names, if any.
  std::optional<Located> locate(const Key& key) const {
    return index_.locate(std::get<0>(key), std::get<1>(key), std::get<2>(key));
  }

  // Marks an object (and, through its build dependencies, what it needs) as needed.
  void need(const Key& key, double priority) {
    auto found = locate(key);
    if (!found) {
      auto full = split_full_name(std::get<2>(key));  // a full name of another commit's build
      if (full && locate(*full)) need(*full, priority);
      return;
    }
    need(*found->commit, *found->object, priority);
  }
  void need(const PlannedCommit& c, const PlannedObject& o, double priority) {
    std::vector<std::optional<double>>& at = needed_[&c];
    if (at.empty()) at.resize(c.objects.size());
    std::optional<double>& p = at[static_cast<size_t>(&o - c.objects.data())];
    if (p && *p >= priority) return;
    p = priority;
    for (const auto& dep : o.builds) need_build(dep.hash, priority);
  }

  // Plans every needed object, in (repo, sha, name) order: their statuses are appended to the
  // plan's map, each at its end.
  void plan_needed(Plan& plan, std::map<std::string, Job>& jobs) {
    std::vector<const PlannedCommit*> commits;
    commits.reserve(needed_.size());
    for (const auto& [c, at] : needed_) commits.push_back(c);
    std::sort(commits.begin(), commits.end(), [](const PlannedCommit* a, const PlannedCommit* b) {
      return std::tie(a->repo, a->sha) < std::tie(b->repo, b->sha);
    });
    for (const PlannedCommit* c : commits) {
      const std::vector<std::optional<double>>& at = needed_.at(c);
      for (const uint32_t i : index_.by_name(*c)) {
        if (at[i]) plan_object(*c, c->objects[i], *at[i], plan, jobs);
      }
    }
  }

  static bool build_succeeded(const HashProgress& p) { return p.runs > p.failures; }
  bool build_exhausted(const std::string& hash, const HashProgress& p, int max_retries) const {
    return !build_succeeded(p) && p.failures - forgiven(hash) > max_retries;
  }

  // What a build dependency's identity is at: unresolved (no build of it), failed for good,
  // not yet succeeded, or succeeded.
  enum class DependencyState { kUnresolved, kFailed, kWaiting, kSucceeded };
  DependencyState dependency_state(const std::string& hash) const {
    // The objects of a commit mostly share their builds: the last answer is kept.
    if (last_dependency_ != nullptr && *last_dependency_ == hash) return last_dependency_state_;
    DependencyState state = DependencyState::kSucceeded;
    if (auto b = index_.build(hash); !b) {
      state = DependencyState::kUnresolved;
    } else if (const HashProgress p = progress(hash);
               build_exhausted(hash, p, b->object->max_retries)) {
      state = DependencyState::kFailed;
    } else if (!build_succeeded(p)) {
      state = DependencyState::kWaiting;
    }
    last_dependency_ = &hash;
    last_dependency_state_ = state;
    return state;
  }

  // The blocked state caused by the object's build dependencies, if any.
  std::optional<ObjectStatus> blocked(const PlannedObject& o) const {
    std::optional<ObjectStatus> waiting;
    for (const auto& dep : o.builds) {
      switch (dependency_state(dep.hash)) {
        case DependencyState::kUnresolved:
          return ObjectStatus{ObjectState::kUnresolvedDependency, 0, dep.name};
        case DependencyState::kFailed:
          return ObjectStatus{ObjectState::kDependencyFailed, 0, dep.name};
        case DependencyState::kWaiting:
          if (!waiting) waiting = ObjectStatus{ObjectState::kWaitingOnBuilds, 0, dep.name};
          break;
        case DependencyState::kSucceeded:
          break;
      }
    }
    return waiting;
  }

  int target_of(const Key& key, const PlannedObject& o) const {
    if (o.kind == "build") return 1;
    auto t = in_.targets.find(key);
    return t == in_.targets.end() ? in_.default_target : t->second;
  }

  void plan_object(const PlannedCommit& c, const PlannedObject& o, double priority, Plan& plan,
                   std::map<std::string, Job>& jobs) {
    const Key key{c.repo, c.sha, o.name};
    ObjectStatus status;
    if (o.kind == "deployment") {
      status.state = ObjectState::kRunnable;
      if (auto b = blocked(o)) {
        status.state = b->state;
        status.reason = b->reason;
      }
      plan.statuses.emplace_hint(plan.statuses.end(), key, status);
      return;
    }
    status.target = target_of(key, o);
    const HashProgress p = progress(o.hash);
    int64_t& keep = plan.keep[o.hash];
    if (o.kind == "build") {
      if (!build_succeeded(p) && !build_exhausted(o.hash, p, o.max_retries)) keep = 1;
    } else {
      keep = std::max<int64_t>(keep, status.target - p.runs);
    }
    if (auto b = blocked(o)) {
      status.state = b->state;
      status.reason = b->reason;
      plan.statuses.emplace_hint(plan.statuses.end(), key, status);
      return;
    }
    int wanted = 0;
    if (o.kind == "build") {
      const bool finished = build_succeeded(p) || build_exhausted(o.hash, p, o.max_retries);
      wanted = finished || p.active > 0 ? 0 : 1;
      status.state = finished ? ObjectState::kDone : ObjectState::kRunnable;
    } else {
      wanted = static_cast<int>(std::max<int64_t>(0, status.target - p.runs - p.active));
      status.state = p.runs >= status.target ? ObjectState::kDone : ObjectState::kRunnable;
    }
    if (const Hold* h = held(o); h != nullptr && status.state == ObjectState::kRunnable) {
      if (h->blocked) status.state = ObjectState::kInfraBlocked;
      status.reason = h->reason;
      wanted = 0;
    }
    for (const Hold* h : {hold(o.hash), hold(o.environment_key)}) {
      if (h != nullptr && h->one_at_a_time)
        wanted = static_cast<int>(std::clamp<int64_t>(1 - p.active, 0, wanted));
    }
    plan.statuses.emplace_hint(plan.statuses.end(), key, status);
    if (wanted == 0) return;
    Job& job = jobs[o.hash];
    if (job.hash.empty() || priority > job.priority) {
      const int runs = job.runs;
      job = job_of(o, c.repo, c.sha, priority);
      job.runs = runs;
    }
    job.runs = std::max(job.runs, wanted);
  }

  const PlanInput& in_;
  const PlanIndex& index_;
  // dependency_state's last answer (the input and index do not change during a plan).
  mutable const std::string* last_dependency_ = nullptr;
  mutable DependencyState last_dependency_state_ = DependencyState::kSucceeded;
  // Per commit with needed objects, each object's priority (by its place in the commit), unset
  // when it is not needed.
  std::unordered_map<const PlannedCommit*, std::vector<std::optional<double>>> needed_;
};

}  // namespace

const char* to_string(ObjectState state) {
  switch (state) {
    case ObjectState::kNotEnabled: return "not_enabled";
    case ObjectState::kWaitingOnBuilds: return "waiting_on_builds";
    case ObjectState::kDependencyFailed: return "dependency_failed";
    case ObjectState::kUnresolvedDependency: return "unresolved_dependency";
    case ObjectState::kRunnable: return "runnable";
    case ObjectState::kDone: return "done";
    case ObjectState::kInfraBlocked: return "infra_blocked";
  }
  return "?";
}

Plan make_plan(const PlanInput& input, const PlanIndex& index) {
  return Planner(input, index).run();
}

Plan make_plan(const PlanInput& input, const std::vector<const PlannedCommit*>& commits) {
  return make_plan(input, PlanIndex(commits));
}

Plan make_plan(const PlanInput& input) {
  std::vector<const PlannedCommit*> commits;
  commits.reserve(input.commits.size());
  for (const auto& c : input.commits) commits.push_back(&c);
  return make_plan(input, commits);
}

std::string extra_purpose(const std::string& repo, const std::string& branch, const std::string& head) {
  return "extra:" + repo + "/" + branch + "@" + head;
}

std::optional<std::tuple<std::string, std::string, std::string>> split_full_name(
    const std::string& full) {
  const auto slash1 = full.find('/');
  const auto slash2 = slash1 == std::string::npos ? slash1 : full.find('/', slash1 + 1);
  if (slash2 == std::string::npos) return std::nullopt;
  return std::make_tuple(full.substr(0, slash1), full.substr(slash1 + 1, slash2 - slash1 - 1),
                         full.substr(slash2 + 1));
}

bool is_extra_purpose_of(const std::string& purpose, const std::string& repo,
                         const std::string& branch) {
  const std::string prefix = extra_purpose(repo, branch, "");
  // A head is a sha: the rest holds no '@', so branch "a" does not claim branch "a@b"'s runs.
  return purpose.size() > prefix.size() && purpose.compare(0, prefix.size(), prefix) == 0 &&
         purpose.find('@', prefix.size()) == std::string::npos;
}

}  // namespace testlooper::planner
