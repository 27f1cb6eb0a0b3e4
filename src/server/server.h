// `testlooper serve`: the server process. Watches the git repos under a folder, resolves each
// new commit's definitions once, decides what runs (planner), packs runs onto workers
// (dispatch), keeps every result (store) and serves the JSON API (docs/api.md) over HTTP and
// WebSocket (HTTPS and WSS with --tls-cert) on --bind, 127.0.0.1 by default.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "auth/auth.h"
#include "fleet/fleet.h"
#include "fleet/s3.h"
#include "hosting/hosting.h"
#include "server/notifier.h"

namespace testlooper::server {

// The largest --max-log-mb (1 TiB): the cap is counted in bytes in an int64_t.
constexpr int kMaxLogMb = 1 << 20;
// The most `notify` targets a config may list.
constexpr size_t kMaxNotifyTargets = 16;

struct ServerOptions {
  std::string repos_dir;             // every git repo directly under it is watched
  // source_control's GitHub or GitLab form (docs/configuration.md "Git hosting"): the server
  // lists the owner's or group's repositories, mirrors them under <data_dir>/repos (then
  // repos_dir) and fetches them; posts commit statuses; pushes pin updates with its token.
  // kind kLocal: repos_dir is kept current by something else.
  hosting::HostOptions host;
  // Commit statuses posted to the host (the `statuses` section): on for a GitHub or GitLab
  // source, and the verdicts that make a test set's status "failure": "broken", "flaky"
  // (any flaky test), "flaky_rising" (a flaky test whose failure rate rose at this commit).
  bool post_statuses = true;
  std::vector<std::string> status_fail_on = {"broken", "flaky_rising"};
  std::string data_dir = "testlooper-data";
  int port = 9081;
  int local_workers = 1;             // worker processes started and supervised by the server
  // machine_management's Aws form: machines booted in EC2 for what waits (fleet/fleet.h).
  fleet::FleetOptions fleet;
  // artifacts' S3 form: builds, run records, source archives and logs kept in S3 (fleet/s3.h).
  fleet::S3Options s3;
  int worker_cores = 0;              // per local worker; 0 = the machine's cores / workers
  int worker_ram_gb = 0;             // per local worker; 0 = the machine's RAM / workers
  double poll_seconds = 10;          // git polling interval
  double worker_timeout_seconds = 30;  // a worker silent this long is lost
  double max_run_hours = 24;           // a run active this long is ended as an infra failure
  double deployment_idle_seconds = 3600;  // a deployment without a terminal viewer this long stops
  double deployment_max_hours = 24;       // a deployment stops once it lived this long
  // The first back-off after an infrastructure failure of an identity or environment; it doubles
  // with each failure in a row (up to 30 min), and the 5th in a row blocks it (infra_blocked).
  double infra_backoff_seconds = 10;
  int max_log_mb = 64;  // a run's log keeps this many MiB; the rest is counted
  int default_target_runs = 1;
  int64_t extra_runs = 500;          // extra runs per branch under test (statistical bisection)
  double extra_confidence = 0.95;    // a change this probable is localised: no more extra runs
  std::string webhook_secret;        // HMAC secret for push webhooks ("" = unverified)
  // Webhooks told of each change that reaches extra_confidence (`notify`; notifier.h).
  std::vector<NotifyTarget> notify;
  std::string self_executable;       // the testlooper binary, for local workers
  std::string artifacts_dir;         // "" = <data_dir>/artifacts
  std::string web_dir;               // the built web UI; "" = web/dist beside the binary's folder
  // The URL the server is reached at through a proxy: its host is served besides the loopback
  // names, and its origin may change state (HttpOptions::public_url).
  std::string public_url;
  // A client slower than this sending a request or reading a response, or idle this long
  // between requests, is disconnected; WebSockets are pinged and closed after this much silence.
  double http_timeout_seconds = 30;
  int max_connections_per_client = 64;  // open connections from one address; more are closed

  // Access (docs/configuration.md "Access").
  std::string bind = "127.0.0.1";  // the address listened on (--bind, server.bind)
  std::string tls_cert;            // PEM files: with both set the server speaks HTTPS and WSS
  std::string tls_key;
  std::string tls_chain;  // more certificates sent after tls_cert's (path_to_certs.chain)
  auth::Mode auth_mode = auth::Mode::kNone;  // --auth, auth.mode (auth_disabled: true = kNone)
  bool insecure_no_auth = false;             // lets a non-loopback bind run with auth_mode kNone
  bool public_read = false;                  // auth.public_read: anonymous users may view
  std::vector<std::string> admins;           // auth.admins: signed-in logins made admin ("alice")
  double session_hours = 24 * 7;             // auth.session_hours: a sign-in lasts this long
  // OAuth sign-in (the seed's keys in source_control; docs/configuration.md "Access").
  std::string oauth_provider;  // "github" or "gitlab" ("" = none configured)
  std::string oauth_key;
  std::string oauth_secret;
  std::string github_login_url = "https://github.com";    // authorize and access_token under it
  std::string github_api_url = "https://api.github.com";  // /user, /orgs/{owner}/members/{login}
  std::string owner;                                      // GitHub organisation: its members edit
  std::string gitlab_login_url = "https://gitlab.com";    // /oauth/authorize, /oauth/token
  std::string gitlab_api_url = "https://gitlab.com/api/v4";  // /user, /groups/{group}/members/...
  std::string group;                                         // GitLab group: its members edit
  double oauth_timeout_seconds = 10;  // auth.provider_timeout_seconds: a sign-in's provider calls
};

// Why `options` cannot listen, or "": --bind is not an IP address; a non-loopback bind with
// auth_mode kNone and no insecure_no_auth (anyone reaching it could run code on the workers);
// --tls-cert/--tls-key not both given, unreadable or not a pair (tls_files_error()).
std::string listening_error(const ServerOptions& options);

// Runs the server until SIGINT/SIGTERM (then closes every connection, workers' with 1001
// "going away", and returns 0); returns the exit status.
int run_server(const ServerOptions& options);

}  // namespace testlooper::server
