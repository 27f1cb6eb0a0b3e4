// The planner over a kept index (PlanIndex, as the server keeps it, issue 18) against the plan
// recomputed from scratch, after each of many random events: commits added, replaced in place and
// removed, reachability, enabled sets, targets, progress, holds, deployments and extra-run
// budgets. And the budget's compact histories against test_histories.
#include <gtest/gtest.h>

#include <random>
#include <sstream>

#include "planner/plan_index.h"
#include "planner/planner.h"

namespace testlooper::planner {
namespace {

std::string dump(const Plan& plan) {
  std::ostringstream out;
  for (const Job& j : plan.jobs) {
    out << "job " << j.hash << ' ' << j.repo << ' ' << j.commit << ' ' << j.name << ' ' << j.kind
        << ' ' << j.runs << ' ' << j.priority << ' ' << j.min_cores << ' ' << j.max_cores << ' '
        << j.min_ram_gb << ' ' << j.platform << ' ' << j.docker << j.ami << ' ' << j.purpose << ' '
        << j.image << '\n';
  }
  for (const auto& [hash, keep] : plan.keep) out << "keep " << hash << ' ' << keep << '\n';
  for (const auto& [key, s] : plan.statuses) {
    out << "status " << std::get<0>(key) << '/' << std::get<1>(key) << '/' << std::get<2>(key)
        << ' ' << to_string(s.state) << ' ' << s.target << ' ' << s.reason << '\n';
  }
  return out.str();
}

std::string dump(const std::map<std::string, std::vector<stats::CommitEvidence>>& histories) {
  std::ostringstream out;
  for (const auto& [name, h] : histories) {
    out << name << ':';
    for (const auto& e : h)
      out << ' ' << e.commit << '=' << e.identity << ',' << e.present << ',' << e.runs << ','
          << e.failures;
    out << '\n';
  }
  return out.str();
}

class World {
 public:
  explicit World(unsigned seed) : rng_(seed) {}

  void step() {
    switch (pick(10)) {
      case 0:
      case 1:
        add_commit();
        break;
      case 2:
        replace_commit();
        break;
      case 3:
        remove_commit();
        break;
      case 4:
        toggle_reachable();
        break;
      case 5:
        toggle_set();
        break;
      case 6:
        in_.targets[{repo(), sha(), test_name()}] = pick(4);
        break;
      case 7:
        set_progress();
        break;
      case 8:
        set_hold();
        break;
      default:
        change_budgets_or_deployments();
        break;
    }
  }

  void check(int step) {
    std::vector<const PlannedCommit*> all;
    for (const auto& [key, c] : commits_) all.push_back(&c);
    const std::string full = dump(make_plan(in_, all));
    const std::string kept = dump(make_plan(in_, index_));
    ASSERT_EQ(kept, full) << "after step " << step;
    for (const auto& b : in_.budgets) {
      auto objects_at = [&](const std::string& sha) -> const std::vector<PlannedObject>* {
        auto it = commits_.find({b.repo, sha});
        return it == commits_.end() || !it->second.reachable ? nullptr : &it->second.objects;
      };
      auto progress_of = [&](const std::string& hash) {
        auto it = in_.progress.find(hash);
        return it == in_.progress.end() ? HashProgress{} : it->second;
      };
      ASSERT_EQ(dump(failing_test_histories(b.history, b.repo, index_, in_.progress)),
                dump(test_histories(b.history, objects_at, progress_of, true)))
          << "after step " << step;
    }
  }

  size_t commits() const { return commits_.size(); }

 private:
  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  std::string repo() { return pick(4) == 0 ? "q" : "r"; }
  std::string sha() { return "s" + std::to_string(pick(12)); }
  std::string test_name() { return "t" + std::to_string(pick(5)); }
  std::string build_hash() { return "b" + std::to_string(pick(5)); }
  std::string test_hash() { return "h" + std::to_string(pick(8)); }

  PlannedCommit make_commit(const std::string& repo, const std::string& sha) {
    PlannedCommit c{repo, sha, pick(1000), pick(5) != 0, {}, {}};
    const int builds = 1 + pick(2);
    for (int b = 0; b < builds; ++b) {
      PlannedObject o{
          "build" + std::to_string(b), "build", build_hash(), {}, 1 + pick(2), 2, 0, pick(3)};
      if (b == 1 && pick(2) == 0)
        o.builds.push_back({repo + "/" + sha + "/build0", c.objects[0].hash});
      o.environment_key = pick(3) == 0 ? "env:x" : "";
      c.objects.push_back(o);
    }
    const int tests = pick(5);
    for (int t = 0; t < tests; ++t) {
      PlannedObject o{"t" + std::to_string(t),
                      pick(6) == 0 ? "deployment" : "test",
                      test_hash(),
                      {},
                      1,
                      1,
                      0,
                      0};
      if (pick(4) != 0) o.builds.push_back({repo + "/" + sha + "/build0", c.objects[0].hash});
      // A build of another commit (pinned by sha), maybe not known (yet).
      if (pick(4) == 0) o.builds.push_back({"r/" + this->sha() + "/build0", build_hash()});
      o.environment_key = pick(3) == 0 ? "env:x" : "";
      o.platform = pick(2) ? "linux" : "windows";
      c.objects.push_back(o);
    }
    for (const auto& o : c.objects) {
      c.test_sets["all"].push_back(o.name);
      if (pick(2)) c.test_sets["some"].push_back(o.name);
    }
    if (pick(4) == 0) c.test_sets["some"].push_back("r/" + this->sha() + "/build1");
    return c;
  }

