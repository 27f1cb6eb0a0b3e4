// The JSON API and WebSocket endpoints (docs/api.md) on top of ServerState. Runs on the io
// thread. Errors are `{"error": message}` with a 4xx status, and a rejected request changes
// nothing.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "auth/auth.h"
#include "auth/failure_limiter.h"
#include "core/error.h"
#include "server/http.h"
#include "server/oauth.h"
#include "server/pins.h"
#include "server/server.h"
#include "server/state.h"

namespace testlooper::server {

class PortBridge;  // server/port_proxy.h

class Api : public Handler {
 public:
  // `refresh` asks the git watcher to look now. `web_dir` holds the built web UI (web/dist),
  // served for every GET outside /api/; "" = the web/dist folder beside the binary's folder.
  Api(ServerState& state, std::function<void()> refresh, std::string webhook_secret,
      std::string web_dir = "");
  // Stops the live-log streams (ServerState::stop_log_viewers) before the HTTP server goes.
  ~Api() override;

  // The access settings (ServerOptions' "Access" fields; docs/configuration.md "Access"), given
  // before the server runs; the default is authentication off.
  void set_access_options(const ServerOptions& options);
  // Git hosting (GitHub or GitLab): `fetch` asks the mirrors to fetch one repo now (returns at
  // once); a push webhook that names a repo calls it. Unset (local repos): webhooks call
  // `refresh`, as /api/refresh does.
  void set_fetch(std::function<void(const std::string& repo)> fetch) { fetch_ = std::move(fetch); }

  // The pin mover behind the pins endpoints (api_pins.cc), given before the server runs and
  // outliving every request; without one they answer 503.
  void set_pin_mover(PinMover* mover) { pin_mover_ = mover; }
  // The host's page of a commit ("" when unknown), linked from the changes (GitHub/GitLab).
  void set_commit_link(
      std::function<std::string(const std::string& repo, const std::string& sha)> link) {
    commit_link_ = std::move(link);
  }
  // The fleet behind GET /api/machines (api_machines.cc), outliving every request; without one
  // the fleet is off and the local workers are shown.
  void set_fleet(const FleetController* fleet) { fleet_ = fleet; }

  Response handle(const Request& request) override;
  // GET /auth/callback (api_session.cc): the sign-in's calls to the provider run on a thread of
  // their own, so the io thread serves everyone else meanwhile. POST .../pins/{name}
  // (api_pins.cc): the commit and push run on the pin mover's thread.
  bool handle_async(const Request& request, Completion done) override;
  // WebSocket upgrades that on_open would refuse (no worker token, not a run id, no such
  // socket) and uploads without the worker token are refused here, before any upgrade or body.
  std::optional<Response> refuse_early(const Request& head) override;
  bool on_open(const std::shared_ptr<Socket>& socket, const Request& request) override;
  void on_message(const std::shared_ptr<Socket>& socket, const std::string& text) override;
  void on_binary(const std::shared_ptr<Socket>& socket, const std::string& bytes) override;
  void on_close(const std::shared_ptr<Socket>& socket) override;
  // Uploads (POST /api/artifacts/...) are streamed to a file under the artifact store's tmp/.
  std::string body_file_for(const Request& head) override;

 private:
  // Who made `request` (api_access.cc): the owner of its `Authorization: Bearer` API token, the
  // user of its session cookie, or anonymous; with authentication off (auth::Mode::kNone)
  // everyone is an "open" principal that may do everything but what needs a worker token.
  auth::Principal principal(const Request& request);
  // Why `who` may not make `request` (401 without credentials that are enough, 403 with a role
  // too low or a missing CSRF token, 429 after too many failed authentications), or nullopt.
  // Called on every request's head (refuse_early) and again in handle(): a refused request
  // changes nothing.
  std::optional<Response> access_refusal(const Request& request, const auth::Principal& who);
  // The role `request`'s endpoint needs (docs/api.md "Access": the one table of it);
  // kAnonymous for what is open to all.
  auth::Role needed_role(const Request& request) const;
  // Counts a failed authentication (a 401 to a request whose credentials are not valid: `who`
  // is not signed in) against its client address (auth::FailureLimiter).
  void note_refusal(const Request& request, const auth::Principal& who, const Response& refusal);
  // Records `request` in the audit log when it is a state-changing one (a POST, a webhook;
  // not a worker's upload), answered `status`.
  void audit(const Request& request, const auth::Principal& who, int status);
  // GET /api/audit?limit=N&before=ID (admin), newest first.
  Response audit_log(const Request& request);
  // Token management (admin): GET /api/tokens, POST /api/tokens {name, role},
  // POST /api/tokens/{name}/revoke; nullopt for any other request.
  std::optional<Response> token_endpoint(const Request& request);

