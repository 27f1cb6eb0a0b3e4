#include "server/api_json.h"

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

Response ok(const json& body) { return Response{200, "application/json", body.dump(), ""}; }

Response error(int status, const std::string& message) {
  return Response{status, "application/json", json{{"error", message}}.dump(), ""};
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

json classification_json(std::span<const stats::CommitEvidence> history, size_t index,
                         const stats::ChangeAnalysis& analysis) {
  const stats::Classification c = stats::classify(history, index, analysis);
  // The model's failure rate here: its segment's, pooled over the runs between two probable
  // changes (what the web UI colours by, not this commit's own counts).
  const stats::Segment* segment = stats::segment_at(analysis, index);
  json rate = nullptr;
  if (segment != nullptr && segment->runs > 0 && c.verdict != stats::Verdict::kUnknown) {
    rate = rate_json(segment->rate);
    rate["runs"] = segment->runs;
  }
  return {{"verdict", std::string(stats::to_string(c.verdict))},
          {"confidence", c.confidence},
          {"rate", rate}};
}

std::string status_json(const ServerState& state, const ObjectKey& key, const std::string& hash) {
  auto st = state.plan().statuses.find(key);
  if (st == state.plan().statuses.end()) return "not_enabled";
  if (st->second.state == planner::ObjectState::kRunnable &&
      !state.unrunnable_reason(hash).empty()) {
    return "unrunnable";
  }
  return planner::to_string(st->second.state);
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
