// `testlooper serve` and `testlooper worker`.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include "cli/command.h"
#include "core/token.h"
#include "server/config.h"
#include "server/event_log.h"
#include "server/http.h"
#include "server/rebuild.h"
#include "server/server.h"
#include "worker/worker.h"

namespace testlooper::cli {
namespace {

// The server options of config file `path` (docs/configuration.md), its warnings printed on
// stderr; a usage error naming the place when it cannot be read.
server::ServerOptions read_config(const std::string& path) {
  server::ServerOptions from_file;
  std::vector<std::string> warnings;
  if (auto s = server::load_config(path, from_file, &warnings); !s.ok()) {
    throw CLI::ValidationError("--config", s.error().to_string());
  }
  for (const std::string& warning : warnings) std::cerr << warning << "\n";
  return from_file;
}

// The token in TESTLOOPER_TOKEN, else in TESTLOOPER_WORKER_TOKEN (its older name); "" when
// neither holds one.
std::string token_from_environment() {
  for (const char* name : {"TESTLOOPER_TOKEN", "TESTLOOPER_WORKER_TOKEN"}) {
    if (const char* env = std::getenv(name); env && is_token_text(env)) return env;
  }
  return "";
}

}  // namespace

void add_serve_command(CLI::App& app, Action& action) {
  auto options = std::make_shared<server::ServerOptions>();
  CLI::App* cmd =
      app.add_subcommand("serve", "Watch git repos, run their tests continuously, serve the API");
  auto config = std::make_shared<std::string>();
  cmd->add_option("--config", *config, "A config file (docs/configuration.md); flags override it");
  cmd->add_option("--repos", options->repos_dir, "Every git repo directly under DIR is watched");
  cmd->add_option("--data", options->data_dir, "State and artifacts (default ./testlooper-data)");
  cmd->add_option("--port", options->port, "Port to listen on (default 9081; 0 = any free)");
  cmd->add_option("--bind", options->bind,
                  "Address to listen on: 127.0.0.1 (default), 0.0.0.0, ::, an interface's "
                  "address, [::1], localhost. A non-loopback one needs --auth token|oauth (or "
                  "--insecure-no-auth)")
      ->check([](const std::string& a) {
        return server::bind_address(a).empty() ? "'" + a + "' is not an IP address" : "";
      });
  cmd->add_option("--tls-cert", options->tls_cert,
                  "PEM certificate chain: with --tls-key, serve HTTPS and WSS only (TLS 1.2+)");
  cmd->add_option("--tls-key", options->tls_key, "PEM private key of --tls-cert");
  cmd->add_flag("--insecure-no-auth", options->insecure_no_auth,
                "Let a non-loopback --bind run without authentication (anyone reaching it may "
                "run code on the workers)");
  cmd->add_option("--workers", options->local_workers, "Local worker processes (default 1)");
  cmd->add_option("--worker-cores", options->worker_cores,
                  "Cores per local worker (default: divided)");
  cmd->add_option("--worker-ram-gb", options->worker_ram_gb,
                  "RAM per local worker (default: divided)");
  cmd->add_option("--poll-seconds", options->poll_seconds, "Git polling interval (default 10)");
  cmd->add_option("--worker-timeout", options->worker_timeout_seconds,
                  "Seconds of silence after which a worker is lost (default 30)");
  cmd->add_option("--max-run-hours", options->max_run_hours,
                  "Hours after which a run still going is ended as an infrastructure failure "
                  "and its worker told to cancel it (default 24)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--deployment-idle-seconds", options->deployment_idle_seconds,
                  "Seconds a deployment may stay with no terminal attached before it is shut "
                  "down (default 3600)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--infra-backoff-seconds", options->infra_backoff_seconds,
                  "First wait after an infrastructure failure of a test, build or environment; "
                  "it doubles with each failure in a row, up to 30 min, and the 5th blocks it "
                  "until a user retries it (default 10)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-log-mb", options->max_log_mb,
                  "MiB of a run's log kept; the rest is counted and the log says where it was "
                  "cut (default 64)")
      ->check(CLI::Range(1, server::kMaxLogMb));
  cmd->add_option("--default-runs", options->default_target_runs,
                  "Target runs per test (default 1)");
  cmd->add_option(
         "--extra-runs", options->extra_runs,
         "Extra runs per branch under test, spent where they localise a change (default 500)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--confidence", options->extra_confidence,
                  "Stop spending extra runs on a change this probable (default 0.95)")
      ->check(CLI::Range(0.5, 0.999999));
  cmd->add_option("--webhook-secret", options->webhook_secret, "HMAC secret for push webhooks");
  cmd->add_option(
         "--public-url", options->public_url,
         "The URL the server is reached at through a proxy, e.g. https://ci.example.com: its host "
         "is served besides 127.0.0.1/localhost/[::1] and its origin may change state")
      ->check([](const std::string& url) { return server::public_url_error(url); });
  cmd->add_option("--http-timeout", options->http_timeout_seconds,
                  "Seconds a client may stay idle or make no progress before it is disconnected "
                  "(default 30)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-connections-per-client", options->max_connections_per_client,
                  "Open connections from one address; more are closed at once (default 64)")
      ->check(CLI::Range(1, 1 << 20));
  auto auth_mode = std::make_shared<std::string>();
  cmd->add_option("--auth", *auth_mode,
                  "none (open: a loopback server only), token (API tokens) or oauth (tokens and "
                  "GitHub/GitLab sign-in); default none, or the config's auth.mode")
      ->check(CLI::IsMember({"none", "token", "oauth"}));
  cmd->add_option("--web", options->web_dir,
                  "The built web UI (default: web/dist beside the binary's folder)");
  auto log_format = std::make_shared<std::string>("text");
  cmd->add_option("--log-format", *log_format,
                  "text (default): 'TIME LEVEL EVENT key=value ...' per line on stderr; json: one "
                  "object per line, {\"time\", \"level\", \"event\", fields...}")
      ->check(CLI::IsMember({"text", "json"}));
  cmd->callback([options, config, cmd, auth_mode, log_format, &action] {
    server::LogFormat format = server::LogFormat::kText;
    server::parse_log_format(*log_format, &format);
    server::set_log_format(format);
    if (!config->empty()) {
      // Flags given on the command line win over the file.
      const server::ServerOptions from_file = read_config(*config);
      if (cmd->count("--repos") == 0) options->repos_dir = from_file.repos_dir;
      if (cmd->count("--data") == 0) options->data_dir = from_file.data_dir;
      if (cmd->count("--port") == 0) options->port = from_file.port;
      if (cmd->count("--bind") == 0) options->bind = from_file.bind;
      if (cmd->count("--tls-cert") == 0 && cmd->count("--tls-key") == 0) {
        options->tls_cert = from_file.tls_cert;
        options->tls_key = from_file.tls_key;
        options->tls_chain = from_file.tls_chain;
      }
      if (cmd->count("--insecure-no-auth") == 0)
        options->insecure_no_auth = from_file.insecure_no_auth;
      if (cmd->count("--workers") == 0) options->local_workers = from_file.local_workers;
      if (cmd->count("--worker-cores") == 0) options->worker_cores = from_file.worker_cores;
      if (cmd->count("--worker-ram-gb") == 0) options->worker_ram_gb = from_file.worker_ram_gb;
      if (cmd->count("--poll-seconds") == 0) options->poll_seconds = from_file.poll_seconds;
      if (cmd->count("--worker-timeout") == 0)
        options->worker_timeout_seconds = from_file.worker_timeout_seconds;
      if (cmd->count("--max-run-hours") == 0) options->max_run_hours = from_file.max_run_hours;
      if (cmd->count("--deployment-idle-seconds") == 0)
        options->deployment_idle_seconds = from_file.deployment_idle_seconds;
      options->deployment_max_hours = from_file.deployment_max_hours;
      if (cmd->count("--infra-backoff-seconds") == 0)
        options->infra_backoff_seconds = from_file.infra_backoff_seconds;
      if (cmd->count("--max-log-mb") == 0) options->max_log_mb = from_file.max_log_mb;
      if (cmd->count("--default-runs") == 0)
        options->default_target_runs = from_file.default_target_runs;
      if (cmd->count("--webhook-secret") == 0) options->webhook_secret = from_file.webhook_secret;
      if (cmd->count("--extra-runs") == 0) options->extra_runs = from_file.extra_runs;
      if (cmd->count("--confidence") == 0) options->extra_confidence = from_file.extra_confidence;
      if (cmd->count("--public-url") == 0) options->public_url = from_file.public_url;
      if (cmd->count("--http-timeout") == 0)
        options->http_timeout_seconds = from_file.http_timeout_seconds;
      if (cmd->count("--max-connections-per-client") == 0) {
        options->max_connections_per_client = from_file.max_connections_per_client;
      }
      options->artifacts_dir = from_file.artifacts_dir;
      options->host = from_file.host;    // GitHub or GitLab as the source: config only
      options->fleet = from_file.fleet;  // machine_management's Aws form: config only
      options->s3 = from_file.s3;        // artifacts in S3: config only
      options->notify = from_file.notify;  // notifications: config only
      options->post_statuses = from_file.post_statuses;
      options->status_fail_on = from_file.status_fail_on;
      options->auth_mode = from_file.auth_mode;
      options->public_read = from_file.public_read;
      server::take_sign_in_options(from_file, *options);  // sign-in: config only
    }
    if (!auth_mode->empty()) options->auth_mode = *auth::parse_mode(*auth_mode);
    if (options->host.kind != hosting::Kind::kLocal && cmd->count("--repos") > 0) {
      throw CLI::ValidationError("--repos",
                                 "the config's source is GitHub or GitLab: the server "
                                 "keeps its own mirrors under <data>/repos");
    }
    if (options->repos_dir.empty() && options->host.kind == hosting::Kind::kLocal) {
      throw CLI::RequiredError("--repos (or source_control.path_to_repos in --config)");
    }
    action = [options] {
      options->self_executable = std::filesystem::read_symlink("/proc/self/exe").string();
      return server::run_server(*options);
    };
  });
}

void add_rebuild_command(CLI::App& app, Action& action) {
  auto data = std::make_shared<std::string>("testlooper-data");
  auto config = std::make_shared<std::string>();
  auto trust_unknown = std::make_shared<bool>(false);
  CLI::App* cmd =
      app.add_subcommand("rebuild", "Recreate the server's database from its artifact store");
  cmd->add_option("--data", *data, "The server's data dir (default ./testlooper-data)");
  cmd->add_option("--config", *config,
                  "The server's config.json: its data dir (unless --data is given) and, with "
                  "artifacts in S3, the run records are read from S3");
  cmd->add_flag("--trust-unknown-runs", *trust_unknown,
                "Also restore records of runs the database does not know (it was lost entirely)");
  cmd->callback([data, config, trust_unknown, cmd, &action] {
    auto s3 = std::make_shared<std::unique_ptr<s3store::S3Artifacts>>();
    if (!config->empty()) {
      const server::ServerOptions from_file = read_config(*config);
      if (cmd->count("--data") == 0) *data = from_file.data_dir;
      if (from_file.s3.enabled) {
        auto opened = s3store::S3Artifacts::open(from_file.s3);
        if (!opened.ok()) {
          throw CLI::ValidationError("--config", "artifacts in S3: " + opened.error().to_string());
        }
        *s3 = std::move(*opened);
      }
    }
    action = [data, trust_unknown, s3] {
      auto summary = server::rebuild_database(*data, *trust_unknown, s3->get());
      if (!summary.ok()) {
        std::cerr << "testlooper rebuild: " << summary.error().to_string() << "\n";
        return 2;
      }
      for (const server::SkippedRecord& skipped : summary->skipped) {
        std::cerr << "testlooper rebuild: skipped " << skipped.record << ": " << skipped.reason
                  << "\n";
      }
      std::cout << "testlooper rebuild: restored " << summary->runs << " runs ("
                << summary->skipped.size() << " records skipped)\n";
      return 0;
    };
  });
}

void add_worker_command(CLI::App& app, Action& action) {
  auto options = std::make_shared<worker::WorkerOptions>();
  CLI::App* cmd = app.add_subcommand("worker", "Run jobs for a TestLooper server");
  cmd->add_option("--server", options->server_url,
                  "The server, e.g. http://127.0.0.1:9081 or https://ci.example.com")
      ->required();
  cmd->add_option("--ca-file", options->ca_file,
                  "PEM certificates of the authorities an https:// server's certificate may be "
                  "signed by (default: the system's store); the certificate must also name the "
                  "URL's host")
      ->check(CLI::ExistingFile);
  cmd->add_option("--server-cert", options->server_cert,
                  "Trust exactly this PEM certificate for an https:// server, whatever its names "
                  "(what a server passes to its own local workers)")
      ->check(CLI::ExistingFile)
      ->excludes("--ca-file");
  cmd->add_option("--cores", options->cores, "Cores to offer (default: all)");
  cmd->add_option("--ram-gb", options->ram_gb, "RAM to offer in GB (default: all)");
  cmd->add_option("--dir", options->dir, "Working directory (default ./testlooper-worker)");
  cmd->add_option("--id", options->id, "Worker id (default: host name and directory)");
  cmd->add_option("--ami", options->ami,
                  "This machine was booted from this AMI (the fleet passes it): it runs the AMI "
                  "environments of that base_ami on the host, one job in all");
  auto token_file = std::make_shared<std::string>();
  cmd->add_option("--token-file", *token_file,
                  "A file holding a worker token (`testlooper token create --role worker`, or "
                  "the server's <data>/worker.token); default: the TESTLOOPER_TOKEN (or "
                  "TESTLOOPER_WORKER_TOKEN) environment variable");
  cmd->add_flag("--on-host", options->on_host, "Run Linux environments directly on this machine");
  cmd->add_option("--parent-pid", options->parent_pid,
                  "Stop (cancelling every run) once this process is no longer the worker's parent "
                  "(the server passes its own pid to the local workers it starts)");
  cmd->add_flag("--shared-disk", options->shared_disk,
                "Use the server's repos and artifact store directly (same machine or shared "
                "filesystem); without it sources and artifacts travel over HTTP");
  cmd->callback([options, token_file, &action] {
    if (!token_file->empty()) {
      Result<std::string> token = read_token_file(*token_file);
      if (!token.ok()) throw CLI::ValidationError("--token-file", token.error().to_string());
      options->token = *token;
    } else if (const std::string env = token_from_environment(); !env.empty()) {
      options->token = env;
    } else {
      throw CLI::RequiredError(
          "--token-file (or TESTLOOPER_TOKEN or TESTLOOPER_WORKER_TOKEN, a token of 32 to 1024 "
          "visible characters)");
    }
    action = [options] {
      if (options->dir.empty()) options->dir = "testlooper-worker";
      options->dir = std::filesystem::absolute(options->dir).string();
      if (options->cores <= 0)
        options->cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
      if (options->ram_gb <= 0) {
        options->ram_gb = static_cast<int>(sysconf(_SC_PHYS_PAGES) /
                                           (1024 * 1024 * 1024 / sysconf(_SC_PAGE_SIZE)));
      }
      if (options->id.empty()) {
        char host[256] = {0};
        gethostname(host, sizeof(host) - 1);
        options->id = std::string(host) + ":" + options->dir;
      }
      return worker::run_worker(*options);
    };
  });
}

}  // namespace testlooper::cli