  // Sign-in and sessions (api_session.cc): /auth/login, /auth/logout and /api/session (the
  // callback is handle_async); nullopt for any other request.
  std::optional<Response> session_endpoint(const Request& request, const auth::Principal& who);
  Response sign_in_start(const Request& request);
  Response sign_out(const Request& request);
  Response session_json(const auth::Principal& who) const;
  // The callback's last step, on the io thread: a session for who signed in, or the error.
  Response sign_in_finish(const Result<SignedIn>& result);
  // The principal of the request's session cookie (a signed-in browser), or nullopt.
  std::optional<auth::Principal> session_principal(const Request& request);
  // 403 for a state-changing request authenticated by cookie without the session's CSRF token
  // in X-CSRF-Token, else nullopt.
  std::optional<Response> csrf_refusal(const Request& request, const auth::Principal& who) const;
  // Set-Cookie values: `name`=`value` for `seconds` (0 clears it) on `path`.
  std::string cookie(const std::string& name, const std::string& value, double seconds,
                     const std::string& path) const;
  std::string redirect_uri(const Request& request) const;

  // Pins (api_pins.cc). The repo, branch and pin of POST /api/repos/{repo}/branches/{branch}/
  // pins/{name}, or nullopt when `path` is not one.
  struct PinPath {
    std::string repo, branch, name;
  };
  static std::optional<PinPath> pin_path(const std::string& path);
  bool pin_update(const Request& request, Completion& done);
  // GET /api/repos/{repo}/branches/{branch}/pins.
  Response pins(const std::string& repo, const std::string& branch);

