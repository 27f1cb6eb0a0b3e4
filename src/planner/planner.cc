#include "planner/planner.h"

#include <algorithm>

namespace testlooper::planner {
namespace {

using Key = std::tuple<std::string, std::string, std::string>;

struct Located {
  const PlannedCommit* commit;
  const PlannedObject* object;
};

class Planner {
 public:
  explicit Planner(const PlanInput& input) : in_(input) {
    for (const auto& c : in_.commits) {
      for (const auto& o : c.objects) {
        by_key_[{c.repo, c.sha, o.name}] = {&c, &o};
        if (o.kind == "build") builds_by_hash_.emplace(o.hash, Located{&c, &o});
      }
    }
  }

  Plan run() {
    Plan plan;
    for (const auto& c : in_.commits) {
      for (const auto& o : c.objects) plan.statuses[{c.repo, c.sha, o.name}] = {};
    }
    for (const auto& c : in_.commits) enable_commit(c);
    std::map<std::string, Job> jobs;
    for (const auto& [key, priority] : needed_) plan_object(key, priority, plan, jobs);
    for (auto& [hash, job] : jobs) plan.jobs.push_back(job);
    std::stable_sort(plan.jobs.begin(), plan.jobs.end(),
                     [](const Job& a, const Job& b) { return a.priority > b.priority; });
    return plan;
  }

 private:
  HashProgress progress(const std::string& hash) const {
    auto it = in_.progress.find(hash);
    return it == in_.progress.end() ? HashProgress{} : it->second;
  }

  void enable_commit(const PlannedCommit& c) {
    if (!c.reachable) return;
    auto sets = in_.enabled_sets.find({c.repo, c.sha});
    if (sets == in_.enabled_sets.end()) return;
    for (const auto& set : sets->second) {
      auto members = c.test_sets.find(set);
      if (members == c.test_sets.end()) continue;
      for (const auto& name : members->second) need({c.repo, c.sha, name}, static_cast<double>(c.time));
    }
  }

  // Marks an object (and, through its build dependencies, what it needs) as needed.
  void need(const Key& key, double priority) {
    auto found = by_key_.find(key);
    if (found == by_key_.end()) {
      const std::string& name = std::get<2>(key);  // a full name of another commit's build
      auto slash1 = name.find('/');
      auto slash2 = slash1 == std::string::npos ? slash1 : name.find('/', slash1 + 1);
      if (slash2 == std::string::npos) return;
      const Key full{name.substr(0, slash1), name.substr(slash1 + 1, slash2 - slash1 - 1),
                     name.substr(slash2 + 1)};
      if (by_key_.count(full)) need(full, priority);
      return;
    }
    auto [it, inserted] = needed_.emplace(key, priority);
    if (!inserted) {
      if (it->second >= priority) return;
      it->second = priority;
    }
    for (const auto& dep : found->second.object->builds) {
      auto b = builds_by_hash_.find(dep.hash);
      if (b != builds_by_hash_.end()) {
        need({b->second.commit->repo, b->second.commit->sha, b->second.object->name}, priority);
      }
    }
  }

  static bool build_succeeded(const HashProgress& p) { return p.runs > p.failures; }
  static bool build_exhausted(const HashProgress& p, int max_retries) {
    return !build_succeeded(p) && p.failures > max_retries;
  }

  // The blocked state caused by the object's build dependencies, if any.
  std::optional<ObjectStatus> blocked(const PlannedObject& o) const {
    std::optional<ObjectStatus> waiting;
    for (const auto& dep : o.builds) {
      auto b = builds_by_hash_.find(dep.hash);
      if (b == builds_by_hash_.end()) {
        return ObjectStatus{ObjectState::kUnresolvedDependency, 0, dep.name};
      }
      const HashProgress p = progress(dep.hash);
      if (build_exhausted(p, b->second.object->max_retries)) {
        return ObjectStatus{ObjectState::kDependencyFailed, 0, dep.name};
      }
      if (!build_succeeded(p) && !waiting) waiting = ObjectStatus{ObjectState::kWaitingOnBuilds, 0, dep.name};
    }
    return waiting;
  }

  int target_of(const Key& key, const PlannedObject& o) const {
    if (o.kind == "build") return 1;
    auto t = in_.targets.find(key);
    return t == in_.targets.end() ? in_.default_target : t->second;
  }

  void plan_object(const Key& key, double priority, Plan& plan, std::map<std::string, Job>& jobs) {
    const Located& at = by_key_.at(key);
    const PlannedObject& o = *at.object;
    ObjectStatus status;
    status.target = target_of(key, o);
    if (auto b = blocked(o)) {
      status.state = b->state;
      status.reason = b->reason;
      plan.statuses[key] = status;
      return;
    }
    const HashProgress p = progress(o.hash);
    int wanted = 0;
    if (o.kind == "build") {
      const bool finished = build_succeeded(p) || build_exhausted(p, o.max_retries);
      wanted = finished || p.active > 0 ? 0 : 1;
      status.state = finished ? ObjectState::kDone : ObjectState::kRunnable;
    } else {
      wanted = static_cast<int>(std::max<int64_t>(0, status.target - p.runs - p.active));
      status.state = p.runs >= status.target ? ObjectState::kDone : ObjectState::kRunnable;
    }
    plan.statuses[key] = status;
    if (wanted == 0) return;
    Job& job = jobs[o.hash];
    if (job.hash.empty() || priority > job.priority) {
      job = Job{o.hash, at.commit->repo, at.commit->sha, o.name, o.kind, job.runs, priority,
                o.min_cores, o.max_cores, o.min_ram_gb};
    }
    job.runs = std::max(job.runs, wanted);
  }

  const PlanInput& in_;
  std::map<Key, Located> by_key_;
  std::multimap<std::string, Located> builds_by_hash_;
  std::map<Key, double> needed_;
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
  }
  return "?";
}

Plan make_plan(const PlanInput& input) { return Planner(input).run(); }

}  // namespace testlooper::planner
