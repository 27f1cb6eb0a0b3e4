// run_server: wires the store, state, watcher, API and local workers together.
#include "server/server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <iostream>
#include <optional>
#include <thread>

#include "artifacts/artifacts.h"
#include "artifacts/confined_dir.h"
#include "hosting/mirrors.h"
#include "hosting/status_poster.h"
#include "server/api.h"
#include "server/commit_stats.h"
#include "server/event_log.h"
#include "server/fleet_controller.h"
#include "server/http.h"
#include "server/notifier.h"
#include "server/pins.h"
#include "server/protocol.h"
#include "server/state.h"
#include "server/statuses.h"
#include "server/tokens.h"
#include "server/watcher.h"

namespace testlooper::server {
namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop = true; }

// Local worker processes, restarted when they exit.
class LocalWorkers {
 public:
  // `url`: where the server is reached from this machine (HttpServer::local_url()).
  LocalWorkers(const ServerOptions& options, std::string url)
      : options_(options), url_(std::move(url)) {
    const int n = std::max(0, options.local_workers);
    const int cores =
        options.worker_cores > 0
            ? options.worker_cores
            : std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / std::max(1, n));
    const long pages = sysconf(_SC_PHYS_PAGES) * (sysconf(_SC_PAGE_SIZE) / 1024) / (1024 * 1024);
    const int ram = options.worker_ram_gb > 0
                        ? options.worker_ram_gb
                        : std::max(1, static_cast<int>(pages / std::max(1, n)));
    for (int i = 0; i < n; ++i) {
      specs_.push_back({i, cores, ram});
      pids_.push_back(start(specs_.back()));
    }
  }

  // Asks the workers to stop, and kills those still there after two seconds.
  ~LocalWorkers() {
    for (pid_t pid : pids_) {
      if (pid > 0) kill(pid, SIGTERM);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    for (pid_t pid : pids_) {
      if (pid <= 0) continue;
      while (waitpid(pid, nullptr, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
          kill(pid, SIGKILL);
          waitpid(pid, nullptr, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }

  // Restarts workers that exited.
  void supervise() {
    for (size_t i = 0; i < pids_.size(); ++i) {
      if (pids_[i] > 0 && waitpid(pids_[i], nullptr, WNOHANG) == pids_[i])
        pids_[i] = start(specs_[i]);
    }
  }

 private:
  struct Spec {
    int index;
    int cores;
    int ram;
  };

  pid_t start(const Spec& s) {
    const std::string dir = options_.data_dir + "/workers/" + std::to_string(s.index);
    std::filesystem::create_directories(dir);
    std::vector<std::string> args = {options_.self_executable,
                                     "worker",
                                     "--server",
                                     url_,
                                     "--cores",
                                     std::to_string(s.cores),
                                     "--ram-gb",
                                     std::to_string(s.ram),
                                     "--dir",
                                     dir,
                                     "--id",
                                     "local-" + std::to_string(s.index),
                                     "--shared-disk",
                                     "--token-file",
                                     options_.data_dir + "/worker.token",
                                     "--parent-pid",
                                     std::to_string(::getpid())};
    // Under TLS a local worker trusts exactly the server's own certificate, whatever names it
    // carries and whoever issued it.
    if (!options_.tls_cert.empty()) {
      args.push_back("--server-cert");
      args.push_back(std::filesystem::absolute(options_.tls_cert).string());
    }
    // Built before fork: the child of a threaded process may only make async-signal-safe calls.
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = fork();
    if (pid == 0) {
      // A local worker does not outlive its server (a restarted server starts its own). Set
      // race-free: a server that died before prctl() took effect has already reparented us.
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) _exit(0);
      // Nothing of the server's but stdin/stdout/stderr: its descriptors are close-on-exec
      // already (issue 10, item 9); this also covers any opened without O_CLOEXEC elsewhere.
      close_range(3, ~0U, 0);
      execv(argv[0], argv.data());
      _exit(127);
    }
    return pid;
  }

  const ServerOptions& options_;
  std::string url_;
  std::vector<Spec> specs_;
  std::vector<pid_t> pids_;
};

// The fleet's access to the io thread: worker tokens for its machines are made and revoked in
// the store there (posted; a token is awaited until the server stops).
FleetController::Hooks fleet_hooks(HttpServer& http, ServerState& state) {
  FleetController::Hooks hooks;
  hooks.make_token = [&http, &state](const std::string& id) -> Result<std::string> {
    auto promise = std::make_shared<std::promise<Result<std::string>>>();
    auto future = promise->get_future();
    http.post([&state, promise, id] {
      promise->set_value(make_token(state.store(), id, "worker", now_seconds()));
    });
    while (future.wait_for(std::chrono::milliseconds(200)) != std::future_status::ready) {
      if (g_stop) return Error{id, "the server is stopping"};
    }
    auto text = future.get();
    if (text.ok() && text->empty()) return Error{id, "a token of that name exists"};
    return text;
  };
  hooks.revoke_token = [&http, &state](const std::string& id) {
    http.post([&state, id] { (void)state.store().revoke_token(id); });
  };
  hooks.log = [](const std::string& line) { log_event("info", "fleet", {{"message", line}}); };
  return hooks;
}

// PRAGMA quick_check of state.db on a thread of its own (store::check_sqlite_store): started
// once the API answers, as it reads every page (issue 18: 6 s for 10M runs cached, up to 25 s
// per GB cold). Interrupted and joined when it goes.
class BackgroundCheck {
 public:
  // The connection is opened here, the pages read on the thread.
  explicit BackgroundCheck(const std::string& path) {
    auto check = store::SqliteStoreCheck::open(path);
    if (!check.ok()) {
      std::promise<Status> failed;
      failed.set_value(check.error());
      done_ = failed.get_future();
      return;
    }
    check_ = std::move(*check);
    done_ = std::async(std::launch::async, [this] { return check_->run(); });
  }
  ~BackgroundCheck() {
    if (!check_ || !done_.valid()) return;
    // Again until it ends: an interrupt made before the check began its read is not seen.
    do {
      check_->interrupt();
    } while (done_.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready);
  }
  // What the check found, once, when it has ended; nullopt before and after.
  std::optional<Status> take() {
    if (!done_.valid() || done_.wait_for(std::chrono::seconds(0)) != std::future_status::ready)
      return std::nullopt;
    return done_.get();
  }

 private:
  std::unique_ptr<store::SqliteStoreCheck> check_;
  std::future<Status> done_;
};

// Computes the windows of `branches` from the `next`th into the statistics cache, one per turn of
// the io thread (a window of 200 commits x 500 tests takes tens of ms: requests go between them),
// so that the first page after a start does not wait for its statistics (issue 18).
void warm_windows(HttpServer& http, ServerState& state,
                  std::shared_ptr<const std::vector<std::pair<std::string, std::string>>> branches,
                  size_t next = 0) {
  if (next >= branches->size()) return;
  warm_window(state, (*branches)[next].first, (*branches)[next].second);
  http.post([&http, &state, branches, next] { warm_windows(http, state, branches, next + 1); });
}

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string listening_error(const ServerOptions& options) {
  const std::string address = bind_address(options.bind);
  if (address.empty()) {
    return "--bind: '" + options.bind +
           "' is not an IP address (e.g. 127.0.0.1, 0.0.0.0, ::, [::1], localhost)";
  }
  if (!is_loopback_address(address) && options.auth_mode == auth::Mode::kNone &&
      !options.insecure_no_auth) {
    return "refusing to listen on " + options.bind +
           " with no authentication: anyone who reaches it could run code on the workers. Use "
           "--auth token (or --auth oauth), or bind a loopback address; --insecure-no-auth "
           "starts it anyway";
  }
  return tls_files_error(options.tls_cert, options.tls_key, options.tls_chain);
}

// The pin mover's settings: local pushes to the repos themselves, or, for a GitHub or GitLab
// source, pushes to the repo's clone URL (as `lookup`, the mirrors' last listing, gives it) with
// the host's credentials, then a fetch of its mirror that ends before the mover goes on.
static PinMoverOptions pin_mover_options(
    const ServerOptions& options, const std::string& repos_dir, const hosting::Host* host,
    std::function<std::optional<hosting::HostedRepo>(const std::string&)> lookup,
    std::function<void()> pushed) {
  PinMoverOptions out;
  out.repos_dir = std::filesystem::absolute(repos_dir).string();
  out.pushed = std::move(pushed);
  if (host == nullptr) return out;
  out.credentials = host->credentials();
  out.lookup = std::move(lookup);
  const double timeout = options.host.timeout_seconds * 20;
  out.fetch = [dir = out.repos_dir, lookup = out.lookup, credentials = out.credentials,
               timeout](const std::string& name) {
    const auto repo = lookup(name);
    if (!repo) return;
    const std::vector<std::string> args = {"fetch", "--prune", "--quiet", repo->clone_url,
                                           "+refs/heads/*:refs/heads/*"};
    auto r = hosting::run_git(args, dir + "/" + name, credentials, timeout);
    if (!r.ok() || r->exit_code != 0) {
      log_event(
          "error", "pins",
          {{"message",
            (r.ok() ? hosting::git_error(name, args, *r, credentials) : r.error()).to_string()}});
    }
  };
  return out;
}

int run_server(const ServerOptions& options) {
  namespace fs = std::filesystem;
  // Before binding or touching the data dir.
  if (auto e = listening_error(options); !e.empty()) {
    std::cerr << "testlooper serve: " << e << "\n";
    return 2;
  }
  if (!is_loopback_address(bind_address(options.bind)) && options.auth_mode == auth::Mode::kNone) {
    std::cerr << "testlooper serve: WARNING: listening on " << options.bind
              << " with no authentication (--insecure-no-auth): anyone who reaches this address "
                 "can read everything, change what is tested and run code on the workers"
              << std::endl;
  }
  std::error_code ec;
  // Its logs, records and workers' directories away from whatever churned beside it.
  artifacts::spread_new_directories(options.data_dir);
  fs::create_directories(options.data_dir + "/logs", ec);
  // GitHub or GitLab: the server's own bare mirrors (docs/configuration.md "Git hosting").
  const bool hosted = options.host.kind != hosting::Kind::kLocal;
  const std::string repos_dir = hosted ? options.data_dir + "/repos" : options.repos_dir;
  if (hosted && !ec) fs::create_directories(repos_dir, ec);
  if (ec) {
    std::cerr << "testlooper serve: cannot create " << options.data_dir << ": " << ec.message()
              << "\n";
    return 2;
  }
  // One server per data dir: a second would dispatch the same runs and write the same store.
  // flock: released when this process ends however it ends; not inherited past exec.
  const std::string lock_path = options.data_dir + "/serve.lock";
  artifacts::Fd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!lock.valid() || ::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    const int why = errno;
    std::string holder(32, '\0');
    const ssize_t n = lock.valid() ? ::pread(lock.get(), holder.data(), holder.size(), 0) : -1;
    holder.resize(n > 0 ? static_cast<size_t>(n) : 0);
    while (!holder.empty() && !std::isdigit(static_cast<unsigned char>(holder.back())))
      holder.pop_back();
    std::cerr << "testlooper serve: " << options.data_dir
              << (why == EWOULDBLOCK ? " is in use by another testlooper serve" +
                                           (holder.empty() ? "" : " (pid " + holder + ")") +
                                           "; stop it first, or give another --data"
                                     : ": cannot lock " + lock_path + ": " + std::strerror(why))
              << "\n";
    return 2;
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  const bool said = ::ftruncate(lock.get(), 0) == 0 &&
                    ::pwrite(lock.get(), pid.data(), pid.size(), 0) == std::ssize(pid);
  (void)said;  // the pid is only said to a second server: the lock holds without it
  const double started = steady_seconds();
  const std::string db_path = options.data_dir + "/state.db";
  // Checked for damage once the API answers (BackgroundCheck below).
  auto store = store::open_sqlite_store(db_path, store::StoreCheck::kLater);
  if (!store.ok()) {
    std::cerr << "testlooper serve: " << store.error().to_string() << "\n";
    return 2;
  }
  const std::string data = fs::absolute(options.data_dir).string();
  StateOptions state_options{options.default_target_runs,
                             options.worker_timeout_seconds,
                             data + "/logs",
                             fs::absolute(repos_dir).string(),
                             options.artifacts_dir.empty()
                                 ? data + "/artifacts"
                                 : fs::absolute(options.artifacts_dir).string(),
                             options.extra_runs,
                             options.extra_confidence};
  state_options.store_path = data + "/state.db";
  state_options.max_log_bytes = int64_t{options.max_log_mb} << 20;
  state_options.deployment_idle_seconds = options.deployment_idle_seconds;
  state_options.deployment_max_seconds = options.deployment_max_hours * 3600;
  // Artifacts in S3 (docs/configuration.md "Artifacts in S3"): the local store is their
  // cache. It outlives the state, whose threads may be putting files in S3 until it is gone.
  std::unique_ptr<s3store::S3Artifacts> s3;
  if (options.s3.enabled) {
    auto opened = s3store::S3Artifacts::open(options.s3);
    if (!opened.ok()) {
      std::cerr << "testlooper serve: artifacts in S3: " << opened.error().to_string() << "\n";
      return 2;
    }
    s3 = std::move(*opened);
  }
  ServerState state(**store, state_options);
  if (s3) state.set_s3(s3.get());
  state.set_infra_backoff(options.infra_backoff_seconds);
  Status s = state.load();
  // A damaged file may fail the load before the check would have found it: its word wins.
  if (!s.ok()) {
    if (Status checked = store::check_sqlite_store(db_path); !checked.ok()) s = checked;
  }
  if (!s.ok() || !(s = state.secure_workers(data + "/worker.token", options.max_run_hours)).ok()) {
    std::cerr << "testlooper serve: " << s.error().to_string() << "\n";
    return 2;
  }
  // No run starts before the store is found sound: a damaged one stops the server (exit 2), as
  // it did when the check ran before the start.
  state.hold_dispatch(true);
  log_event("info", "store_loaded",
            {{"seconds", fmt::format("{:.2f}", steady_seconds() - started)}});
  // The fleet's provider: no credentials stop the server here, before it listens.
  std::unique_ptr<fleet::Provider> provider;
  if (options.fleet.enabled) {
    auto made = fleet::make_ec2_provider(options.fleet);
    if (!made.ok()) {
      std::cerr << "testlooper serve: machine_management: " << made.error().to_string() << "\n";
      return 2;
    }
    provider = std::move(*made);
  }
  std::unique_ptr<HttpServer> http;
  std::unique_ptr<Watcher> watcher;
  std::unique_ptr<PinMover> pin_mover;
  // Hosted: the host's REST client and the mirrors it lists; the watcher watches the mirrors.
  std::shared_ptr<hosting::Host> host = hosting::make_host(options.host);
  std::unique_ptr<hosting::Mirrors> mirrors;
  Api api(
      state,
      [&] {
        if (mirrors) mirrors->refresh();  // lists again and fetches all; each fetch -> watcher
        if (watcher) watcher->refresh();
      },
      options.webhook_secret, options.web_dir);
  api.set_access_options(options);
  if (host) {
    api.set_fetch([&](const std::string& repo) {
      if (mirrors) mirrors->fetch(repo);
    });
  }
  try {
    http = std::make_unique<HttpServer>(
        api, options.port,
        HttpOptions{options.http_timeout_seconds, options.max_connections_per_client,
                    options.public_url, options.bind, options.tls_cert, options.tls_key,
                    options.tls_chain});
  } catch (const std::exception& e) {
    std::cerr << "testlooper serve: " << e.what() << "\n";
    return 2;
  }
  pin_mover = std::make_unique<PinMover>(pin_mover_options(
      options, repos_dir, host.get(),
      [&mirrors](const std::string& name) -> std::optional<hosting::HostedRepo> {
        return mirrors ? mirrors->repo(name) : std::nullopt;
      },
      [&] {
        http->post([&] {
          if (watcher) watcher->refresh();
        });
      }));
  api.set_pin_mover(pin_mover.get());
  const CommitLinkFn commit_link = [&mirrors, kind = options.host.kind](
                                       const std::string& repo,
                                       const std::string& sha) -> std::string {
    const auto hosted = mirrors ? mirrors->repo(repo) : std::nullopt;
    if (!hosted || hosted->web_url.empty()) return "";
    return hosted->web_url + (kind == hosting::Kind::kGitLab ? "/-/commit/" : "/commit/") + sha;
  };
  api.set_commit_link(commit_link);
  watcher = std::make_unique<Watcher>(
      repos_dir, options.poll_seconds, state.known_commits(),
      [&](RepoBatch batch) {
        auto shared = std::make_shared<RepoBatch>(std::move(batch));
        http->post([&state, shared] { state.ingest(std::move(*shared)); });
      },
      state.commits_with_errors(), state.unstored_pins(),
      [&](std::set<std::string> present) {
        auto shared = std::make_shared<std::set<std::string>>(std::move(present));
        http->post([&state, shared] { state.forget_missing_repos(*shared); });
      },
      [&] { pin_mover->wake(); });
  if (host) {
    hosting::MirrorOptions mirror_options;
    mirror_options.poll_seconds = options.host.poll_seconds;
    mirror_options.fetch_timeout = 20 * options.host.timeout_seconds;
    mirrors = std::make_unique<hosting::Mirrors>(*host, fs::absolute(repos_dir).string(),
                                                 mirror_options, [&](const std::string&) {
                                                   http->post([&] {
                                                     if (watcher) watcher->refresh();
                                                   });
                                                 });
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGPIPE, SIG_IGN);
  LocalWorkers workers(options, http->local_url());
  std::unique_ptr<FleetController> fleet;
  if (provider) {
    const std::string url = !options.fleet.server_url.empty() ? options.fleet.server_url
                            : !options.public_url.empty()     ? options.public_url
                                                              : http->local_url();
    fleet = std::make_unique<FleetController>(options.fleet, std::move(provider), url,
                                              fleet_hooks(*http, state));
    api.set_fleet(fleet.get());
  }
  // Commit statuses back to the host (docs/configuration.md "Commit statuses"): decided on this
  // thread once a second, posted on the poster's.
  std::unique_ptr<hosting::StatusPoster> poster;
  std::unique_ptr<StatusReporter> reporter;
  if (hosted && options.post_statuses) {
    poster = std::make_unique<hosting::StatusPoster>(
        host, options.host,
        [&mirrors](const std::string& name) -> std::optional<hosting::HostedRepo> {
          return mirrors ? mirrors->repo(name) : std::nullopt;
        });
    StatusReporter::Options report{
        options.status_fail_on, options.public_url.empty() ? http->local_url() : options.public_url,
        host->description_limit()};
    reporter = std::make_unique<StatusReporter>(
        state, report,
        [&poster](const std::string& repo, const std::string& sha, hosting::CommitStatus status) {
          poster->post(repo, sha, std::move(status));
        });
    http->every(1, [&reporter] { reporter->update(); });
  }
  // Notifications (notifier.h): the changes are looked at again when a run ended or a head moved
  // since the last look, at most every 2 s, and at most a tenth of the io thread's time (a look
  // costs what GET .../changes does: 8 ms of CPU on bench/history_bench.sh's 1,000 x 500 history
  // once its statistics are cached, stats_cache.h; 400 ms or more before).
  Notifier notifier(options.notify, data + "/notified");
  const std::string ui_url = options.public_url.empty() ? http->local_url() : options.public_url;
  std::string looked_at;  // what the changes were last looked at after
  double next_look = 0;   // steady seconds
  auto steady = [] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
  http->every(2, [&] {
    if (steady() < next_look) return;
    int64_t ended = 0;
    for (const auto& [key, count] : state.runs_ended()) ended += count;
    std::string now = std::to_string(ended);
    for (const auto& [key, b] : state.branches()) {
      if (b.under_test) now += " " + key.first + "/" + key.second + "@" + b.head;
    }
    if (now == looked_at) return;
    looked_at = now;
    const double start = steady();
    notify_changes(state, notifier, options.extra_confidence, ui_url, commit_link);
    next_look = steady() + 9 * (steady() - start);
  });
  int exit_status = 0;
  BackgroundCheck check(db_path);
  http->every(0.5, [&] {
    if (auto found = check.take()) {
      if (!found->ok()) {
        std::cerr << "testlooper serve: " << found->error().to_string() << std::endl;
        exit_status = 2;
        http->stop();
        return;
      }
      log_event("info", "store_checked",
                {{"seconds", fmt::format("{:.2f}", steady_seconds() - started)}});
      state.hold_dispatch(false);
      state.update();
    }
    if (g_stop) http->stop();
    workers.supervise();
    state.check_workers(now_seconds());
    if (fleet) fleet->update(state.fleet_snapshot());
  });
  std::cout << "testlooper serve: listening on " << http->local_url() << std::endl;
  http->post([&http = *http, &state,
              warm = std::make_shared<const std::vector<std::pair<std::string, std::string>>>(
                  branches_to_warm(state))] { warm_windows(http, state, warm); });
  // run() returns once every connection is closed and every WebSocket's on_close was called, so
  // the state holds no socket when the io_context goes (issue 10, item 11).
  http->run();
  fleet.reset();  // first: its thread may be waiting on the io thread, which has stopped
  // Each goes before what it calls from its own thread: the poster asks the mirrors, the watcher
  // wakes the pin mover, which asks the mirrors. (The mirrors reach the watcher only through
  // the io thread, which has stopped.)
  reporter.reset();
  poster.reset();
  watcher.reset();
  pin_mover.reset();
  mirrors.reset();
  return exit_status;
}

}  // namespace testlooper::server
