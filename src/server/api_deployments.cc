// Deployments (docs/api.md "Deployments"): boot one of a commit's deployments, list them, look at
// one, shut it down. Its terminal is a WebSocket (api_sockets.cc).
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/ids.h"
#include "server/api.h"
#include "server/api_json.h"

namespace testlooper::server {
namespace {

using nlohmann::json;
using reply::error;
using reply::ok;

json deployment_json(const DeploymentState& d) {
  const store::DeploymentRow& r = d.row;
  return {{"id", r.id},
          {"repo", r.repo},
          {"commit", r.commit},
          {"name", r.name},
          {"state", r.state},
          {"worker", r.worker},
          {"booted_by", r.booted_by},
          {"booted", r.booted},
          {"started", r.started},
          {"stopped", r.stopped},
          {"detail", r.detail},
          {"cores", d.cores},
          {"ram_gb", d.ram_gb},
          {"viewers", d.viewers.size()},
          {"debug_run", r.debug_run}};
}

// A deployment's name as a URL segment holds it (a '/' encoded as %2F, decoded already): 1 to
// 200 printable characters.
bool is_object_name(const std::string& name) {
  if (name.empty() || name.size() > 200) return false;
  for (const char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

}  // namespace

std::optional<Response> Api::deployment_endpoint(const Request& request,
                                                 const auth::Principal& who) {
  const std::string& p = request.path;
  const std::string prefix = "/api/deployments";
  if (request.method == "GET" && p == prefix) {
    json list = json::array();
    const auto& all = state_.deployments();
    for (auto it = all.rbegin(); it != all.rend(); ++it)
      list.push_back(deployment_json(it->second));
    std::sort(list.begin(), list.end(), [](const json& a, const json& b) {
      return a["booted"].get<double>() > b["booted"].get<double>();
    });
    return ok({{"deployments", list}});
  }
  if (p.starts_with(prefix + "/")) {
    std::string id = p.substr(prefix.size() + 1);
    const bool shutdown = id.ends_with("/shutdown");
    if (shutdown) id.resize(id.size() - 9);
    if (!is_run_id(id)) return error(400, "not a deployment id (16 lowercase hex digits)");
    if (request.method == "GET" && !shutdown) {
      auto d = state_.deployments().find(id);
      if (d == state_.deployments().end()) return error(404, "no deployment " + id);
      return ok(deployment_json(d->second));
    }
    if (request.method == "POST" && shutdown) {
      const Result<bool> stopped = state_.shutdown_deployment(id, "shut down by " + who.name);
      if (!stopped.ok()) return error(404, stopped.error().message);
      return ok(deployment_json(state_.deployments().at(id)));
    }
    return error(404, "no such endpoint: " + request.method + " " + p);
  }
  if (request.method == "POST" && p.starts_with("/api/runs/") && p.ends_with("/debug")) {
    const std::string run_id = p.substr(10, p.size() - 10 - 6);
    if (!is_run_id(run_id)) return error(400, "not a run id (16 lowercase hex digits)");
    if (!state_.store_writable()) return reply::store_full();
    const Result<store::DeploymentRow> booted = state_.debug_run(run_id, who.name);
    if (!booted.ok()) {
      if (!state_.store_writable()) return reply::store_full();
      return error(404, booted.error().message);
    }
    return ok({{"id", booted->id}, {"state", state_.deployments().at(booted->id).row.state}});
  }
  // POST /api/repos/{repo}/commits/{sha}/deployments/{name}/boot
  const std::string repos = "/api/repos/", commits = "/commits/", deployments = "/deployments/";
  if (request.method != "POST" || !p.starts_with(repos) || !p.ends_with("/boot"))
    return std::nullopt;
  const size_t c = p.find(commits, repos.size());
  if (c == std::string::npos) return std::nullopt;
  const size_t d = p.find(deployments, c + commits.size());
  if (d == std::string::npos) return std::nullopt;
  const std::string repo = p.substr(repos.size(), c - repos.size());
  const std::string sha = p.substr(c + commits.size(), d - c - commits.size());
  const std::string name = p.substr(d + deployments.size(), p.size() - 5 - d - deployments.size());
  if (!state_.repos().count(repo)) return error(404, "no repo named '" + repo + "'");
  if (!is_commit_sha(sha)) return error(400, "'" + sha + "' is not a full commit id");
  if (!is_object_name(name)) return error(400, "not a deployment name");
  if (state_.commit(repo, sha) == nullptr)
    return error(404, "no commit " + sha + " in repo '" + repo + "'");
  if (!state_.store_writable()) return reply::store_full();
  const Result<store::DeploymentRow> booted = state_.boot_deployment(repo, sha, name, who.name);
  if (!booted.ok()) {
    if (!state_.store_writable()) return reply::store_full();
    return error(404, booted.error().message);
  }
  const auto& all = state_.deployments();
  auto it = all.find(booted->id);
  return ok(
      {{"id", booted->id}, {"state", it == all.end() ? booted->state : it->second.row.state}});
}

}  // namespace testlooper::server
