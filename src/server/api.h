// The JSON API and WebSocket endpoints (docs/api.md) on top of ServerState. Runs on the io
// thread. Errors are `{"error": message}` with a 4xx status, and a rejected request changes
// nothing.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "auth/auth.h"
#include "auth/failure_limiter.h"
#include "server/http.h"
#include "server/state.h"

namespace testlooper::server {

class Api : public Handler {
 public:
  // `refresh` asks the git watcher to look now. `web_dir` holds the built web UI (web/dist),
  // served for every GET outside /api/; "" = the web/dist folder beside the binary's folder.
  Api(ServerState& state, std::function<void()> refresh, std::string webhook_secret,
      std::string web_dir = "");
  // Stops the live-log streams (ServerState::stop_log_viewers) before the HTTP server goes.
  ~Api() override;

  // Who may do what (docs/configuration.md "Access"): serve --auth and auth.public_read. Before
  // this is called, authentication is off (auth::Mode::kNone).
  void set_access(auth::Mode mode, bool public_read);

  Response handle(const Request& request) override;
  // WebSocket upgrades that on_open would refuse (no worker token, not a run id, no such
  // socket) and uploads without the worker token are refused here, before any upgrade or body.
  std::optional<Response> refuse_early(const Request& head) override;
  bool on_open(const std::shared_ptr<Socket>& socket, const Request& request) override;
  void on_message(const std::shared_ptr<Socket>& socket, const std::string& text) override;
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
  Response repos();
  Response branches(const std::string& repo);
  nlohmann::json branch_json(const store::BranchRow& branch) const;
  Response history(const std::string& repo, const std::string& branch, size_t limit);
  Response commit(const std::string& repo, const std::string& sha);
  Response changes(const std::string& repo, const std::string& branch);
  Response commit_runs(const std::string& repo, const std::string& sha, const std::string& name);
  Response run(const std::string& id);
  Response run_log(const std::string& id);
  Response workers();
  Response webhook(const Request& request);
  // True when no webhook secret is set, or `request` carries GitHub's signature of its body or
  // GitLab's token for it.
  bool webhook_authentic(const Request& request) const;
  // `text` (an error's body) with the server's folders (data, artifacts, repos) replaced by
  // "<server>": errors never show where the server keeps its files.
  std::string without_server_paths(std::string text) const;
  Response web_file(const std::string& path);

  ServerState& state_;
  std::function<void()> refresh_;
  std::string webhook_secret_;
  std::string web_dir_;
  auth::Mode auth_mode_ = auth::Mode::kNone;
  bool public_read_ = false;
  auth::FailureLimiter failures_;
};

}  // namespace testlooper::server