  void add_commit() {
    const auto key = std::make_pair(repo(), sha());
    if (commits_.count(key)) return replace_commit();
    auto [it, inserted] = commits_.emplace(key, make_commit(key.first, key.second));
    index_.put(&it->second);
  }

  // Its objects change in place, as the server's re-resolved commits do.
  void replace_commit() {
    if (commits_.empty()) return;
    auto it = std::next(commits_.begin(), pick(static_cast<int>(commits_.size())));
    it->second = make_commit(it->first.first, it->first.second);
    index_.put(&it->second);
  }

  void remove_commit() {
    if (commits_.empty()) return;
    auto it = std::next(commits_.begin(), pick(static_cast<int>(commits_.size())));
    index_.remove(it->first.first, it->first.second);
    commits_.erase(it);
  }

  void toggle_reachable() {
    if (commits_.empty()) return;
    auto it = std::next(commits_.begin(), pick(static_cast<int>(commits_.size())));
    it->second.reachable = !it->second.reachable;
  }

  void toggle_set() {
    const auto key = std::make_pair(repo(), sha());
    const std::string set = pick(2) ? "all" : "some";
    if (pick(3) == 0) {
      in_.enabled_sets[key].erase(set);
      if (in_.enabled_sets[key].empty()) in_.enabled_sets.erase(key);
    } else {
      in_.enabled_sets[key].insert(set);
    }
  }

  void set_progress() {
    const std::string hash = pick(2) ? build_hash() : test_hash();
    HashProgress& p = in_.progress[hash];
    p.runs = pick(6);
    p.failures = std::min<int64_t>(p.runs, pick(4));
    p.active = pick(3);
    index_.progress_changed(hash);  // as the server says
  }

  void set_hold() {
    const std::string key = pick(4) == 0 ? "env:x" : (pick(2) ? build_hash() : test_hash());
    if (pick(3) == 0) {
      in_.holds.erase(key);
      return;
    }
    Hold h;
    h.blocked = pick(4) == 0;
    h.waiting = pick(3) == 0;
    h.one_at_a_time = pick(2) == 0;
    h.reason = "why " + key;
    h.forgiven_failures = pick(3);
    in_.holds[key] = h;
  }

  void change_budgets_or_deployments() {
    if (pick(3) == 0) {
      const std::tuple<std::string, std::string, std::string> key{repo(), sha(),
                                                                  "t" + std::to_string(pick(4))};
      if (!in_.deployments.erase(key)) in_.deployments.insert(key);
      return;
    }
    in_.budgets.clear();
    const int budgets = pick(3);
    for (int b = 0; b < budgets; ++b) {
      BranchBudget budget{b == 0 ? "r" : "q", "main", {}, pick(12), pick(3), 1 + pick(8)};
      const int length = 1 + pick(14);
      for (int i = 0; i < length; ++i) budget.history.push_back("s" + std::to_string(i));
      in_.budgets.push_back(budget);
    }
  }

  std::mt19937 rng_;
  std::map<std::pair<std::string, std::string>, PlannedCommit> commits_;
  PlanIndex index_;
  PlanInput in_;
};

TEST(IncrementalPlan, KeptIndexPlansAsTheFullRecomputeAfterEveryEvent) {
  size_t most = 0;
  for (unsigned seed = 1; seed <= 40; ++seed) {
    World world(seed);
    for (int step = 0; step < 300; ++step) {
      world.step();
      world.check(step);
      if (HasFatalFailure()) {
        ADD_FAILURE() << "seed " << seed;
        return;
      }
      most = std::max(most, world.commits());
    }
  }
  EXPECT_GT(most, 10u);  // the worlds grew past a handful of commits
}

// A build's identity in several commits: the first commit in (repo, sha) order holds it, whatever
// order the commits come in and whichever of them was indexed last.
TEST(IncrementalPlan, SharedBuildIsTheFirstCommitsInRepoShaOrder) {
  std::vector<PlannedCommit> commits;
  for (const std::string sha : {"c3", "c1", "c2"}) {
    PlannedCommit c{"repo", sha, 1, true, {}, {}};
    c.objects.push_back({"build", "build", "hb", {}, 1, 1, 0, 0});
    c.objects.push_back(
        {"test", "test", "ht" + sha, {{"repo/" + sha + "/build", "hb"}}, 1, 1, 0, 0});
    c.test_sets["all"] = {"test"};
    commits.push_back(c);
  }
  PlanIndex index;
  for (const auto& c : commits) index.put(&c);
  ASSERT_TRUE(index.build("hb"));
  EXPECT_EQ(index.build("hb")->commit->sha, "c1");
  index.remove("repo", "c1");
  EXPECT_EQ(index.build("hb")->commit->sha, "c2");
  PlanInput in;
  in.enabled_sets[{"repo", "c3"}] = {"all"};
  const Plan plan = make_plan(in, index);
  ASSERT_EQ(plan.jobs.size(), 1u);
  EXPECT_EQ(plan.jobs[0].commit, "c2");  // the build, at the first commit that has it
  EXPECT_EQ(plan.statuses.count({"repo", "c2", "build"}), 1u);
}

}  // namespace
}  // namespace testlooper::planner
