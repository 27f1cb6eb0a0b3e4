#include "server/api.h"

#include <fmt/format.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "core/glob.h"
#include "core/ids.h"
#include "core/token.h"
#include "planner/planner.h"
#include "server/api_history.h"
#include "server/api_json.h"
#include "server/commit_stats.h"
#include "server/metrics.h"
#include "server/webhooks.h"
#include "stats/change_points.h"
#include "stats/classification.h"
#include "stats/failure_rate.h"

namespace testlooper::server {
namespace {

using nlohmann::json;

using namespace reply;  // NOLINT(google-build-using-namespace): the API's shared replies

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Content-Type: application/json, with or without parameters (charset=utf-8).
bool is_json_content_type(const Request& request) {
  auto it = request.headers.find("content-type");
  if (it == request.headers.end()) return false;
  std::string type = it->second.substr(0, it->second.find(';'));
  std::erase_if(type, [](char c) { return c == ' ' || c == '\t'; });
  std::transform(type.begin(), type.end(), type.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return type == "application/json";
}

// A JSON integer in [low, high], or nullopt (a float, a string, or out of range: nlohmann would
// truncate 4294967297 to 1 on get<int>()).
std::optional<int64_t> bounded_integer(const json& value, int64_t low, int64_t high) {
  if (value.is_number_unsigned()) {
    const uint64_t v = value.get<uint64_t>();
    if (v > static_cast<uint64_t>(high)) return std::nullopt;
    return static_cast<int64_t>(v) >= low ? std::optional<int64_t>(static_cast<int64_t>(v)) : std::nullopt;
  }
  if (!value.is_number_integer()) return std::nullopt;
  const int64_t v = value.get<int64_t>();
  if (v < low || v > high) return std::nullopt;
  return v;
}

// The most a request may ask for: target runs per test, a branch's depth, a history's length.
constexpr int64_t kMaxTargetRuns = 1'000'000;
constexpr int64_t kMaxDepth = 100'000;
constexpr int64_t kMaxHistoryLimit = 10'000;
// The most '*' a glob from a request may hold (each one makes fnmatch try every position).
constexpr std::ptrdiff_t kMaxGlobStars = 4;

// Splits "/api/repos/{repo}/<rest>" into repo and rest; false when it does not match.
bool split_repo_path(const std::string& path, std::string& repo, std::string& rest) {
  const std::string prefix = "/api/repos/";
  if (!starts_with(path, prefix)) return false;
  const size_t slash = path.find('/', prefix.size());
  repo = path.substr(prefix.size(), slash == std::string::npos ? std::string::npos : slash - prefix.size());
  rest = slash == std::string::npos ? "" : path.substr(slash);
  return !repo.empty();
}

// A run as GET /api/runs/{id} shows it. In lists (`with_messages` false) its cases leave out
// their messages and logs: a commit's runs may be thousands, each with up to 256 KiB of messages.
json run_json(const store::RunRow& run, store::Store& store, bool with_messages) {
  json cases = json::array();
  if (auto cs = store.cases(run.id); cs.ok()) {
    for (const auto& c : *cs) {
      if (!with_messages) {
        cases.push_back({{"name", c.name},
                         {"success", c.success},
                         {"elapsed", c.elapsed},
                         {"skipped", c.skipped}});
        continue;
      }
      json logs = json::array();
      for (const std::string& log : c.logs) {
        logs.push_back({{"name", log}, {"url", "/api/runs/" + run.id + "/" + log}});
      }
      cases.push_back({{"name", c.name},
                       {"success", c.success},
                       {"elapsed", c.elapsed},
                       {"message", c.message},
                       {"skipped", c.skipped},
                       {"logs", logs}});
    }
  }
  return {{"id", run.id}, {"hash", run.hash}, {"repo", run.repo}, {"commit", run.commit}, {"name", run.name},
          {"kind", run.kind}, {"worker", run.worker}, {"state", store::to_string(run.state)},
          {"exit_code", run.exit_code}, {"started", run.started}, {"ended", run.ended},
          {"detail", run.detail}, {"cases", cases}};
}

std::string content_type_of(const std::filesystem::path& file) {
  static const std::map<std::string, std::string> kTypes = {
      {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
      {".json", "application/json"}, {".map", "application/json"}, {".svg", "image/svg+xml"},
      {".png", "image/png"}, {".ico", "image/x-icon"}, {".woff2", "font/woff2"}, {".woff", "font/woff"},
      {".txt", "text/plain; charset=utf-8"}, {".wasm", "application/wasm"}};
  auto it = kTypes.find(file.extension().string());
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

// web/dist of the checkout the binary was built in (the binary lives in build/ or build-dev/).
std::string default_web_dir() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "web/dist";
  return (exe.parent_path().parent_path() / "web" / "dist").string();
}

}  // namespace

Api::Api(ServerState& state, std::function<void()> refresh, std::string webhook_secret, std::string web_dir)
    : state_(state),
      refresh_(std::move(refresh)),
      webhook_secret_(std::move(webhook_secret)),
      web_dir_(web_dir.empty() ? default_web_dir() : std::move(web_dir)) {}

void Api::set_access_options(const ServerOptions& options) { options_ = options; }

Response Api::handle(const Request& request) {
  const auth::Principal who = principal(request);
  if (auto refusal = access_refusal(request, who)) {
    audit(request, who, refusal->status);
    return *refusal;
  }
  if (auto answer = session_endpoint(request, who)) {
    audit(request, who, answer->status);
    return *answer;
  }
  Response response = request.method == "GET" ? get(request)
                      : request.method == "POST"
                          ? post(request, who)
                          : error(405, "method not allowed: " + request.method);
  if (response.status >= 400 && response.file.empty()) response.body = without_server_paths(response.body);
  audit(request, who, response.status);
  return response;
}

std::string Api::without_server_paths(std::string text) const {
  // The server's own folders, longest first, so a repo inside the data folder reads as a repo.
  std::vector<std::string> paths = {state_.artifacts_dir(),
                                    std::filesystem::path(state_.logs_dir()).parent_path().string()};
  for (const auto& [name, path] : state_.repos()) {
    paths.push_back(path);
    paths.push_back(std::filesystem::path(path).parent_path().string());
  }
  std::sort(paths.begin(), paths.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const std::string& path : paths) {
    if (path.size() < 2) continue;
    for (size_t at = text.find(path); at != std::string::npos; at = text.find(path, at)) {
      text.replace(at, path.size(), "<server>");
    }
  }
  return text;
}

Response Api::get(const Request& request) {
  const std::string& p = request.path;
  if (p == "/metrics" || p == "/api/metrics") {
    return Response{200, "text/plain; version=0.0.4; charset=utf-8", metrics_text(state_, fleet_),
                    ""};
  }
  if (!starts_with(p, "/api/") && p != "/githubReceivedAPush" && p != "/webhook") return web_file(p);
  if (p == "/api/repos") return repos();
  if (auto d = deployment_endpoint(request, auth::Principal{})) return *d;
  if (p == "/api/workers") return workers();
  if (p == "/api/queue") return queue();
  if (p == "/api/machines") return machines();
  if (p == "/api/audit") return audit_log(request);
  if (auto tokens = token_endpoint(request)) return *tokens;
  if (auto file = get_file(request)) return *file;
  if (starts_with(p, "/api/runs/")) {
    const std::string rest = p.substr(10);
    const std::string id = ends_with(rest, "/log") ? rest.substr(0, rest.size() - 4) : rest;
    if (!is_run_id(id)) return error(400, "not a run id (16 lowercase hex digits)");
    if (ends_with(rest, "/log")) return run_log(id, request);
    return run(id);
  }
  std::string repo, rest;
  if (split_repo_path(p, repo, rest)) {
    if (!state_.repos().count(repo)) return error(404, "no repo named '" + repo + "'");
    if (rest == "/branches") return branches(repo);
    if (auto r = test_history(state_, repo, rest, request.query)) return *r;
    if (starts_with(rest, "/branches/") && ends_with(rest, "/pins") && rest.size() > 15) {
      return pins(repo, rest.substr(10, rest.size() - 10 - 5));
    }
    if (starts_with(rest, "/branches/") && ends_with(rest, "/history")) {
      size_t limit = 100;
      if (auto it = request.query.find("limit"); it != request.query.end()) {
        const auto n = query_integer(it->second, 1, kMaxHistoryLimit);
        if (!n) return error(400, fmt::format("'limit' must be an integer from 1 to {}", kMaxHistoryLimit));
        limit = static_cast<size_t>(*n);
      }
      return history(repo, rest.substr(10, rest.size() - 10 - 8), limit);
    }
    if (starts_with(rest, "/commits/")) {
      const std::string tail = rest.substr(9);
      if (!is_commit_sha(tail.substr(0, tail.find('/')))) return error(400, "not a full commit id");
    }
    if (starts_with(rest, "/commits/") && ends_with(rest, "/runs")) {
      auto name = request.query.find("name");
      return commit_runs(repo, rest.substr(9, rest.size() - 9 - 5), name == request.query.end() ? "" : name->second);
    }
    if (starts_with(rest, "/branches/") && ends_with(rest, "/changes")) {
      auto test = request.query.find("test");
      return changes(repo, rest.substr(10, rest.size() - 10 - 8),
                     test == request.query.end() ? "" : test->second);
    }
    if (starts_with(rest, "/commits/")) return commit(repo, rest.substr(9));
  }
  return error(404, "no such endpoint: GET " + p);
}

Response Api::post(const Request& request, const auth::Principal& who) {
  const std::string& p = request.path;
  // JSON endpoints take JSON only: a cross-site page can POST text/plain or a form without the
  // browser asking first, but not application/json (issue 10, item 14). Uploads are not JSON.
  const bool json_endpoint = (starts_with(p, "/api/") && !starts_with(p, "/api/artifacts/")) ||
                             p == "/githubReceivedAPush" || p == "/webhook";
  if (json_endpoint && !is_json_content_type(request)) {
    return error(415, "the body must be sent with Content-Type: application/json");
  }
  if (auto d = deployment_endpoint(request, who)) return *d;
  if (p == "/api/refresh") {
    // With a webhook secret, a refresh needs the same proof as a push webhook: otherwise the
    // secret would protect nothing (anyone could make the server poll at will).
    // One who signed in (an editor's token or session: access_refusal checked the role) needs
    // no signature.
    const bool signed_in = who.via == "token" || who.via == "session";
    if (!signed_in && !webhook_authentic(request)) {
      return error(401, "with a webhook secret configured, a refresh must be signed as a webhook is");
    }
    refresh_();
    return ok({{"refreshing", true}});
  }
  if (p == "/webhook") return webhook(request);
  if (p == "/githubReceivedAPush" || p == "/api/webhooks/github")
    return host_webhook(request, false);
  if (p == "/api/webhooks/gitlab") return host_webhook(request, true);
  if (auto tokens = token_endpoint(request)) return *tokens;
  if (auto file = post_file(request)) return *file;
  if (starts_with(p, "/api/runs/") && ends_with(p, "/cancel")) {
    const std::string id = p.substr(10, p.size() - 10 - 7);
    if (!is_run_id(id)) return error(400, "not a run id (16 lowercase hex digits)");
    return cancel_run(state_, id);
  }
  const json body = json::parse(request.body, nullptr, false);
  if (!body.is_object()) return error(400, "the body must be a JSON object");
  std::string repo, rest;
  if (!split_repo_path(p, repo, rest)) return error(404, "no such endpoint: POST " + p);
  if (!state_.repos().count(repo)) return error(404, "no repo named '" + repo + "'");
  if (starts_with(rest, "/branches/") && ends_with(rest, "/test")) {
    if (!body.contains("enabled") || !body["enabled"].is_boolean()) return error(400, "'enabled' must be true or false");
    const auto depth = bounded_integer(body.value("depth", json(0)), 0, kMaxDepth);
    if (!depth) return error(400, fmt::format("'depth' must be an integer from 0 to {}", kMaxDepth));
    const std::string branch = rest.substr(10, rest.size() - 10 - 5);
    const Status s =
        state_.set_branch_under_test(repo, branch, body["enabled"].get<bool>(), static_cast<int>(*depth));
    if (!s.ok()) return state_.store_writable() ? error(404, s.error().message) : store_full();
    return ok({{"repo", repo}, {"branch", branch}, {"under_test", body["enabled"]}, {"depth", *depth}});
  }
  if (starts_with(rest, "/commits/")) {
    const std::string tail = rest.substr(9);
    const size_t slash = tail.find('/');
    const std::string sha = tail.substr(0, slash);
    if (!is_commit_sha(sha)) return error(400, "'" + sha + "' is not a full commit id");
    const std::string action = slash == std::string::npos ? "" : tail.substr(slash);
    const CommitState* c = state_.commit(repo, sha);
    if (c == nullptr) return error(404, "no commit " + sha + " in repo '" + repo + "'");
    if (action == "/targets") {
      if (!body.contains("name") || !body["name"].is_string()) return error(400, "'name' must be a test name");
      const auto runs = body.contains("runs") ? bounded_integer(body["runs"], 0, kMaxTargetRuns) : std::nullopt;
      if (!runs) return error(400, fmt::format("'runs' must be an integer from 0 to {}", kMaxTargetRuns));
      const std::string name = body["name"];
      const planner::PlannedObject* object = state_.object(repo, sha, name);
      if (object == nullptr) return error(404, "commit has no test named '" + name + "'");
      // A build runs until it succeeds or fails max_retries + 1 times: a target would change
      // nothing (it used to be accepted and ignored).
      if (object->kind == "build") {
        return error(400, "'" + name +
                              "' is a build: it has no target runs; retry a failed build "
                              "with POST .../commits/{sha}/retry");
      }
      const Status s = state_.set_target(repo, sha, name, static_cast<int>(*runs));
      if (!s.ok()) return store_full();
      return ok({{"name", name}, {"runs", *runs}});
    }
    if (action == "/retry") {
      if (!body.contains("name") || !body["name"].is_string())
        return error(400, "'name' must be an object name");
      const std::string name = body["name"];
      const Result<bool> retried = state_.retry(repo, sha, name);
      if (!retried.ok()) return error(404, retried.error().message);
      return ok({{"name", name}, {"retried", *retried}});
    }
    if (action == "/sets") {
      if (!body.contains("set") || !body["set"].is_string()) return error(400, "'set' must be a test set name");
      if (!body.contains("enabled") || !body["enabled"].is_boolean()) return error(400, "'enabled' must be true or false");
      const json sets = json::parse(c->row.test_sets_json, nullptr, false);
      if (!sets.is_object() || !sets.contains(body["set"].get<std::string>())) {
        return error(404, "commit has no test set named '" + body["set"].get<std::string>() + "'");
      }
      const Status s = state_.set_commit_set(repo, sha, body["set"], body["enabled"].get<bool>());
      if (!s.ok()) return store_full();
      return ok({{"set", body["set"]}, {"enabled", body["enabled"]}});
    }
  }
  return error(404, "no such endpoint: POST " + p);
}

// What the statistical bisection of a branch's head is doing (docs/api.md "search").
std::string Api::search_state(const store::BranchRow& b) const {
  if (!b.under_test || state_.extra_budget() <= 0) return "off";
  const ServerState::ExtraInFlight in_flight = state_.extra_in_flight(b.repo, b.name);
  if (in_flight.active + in_flight.queued > 0) return "searching";
  if (state_.extra_used(b.repo, b.name) >= state_.extra_budget()) return "budget_spent";
  const auto window =
      window_stats(state_, b.repo, state_.first_parent_history(b.repo, b.head, kAnalysisWindow));
  for (const auto& [name, t] : window->tests) {
    if (!t.failures) continue;
    for (const auto& change : t.analysis.changes) {
      if (change.range_probability >= state_.extra_confidence()) return "localised";
    }
  }
  return "idle";
}

json Api::branch_json(const store::BranchRow& b) const {
  const ServerState::ExtraInFlight in_flight = state_.extra_in_flight(b.repo, b.name);
  const CommitState* head = state_.commit(b.repo, b.head);
  return {
      {"name", b.name},
      {"head", b.head},
      {"under_test", b.under_test},
      {"depth", b.depth},
      {"extra_runs_used", state_.extra_used(b.repo, b.name)},
      {"extra_runs_budget", state_.extra_budget()},
      {"extra_runs_active", in_flight.active},
      {"extra_runs_queued", in_flight.queued},
      {"search", search_state(b)},
      {"head_error", head != nullptr && head->row.error ? json(*head->row.error) : json(nullptr)}};
}

Response Api::queue() const {
  json out = json::object();
  for (const auto& [kind, runs] : state_.queued_runs()) out[kind] = runs;
  return ok({{"queued", out}, {"active", state_.active_runs()}});
}

Response Api::repos() {
  json out = json::array();
  for (const auto& [name, path] : state_.repos()) {
    json branches = json::array();
    for (const auto& [key, b] : state_.branches()) {
      if (key.first == name) branches.push_back(branch_json(b));
    }
    out.push_back({{"name", name}, {"branches", branches}});
  }
  return ok(out);
}

Response Api::branches(const std::string& repo) {
  json out = json::array();
  for (const auto& [key, b] : state_.branches()) {
    if (key.first == repo) out.push_back(branch_json(b));
  }
  return ok(out);
}

Response Api::changes(const std::string& repo, const std::string& branch, const std::string& test) {
  auto b = state_.branches().find({repo, branch});
  if (b == state_.branches().end()) return error(404, "no branch '" + branch + "' in repo '" + repo + "'");
  // fnmatch backtracks on every '*': a long pattern of many stars could hold the io thread.
  if (test.size() > 256 || std::count(test.begin(), test.end(), '*') > kMaxGlobStars) {
    return error(400, fmt::format("'test' must be a glob of at most 256 bytes and {} '*'", kMaxGlobStars));
  }
  return ok(branch_changes(state_, repo, b->second.head, test, commit_link_));
}

Response Api::run(const std::string& id) {
  auto r = state_.store().run(id);
  if (!r.ok()) return error(500, r.error().message);
  if (!r->has_value()) return error(404, "no run " + id);
  return ok(run_json(**r, state_.store(), true));
}

Response Api::commit_runs(const std::string& repo, const std::string& sha, const std::string& name) {
  const CommitState* c = state_.commit(repo, sha);
  if (c == nullptr) return error(404, "no commit " + sha + " in repo '" + repo + "'");
  std::set<std::string> hashes;
  for (const auto& o : c->planned.objects) {
    if (name.empty() || o.name == name) hashes.insert(o.hash);
  }
  if (!name.empty() && hashes.empty()) return error(404, "commit has no object named '" + name + "'");
  auto runs = state_.store().runs_of({hashes.begin(), hashes.end()});
  if (!runs.ok()) return error(500, runs.error().message);
  json out = json::array();
  for (const auto& r : *runs) out.push_back(run_json(r, state_.store(), false));
  return ok(out);
}

Response Api::run_log(const std::string& id, const Request& request) {
  auto r = state_.store().run(id);
  if (!r.ok() || !r->has_value()) return error(404, "no run " + id);
  // Artifacts in S3: a download (a link the browser follows, or ?download=1) of a recorded run's
  // log goes to S3 through a presigned URL; the UI's own fetches (CORS) stay here.
  const auto mode = request.headers.find("sec-fetch-mode");
  const auto download = request.query.find("download");
  if (state_.s3() != nullptr && (*r)->state != store::RunState::kRunning &&
      std::filesystem::exists(state_.log_path(id)) &&
      ((mode != request.headers.end() && mode->second == "navigate") ||
       (download != request.query.end() && download->second == "1"))) {
    return redirect(state_.s3()->presign("runs/" + id + "/log.txt"));
  }
  Response res{200, "text/plain; charset=utf-8", "", ""};
  if (std::filesystem::exists(state_.log_path(id))) res.file = state_.log_path(id);
  return res;
}

Response Api::workers() {
  json out = json::array();
  for (const auto& [id, w] : state_.workers()) {
    json running = json::array();
    json runs = json::array();
    int used = 0;
    for (const auto& [run_id, res] : w.running) {
      running.push_back(run_id);
      used += res.first;
      if (const store::RunRow* r = state_.active_run(run_id)) {
        runs.push_back({{"id", r->id},
                        {"repo", r->repo},
                        {"commit", r->commit},
                        {"name", r->name},
                        {"kind", r->kind},
                        {"started", r->started},
                        {"extra", !r->purpose.empty()}});
      }
    }
    // A deployment holds its cores while it lives.
    json deployments = json::array();
    for (const auto& [dep_id, d] : state_.deployments()) {
      if (d.row.worker != id || (d.row.state != "starting" && d.row.state != "running")) continue;
      deployments.push_back(dep_id);
      used += d.cores;
    }
    json recent = json::array();
    for (const store::RunRow& r : w.recent) {
      recent.push_back({{"id", r.id},
                        {"repo", r.repo},
                        {"commit", r.commit},
                        {"name", r.name},
                        {"kind", r.kind},
                        {"state", store::to_string(r.state)},
                        {"started", r.started},
                        {"ended", r.ended}});
    }
    out.push_back({{"id", id},
                   {"host", w.host},
                   {"connected", w.socket != nullptr},
                   {"cores", w.cores},
                   {"ram_gb", w.ram_gb},
                   {"cores_used", used},
                   {"running", running},
                   {"deployments", deployments},
                   {"runs", runs},
                   {"recent", recent},
                   {"platforms", w.platforms},
                   {"docker", w.docker},
                   {"ami", w.ami},
                   {"token", w.token}});
  }
  return ok(out);
}

Response Api::web_file(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path root = web_dir_;
  std::error_code ec;
  if (!fs::is_regular_file(root / "index.html", ec)) {
    return Response{404, "text/plain; charset=utf-8",
                    "The web UI is not built: run scripts/web-setup (looked in " + web_dir_ + ")\n", ""};
  }
  for (const auto& segment : fs::path(path)) {
    if (segment == "..") return Response{404, "text/plain; charset=utf-8", "no such file\n", ""};
  }
  const fs::path file = root / fs::path(path).relative_path();
  if (path != "/" && fs::is_regular_file(file, ec)) return Response{200, content_type_of(file), "", file.string()};
  // Built assets that are missing are errors; every other path is a page of the UI (SPA routing).
  if (starts_with(path, "/assets/")) return Response{404, "text/plain; charset=utf-8", "no such file\n", ""};
  return Response{200, "text/html; charset=utf-8", "", (root / "index.html").string()};
}

}  // namespace testlooper::server
