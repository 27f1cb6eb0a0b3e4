#include "server/api_json.h"

#include <algorithm>
#include <map>

#include "core/glob.h"
#include "server/commit_stats.h"
#include "stats/classification.h"

namespace testlooper::server::reply {

using nlohmann::json;

std::optional<int64_t> query_integer(const std::string& text, int64_t low, int64_t high) {
  if (text.empty() || text.size() > 18 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  const int64_t v = std::stoll(text);
  if (v < low || v > high) return std::nullopt;
  return v;
}

// What the answers quote may not be UTF-8 (a commit's message is bytes): replaced, not thrown on.
std::string text_of(const json& body) {
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

Response ok(const json& body) { return Response{200, "application/json", text_of(body), ""}; }

Response error(int status, const std::string& message) {
  return Response{status, "application/json", text_of(json{{"error", message}}), ""};
}

Response store_full() {
  return error(507,
               "the server cannot store this now (its disk is full or failing); try again later");
}

Response redirect(const std::string& location) {
  Response r = ok({{"location", location}});
  r.status = 302;
  r.headers.emplace_back("Location", location);
  return r;
}

json rate_json(const stats::FailureRate& rate) {
  return {{"estimate", rate.estimate}, {"low", rate.low}, {"high", rate.high}};
}

json rate_json(int64_t failures, int64_t runs) {
  return rate_json(stats::failure_rate(failures, runs));
}

std::string json_string(std::string_view text) { return text_of(json(text)); }

const std::string& RateText::operator()(int64_t failures, int64_t runs) {
  auto [it, inserted] = texts_.try_emplace({failures, runs});
  if (inserted) it->second = text_of(rate_json(failures, runs));
  return it->second;
}

void change_points_json(const std::string& name, const stats::ChangeAnalysis& analysis, json& out) {
  for (const auto& cp : analysis.changes) {
    out.push_back({{"name", name},
                   {"commit", cp.commit},
                   {"probability", cp.probability},
                   {"range_probability", cp.range_probability},
                   {"before", rate_json(cp.before)},
                   {"after", rate_json(cp.after)},
                   {"runs_used", cp.runs_used}});
  }
}

json branch_changes(ServerState& state, const std::string& repo, const std::string& head,
                    const std::string& test, const CommitLink& commit_link, bool only_failing) {
  const std::vector<std::string> shas = state.first_parent_history(repo, head, kChangesWindow);
  json out = json::array();
  const auto window = window_stats(state, repo, shas);
  for (const auto& [name, t] : window->tests) {
    if (only_failing && !t.failures) continue;
    if (!test.empty() && !glob_match(test, name)) continue;
    change_points_json(name, t.analysis, out);
    for (const auto& [case_name, analysis] : t.cases) {
      change_points_json(name + "::" + case_name, analysis, out);
    }
  }
  // What a person needs to judge each change without another request: the commit, how far
  // from the head, the host's page of it, and which test a case's change belongs to.
  std::map<std::string, size_t> distance;
  for (size_t i = 0; i < shas.size(); ++i) distance.emplace(shas[i], i);
  for (json& change : out) {
    const std::string sha = change["commit"].get<std::string>();
    const std::string name = change["name"].get<std::string>();
    const size_t cut = name.find("::");
    change["test"] = name.substr(0, cut);
    change["case"] = cut == std::string::npos ? json(nullptr) : json(name.substr(cut + 2));
    change["distance"] = distance.count(sha) ? json(distance[sha]) : json(nullptr);
    const CommitState* c = state.commit(repo, sha);
    change["subject"] = c ? c->row.subject : "";
    change["author"] = c ? c->row.author : "";
    change["time"] = c ? c->row.time : 0;
    const std::string link = commit_link ? commit_link(repo, sha) : "";
    change["url"] = link.empty() ? json(nullptr) : json(link);
  }
  // Most certain first; among equally certain ones, the newest.
  std::stable_sort(out.begin(), out.end(), [](const json& x, const json& y) {
    const double px = x["probability"].get<double>(), py = y["probability"].get<double>();
    if (px != py) return px > py;
    return x["distance"].is_number() && (!y["distance"].is_number() ||
                                         x["distance"].get<size_t>() < y["distance"].get<size_t>());
  });
  return out;
}

namespace {

// What classification_json says: the verdict `c` at `index` and the segment whose rate goes with
// it (nullptr: none).
std::pair<stats::Classification, const stats::Segment*> classified(
    const stats::Classification& c, size_t index, const stats::ChangeAnalysis& analysis) {
  // The model's failure rate here: its segment's, pooled over the runs between two probable
  // changes (what the web UI colours by, not this commit's own counts).
  const stats::Segment* segment = stats::segment_at(analysis, index);
  if (segment == nullptr || segment->runs == 0 || c.verdict == stats::Verdict::kUnknown) {
    segment = nullptr;
  }
  return {c, segment};
}

json classification_of(const stats::Classification& c, const stats::Segment* segment) {
  json rate = nullptr;
  if (segment != nullptr) {
    rate = rate_json(segment->rate);
    rate["runs"] = segment->runs;
  }
  return {{"verdict", std::string(stats::to_string(c.verdict))},
          {"confidence", c.confidence},
          {"rate", rate}};
}

}  // namespace

json classification_json(std::span<const stats::CommitEvidence> history, size_t index,
                         const stats::ChangeAnalysis& analysis) {
  const auto [c, segment] = classified(stats::classify(history, index, analysis), index, analysis);
  return classification_of(c, segment);
}

const std::string& ClassificationText::operator()(std::span<const stats::CommitEvidence> history,
                                                  size_t index,
                                                  const stats::ChangeAnalysis& analysis) {
  const auto [c, segment] = classified(stats::classify(history, index, analysis), index, analysis);
  return text(c, segment);
}

const std::string& ClassificationText::operator()(const WindowStats& w, const WindowTest& t,
                                                  size_t index) {
  const auto [c, segment] = classified(classify_in(w, t, index), index, t.analysis);
  return text(c, segment);
}

const std::string& ClassificationText::text(const stats::Classification& c,
                                            const stats::Segment* segment) {
  const auto key = std::make_tuple(static_cast<int>(c.verdict), c.confidence,
                                   segment ? segment->runs : -1, segment ? segment->failures : 0);
  auto [it, inserted] = texts_.try_emplace(key);
  if (inserted) it->second = classification_of(c, segment).dump();
  return it->second;
}

std::string status_json(const ServerState& state, const ObjectKey& key, const std::string& hash) {
  auto st = state.plan().statuses.find(key);
  return status_json(state, st == state.plan().statuses.end() ? nullptr : &st->second, hash);
}

std::string status_json(const ServerState& state, const planner::ObjectStatus* status,
                        const std::string& hash) {
  if (status == nullptr) return "not_enabled";
  if (status->state == planner::ObjectState::kRunnable && !state.unrunnable_reason(hash).empty()) {
    return "unrunnable";
  }
  return planner::to_string(status->state);
}

std::string reason_json(const ServerState& state, const ObjectKey& key, const std::string& hash) {
  auto st = state.plan().statuses.find(key);
  if (st == state.plan().statuses.end()) return "";
  if (st->second.state == planner::ObjectState::kRunnable &&
      !state.unrunnable_reason(hash).empty()) {
    return state.unrunnable_reason(hash);
  }
  return st->second.reason;
}

}  // namespace testlooper::server::reply
