// The API's WebSockets (docs/api.md "WebSockets"): the worker socket, the event stream and live
// logs, and what is refused before a connection is upgraded or a body is read.
#include <cctype>
#include <optional>
#include <string>

#include "core/ids.h"
#include "server/api.h"
#include "server/api_json.h"
#include "server/event_log.h"
#include "server/port_proxy.h"
#include "server/worker_token.h"

namespace testlooper::server {
namespace {

using reply::error;

// The run id of a live-log path "/api/runs/{id}/log/live" (not yet checked against the run id
// grammar), or nullopt for any other path.
std::optional<std::string> live_log_id(const std::string& path) {
  const std::string prefix = "/api/runs/", suffix = "/log/live";
  if (path.size() < prefix.size() + suffix.size() || !path.starts_with(prefix) ||
      !path.ends_with(suffix)) {
    return std::nullopt;
  }
  return path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
}

// The deployment id of a terminal path "/api/deployments/{id}/terminal" (not yet checked against
// the id grammar), or nullopt for any other path.
std::optional<std::string> terminal_id(const std::string& path) {
  const std::string prefix = "/api/deployments/", suffix = "/terminal";
  if (path.size() < prefix.size() + suffix.size() || !path.starts_with(prefix) ||
      !path.ends_with(suffix)) {
    return std::nullopt;
  }
  return path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
}

bool is_websocket_upgrade(const Request& head) {
  auto upgrade = head.headers.find("upgrade");
  if (upgrade == head.headers.end() || upgrade->second.size() != 9) return false;
  for (size_t i = 0; i < 9; ++i) {
    if (std::tolower(static_cast<unsigned char>(upgrade->second[i])) != "websocket"[i])
      return false;
  }
  return true;
}

}  // namespace

Api::~Api() {
  stop_sign_ins();
  state_.stop_log_viewers();
}

std::optional<Response> Api::refuse_early(const Request& head) {
  const std::string& p = head.path;
  const auth::Principal who = principal(head);
  if (auto refusal = access_refusal(head, who)) {
    note_refusal(head, who, *refusal);
    audit(head, who, refusal->status);
    // A deployment's terminal or port refused is in the operator log too.
    if (const auto port = parse_port_path(p)) {
      log_port_use(who.name, *port, is_websocket_upgrade(head) ? "WEBSOCKET" : head.method,
                   refusal->status);
    } else if (const auto id = terminal_id(p)) {
      log_event("info", "terminal_opened",
                {{"who", who.name},
                 {"deployment", id->substr(0, 64)},
                 {"status", std::to_string(refusal->status)}});
    }
    return *refusal;
  }
  if (!is_websocket_upgrade(head)) {
    if (head.method == "POST" && p.starts_with("/api/artifacts/")) return upload_refusal(head);
    return std::nullopt;
  }
  if (p == "/api/worker") return std::nullopt;  // access_refusal wanted a worker token
  if (p == "/api/events") return std::nullopt;
  if (const auto id = live_log_id(p)) {
    if (!is_run_id(*id)) return error(400, "not a run id (16 lowercase hex digits)");
    return std::nullopt;
  }
  if (const auto id = terminal_id(p)) {
    if (!is_run_id(*id)) return error(400, "not a deployment id (16 lowercase hex digits)");
    if (!state_.deployments().count(*id)) return error(404, "no deployment " + *id);
    return std::nullopt;
  }
  if (const auto port = parse_port_path(p)) {
    if (!is_run_id(port->id)) return error(400, "not a deployment id (16 lowercase hex digits)");
    if (auto target = state_.deployment_port(port->id, port->name); !target.ok())
      return error(404, target.error().message);
    return std::nullopt;
  }
  return error(404, "no such WebSocket: " + p);
}

// Checked again here (refuse_early ran on the head): a Handler that is not driven by HttpServer
// must not be able to skip it.
bool Api::on_open(const std::shared_ptr<Socket>& socket, const Request& request) {
  const std::string& p = request.path;
  if (p == "/api/worker") {
    const auto token = state_.find_token(bearer_token(request.headers));
    if (!token || token->role != auth::to_string(auth::Role::kWorker)) {
      socket->close("unauthorized: the worker token is missing or wrong");
      return false;
    }
    state_.note_worker_address(socket->id(), request.client);
    state_.worker_connected(socket, *token);
    return true;
  }
  if (p == "/api/events") {
    state_.add_event_socket(socket);
    return true;
  }
  if (const auto id = live_log_id(p); id && is_run_id(*id)) {
    state_.add_log_socket(*id, socket);
    return true;
  }
  if (const auto id = terminal_id(p); id && is_run_id(*id)) {
    const Status added = state_.add_terminal_viewer(*id, socket);
    LogFields fields = {{"who", principal(request).name},
                        {"deployment", *id},
                        {"status", added.ok() ? "101" : "404"}};
    if (!added.ok()) fields.emplace_back("detail", added.error().message);
    log_event("info", "terminal_opened", fields);
    if (!added.ok()) {
      socket->close(added.error().message);
      return false;
    }
    return true;
  }
  if (parse_port_path(p)) return open_port_socket(socket, request);
  socket->close("no such WebSocket");
  return false;
}

void Api::on_message(const std::shared_ptr<Socket>& socket, const std::string& text) {
  if (socket->path() == "/api/worker") return state_.worker_message(socket, text);
  if (auto bridge = port_bridges_.find(socket->id()); bridge != port_bridges_.end())
    return bridge->second->send(text, false);
  if (terminal_id(socket->path())) state_.terminal_message(socket, text, false);
}

void Api::on_binary(const std::shared_ptr<Socket>& socket, const std::string& bytes) {
  if (auto bridge = port_bridges_.find(socket->id()); bridge != port_bridges_.end())
    return bridge->second->send(bytes, true);
  if (terminal_id(socket->path())) state_.terminal_message(socket, bytes, true);
}

void Api::on_close(const std::shared_ptr<Socket>& socket) {
  if (socket->path() == "/api/worker") state_.worker_disconnected(socket);
  if (auto bridge = port_bridges_.find(socket->id()); bridge != port_bridges_.end()) {
    bridge->second->close();
    port_bridges_.erase(bridge);
  }
  state_.remove_socket(socket);
}

}  // namespace testlooper::server
