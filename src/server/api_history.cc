#include "server/api_history.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "stats/change_points.h"
#include "stats/classification.h"
#include "stats/failure_rate.h"

namespace testlooper::server {
namespace {

using nlohmann::json;

// How many commits a test history may ask for.
constexpr size_t kMaxHistory = 5000;

Response ok(const json& body) { return Response{200, "application/json", body.dump(), ""}; }
Response error(int status, const std::string& message) {
  return Response{status, "application/json", json{{"error", message}}.dump(), ""};
}

json rate_json(const stats::FailureRate& r) { return {{"estimate", r.estimate}, {"low", r.low}, {"high", r.high}}; }
json rate_json(int64_t failures, int64_t runs) { return rate_json(stats::failure_rate(failures, runs)); }

const store::ObjectRow* find_object(const CommitState* c, const std::string& name) {
  if (c == nullptr) return nullptr;
  for (const auto& o : c->objects) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

// Which object and which of its cases `name` means along `shas`: the object named `name`, else
// "object::case" split at the first "::" after which an object of that name exists ("" = the
// object itself). False when neither.
bool resolve_name(ServerState& state, const std::string& repo, const std::vector<std::string>& shas,
                  const std::string& name, std::string& object, std::string& test_case) {
  std::set<std::string> names;
  for (const auto& sha : shas) {
    if (const CommitState* c = state.commit(repo, sha)) {
      for (const auto& o : c->objects) names.insert(o.name);
    }
  }
  if (names.count(name)) {
    object = name;
    test_case.clear();
    return true;
  }
  for (size_t at = name.find("::"); at != std::string::npos; at = name.find("::", at + 1)) {
    if (names.count(name.substr(0, at)) && at + 2 < name.size()) {
      object = name.substr(0, at);
      test_case = name.substr(at + 2);
      return true;
    }
  }
  return false;
}

}  // namespace

std::optional<Response> test_history(ServerState& state, const std::string& repo, const std::string& rest,
                                     const std::map<std::string, std::string>& query) {
  const std::string prefix = "/branches/";
  const std::string suffix = "/history";
  const std::string marker = "/tests/";
  if (rest.rfind(prefix, 0) != 0 || rest.size() < prefix.size() + suffix.size() ||
      rest.compare(rest.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return std::nullopt;
  }
  const std::string middle = rest.substr(prefix.size(), rest.size() - prefix.size() - suffix.size());
  // Branch names may hold "/tests/" too: the first split that names a known branch wins.
  std::string branch;
  std::string name;
  for (size_t at = middle.find(marker); at != std::string::npos; at = middle.find(marker, at + 1)) {
    if (state.branches().count({repo, middle.substr(0, at)}) && at + marker.size() < middle.size()) {
      branch = middle.substr(0, at);
      name = middle.substr(at + marker.size());
      break;
    }
  }
  if (branch.empty()) return std::nullopt;

  size_t limit = 100;
  if (auto it = query.find("limit"); it != query.end()) {
    try {
      limit = std::stoul(it->second);
    } catch (...) {
      return error(400, "limit must be a positive integer");
    }
    if (limit == 0) return error(400, "limit must be a positive integer");
    limit = std::min(limit, kMaxHistory);
  }
  const store::BranchRow& b = state.branches().at({repo, branch});
  const std::vector<std::string> shas = state.first_parent_history(repo, b.head, limit);
  std::string object;
  std::string test_case;
  if (!resolve_name(state, repo, shas, name, object, test_case)) {
    return error(404, "no test named '" + name + "' on branch '" + branch + "' of repo '" + repo + "'");
  }

  // Counts per identity: the object's own, or its case's (store::Store::case_counts). A case is
  // absent where its test is, and where the test's identity has case results none of which is
  // this case (as the branch history's case statistics see it).
  struct Counts {
    bool present = true;
    int64_t runs = 0;
    int64_t failures = 0;
  };
  std::map<std::string, Counts> counts;  // by hash
  auto counts_of = [&](const std::string& hash) -> Counts {
    auto it = counts.find(hash);
    if (it != counts.end()) return it->second;
    Counts c;
    if (test_case.empty()) {
      const auto p = state.progress(hash);
      c = {true, p.runs, p.failures};
    } else if (const auto& cs = state.case_counts(hash); !cs.empty()) {
      auto one = cs.find(test_case);
      c = one == cs.end() ? Counts{false, 0, 0} : Counts{true, one->second.first, one->second.second};
    }
    return counts[hash] = c;
  };

  // The statistics see the history oldest first, an identity's runs once, at its oldest commit
  // (consecutive commits sharing an identity pool their runs), as in the branch history endpoint.
  const size_t n = shas.size();
  std::vector<stats::CommitEvidence> evidence;
  std::vector<const store::ObjectRow*> objects;  // oldest first
  std::set<std::string> placed;
  for (size_t i = 0; i < n; ++i) {
    const std::string& sha = shas[n - 1 - i];
    const store::ObjectRow* o = find_object(state.commit(repo, sha), object);
    objects.push_back(o);
    stats::CommitEvidence e{sha, o ? o->hash : "", o != nullptr, 0, 0};
    if (o != nullptr) {
      const Counts c = counts_of(o->hash);
      e.present = c.present;
      if (c.present && placed.insert(o->hash).second) {
        e.runs = c.runs;
        e.failures = c.failures;
      }
    }
    evidence.push_back(std::move(e));
  }
  const stats::ChangeAnalysis analysis = stats::analyse_changes(evidence);

  json commits = json::array();
  for (size_t k = 0; k < n; ++k) {
    const size_t i = n - 1 - k;  // history index of the k-th newest commit
    const CommitState* c = state.commit(repo, shas[k]);
    const store::ObjectRow* o = objects[i];
    const Counts counted = o ? counts_of(o->hash) : Counts{false, 0, 0};
    const stats::Classification verdict = stats::classify(evidence, i, analysis);
    json entry = {{"sha", shas[k]}, {"subject", c->row.subject}, {"author", c->row.author},
                  {"time", c->row.time}, {"parents", c->row.parents}, {"present", evidence[i].present},
                  {"hash", o ? o->hash : ""}, {"runs", counted.runs}, {"failures", counted.failures},
                  {"active_runs", o ? state.progress(o->hash).active : 0},
                  {"failure_rate", rate_json(counted.failures, counted.runs)},
                  {"classification", {{"verdict", std::string(stats::to_string(verdict.verdict))},
                                      {"confidence", verdict.confidence}}}};
    if (o != nullptr) {
      auto st = state.plan().statuses.find({repo, shas[k], o->name});
      entry["status"] = st == state.plan().statuses.end() ? "not_enabled" : planner::to_string(st->second.state);
    } else {
      entry["status"] = nullptr;
    }
    commits.push_back(std::move(entry));
  }
  json change_points = json::array();
  for (const auto& cp : analysis.changes) {
    change_points.push_back({{"name", name}, {"commit", cp.commit}, {"probability", cp.probability},
                             {"range_probability", cp.range_probability}, {"before", rate_json(cp.before)},
                             {"after", rate_json(cp.after)}, {"runs_used", cp.runs_used}});
  }
  return ok({{"repo", repo}, {"branch", branch}, {"head", b.head}, {"name", name}, {"test", object},
             {"case", test_case.empty() ? json(nullptr) : json(test_case)}, {"commits", commits},
             {"change_points", change_points}});
}

Response cancel_run(ServerState& state, const std::string& run_id) {
  auto r = state.store().run(run_id);
  if (!r.ok()) return error(500, r.error().message);
  if (!r->has_value()) return error(404, "no run " + run_id);
  if ((*r)->state != store::RunState::kRunning) {
    return error(409, "run " + run_id + " is not running (" + store::to_string((*r)->state) + ")");
  }
  const Status s = state.cancel_run(run_id);
  if (!s.ok()) return error(409, s.error().message);
  return Response{202, "application/json", json{{"id", run_id}, {"cancelling", true}}.dump(), ""};
}

}  // namespace testlooper::server
