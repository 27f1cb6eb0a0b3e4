// The planner: from what users enabled (branches under test, test sets of commits, target runs)
// and what has run, decides which builds and tests want runs now, and the state of every object
// (DESIGN.md "planner"). Pure: plain data in, plain data out; no I/O, no clock, no threads.
//
// Identity: runs belong to an object's hash, so a test whose resolved definition is the same in
// several commits accumulates runs once for all of them; its wanted runs are the largest target
// any enabled commit sets for it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "stats/evidence.h"

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
  int retry_wait_seconds = 0;  // between a failed build's tries (the server waits; see Hold)
  // What its environment needs of a worker (FORMAT.md §6): a platform ("linux", "windows"), a
  // docker engine (a Dockerfile image) or an AMI (a cloud worker).
  std::string platform = "linux";
  bool docker = false;
  bool ami = false;
  std::string image;  // an AMI environment's base_ami: only a machine booted from it runs it
  // The key its environment's infrastructure failures are counted under, shared by every object
  // built on the same image ("env:<hash>"); "" for host environments.
  std::string environment_key;
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
// Per identity hash, its progress: hashed, as a replan looks up every identity of the extra-run
// budget's histories (issue 18).
using ProgressMap = std::unordered_map<std::string, HashProgress>;

// A branch under test, for the extra-run budget: the planner spends up to `extra_left` more runs on
// its tests where the statistics say they teach most (stats::plan_runs), at most `extra_parallel`
// of them in flight at once, so that each round learns from the one before. The budget is its
// current head's (history.back()).
struct BranchBudget {
  std::string repo;
  std::string branch;
  std::vector<std::string> history;  // first-parent commits, OLDEST first
  int64_t extra_left = 0;            // runs of the budget not yet spent
  int64_t extra_active = 0;          // runs of the budget running now
  int extra_parallel = 8;
};

// What holds an identity or an environment back, keyed as store::HoldRow (an identity hash or
// an environment_key). While `blocked`, an object that wants runs is infra_blocked with `reason`
// and gets none; while `waiting` (backing off, or a failed build's retry_wait_seconds), it stays
// runnable with `reason` and gets none. A build's `forgiven_failures` (a user retried it) do not
// count towards its max_retries. After an infrastructure failure (`one_at_a_time`) an object gets
// one run at a time until one counts. The server decides with its clock; the planner only reads.
struct Hold {
  bool blocked = false;
  bool waiting = false;
  bool one_at_a_time = false;
  std::string reason;
  int64_t forgiven_failures = 0;
};

struct PlanInput {
  std::vector<PlannedCommit> commits;
  // (repo, sha) -> enabled test sets
  std::map<std::pair<std::string, std::string>, std::set<std::string>> enabled_sets;
  // (repo, sha, name) -> target runs
  std::map<std::tuple<std::string, std::string, std::string>, int> targets;
  int default_target = 1;
  ProgressMap progress;                          // by hash
  std::map<std::string, Hold> holds;             // by hash or environment key
  std::vector<BranchBudget> budgets;
  // A test's change is localised (and gets no more extra runs) when its most probable change is
  // at least this probable.
  double extra_confidence = 0.95;
  // Once a test's changes are localised, its branch's head keeps getting extra runs until the 95%
  // interval of its own rate is at most this wide (stats::head_rate; docs/statistics.md
  // "Confirming the head"), so a fix, or a new breakage, is confirmed without manual targets.
  double head_width = 0.1;
  // Deployments booted and waiting for their builds, as (repo, sha, name): their builds are
  // needed before anything else; the deployment itself is never a job (the server starts it
  // once its status is kRunnable).
  std::set<std::tuple<std::string, std::string, std::string>> deployments;
};

// clang-format off
enum class ObjectState { kNotEnabled, kWaitingOnBuilds, kDependencyFailed, kUnresolvedDependency,
                         kRunnable, kDone, kInfraBlocked };
