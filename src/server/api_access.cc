// Who a request is from and whether they may make it (docs/configuration.md "Access",
// docs/security.md "Threat model"). The one place every endpoint's access is decided.
#include <fmt/format.h>

#include <optional>
#include <string>

#include "server/api.h"
#include "server/api_json.h"
#include "server/tokens.h"
#include "server/worker_token.h"

namespace testlooper::server {
namespace {

using auth::Role;
using nlohmann::json;
using reply::error;

constexpr int64_t kMaxAuditLimit = 1000;
constexpr size_t kMaxAuditPath = 1024;  // a longer path is kept cut

bool carries_credentials(const Request& request) {
  return request.headers.count("authorization") > 0;
}

bool is_webhook(const std::string& path) {
  return path == "/webhook" || path == "/githubReceivedAPush" || path == "/api/webhooks/github" ||
         path == "/api/webhooks/gitlab";
}

bool is_worker_endpoint(const std::string& path) {
  return path == "/api/worker" || path.starts_with("/api/source/") ||
         path.starts_with("/api/artifacts/");
}

// A 401 that says what is needed; clients are told to send a bearer token.
Response unauthenticated(const std::string& message) {
  Response r = error(401, message);
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

}  // namespace

auth::Principal Api::principal(const Request& request) {
  // Sign-in: the session cookie of a signed-in browser, in mode oauth only.
  if (options_.auth_mode == auth::Mode::kOAuth) {
    if (auto who = session_principal(request)) return *who;
  }
  const std::string text = bearer_token(request.headers);
  if (!text.empty()) {
    if (const auto token = state_.find_token(text)) {
      if (const auto role = auth::parse_role(token->role)) {
        return auth::Principal{*role, "token:" + token->name, "token", ""};
      }
    }
  }
  // Authentication off: today's open behaviour (a loopback server only).
  if (options_.auth_mode == auth::Mode::kNone)
    return auth::Principal{Role::kAdmin, "open", "open", ""};
  return auth::Principal{};
}

// The table of docs/api.md "Access". Paths are compared exactly as get()/post() route them.
Role Api::needed_role(const Request& request) const {
  const std::string& p = request.path;
  // A deployment's terminal is a shell on a worker: as much as an editor may do.
  if (p.starts_with("/api/deployments/") &&
      (p.ends_with("/terminal") || p.find("/ports/") != std::string::npos)) {
    return Role::kEditor;
  }
  if (request.method == "GET" || request.method == "HEAD") {
    if (p == "/metrics") return Role::kViewer;             // Prometheus' scrape (a viewer token)
    if (!p.starts_with("/api/")) return Role::kAnonymous;  // the web UI must load to sign in
    if (p == "/api/session") return Role::kAnonymous;      // who is signed in (oauth part)
    if (is_worker_endpoint(p)) return Role::kWorker;
    if (p == "/api/audit" || p == "/api/tokens") return Role::kAdmin;
    return Role::kViewer;  // every other GET, the event socket and live logs
  }
  if (is_webhook(p) || p.starts_with("/auth/")) return Role::kAnonymous;  // HMAC; sign-in
  if (p.starts_with("/api/artifacts/")) return Role::kWorker;
  if (p == "/api/tokens" || p.starts_with("/api/tokens/")) return Role::kAdmin;
  if (pin_path(p)) return Role::kEditor;  // moves a pin: a commit pushed to the branch
  // A refresh signed as a webhook is: post() checks the signature against the body.
  if (p == "/api/refresh" && !webhook_secret_.empty() &&
      (request.headers.count("x-hub-signature-256") || request.headers.count("x-gitlab-token"))) {
    return Role::kAnonymous;
  }
  return Role::kEditor;  // branches under test, targets, sets, retry, cancel, refresh
}

std::optional<Response> Api::access_refusal(const Request& request, const auth::Principal& who) {
  // A cookie's state-changing request needs the session's CSRF token.
  if (auto refusal = csrf_refusal(request, who)) return refusal;
  if (carries_credentials(request)) {
    if (const int wait = failures_.blocked_for(request.client, now_seconds()); wait > 0) {
      Response r = error(429, fmt::format("too many failed authentications from this address; "
                                          "try again in {} s",
                                          wait));
      r.headers.emplace_back("Retry-After", std::to_string(wait));
      return r;
    }
  }
  const Role need = needed_role(request);
  if (need == Role::kAnonymous) return std::nullopt;
  if (need == Role::kWorker) {
    if (who.role == Role::kWorker) return std::nullopt;
    return unauthenticated("this endpoint is for workers: a worker token is missing or wrong");
  }
  if (options_.auth_mode == auth::Mode::kNone) return std::nullopt;
  if (need == Role::kViewer && options_.public_read && !carries_credentials(request))
    return std::nullopt;
  if (auth::allows(who.role, need)) return std::nullopt;
  const std::string role(auth::to_string(need));
  if (who.role == Role::kAnonymous) {
    return unauthenticated(carries_credentials(request)
                               ? "the token is not valid (unknown or revoked); this needs the " +
                                     role + " role"
                               : "authentication required: this needs the " + role +
                                     " role (Authorization: Bearer TOKEN)");
  }
  return error(403, "forbidden: this needs the " + role + " role; " + who.name + " has the " +
                        std::string(auth::to_string(who.role)) + " role");
}

void Api::note_refusal(const Request& request, const auth::Principal& who,
                       const Response& refusal) {
  // A valid token of the wrong kind (a user's on a worker endpoint) is no guess.
  const bool authenticated = who.via == "token" || who.via == "session";
  if (refusal.status != 401 || !carries_credentials(request) || authenticated ||
      request.client.empty()) {
    return;
  }
  failures_.failed(request.client, now_seconds());
}

void Api::audit(const Request& request, const auth::Principal& who, int status) {
  if (request.method == "GET" || request.method == "HEAD") return;
  // A worker's uploads are runs, not decisions.
  if (request.path.starts_with("/api/artifacts/")) return;
  // The path only: a query string may hold a secret.
  const store::AuditRow row{0,
                            now_seconds(),
                            who.name,
                            std::string(auth::to_string(who.role)),
                            who.via,
                            request.method,
                            request.path.substr(0, kMaxAuditPath),
                            request.client,
                            status};
  // A log that cannot be written must not refuse the request it records (the store's own
  // failures are handled where results are written).
  (void)state_.store().add_audit(row);
}

Response Api::audit_log(const Request& request) {
  int64_t limit = 100, before = 0;
  if (auto it = request.query.find("limit"); it != request.query.end()) {
    const auto n = reply::query_integer(it->second, 1, kMaxAuditLimit);
    if (!n)
      return error(400, fmt::format("'limit' must be an integer from 1 to {}", kMaxAuditLimit));
    limit = *n;
  }
  if (auto it = request.query.find("before"); it != request.query.end()) {
    const auto n = reply::query_integer(it->second, 1, INT64_MAX / 2);
    if (!n) return error(400, "'before' must be a positive integer (an entry's id)");
    before = *n;
  }
  auto rows = state_.store().audit(limit, before);
  if (!rows.ok()) return error(500, "cannot read the audit log");
  json out = json::array();
  for (const store::AuditRow& a : *rows) {
    out.push_back({{"id", a.id},
                   {"at", a.at},
                   {"who", a.who},
                   {"role", a.role},
                   {"via", a.via},
                   {"method", a.method},
                   {"path", a.path},
                   {"client", a.client},
                   {"status", a.status}});
  }
  return reply::ok(out);
}

std::optional<Response> Api::token_endpoint(const Request& request) {
  const std::string& p = request.path;
  if (request.method == "GET" && p == "/api/tokens") {
    auto tokens = state_.store().tokens();
    if (!tokens.ok()) return error(500, "cannot read the tokens");
    json out = json::array();
    for (const store::TokenRow& t : *tokens) {
      out.push_back(
          {{"name", t.name}, {"role", t.role}, {"created", t.created}, {"last_used", t.last_used}});
    }
    return reply::ok(out);
  }
  if (request.method != "POST" || !p.starts_with("/api/tokens")) return std::nullopt;
  if (p == "/api/tokens") {
    const json body = json::parse(request.body, nullptr, false);
    if (!body.is_object() || !body.contains("name") || !body["name"].is_string()) {
      return error(400, "expected {\"name\": NAME, \"role\": ROLE}");
    }
    const std::string name = body["name"].get<std::string>();
    if (const std::string why = token_name_error(name); !why.empty()) return error(400, why);
    const json role_field = body.value("role", json());
    if (!role_field.is_string() || !auth::parse_role(role_field.get<std::string>())) {
      return error(400, "'role' must be viewer, editor, admin or worker");
    }
    const std::string role = role_field.get<std::string>();
    Result<std::string> token = make_token(state_.store(), name, role, now_seconds());
    if (!token.ok()) return write_failed("a new token", token.error());
    if (token->empty()) return error(409, "a token named '" + name + "' exists already");
    return reply::ok({{"name", name}, {"role", role}, {"token", *token}});
  }
  const std::string prefix = "/api/tokens/", suffix = "/revoke";
  if (!p.ends_with(suffix) || p.size() <= prefix.size() + suffix.size()) return std::nullopt;
  const std::string name = p.substr(prefix.size(), p.size() - prefix.size() - suffix.size());
  if (!auth::is_token_name(name)) return error(400, "not a token name");
  if (const std::string why = revoke_error(name); !why.empty()) return error(400, why);
  Result<bool> revoked = state_.store().revoke_token(name);
  if (!revoked.ok()) return write_failed("a token's revocation", revoked.error());
  if (!*revoked) return error(404, "no token named '" + name + "'");
  return reply::ok({{"name", name}, {"revoked", true}});
}

}  // namespace testlooper::server
