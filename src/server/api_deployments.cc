// Deployments (docs/api.md "Deployments"): boot one of a commit's deployments, list them, look at
// one, shut it down, reach its exposed ports. Its terminal is a WebSocket (api_sockets.cc).

// clang-format off: before Boost.Asio, whose awaitable.hpp needs std::exchange under C++20.
#include <utility>
// clang-format on

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include <fmt/format.h>

#include <cctype>
#include <chrono>
#include <map>

#include "core/ids.h"
#include "server/api.h"
#include "server/api_json.h"

namespace testlooper::server {
namespace {

using nlohmann::json;
using reply::error;
using reply::ok;

// The names of the ports object `name` of a commit exposes (portExpose).
json port_names(const ServerState& state, const std::string& repo, const std::string& sha,
                const std::string& name) {
  json out = json::array();
  if (state.object(repo, sha, name) == nullptr) return out;
  const json d = json::parse(state.definition(repo, sha, name), nullptr, false);
  const json ports = d.is_object() ? d.value("portExpose", json::object()) : json::object();
  if (!ports.is_object()) return out;
  for (const auto& [port, number] : ports.items()) out.push_back(port);
  return out;
}

json deployment_json(const DeploymentState& d, const ServerState& state) {
  const store::DeploymentRow& r = d.row;
  return {{"id", r.id},
          {"ports", port_names(state, r.repo, r.commit, r.name)},
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

// `query` as a query string again ("" when empty).
std::string query_string(const std::map<std::string, std::string>& query) {
  std::string out;
  for (const auto& [k, v] : query) {
    for (const std::string* part : {&k, &v}) {
      if (part == &v) out += '=';
      for (const unsigned char c : *part) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
          out += static_cast<char>(c);
        } else {
          out += fmt::format("%{:02X}", c);
        }
      }
    }
    out += '&';
  }
  if (!out.empty()) out.pop_back();  // the last '&'
  return out.empty() ? "" : "?" + out;
}

// One HTTP/1.1 request to host:port, at most 30 s, an answer of at most kMaxBodyBytes.
Response forward(const std::string& host, int port, const std::string& method,
                 const std::string& target, const Request& request) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  try {
    boost::asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(30));
    boost::asio::ip::tcp::resolver resolver(io);
    stream.connect(resolver.resolve(host, std::to_string(port)));
    http::request<http::string_body> out(method == "HEAD"   ? http::verb::head
                                         : method == "POST" ? http::verb::post
                                                            : http::verb::get,
                                         target, 11);
    out.set(http::field::host, host + ":" + std::to_string(port));
    for (const char* name : {"content-type", "accept", "accept-language"}) {
      auto h = request.headers.find(name);
      if (h != request.headers.end()) out.set(name, h->second);
    }
    out.body() = request.body;
    out.prepare_payload();
    http::write(stream, out);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxBodyBytes);
    if (method == "HEAD") parser.skip(true);
    http::read(stream, buffer, parser);
    const auto& in = parser.get();
    Response r;
    r.status = static_cast<int>(in.result_int());
    auto type = in.find(http::field::content_type);
    r.content_type = type == in.end() ? "application/octet-stream" : std::string(type->value());
    r.body = in.body();
    for (const auto field : {http::field::location, http::field::cache_control}) {
      auto h = in.find(field);
      if (h != in.end()) r.headers.emplace_back(std::string(h->name_string()), std::string(h->value()));
    }
    return r;
  } catch (const std::exception& e) {
    return error(502, std::string("the deployment's port did not answer: ") + e.what());
  }
}

}  // namespace

bool Api::proxy_port(const Request& request, Completion& done) {
  const std::string prefix = "/api/deployments/", ports = "/ports/";
  const std::string& p = request.path;
  if (!p.starts_with(prefix)) return false;
  const size_t at = p.find(ports, prefix.size());
  if (at == std::string::npos) return false;
  auto answer = [&done](Response r) {
    done([r = std::move(r)] { return r; });
    return true;
  };
  if (auto refusal = access_refusal(request, principal(request))) return answer(*refusal);
  const std::string id = p.substr(prefix.size(), at - prefix.size());
  const std::string rest = p.substr(at + ports.size());
  const size_t slash = rest.find('/');
  const std::string name = rest.substr(0, slash);
  const std::string path = slash == std::string::npos ? "/" : rest.substr(slash);
  if (!is_run_id(id)) return answer(error(400, "not a deployment id (16 lowercase hex digits)"));
  if (request.method != "GET" && request.method != "HEAD" && request.method != "POST")
    return answer(error(405, "a deployment's port is reached with GET, HEAD or POST"));
  if (name.empty() || !is_object_name(name)) return answer(error(400, "not a port name"));
  const Result<ServerState::PortTarget> target = state_.deployment_port(id, name);
  if (!target.ok()) return answer(error(404, target.error().message));
  const std::string method = request.method;
  const std::string url = path + query_string(request.query);
  const bool running = start_thread(
      port_proxies_, [host = target->host, port = target->port, method, url, request,
                      done](const std::atomic<bool>&) {
        Response r = forward(host, port, method, url, request);
        done([r = std::move(r)] { return r; });
      });
  if (!running) return answer(error(503, "too many requests to deployments' ports; try again"));
  return true;
}

std::optional<Response> Api::deployment_endpoint(const Request& request,
                                                 const auth::Principal& who) {
  const std::string& p = request.path;
  const std::string prefix = "/api/deployments";
  if (request.method == "GET" && p == prefix) {
    json list = json::array();
    const auto& all = state_.deployments();
    for (auto it = all.rbegin(); it != all.rend(); ++it)
      list.push_back(deployment_json(it->second, state_));
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
      return ok(deployment_json(d->second, state_));
    }
    if (request.method == "POST" && shutdown) {
      const Result<bool> stopped = state_.shutdown_deployment(id, "shut down by " + who.name);
      if (!stopped.ok()) return error(404, stopped.error().message);
      return ok(deployment_json(state_.deployments().at(id), state_));
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