// clang-format on
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
  // What the run needs of its worker (PlannedObject).
  std::string platform = "linux";
  bool docker = false;
  bool ami = false;
  // "" for runs users want (targets); extra_purpose(...) for runs spent from a branch's extra-run
  // budget. Extra jobs come after every wanted job.
  std::string purpose;
  std::string image;  // PlannedObject::image
};

// The purpose of a run spent from the extra-run budget of `repo`'s `branch` while its head is
// `head`: each new head under test gets a budget of its own.
std::string extra_purpose(const std::string& repo, const std::string& branch, const std::string& head);
// The (repo, commit, name) of a build's full name "repo/commit/name" (BuildDependency::name);
// nullopt when it has fewer than three parts.
std::optional<std::tuple<std::string, std::string, std::string>> split_full_name(
    const std::string& full);

// Whether `purpose` is extra_purpose(repo, branch, head) for some head of `repo`'s `branch`.
bool is_extra_purpose_of(const std::string& purpose, const std::string& repo,
                         const std::string& branch);

struct ObjectStatus {
  ObjectState state = ObjectState::kNotEnabled;
  int target = 0;  // wanted runs (builds: 1)
  std::string reason;  // for blocked states: which dependency
};

struct Plan {
  std::vector<Job> jobs;  // highest priority first
  // Per identity, how many of its active runs users still want (extra runs aside): for a test,
  // the largest target of the needed objects with that identity less its finished runs; for a
  // needed build not yet done, 1. An identity absent here is wanted by nobody: the server cancels
  // active runs beyond these counts, newest first ("cancel running tests or builds if their
  // priority goes to zero").
  std::map<std::string, int64_t> keep;
  // (repo, sha, name) -> status, for every object of every commit
  std::map<std::tuple<std::string, std::string, std::string>, ObjectStatus> statuses;
};

// Computes the plan. O(commits + objects) to index them (a server keeps a PlanIndex instead:
// make_plan(input, index) in plan_index.h), then O(objects of the commits it needs), plus, for
// each branch with budget left and room for more extra runs in flight, its tests' histories and
// stats::plan_runs over those that failed. A build identity that several commits hold is planned
// at the first of them in (repo, sha) order.
// Statuses are given for the objects that are needed (enabled, or built for what is); every other
// object is not enabled.
Plan make_plan(const PlanInput& input);
// The same over `commits` instead of input.commits (which is then ignored): a server keeps its
// commits and passes them without copying.
Plan make_plan(const PlanInput& input, const std::vector<const PlannedCommit*>& commits);

// Each test's history along `oldest_first` as the statistics see it (stats/evidence.h): per test
// name, one CommitEvidence per commit. An identity's runs are placed once, at its oldest commit in
// the history, since the statistics pool consecutive commits that share an identity. With
// `only_failing`, tests none of whose identities on the history has a failure are left out; with
// `only_name`, the history of that one object (of any kind) alone.
using ObjectsAt = std::function<const std::vector<PlannedObject>*(const std::string& sha)>;
using ProgressOf = std::function<HashProgress(const std::string& hash)>;
std::map<std::string, std::vector<stats::CommitEvidence>> test_histories(
    const std::vector<std::string>& oldest_first, const ObjectsAt& objects_at,
    const ProgressOf& progress_of, bool only_failing, const std::string& only_name = "");

// The histories of a test's individual cases, from the test's history (test_histories) and, per
// identity, its cases' (runs, failures) (store::Store::case_counts). A case is absent where the
// test is, and where the test's identity has runs none of which reported the case; an identity's
// case runs are placed at the commit holding its test runs.
using CaseCounts = std::map<std::string, std::pair<int64_t, int64_t>>;
std::map<std::string, std::vector<stats::CommitEvidence>> case_histories(
    const std::vector<stats::CommitEvidence>& test, const std::map<std::string, CaseCounts>& counts_by_identity);

}  // namespace testlooper::planner
