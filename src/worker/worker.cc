#include "worker/worker.h"

// clang-format off: before Boost.Asio, whose awaitable.hpp needs std::exchange under C++20.
#include <utility>
// clang-format on

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <type_traits>
#include <utility>

#include "artifacts/artifacts.h"
#include "core/ids.h"
#include "definitions/definitions_json.h"
#include "environments/environments.h"
#include "fleet/aws.h"
#include "runner/runner.h"
#include "runner/thread_pool.h"
#include "s3store/s3_artifacts.h"
#include "worker/deployments.h"
#include "worker/jobs.h"
#include "worker/lifeline.h"
#include "worker/log_pump.h"
#include "worker/pending_results.h"
#include "worker/server_files.h"
#include "worker/tls_stream.h"

namespace testlooper::worker {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using nlohmann::json;
namespace fs = std::filesystem;

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

// The most a connection may have queued before a log message waits (so a test writing a
// gigabyte costs the worker a few MiB, not a gigabyte).
constexpr size_t kMaxQueuedBytes = 8 << 20;

class Agent {
 public:
  Agent(const WorkerOptions& options, ServerEndpoint server)
      : options_(options),
        server_(std::move(server)),
        client_(server_, options.token),
        local_store_(options.dir + "/store"),
        remote_sources_(client_, options.dir + "/sources"),
        remote_files_(client_, local_store_),
        runners_(options.on_host, options.ami),
        pending_(options.dir + "/pending.jsonl", options.dir + "/pending") {
    // Said in every hello: the server gives this worker only jobs it can run.
    docker_ = runners_.runs_dockerfiles();
    if (!docker_) {
      std::cerr << "testlooper worker: no docker engine answers; this worker takes no Dockerfile "
                   "environments (restart it once one runs, or pass --on-host)"
                << std::endl;
    }
    // Made now, not at the first job: its work directories end, before anything starts, the
    // processes a previous life of this worker (killed -9) left running in them.
    runners_.remote(local_store_, remote_sources_);
  }

