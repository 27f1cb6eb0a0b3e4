// GET /api/repos/{repo}/commits/{sha} (Api::commit): a commit, each of its objects' state, counts,
// cases and classification, and its definition.
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "server/api.h"
#include "server/api_json.h"
#include "server/commit_stats.h"

namespace testlooper::server {
namespace {

using nlohmann::json;

using namespace reply;  // NOLINT(google-build-using-namespace): the API's shared replies

// JSON text the server stored itself (a commit row's sets, an object's definition), as it is:
// parsing it to write it again was a tenth of the page. "null" when there is none.
std::string_view stored(const std::string& text) {
  return text.empty() ? std::string_view("null") : std::string_view(text);
}

}  // namespace

// Written straight to text, as the history is (api_history.cc): 500 tests with their cases and
// definitions, which as a JSON tree took 40% of the answer's time, and each distinct failure rate's
// interval computed once. The keys in the order a JSON object's dump gives them.
Response Api::commit(const std::string& repo, const std::string& sha) {
  const CommitState* c = state_.commit(repo, sha);
  if (c == nullptr) return error(404, "no commit " + sha + " in repo '" + repo + "'");
  const auto [window, index] = commit_stats(state_, repo, sha);
  // The definitions, kept in the store only: read in one query.
  std::map<std::string, std::string> definitions;
  if (auto rows = state_.store().objects_of(repo, sha); rows.ok()) {
    for (auto& row : *rows) definitions[row.name] = std::move(row.definition_json);
  }
  RateText rate;
  ClassificationText classification;
  std::string enabled = "[";
  if (auto e = state_.enabled_sets().find({repo, sha}); e != state_.enabled_sets().end()) {
    for (const auto& s : e->second) enabled += (enabled.size() > 1 ? "," : "") + json_string(s);
  }
  enabled += "]";
  std::string out;
  append(out, R"({{"author":{},"enabled_sets":{},"error":{},"file":{},"objects":[)",
         json_string(c->row.author), enabled, c->row.error ? json_string(*c->row.error) : "null",
         c->row.file ? json_string(*c->row.file) : "null");
  bool first_object = true;
  for (const auto& o : c->planned.objects) {
    const auto p = state_.progress(o.hash);
    const auto st = state_.plan().statuses.find({repo, sha, o.name});
    const auto t = window->tests.find(o.name);
    const bool analysed = t != window->tests.end();
    std::string cases = "{";
    if (o.kind == "test") {
      const planner::CaseCounts& counts = state_.case_counts(o.hash);
      // Each case's classification, where there is one.
      std::map<std::string, const std::string*> judged;
      if (analysed && !counts.empty() && t->second.failures) {
        const auto evidence = window->case_evidence(state_, window->evidence(t->second));
        for (const auto& [name, e] : evidence) {
          const auto analysis = t->second.cases.find(name);
          if (counts.count(name) && analysis != t->second.cases.end())
            judged[name] = &classification(e, index, analysis->second);
        }
      } else if (analysed && !counts.empty()) {
        // A test that never failed along the ancestry: its cases are judged on this commit's runs
        // alone (reading every ancestor identity's cases would teach nothing more).
        TestStats here;
        here.evidence = {{sha, o.hash, window->present(t->second, index), p.runs, p.failures}};
        for (const auto& [name, stats] : case_stats(state_, here)) {
          if (counts.count(name)) judged[name] = &classification(stats.evidence, 0, stats.analysis);
        }
      }
      for (const auto& [name, rf] : counts) {
        const auto j = judged.find(name);
        const std::string judgement =
            j == judged.end() ? "" : R"("classification":)" + *j->second + ",";
        append(cases, R"({}{}:{{{}"failure_rate":{},"failures":{},"runs":{}}})",
               cases.size() > 1 ? "," : "", json_string(name), judgement, rate(rf.second, rf.first),
               rf.second, rf.first);
      }
    }
    cases += "}";
    const auto definition = definitions.find(o.name);
    append(out,
           R"({}{{"active_runs":{},"cases":{},"classification":{},"definition":{},)"
           R"("failure_rate":{},"failures":{},"hash":{},"kind":{},"name":{},"reason":{},)"
           R"("runs":{},"status":{},"target_runs":{}}})",
           first_object ? "" : ",", p.active, cases,
           analysed ? std::string_view(classification(*window, t->second, index)) : "null",
           definition == definitions.end() ? "null" : stored(definition->second),
           rate(p.failures, p.runs), p.failures, json_string(o.hash), json_string(o.kind),
           json_string(o.name), json_string(reason_json(state_, {repo, sha, o.name}, o.hash)),
           p.runs,
           json_string(status_json(
               state_, st == state_.plan().statuses.end() ? nullptr : &st->second, o.hash)),
           st == state_.plan().statuses.end() ? 0 : st->second.target);
    first_object = false;
  }
  append(out,
         R"(],"parents":{},"repo":{},"sha":{},"subject":{},"test_sets":{},"time":{},)"
         R"("triggered_test_sets":{}}})",
         json(c->row.parents).dump(), json_string(repo), json_string(sha),
         json_string(c->row.subject), stored(c->row.test_sets_json), c->row.time,
         stored(c->row.triggered_json));
  return Response{200, "application/json", std::move(out), ""};
}

}  // namespace testlooper::server