  // Deployments (api_deployments.cc): GET /api/deployments[/{id}], POST
  // /api/deployments/{id}/shutdown, POST /api/repos/{repo}/commits/{sha}/deployments/{name}/boot;
  // nullopt for any other request.
  std::optional<Response> deployment_endpoint(const Request& request, const auth::Principal& who);
  // /api/deployments/{id}/ports/{name}/{path}: the request (GET, HEAD, POST, PUT, PATCH, DELETE,
  // OPTIONS) forwarded to that exposed port on the deployment's worker (server/port_proxy.h), on
  // a thread of port_proxies_; false for any other request.
  bool proxy_port(const Request& request, Completion& done);
  // A WebSocket to /api/deployments/{id}/ports/{name}/{path}: bridged to the same path at that
  // port, on a thread of port_sockets_ (port_bridges_ routes its messages); false (the socket
  // closed with the reason) when the deployment or port is not there.
  bool open_port_socket(const std::shared_ptr<Socket>& socket, const Request& request);
  Response get(const Request& request);
  Response post(const Request& request, const auth::Principal& who);
  // Source archives, build artifacts and run records (api_files.cc); nullopt when `request` is
  // not for one of those endpoints.
  std::optional<Response> get_file(const Request& request);
  std::optional<Response> post_file(const Request& request);
  // Why an upload (POST /api/artifacts/...) is refused: 401 without the worker token, 403
  // unless it carries the upload token of the active run it is for; nullopt when it may go on.
  std::optional<Response> upload_refusal(const Request& head) const;
  // A write under the data dir that failed: the state backs off (ServerState::store_failed); 507.
  Response write_failed(const std::string& what, const Error& e) const;
  Response source_archive(const std::string& repo, const std::string& sha, const std::string& path);
  Response build_files(const std::string& hash);
  Response build_file(const std::string& hash, const std::string& name);
  Response put_build_file(const std::string& hash, const std::string& name, const Request& request);
  Response put_run_record(const std::string& run_id, const Request& request);
  Response run_artifacts(const std::string& run_id);
  Response run_artifact(const std::string& run_id, const std::string& name);
  Response run_test_log(const std::vector<std::string>& parts);
  Response repos();
  Response branches(const std::string& repo);
  nlohmann::json branch_json(const store::BranchRow& branch) const;
  std::string search_state(const store::BranchRow& branch) const;
  Response queue() const;
  Response history(const std::string& repo, const std::string& branch, size_t limit);
  Response commit(const std::string& repo, const std::string& sha);
  // `test`: a glob (core/glob.h) over test names ("" = all); a case matches by its test's name.
  Response changes(const std::string& repo, const std::string& branch, const std::string& test);
  Response commit_runs(const std::string& repo, const std::string& sha, const std::string& name);
  Response run(const std::string& id);
  Response run_log(const std::string& id, const Request& request);
  Response workers();
  Response machines() const;
  Response webhook(const Request& request);
  // POST /api/webhooks/github and /githubReceivedAPush (`gitlab` false), /api/webhooks/gitlab:
  // a signed push fetches the repo it names (202), a ping is answered 200, other events are
  // ignored (200).
  Response host_webhook(const Request& request, bool gitlab);
  // True when no webhook secret is set, or `request` carries GitHub's signature of its body or
  // GitLab's token for it (only the one `proof` names, when not kEither).
  enum class WebhookProof { kEither, kGitHub, kGitLab };
  bool webhook_authentic(const Request& request, WebhookProof proof = WebhookProof::kEither) const;
  // `text` (an error's body) with the server's folders (data, artifacts, repos) replaced by
  // "<server>": errors never show where the server keeps its files.
  std::string without_server_paths(std::string text) const;
  Response web_file(const std::string& path);

  ServerState& state_;
  ServerOptions options_;
  // Sign-ins started (/auth/login) and not yet back (/auth/callback), by their state.
  struct PendingSignIn {
    std::string browser_hash;  // sha256_hex of the sign-in cookie of the browser that started it
    std::string redirect_uri;
    double expires = 0;
    std::string client;  // the address that started it (Request::client)
  };
  std::map<std::string, PendingSignIn> pending_sign_ins_;
  // The threads that talk to the provider (api_session.cc); stopped and joined by ~Api
  // (stop_sign_ins).
  struct Exchanges;
  std::shared_ptr<Exchanges> exchanges_;   // sign-ins talking to the provider
  std::shared_ptr<Exchanges> s3_fetches_;  // builds fetched from S3 (fetch_build_from_s3)
  std::shared_ptr<Exchanges> port_proxies_;  // requests to deployments' ports (proxy_port)
  std::shared_ptr<Exchanges> port_sockets_;  // WebSockets bridged to them (open_port_socket)
  std::map<int, std::shared_ptr<PortBridge>> port_bridges_;  // by the client's socket id
  // Runs `work` on a thread of `pool` (made when null); false when the pool is full.
  bool start_thread(std::shared_ptr<Exchanges>& pool,
                    std::function<void(const std::atomic<bool>& stop)> work);
  // Joins every thread of every pool (their work told to stop).
  void stop_sign_ins();
  // GET /api/artifacts/builds/{hash}[/{file}] from a worker, with artifacts in S3, of a build the
  // local store does not have: fetched from S3 on a thread of s3_fetches_, then answered as
  // usual (a large build takes seconds: not on the io thread). False for anything else.
  bool fetch_build_from_s3(const Request& request, Completion& done);
  std::function<void()> refresh_;
  PinMover* pin_mover_ = nullptr;
  const FleetController* fleet_ = nullptr;
  std::function<void(const std::string&)> fetch_;
  std::function<std::string(const std::string&, const std::string&)> commit_link_;
  std::string webhook_secret_;
  std::string web_dir_;
  auth::FailureLimiter failures_;
};

}  // namespace testlooper::server
