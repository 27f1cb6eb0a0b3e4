// The JSON pieces the API's endpoints share (api.cc, api_history.cc, api_files.cc): replies,
// failure rates, change points, classifications and object states. Io thread, like the API.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "server/http.h"
#include "server/state.h"
#include "stats/change_points.h"
#include "stats/classification.h"
#include "stats/failure_rate.h"

namespace testlooper::server::reply {

// `body` as compact text, any string in it that is not UTF-8 with U+FFFD for its bad bytes.
std::string text_of(const nlohmann::json& body);
// 200 with `body`.
Response ok(const nlohmann::json& body);
// `status` with {"error": message}.
Response error(int status, const std::string& message);
// 507 for a write the store could not make (a full disk, an I/O error: issue 11 item 8).
Response store_full();
// 302 to `location` (also given as {"location": ...}).
Response redirect(const std::string& location);

// A query parameter of decimal digits only, in [low, high]; nullopt otherwise ("-1" and "1e3"
// included: std::stoul would wrap the first).
std::optional<int64_t> query_integer(const std::string& text, int64_t low, int64_t high);

// {"estimate", "low", "high"}; the second form of failure_rate(failures, runs).
nlohmann::json rate_json(const stats::FailureRate& rate);
nlohmann::json rate_json(int64_t failures, int64_t runs);

// The answers written straight to text (the history and commit pages: tens of thousands of cells,
// which took most of their time as a JSON tree): `text` as a JSON string.
std::string json_string(std::string_view text);
// Appends fmt::format(format, args...) to `out`.
template <typename... A>
void append(std::string& out, fmt::format_string<A...> format, A&&... args) {
  fmt::format_to(std::back_inserter(out), format, std::forward<A>(args)...);
}
// rate_json(failures, runs) as text, each distinct pair formatted once (its interval is costly):
// one object per reply.
class RateText {
 public:
  const std::string& operator()(int64_t failures, int64_t runs);

 private:
  std::map<std::pair<int64_t, int64_t>, std::string> texts_;
};

// Appends each of `analysis`'s changes as {"name", "commit", "probability", "range_probability",
// "before", "after", "runs_used"} to the array `out`.
void change_points_json(const std::string& name, const stats::ChangeAnalysis& analysis,
                        nlohmann::json& out);

// The changes endpoint looks this far back along a branch (first-parent commits).
constexpr size_t kChangesWindow = 2000;
// The host's web page of `repo`'s commit `sha`, or "" when unknown.
using CommitLink = std::function<std::string(const std::string& repo, const std::string& sha)>;

// GET /api/repos/{repo}/branches/{branch}/changes' answer for the branch whose head is `head`:
// each change of a test's (or case's) failure rate along its first kChangesWindow first-parent
// commits, as change_points_json gives them plus {"test", "case", "distance", "subject",
// "author", "time", "url"}, most certain first, then newest. `test`: a glob on the test's name
// ("" = all); with `only_failing`, only tests that failed somewhere on it are analysed. What the
// API shows and what notifications send (notifier.h).
nlohmann::json branch_changes(ServerState& state, const std::string& repo, const std::string& head,
                              const std::string& test, const CommitLink& commit_link,
                              bool only_failing = false);

// {"verdict", "confidence", "rate"}: stats::classify at history[index], and the failure rate of
// the model's segment holding it ({"estimate", "low", "high", "runs"}; null without runs there).
nlohmann::json classification_json(std::span<const stats::CommitEvidence> history, size_t index,
                                   const stats::ChangeAnalysis& analysis);

// classification_json as text, each distinct answer formatted once: a history page holds tens of
// thousands, mostly alike. One object per reply.
class ClassificationText {
 public:
  const std::string& operator()(std::span<const stats::CommitEvidence> history, size_t index,
                                const stats::ChangeAnalysis& analysis);
  // The same for `t`, a test of window `w`, at `index` of its history (oldest first), without
  // building that history (WindowStats::present).
  const std::string& operator()(const WindowStats& w, const WindowTest& t, size_t index);

 private:
  const std::string& text(const stats::Classification& c, const stats::Segment* segment);

  // verdict, confidence, and the segment's (runs, failures) or (-1, 0) without a rate
  std::map<std::tuple<int, double, int64_t, int64_t>, std::string> texts_;
};

// An object's state for the API: the planner's ("not_enabled" when it planned nothing for it),
// or "unrunnable" when it wants runs that no connected worker could ever take; and the reason
// that goes with it (the blocking dependency, or what it needs).
using ObjectKey = std::tuple<std::string, std::string, std::string>;  // repo, commit, name
std::string status_json(const ServerState& state, const ObjectKey& key, const std::string& hash);
// status_json of the object whose plan status is `status` (nullptr: the plan has none).
std::string status_json(const ServerState& state, const planner::ObjectStatus* status,
                        const std::string& hash);
std::string reason_json(const ServerState& state, const ObjectKey& key, const std::string& hash);

}  // namespace testlooper::server::reply