  int run() {
    std::thread heartbeat([this] {
      while (!g_stop) {
        std::this_thread::sleep_for(std::chrono::seconds(2));
        send(json{{"type", "heartbeat"}}.dump());
      }
    });
    // A local worker follows its server: once its parent is gone it stops, within 0.2 s.
    std::thread orphan_check([this] {
      while (!g_stop && options_.parent_pid > 0) {
        if (::getppid() != options_.parent_pid) {
          std::cerr << "testlooper worker: the server that started this worker is gone; stopping"
                    << std::endl;
          g_stop = true;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    });
    // A refused upgrade (a wrong or revoked token, too many failed authentications) is retried
    // after 1 s, doubling up to 60 s; anything else after 0.5 s.
    double refused_wait = 0;
    while (!g_stop) {
      const bool refused = !session();
      refused_wait = refused ? std::min(60.0, refused_wait == 0 ? 1.0 : 2 * refused_wait) : 0;
      const auto until = std::chrono::steady_clock::now() +
                         std::chrono::milliseconds(refused ? int(refused_wait * 1000) : 500);
      while (!g_stop && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    cancel_all();
    deployments_.end_all();
    heartbeat.join();
    orphan_check.join();
    run_threads_.reset();  // waits for the runs
    deployments_.stop();
    return 0;
  }

 private:
  // One connection's socket and what waits to be written to it. Every operation on the stream
  // runs on the session's io thread: reads in a loop, writes one at a time from the queue.
  // The socket is WebSocket over TCP, or over TLS for an https:// server: with_ws() hands the
  // one there is to code written once for both.
  struct Connection {
    Connection(asio::io_context& context, asio::ssl::context* tls) : io(context) {
      if (tls) {
        tls_ws = std::make_unique<TlsWs>(context, *tls);
      } else {
        plain_ws = std::make_unique<PlainWs>(context);
      }
    }
    template <class F>
    auto with_ws(F f) {
      return plain_ws ? f(*plain_ws) : f(*tls_ws);
    }
    using PlainWs = websocket::stream<tcp::socket>;
    using TlsWs = websocket::stream<asio::ssl::stream<tcp::socket>>;
    asio::io_context& io;
    std::unique_ptr<PlainWs> plain_ws;
    std::unique_ptr<TlsWs> tls_ws;
    std::deque<std::string> queue;
    std::atomic<size_t> queued_bytes{0};  // in `queue` and posted to it
    beast::flat_buffer buffer;
  };

  // One connection: hello, then jobs until the server goes away (or the worker is stopped);
  // false when the server refused the upgrade.
  bool session() {
    asio::io_context io;
    std::shared_ptr<Connection> conn;
    try {
      conn = std::make_shared<Connection>(io, server_.tls.get());
      beast::error_code ec;
      conn->with_ws([&](auto& ws) {
        if constexpr (std::is_same_v<std::decay_t<decltype(ws)>, Connection::TlsWs>) {
          connect_tls(ws.next_layer(), server_.url, server_.trust);
        } else {
          connect_tcp(ws.next_layer(), server_.url);
        }
        // Results and logs leave at once.
        beast::get_lowest_layer(ws).set_option(tcp::no_delay(true));
        ws.set_option(websocket::stream_base::decorator([this](websocket::request_type& r) {
          r.set(beast::http::field::authorization, "Bearer " + options_.token);
        }));
        websocket::response_type response;
        ws.handshake(response, server_.url.authority(), "/api/worker", ec);
        // The address the server sees this worker at (docker deployments publish ports there).
        beast::error_code no_address;
        const auto local = beast::get_lowest_layer(ws).local_endpoint(no_address);
        if (!no_address) {
          std::lock_guard<std::mutex> lock(mutex_);
          local_address_ = local.address().to_string();
        }
        ws.read_message_max(256 << 20);
        ws.text(true);
      });
      if (ec) {
        // Refused before the upgrade (401: a wrong or missing token): said once, like a close.
        if (ec == websocket::error::upgrade_declined) {
          say_why_closed("it refused the upgrade (is the worker token right?): " + ec.message());
          return false;
        }
        return true;
      }
    } catch (const std::exception& e) {
      // A refused certificate, most likely (the worker retries; it never skips verification).
      if (server_.tls) say_why_not_connected(e.what());
      return true;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      conn_ = conn;
    }
    send(hello());
    read_next(conn);
    // A signal does not interrupt io.run(): look for it a few times a second.
    asio::steady_timer stop_check(io);
    std::function<void()> check = [&] {
      stop_check.expires_after(std::chrono::milliseconds(200));
      stop_check.async_wait([&](beast::error_code ec) {
        if (ec) return;
        if (g_stop) {
          close(*conn);
          return;
        }
        check();
      });
    };
    check();
    io.run();
    // A deployment lives as long as the connection it was given on: the server marks it stopped
    // when the connection ends (its terminal's bytes have nowhere to go).
    deployments_.end_all();
    std::lock_guard<std::mutex> lock(mutex_);
    conn_.reset();
    return true;
  }

  void read_next(const std::shared_ptr<Connection>& conn) {
    conn->with_ws([&](auto& ws) {
      ws.async_read(conn->buffer, [this, conn, &ws](beast::error_code ec, size_t) {
        if (ec == websocket::error::closed) say_why_closed(ws.reason().reason);
        if (ec) return close(*conn);
        const std::string text = beast::buffers_to_string(conn->buffer.data());
        conn->buffer.consume(conn->buffer.size());
        handle(text);
        read_next(conn);
      });
    });
  }

  // The server closed the connection (a wrong token, an id already connected...): said once per
  // reason, as the worker keeps reconnecting.
  void say_why_closed(const websocket::reason_string& reason) {
    say_why_closed(std::string(reason.data(), reason.size()));
  }
  void say_why_closed(const std::string& why) {
    if (why.empty() || why == last_close_reason_) return;
    last_close_reason_ = why;
    std::cerr << "testlooper worker: the server closed the connection: " << why << std::endl;
  }

  // A connection could not be opened (TLS: the server's certificate was refused): said once per
  // reason, as the worker keeps trying.
  void say_why_not_connected(const std::string& why) {
    if (why == last_connect_error_) return;
    last_connect_error_ = why;
    std::cerr << "testlooper worker: cannot connect to " << options_.server_url << ": " << why
              << " (retrying)" << std::endl;
  }

  // Ends the session: pending operations fail and io.run() returns.
  static void close(Connection& conn) {
    beast::error_code ignored;
    conn.with_ws([&](auto& ws) {
      beast::get_lowest_layer(ws).shutdown(tcp::socket::shutdown_both, ignored);
      beast::get_lowest_layer(ws).close(ignored);
    });
    conn.io.stop();
  }

  // Any thread: queues `text` for the current connection (dropped when there is none; results
  // are kept on disk and sent again in the next hello).
  void send(const std::string& text) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!conn_) return;
    conn_->queued_bytes += text.size();
    asio::post(conn_->io, [this, conn = conn_, text] {
      conn->queue.push_back(text);
      if (conn->queue.size() == 1) write_next(conn);
    });
  }

  // send(), after waiting while the connection has more than kMaxQueuedBytes unsent (or until
  // it is gone or the worker stops). For log messages, from their follower's thread.
  void send_when_room(const std::string& text) {
    for (;;) {
      {
        // No copy of conn_ is held here: the last reference to a connection must go on the
        // session's thread, before its io_context (the stream's destructor needs its services).
        std::lock_guard<std::mutex> lock(mutex_);
        if (!conn_ || g_stop || conn_->queued_bytes < kMaxQueuedBytes) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    send(text);
  }

  void write_next(const std::shared_ptr<Connection>& conn) {
    conn->with_ws([&](auto& ws) {
      ws.async_write(asio::buffer(conn->queue.front()), [this, conn](beast::error_code ec, size_t) {
        if (ec) return close(*conn);
        conn->queued_bytes -= conn->queue.front().size();
        conn->queue.pop_front();
        if (!conn->queue.empty()) write_next(conn);
      });
    });
  }

  std::string hello() {
    json running = json::array();
    json finished = json::array();
    {
      std::lock_guard<std::mutex> lock(jobs_mutex_);
      for (const auto& [id, c] : cancellations_) running.push_back(id);
    }
    for (const std::string& text : pending_.all()) {
      const json result = json::parse(text, nullptr, false);
      if (result.is_object()) finished.push_back(result);
    }
    char hostname[256] = {0};
    gethostname(hostname, sizeof(hostname) - 1);
    return json{
        {"type", "hello"},           {"worker", options_.id}, {"cores", options_.cores},
        {"ram_gb", options_.ram_gb}, {"host", hostname},      {"shared_disk", options_.shared_disk},
        {"platforms", {"linux"}},    {"docker", docker_},     {"ami", !options_.ami.empty()},
        {"image", options_.ami},     {"running", running},    {"finished", finished},
        {"job_acks", true}}
        .dump();
  }

  // Every server message names a run; its id becomes a file name here, so it must be one.
  void handle(const std::string& text) {
    const json m = json::parse(text, nullptr, false);
    if (!is_server_message(m)) return;
    const std::string type = m["type"];
    const std::string run_id = m["run_id"];
    if (type == "job") {
      // Acks of this worker's results may ride in its next job (docs/api.md).
      for (const std::string& id : job_acks(m)) pending_.acknowledge(id);
      if (is_job(m)) start(m);
    } else if (type == "deploy") {
      if (is_job(m)) deployments_.deploy(m);
    } else if (type == "shutdown") {
      deployments_.end(run_id);
    } else if (type == "input" || type == "resize") {
      deployments_.control(type, run_id, m);
    } else if (type == "cancel") {
      std::lock_guard<std::mutex> lock(jobs_mutex_);
      auto it = cancellations_.find(run_id);
      if (it != cancellations_.end()) it->second->cancel();
    } else if (type == "ack") {
      pending_.acknowledge(run_id);
    }
  }

  void start(const json& job) {
    const std::string run_id = job.value("run_id", "");
    auto cancellation = std::make_shared<runner::Cancellation>();
    {
      std::lock_guard<std::mutex> lock(jobs_mutex_);
      cancellations_[run_id] = cancellation;
    }
    // On a thread kept from run to run: making one per run was a tenth of a trivial run's cost.
    run_threads_->post([this, job, run_id, cancellation] {
      // Invalid UTF-8 (a log's end, a case's message) is written as U+FFFD, as in a log message.
      const std::string result =
          execute(job, *cancellation).dump(-1, ' ', false, json::error_handler_t::replace);
      pending_.add(run_id, result);
      {
        std::lock_guard<std::mutex> lock(jobs_mutex_);
        cancellations_.erase(run_id);
      }
      send(result);
    });
  }

  // What a job runs with: what a deployment does (its object, the runner for where its files
  // are, whether in containers), and the bucket when this worker reads and writes S3 itself.
  struct Prepared : Deployments::Prepared {
    bool shared = false;
    std::unique_ptr<s3store::S3Artifacts> s3;
  };

  // Parses the job's object, prepares its environment and fetches its inputs (builds) when this
  // worker does not share the server's disk. On failure `result` holds the infrastructure
  // failure ("outcome", "message", "environment_failed") and nullopt is returned.
  std::optional<Prepared> prepare_job(const Job& job, json& result) {
    const std::string& run_id = job.run_id;
    auto object = definitions::object_from_json(job.object.dump());
    if (!object.ok()) {
      result["outcome"] = "infra";
      result["message"] = object.error().to_string();
      return std::nullopt;
    }
    // An environment that cannot be prepared (its image does not build) fails every run on it:
    // the server counts that once for the environment, not once per object.
    auto launcher = runners_.prepare(object->environment);
    if (!launcher.ok()) {
      result["outcome"] = "infra";
      result["message"] = "cannot prepare the environment: " + launcher.error().to_string();
      result["environment_failed"] = true;
      return std::nullopt;
    }
    Prepared p;
    p.in_containers = (*launcher)->runs_in_containers();
    p.object = std::move(*object);
    // The server names its directories only to workers that share its disk.
    p.shared = job.repos_dir && job.artifacts_dir;
    p.runner = p.shared ? &runners_.get(*job.artifacts_dir, *job.repos_dir)
                        : &runners_.remote(local_store_, remote_sources_);
    // The server's artifacts in S3: read and written here directly when this worker can.
    if (!p.shared && job.s3) p.s3 = open_s3(run_id, *job.s3);
    if (!p.shared) {
      if (Status fetched = remote_files_.fetch_inputs(p.object, p.s3.get()); !fetched.ok()) {
        result["outcome"] = "infra";
        result["message"] =
            "cannot fetch the job's builds from the server: " + fetched.error().to_string();
        return std::nullopt;
      }
    }
    return p;
  }

  json execute(const json& message, runner::Cancellation& cancellation) {
    const Job job = read_job(message);
    const std::string& run_id = job.run_id;
    json result = {{"type", "result"}, {"run_id", run_id}};
    std::optional<Prepared> prepared = prepare_job(job, result);
    if (!prepared) return result;
    const definitions::ResolvedObject* object = &prepared->object;
    runner::Runner& r = *prepared->runner;
    const bool shared = prepared->shared;
    std::unique_ptr<s3store::S3Artifacts>& s3 = prepared->s3;
    runner::RunRequest request{object, run_id, job.cores, job.ram_gb, &cancellation, {}};
    request.max_log_bytes = job.max_log_bytes;
    LogPump::Follower follower(log_pump_, run_id);
    request.on_log_open = [&follower](const fs::path& log) { follower.follow(log); };
    const runner::RunResult run = r.run(request, {});
    // A server that reads a result's "log" says so in the job: a short run's log then goes with
    // its result, one message instead of two.
    std::string log_end = follower.finish(run.log_path, job.log_in_result ? kResultLog : 0);
    json cases = json::array();
    for (const auto& t : run.tests) {
      cases.push_back({{"name", t.name},
                       {"success", t.success},
                       {"elapsed", t.elapsed},
                       {"message", t.message},
                       {"skipped", t.skipped},
                       {"logs", t.logs}});
    }
    if (!log_end.empty()) result["log"] = std::move(log_end);
    result["outcome"] = outcome_word(run.outcome);
    result["exit_code"] = run.exit_code;
    result["message"] = run.message;
    bool put_in_s3 = false;
    // Opened again: an instance role's credentials may have expired during a long run.
    if (s3) s3 = open_s3(run_id, *job.s3);
    if (!shared && s3) {
      // Put in the bucket here; the server verifies the objects named before it records.
      Result<std::vector<s3store::PutKey>> put =
          remote_files_.put_outputs(*object, run_id, run.outcome == runner::Outcome::kSuccess, *s3);
      if (put.ok()) {
        put_in_s3 = true;
        json keys = json::array();
        for (const s3store::PutKey& k : *put) {
          keys.push_back({{"key", k.key}, {"size", k.size}, {"etag", k.etag}});
        }
        result["s3_keys"] = keys;
      } else {
        std::cerr << "testlooper worker: run " << run_id << ": cannot put its files in S3 ("
                  << put.error().to_string() << "): through the server" << std::endl;
      }
    }
    if (!shared && !put_in_s3) {
      // Consumers of a build need its artifacts on the server: a run whose files did not get
      // there taught nothing reliable, so it is an infrastructure failure (and runs again).
      if (Status uploaded = upload_outputs(*object, run_id, job.upload_token, cancellation);
          !uploaded.ok()) {
        result["outcome"] = "infra";
        result["message"] =
            "cannot upload the run's files to the server: " + uploaded.error().to_string();
      }
    }
    result["start"] = run.start_timestamp;
    result["end"] = run.end_timestamp;
    result["cases"] = cases;
    return result;
  }

  // Uploads the run's files; while the server cannot take them (it is restarting, or its disk is
  // full: a network error or a 5xx), again with back-off from 1 s doubling to 30 s, for up to
  // 10 minutes or until the run is cancelled. A run that ran is not lost to a server restart
  // (issue 11), and a full disk is not hammered (item 8).
  Status upload_outputs(const definitions::ResolvedObject& object, const std::string& run_id,
                        const std::string& upload_token, const runner::Cancellation& cancellation) {
    using std::chrono::steady_clock;
    const auto give_up = steady_clock::now() + std::chrono::minutes(10);
    std::chrono::milliseconds delay(1000);
    for (;;) {
      Status uploaded = remote_files_.upload_outputs(object, run_id, upload_token);
      if (uploaded.ok() || !ServerClient::is_transient(uploaded.error())) return uploaded;
      const auto next = steady_clock::now() + delay;
      if (next > give_up) return uploaded;
      while (steady_clock::now() < next) {
        if (g_stop || cancellation.cancelled()) return uploaded;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      delay = std::min(delay * 2, std::chrono::milliseconds(30'000));
    }
  }

  // The bucket of a job's "s3" with this worker's credentials; null (and a line saying why) when
  // it cannot be used here: the run's files then go through the server.
  std::unique_ptr<s3store::S3Artifacts> open_s3(const std::string& run_id, const json& s3) {
    Result<fleet::S3Options> options = s3_options(s3);
    Result<std::unique_ptr<s3store::S3Artifacts>> opened =
        options.ok() ? s3_access_.open(*options)
                     : Result<std::unique_ptr<s3store::S3Artifacts>>(options.error());
    if (opened.ok()) return std::move(*opened);
    std::cerr << "testlooper worker: run " << run_id << ": not reading or writing S3 directly ("
              << opened.error().to_string() << "): through the server" << std::endl;
    return nullptr;
  }

  void cancel_all() {
    std::lock_guard<std::mutex> lock(jobs_mutex_);
    for (auto& [id, c] : cancellations_) c->cancel();
  }

  const WorkerOptions& options_;
  bool docker_ = false;  // it runs Dockerfile environments (found at start)
  ServerEndpoint server_;
  // For jobs without the server's disk (no repos_dir/artifacts_dir in the job).
  ServerClient client_;
  artifacts::Store local_store_;
  RemoteSourceExporter remote_sources_;
  RemoteFiles remote_files_;
  S3Access s3_access_;
  Runners runners_;
  PendingResults pending_;
  std::mutex mutex_;  // guards conn_, local_address_
  std::shared_ptr<Connection> conn_;
  std::string local_address_;  // this end's address of the last connection to the server
  std::mutex jobs_mutex_;
  std::map<std::string, std::shared_ptr<runner::Cancellation>> cancellations_;
  // The jobs' threads (posted by the session's io thread; emptied by run() before it returns).
  std::unique_ptr<runner::ThreadPool> run_threads_ = std::make_unique<runner::ThreadPool>();
  Deployments deployments_{
      (fs::path(options_.dir) / "deployments").string(),
      {[this](const json& job, json& failure) -> std::optional<Deployments::Prepared> {
         std::optional<Prepared> p = prepare_job(read_job(job), failure);
         if (!p) return std::nullopt;
         return std::move(static_cast<Deployments::Prepared&>(*p));
       },
       [this](const std::string& text) { send(text); },
       [this](const std::string& text) { send_when_room(text); },
       [this] {
         std::lock_guard<std::mutex> lock(mutex_);
         return local_address_;
       }}};
  std::string last_close_reason_;   // touched by the session's io thread only
  std::string last_connect_error_;  // touched by the session's thread only
  // Last: its thread sends through this agent, and it is gone before the rest of it.
  LogPump log_pump_{[this](const std::string& text) { send_when_room(text); }};
};

}  // namespace

int run_worker(const WorkerOptions& options) {
  // Without SA_RESTART, so that a blocking read returns and the worker notices the signal.
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);
  Result<ServerEndpoint> server =
      server_endpoint(options.server_url, TlsTrust{options.ca_file, options.server_cert});
  if (!server.ok()) {
    std::cerr << "testlooper worker: " << server.error().to_string() << std::endl;
    return 2;
  }
  fs::create_directories(options.dir);
  artifacts::spread_new_directories(options.dir);  // its store and work slots: see the function
  // Before any thread: a deployment's processes die with the worker, however it dies.
  if (!start_lifeline())
    std::cerr << "testlooper worker: no lifeline process: a deployment may outlive a killed worker"
              << std::endl;
  return Agent(options, *server).run();
}

}  // namespace testlooper::worker
