#include "server/api_history.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "planner/planner.h"
#include "server/api.h"
#include "server/api_json.h"
#include "server/commit_stats.h"
#include "stats/change_points.h"

namespace testlooper::server {
namespace {

using nlohmann::json;

// How many commits a test history may ask for.
constexpr size_t kMaxHistory = 5000;

using namespace reply;  // NOLINT(google-build-using-namespace): the API's shared replies

const planner::PlannedObject* find_object(const CommitState* c, const std::string& name) {
  if (c == nullptr) return nullptr;
  for (const auto& o : c->planned.objects) {
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
      for (const auto& o : c->planned.objects) names.insert(o.name);
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

std::optional<Response> test_history(ServerState& state, const std::string& repo,
                                     const std::string& rest,
                                     const std::map<std::string, std::string>& query) {
  const std::string prefix = "/branches/";
  const std::string suffix = "/history";
  const std::string marker = "/tests/";
  if (rest.rfind(prefix, 0) != 0 || rest.size() < prefix.size() + suffix.size() ||
      rest.compare(rest.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return std::nullopt;
  }
  const std::string middle =
      rest.substr(prefix.size(), rest.size() - prefix.size() - suffix.size());
  // Branch names may hold "/tests/" too: the first split that names a known branch wins.
  std::string branch;
  std::string name;
  for (size_t at = middle.find(marker); at != std::string::npos; at = middle.find(marker, at + 1)) {
    if (state.branches().count({repo, middle.substr(0, at)}) &&
        at + marker.size() < middle.size()) {
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
  // Analysed along the branch's window whatever the limit; the first `limit` are shown.
  const std::vector<std::string> shas =
      state.first_parent_history(repo, b.head, std::max(limit, kAnalysisWindow));
  std::string object;
  std::string test_case;
  if (!resolve_name(state, repo, shas, name, object, test_case)) {
    return error(404,
                 "no test named '" + name + "' on branch '" + branch + "' of repo '" + repo + "'");
  }

  // The statistics' view (planner::test_histories / case_histories, as the branch history
  // endpoint sees it), and the counts shown per commit: its identity's.
  std::vector<std::string> oldest_first(shas.rbegin(), shas.rend());
  auto histories = planner::test_histories(
      oldest_first,
      [&](const std::string& sha) {
        const CommitState* c = state.commit(repo, sha);
        return c == nullptr ? nullptr : &c->planned.objects;
      },
      [&](const std::string& hash) { return state.progress(hash); }, false, object);
  std::vector<stats::CommitEvidence> evidence = std::move(histories[object]);
  evidence.resize(oldest_first.size());
  if (!test_case.empty()) {
    std::map<std::string, planner::CaseCounts> counts;
    for (const auto& e : evidence) {
      if (e.present && !counts.count(e.identity))
        counts[e.identity] = state.case_counts(e.identity);
    }
    auto cases = planner::case_histories(evidence, counts);
    auto it = cases.find(test_case);
    if (it != cases.end()) {
      evidence = std::move(it->second);
    } else {
      // Never reported: absent where its test's runs reported other cases, unknown elsewhere.
      for (auto& e : evidence) {
        const bool reported_others = e.present && !counts[e.identity].empty();
        e = {e.commit, e.identity, e.present && !reported_others, 0, 0};
      }
    }
  }
  auto shown = [&](const std::string& hash) -> std::pair<int64_t, int64_t> {
    if (test_case.empty()) return {state.progress(hash).runs, state.progress(hash).failures};
    const auto& cs = state.case_counts(hash);
    auto one = cs.find(test_case);
    return one == cs.end() ? std::pair<int64_t, int64_t>{0, 0} : one->second;
  };
  const stats::ChangeAnalysis analysis = stats::analyse_changes(evidence);

  const size_t n = shas.size();
  json commits = json::array();
  for (size_t k = 0; k < std::min(n, limit); ++k) {
    const size_t i = n - 1 - k;  // history index of the k-th newest commit
    const CommitState* c = state.commit(repo, shas[k]);
    const planner::PlannedObject* o = find_object(c, object);
    const auto [runs, failures] =
        o && evidence[i].present ? shown(o->hash) : std::pair<int64_t, int64_t>{0, 0};
    json entry = {{"sha", shas[k]},
                  {"subject", c->row.subject},
                  {"author", c->row.author},
                  {"time", c->row.time},
                  {"parents", c->row.parents},
                  {"present", evidence[i].present},
                  {"hash", o ? o->hash : ""},
                  {"runs", runs},
                  {"failures", failures},
                  {"active_runs", o ? state.progress(o->hash).active : 0},
                  {"failure_rate", rate_json(failures, runs)},
                  {"classification", classification_json(evidence, i, analysis)},
                  {"status", o ? json(status_json(state, {repo, shas[k], o->name}, o->hash))
                               : json(nullptr)}};
    commits.push_back(std::move(entry));
  }
  json all_points = json::array();
  change_points_json(name, analysis, all_points);
  json change_points = json::array();
  for (json& cp : all_points) {
    const auto at = std::find(shas.begin(), shas.end(), cp["commit"].get<std::string>());
    if (static_cast<size_t>(at - shas.begin()) < limit) change_points.push_back(std::move(cp));
  }
  return ok({{"repo", repo},
             {"branch", branch},
             {"head", b.head},
             {"name", name},
             {"test", object},
             {"case", test_case.empty() ? json(nullptr) : json(test_case)},
             {"commits", commits},
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

// GET /api/repos/{repo}/branches/{branch}/history (Api::get): the branch's first-parent commits,
// newest first, each object's status, counts and classification, and the changes among them.
namespace {

// A branch history's answer (Api::history), written commit by commit as the client reads it
// (Response::stream): 1,000 commits x 500 tests is 208 MB of JSON, which was built whole in
// memory before it was sent (and the first such answer's fresh pages touched). What needs the
// whole window (the statistics, the classifications, the change points) is made at once; a
// commit's row reads the server's state as it is when it is written, its objects looked up by
// sha again (between two rows, anything may have changed).
class HistoryAnswer {
 public:
  HistoryAnswer(ServerState& state, const std::string& repo, const std::string& branch,
                const std::string& head, std::vector<std::string> shas, size_t limit)
      : state_(state), shas_(std::move(shas)) {
    const size_t n = shas_.size();
    shown_ = std::min(n, limit);
    window_ = window_stats(state_, repo, shas_);
    // Each test's classification at the commits shown, and its cases' for the tests that failed
    // somewhere in the window (the others' cases have nothing to tell apart from the test), as
    // text: test by test, each test's evidence rebuilt once (the window keeps none).
    const std::string no_cases = R"(,"cases":{})";
    for (const auto& [name, t] : window_->tests) {
      const std::vector<stats::CommitEvidence> evidence = window_->evidence(t);
      Cells& text = cells_[name];
      cells_of_.emplace(name, &text);
      text.classification.resize(shown_);
      for (size_t i = 0; i < shown_; ++i) {
        text.classification[i] = &classification_(evidence, n - 1 - i, t.analysis);
      }
      if (!t.failures) continue;
      text.cases.assign(shown_, no_cases);
      if (t.cases.empty()) continue;
      const auto cases = window_->case_evidence(state_, evidence);
      for (size_t i = 0; i < shown_; ++i) {
        const size_t index = n - 1 - i;  // in the oldest-first histories
        std::string cell = R"(,"cases":{)";
        bool first = true;
        for (const auto& [case_name, e] : cases) {
          const auto analysis = t.cases.find(case_name);
          if (!e[index].present || analysis == t.cases.end()) continue;
          cell += (first ? "" : ",") + json_string(case_name) + R"(:{"classification":)" +
                  classification_(e, index, analysis->second) + "}";
          first = false;
        }
        text.cases[i] = cell + "}";
      }
    }
    json all_points = json::array();
    for (const auto& [name, t] : window_->tests) {
      change_points_json(name, t.analysis, all_points);
      if (!t.failures) continue;
      for (const auto& [case_name, analysis] : t.cases)
        change_points_json(name + "::" + case_name, analysis, all_points);
    }
    // Only the changes at the commits shown.
    const std::set<std::string> shown_shas(shas_.begin(),
                                           shas_.begin() + static_cast<std::ptrdiff_t>(shown_));
    json change_points = json::array();
    for (json& cp : all_points) {
      if (shown_shas.count(cp["commit"].get<std::string>())) change_points.push_back(std::move(cp));
    }
    tail_ = fmt::format(R"(],"change_points":{}}})", text_of(change_points));
    head_ = fmt::format(R"({{"repo":{},"branch":{},"head":{},"commits":[)", json_string(repo),
                        json_string(branch), json_string(head));
    repo_ = repo;
  }

  // Appends the next piece of the answer to `out` (the head with the first commit, then a commit
  // at a time, the change points with the last); false after the last.
  bool piece(std::string& out) {
    if (next_ == 0) out += head_;
    if (next_ < shown_) put_commit(next_, out);
    if (++next_ < shown_) return true;
    out += tail_;
    return false;
  }

 private:
  // Written straight to text: 100 commits x 500 tests is 50,000 cells, and building them as a
  // JSON tree first took most of the time. Commits share identities, and an identity's name,
  // kind, hash and counts are formatted once.
  void put_commit(size_t i, std::string& out) {
    const std::string& sha = shas_[i];
    const CommitState* c = state_.commit(repo_, sha);
    if (c == nullptr) {  // gone since the answer began (its repo removed)
      append(out,
             R"({}{{"sha":{},"subject":"","author":"","time":0,"parents":[],"error":null,)"
             R"("objects":[]}})",
             i ? "," : "", json_string(sha));
      return;
    }
    append(out,
           R"({}{{"sha":{},"subject":{},"author":{},"time":{},"parents":{},"error":{},"objects":[)",
           i ? "," : "", json_string(sha), json_string(c->row.subject), json_string(c->row.author),
           c->row.time, json(c->row.parents).dump(),
           c->row.error ? json_string(*c->row.error) : "null");
    const auto& statuses = state_.plan().statuses;
    status_of_.clear();
    for (auto st = statuses.lower_bound({repo_, sha, ""});
         st != statuses.end() && std::get<0>(st->first) == repo_ && std::get<1>(st->first) == sha;
         ++st) {
      status_of_.emplace(std::get<2>(st->first), &st->second);
    }
    for (size_t k = 0; k < c->planned.objects.size(); ++k) {
      const planner::PlannedObject& o = c->planned.objects[k];
      auto [known, inserted] = identities_.try_emplace(o.hash);
      Identity& id = known->second;
      if (inserted) {
        const auto p = state_.progress(o.hash);
        id.name = o.name;
        id.kind = o.kind;
        id.names = names_of(o);
        id.counts = fmt::format(R"("runs":{},"failures":{},"active_runs":{},"failure_rate":{})",
                                p.runs, p.failures, p.active, rate_(p.failures, p.runs));
      }
      const bool same = id.name == o.name && id.kind == o.kind;
      const auto st = status_of_.find(o.name);
      append(out, R"({}{{{},"status":"{}",{})", k ? "," : "", same ? id.names : names_of(o),
             status_json(state_, st == status_of_.end() ? nullptr : st->second, o.hash), id.counts);
      if (auto t = cells_of_.find(o.name); t != cells_of_.end()) {
        out += R"(,"classification":)";
        out += *t->second->classification[i];
        if (!t->second->cases.empty()) out += t->second->cases[i];
      }
      out += '}';
    }
    out += "]}";
  }

  static std::string names_of(const planner::PlannedObject& o) {
    return fmt::format(R"("name":{},"kind":{},"hash":{})", json_string(o.name), json_string(o.kind),
                       json_string(o.hash));
  }

  struct Cells {
    std::vector<const std::string*> classification;  // per commit shown (classification_'s)
    std::vector<std::string> cases;                  // per commit shown; empty: no "cases"
  };
  struct Identity {
    std::string name, kind;  // of the first object seen with it
    std::string names;       // "name":..,"kind":..,"hash":..
    std::string counts;      // "runs":..,"failures":..,"active_runs":..,"failure_rate":..
  };

  ServerState& state_;
  std::string repo_;
  const std::vector<std::string> shas_;
  size_t shown_ = 0;
  size_t next_ = 0;  // the next commit to write
  std::shared_ptr<const WindowStats> window_;
  ClassificationText classification_;
  std::map<std::string, Cells> cells_;                           // by test
  std::unordered_map<std::string_view, const Cells*> cells_of_;  // the same, hashed
  RateText rate_;
  std::unordered_map<std::string, Identity> identities_;
  std::unordered_map<std::string_view, const planner::ObjectStatus*> status_of_;
  std::string head_, tail_;
};

}  // namespace

Response Api::history(const std::string& repo, const std::string& branch, size_t limit) {
  auto b = state_.branches().find({repo, branch});
  if (b == state_.branches().end())
    return error(404, "no branch '" + branch + "' in repo '" + repo + "'");
  // Analysed along the branch's window whatever the limit; the first `limit` are shown.
  auto answer = std::make_shared<HistoryAnswer>(
      state_, repo, branch, b->second.head,
      state_.first_parent_history(repo, b->second.head, std::max(limit, kAnalysisWindow)), limit);
  Response res{200, "application/json", "", ""};
  res.stream = [answer](std::string& out) { return answer->piece(out); };
  return res;
}

}  // namespace testlooper::server
