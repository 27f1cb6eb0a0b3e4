// Schedule: the pure decision logic of the local scheduler (see local_scheduler.h).
#include <algorithm>

#include "runner/local_scheduler.h"

namespace testlooper::runner {
namespace {

using definitions::Dependency;
using definitions::ObjectKind;
using definitions::ResolvedObject;

bool is_build(const ResolvedObject& object) { return object.kind == ObjectKind::kBuild; }

bool depends_on(const ResolvedObject& object, const std::string& build_hash) {
  return std::any_of(object.dependencies.begin(), object.dependencies.end(), [&](const auto& d) {
    return d.second.kind == Dependency::Kind::kBuild && d.second.build_hash == build_hash;
  });
}

}  // namespace

Schedule::Schedule(std::vector<const ResolvedObject*> objects, int runs, Capacity capacity,
                   const std::set<std::string>& complete_builds)
    : capacity_(capacity), free_cores_(capacity.cores), free_ram_(capacity.ram_gb) {
  for (const ResolvedObject* object : objects) {
    if (object->kind != ObjectKind::kDeployment) objects_.push_back(object);
  }
  for (size_t i = 0; i < objects_.size(); ++i) {
    if (!is_build(*objects_[i])) continue;
    build_by_hash_[objects_[i]->hash] = i;
    if (complete_builds.count(objects_[i]->hash)) {
      complete_.insert(objects_[i]->hash);
    } else {
      pending_.push_back({i, 0, 0});
      ++total_runs_;
    }
  }
  for (int repetition = 0; repetition < runs; ++repetition) {
    for (size_t i = 0; i < objects_.size(); ++i) {
      if (is_build(*objects_[i])) continue;
      pending_.push_back({i, repetition, 0});
      ++total_runs_;
    }
  }
  reused_ = complete_;
  block_unsatisfiable();
}

bool Schedule::reused(size_t object) const {
  return is_build(*objects_[object]) && reused_.count(objects_[object]->hash);
}

bool Schedule::satisfied(const Dependency& dependency) const {
  if (dependency.kind != Dependency::Kind::kBuild) return true;
  return complete_.count(dependency.build_hash) ||
         published_.count({dependency.build_hash, dependency.artifact});
}

bool Schedule::ready(const Pending& run) const {
  for (const auto& [relpath, dependency] : objects_[run.object]->dependencies) {
    if (!satisfied(dependency)) return false;
  }
  return true;
}

std::optional<Start> Schedule::fit(const Pending& run) const {
  const ResolvedObject& object = *objects_[run.object];
  const int need_cores = std::clamp(object.min_cores, 1, capacity_.cores);
  const int want_cores = std::max(object.max_cores, need_cores);
  const int need_ram = std::clamp(object.min_ram_gb, 0, capacity_.ram_gb);
  if (running_ >= capacity_.jobs || free_cores_ < need_cores || free_ram_ < need_ram) {
    return std::nullopt;
  }
  Start start{run.object, run.index, std::min(want_cores, free_cores_), need_ram};
  // RAM nobody asked for is shared in proportion to cores.
  const int share = capacity_.ram_gb * start.cores / capacity_.cores;
  start.ram_gb = std::max(need_ram, std::min(free_ram_, share));
  return start;
}

std::vector<Start> Schedule::next(double now) {
  std::vector<Start> starts;
  if (stopped_) return starts;
  bool waiting = false;
  for (size_t i = 0; i < pending_.size();) {
    if (pending_[i].not_before > now) waiting = true;
    if (pending_[i].not_before > now || !ready(pending_[i])) {
      ++i;
      continue;
    }
    const std::optional<Start> start = fit(pending_[i]);
    if (!start) break;
    free_cores_ -= start->cores;
    free_ram_ -= start->ram_gb;
    ++running_;
    starts.push_back(*start);
    if (pending_[i].retry) --delayed_;
    pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
  }
  // Nothing runs, nothing waits for time, yet runs remain: they can never become ready.
  if (starts.empty() && running_ == 0 && !waiting && !pending_.empty()) {
    for (const Pending& run : pending_) {
      blocked_.push_back({run.object, "its dependencies can never be satisfied"});
    }
    pending_.clear();
    delayed_ = 0;
  }
  return starts;
}

void Schedule::published(const std::string& build_hash, const std::string& artifact) {
  published_.insert({build_hash, artifact});
}

void Schedule::finished(const Start& start, Outcome outcome, double now) {
  free_cores_ += start.cores;
  free_ram_ += start.ram_gb;
  --running_;
  const ResolvedObject& object = *objects_[start.object];
  if (!is_build(object)) return;
  if (outcome == Outcome::kSuccess) {
    complete_.insert(object.hash);
    return;
  }
  if (outcome != Outcome::kCancelled && !stopped_ && start.index < object.max_retries) {
    pending_.push_front(
        {start.object, start.index + 1, now + std::max(0, object.retry_wait_seconds), true});
    ++delayed_;
    return;
  }
  failed_.insert(object.hash);
  block_dependents(object.hash, "build " + object.name + " failed");
}

void Schedule::block_dependents(const std::string& build_hash, const std::string& reason) {
  std::vector<std::string> newly_failed;
  std::set<size_t> blocked_objects;
  for (auto it = pending_.begin(); it != pending_.end();) {
    const ResolvedObject& object = *objects_[it->object];
    if (!depends_on(object, build_hash)) {
      ++it;
      continue;
    }
    if (blocked_objects.insert(it->object).second) {
      blocked_.push_back({it->object, reason});
      if (is_build(object)) newly_failed.push_back(object.hash);
    }
    if (it->retry) --delayed_;
    it = pending_.erase(it);
  }
  for (const std::string& hash : newly_failed) {
    failed_.insert(hash);
    block_dependents(hash, reason);
  }
}

void Schedule::block_unsatisfiable() {
  std::vector<const Dependency*> unknown;
  for (const Pending& run : pending_) {
    for (const auto& [relpath, dependency] : objects_[run.object]->dependencies) {
      if (dependency.kind == Dependency::Kind::kBuild &&
          !build_by_hash_.count(dependency.build_hash) && !complete_.count(dependency.build_hash)) {
        unknown.push_back(&dependency);
      }
    }
  }
  for (const Dependency* dependency : unknown) {
    if (failed_.insert(dependency->build_hash).second) {
      block_dependents(dependency->build_hash,
                       "build " + dependency->build_name + " is not among the resolved builds");
    }
  }
}

std::optional<double> Schedule::wake_time(double now) const {
  std::optional<double> earliest;
  if (delayed_ == 0) return earliest;  // no retry waits: spare a look at every pending run
  for (const Pending& run : pending_) {
    if (run.not_before > now && (!earliest || run.not_before < *earliest))
      earliest = run.not_before;
  }
  return earliest;
}

bool Schedule::done() const { return running_ == 0 && (stopped_ || pending_.empty()); }

void Schedule::stop() { stopped_ = true; }

}  // namespace testlooper::runner
