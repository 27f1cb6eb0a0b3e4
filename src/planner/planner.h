// The planner: from what users enabled (branches under test, test sets of commits, target runs)
// and what has run, decides which builds and tests want runs now, and the state of every object
// (DESIGN.md "planner"). Pure: plain data in, plain data out; no I/O, no clock, no threads.
//
// Identity: runs belong to an object's hash, so a test whose resolved definition is the same in
// several commits accumulates runs once for all of them; its wanted runs are the largest target
// any enabled commit sets for it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace testlooper::planner {

// A build dependency of an object: the build's full name and identity.
struct BuildDependency {
  std::string name;  // "repo/commit/build"
  std::string hash;
};

struct PlannedObject {
  std::string name;
  std::string kind;  // "build" | "test" | "deployment"
  std::string hash;
  std::vector<BuildDependency> builds;
  int min_cores = 1;
  int max_cores = 1;
  int min_ram_gb = 0;
  int max_retries = 0;
};

struct PlannedCommit {
  std::string repo;
  std::string sha;
  int64_t time = 0;
  bool reachable = true;  // from some branch head; unreachable commits get no runs
  std::map<std::string, std::vector<std::string>> test_sets;  // set -> names (closure included)
  std::vector<PlannedObject> objects;
};

// What has happened to one identity so far (infrastructure failures excluded from runs).
struct HashProgress {
  int64_t runs = 0;      // finished, not infrastructure failures
  int64_t failures = 0;
  int64_t active = 0;    // running now
};

struct PlanInput {
  std::vector<PlannedCommit> commits;
  // (repo, sha) -> enabled test sets
  std::map<std::pair<std::string, std::string>, std::set<std::string>> enabled_sets;
  // (repo, sha, name) -> target runs
  std::map<std::tuple<std::string, std::string, std::string>, int> targets;
  int default_target = 1;
  std::map<std::string, HashProgress> progress;  // by hash
};

enum class ObjectState { kNotEnabled, kWaitingOnBuilds, kDependencyFailed, kUnresolvedDependency,
                         kRunnable, kDone };
const char* to_string(ObjectState state);

// One identity that wants `runs` more runs now.
struct Job {
  std::string hash;
  std::string repo;  // the enabled commit it runs for (the highest-priority one)
  std::string commit;
  std::string name;
  std::string kind;
  int runs = 0;
  double priority = 0;  // higher first
  int min_cores = 1;
  int max_cores = 1;
  int min_ram_gb = 0;
};

struct ObjectStatus {
  ObjectState state = ObjectState::kNotEnabled;
  int target = 0;  // wanted runs (builds: 1)
  std::string reason;  // for blocked states: which dependency
};

struct Plan {
  std::vector<Job> jobs;  // highest priority first
  // (repo, sha, name) -> status, for every object of every commit
  std::map<std::tuple<std::string, std::string, std::string>, ObjectStatus> statuses;
};

// Computes the plan. O(objects + dependencies).
Plan make_plan(const PlanInput& input);

}  // namespace testlooper::planner
