// The scoped docker's listener: one thread per connection, one request per connection.
#include "docker_proxy/docker_proxy.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <list>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "docker_proxy/engine_client.h"

namespace testlooper::docker_proxy {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Socket = asio::local::stream_protocol::socket;
using Endpoint = asio::local::stream_protocol::endpoint;

constexpr size_t kMaxConnections = 64;
constexpr size_t kMaxHeader = 64 << 10;

void shut(Socket& socket, int how = SHUT_RDWR) {
  if (socket.is_open()) ::shutdown(socket.native_handle(), how);
}

void answer(Socket& client, int status, const std::string& message) {
  http::response<http::string_body> response(static_cast<http::status>(status), 11);
  response.set(http::field::content_type, "application/json");
  response.set(http::field::connection, "close");
  response.body() = nlohmann::json{{"message", message}}.dump() + "\n";
  response.prepare_payload();
  beast::error_code ignored;
  http::write(client, response, ignored);
}

bool write_all(Socket& to, const void* data, size_t size) {
  beast::error_code error;
  asio::write(to, asio::buffer(data, size), error);
  return !error;
}

// Copies bytes until `from` ends or either side fails.
void pump(Socket& from, Socket& to) {
  char buffer[64 << 10];
  for (;;) {
    beast::error_code error;
    const size_t n = from.read_some(asio::buffer(buffer), error);
    if (n > 0 && !write_all(to, buffer, n)) return;
    if (error) return;
  }
}

// The request as the engine gets it: the test's headers minus hop-by-hop ones, the plan's
// target and body, and "Connection: close" unless the test asks for a hijacked stream.
http::request<http::string_body> engine_request(const http::request<http::string_body>& from,
                                                const Plan& plan) {
  http::request<http::string_body> to(from.method(), plan.target, 11);
  for (const auto& field : from) {
    switch (field.name()) {
      case http::field::host:
      case http::field::content_length:
      case http::field::transfer_encoding:
      case http::field::connection:
      case http::field::upgrade:
      case http::field::keep_alive:
      case http::field::te:
      case http::field::trailer:
      case http::field::expect:
        break;
      default:
        to.insert(field.name_string(), field.value());
    }
  }
  to.set(http::field::host, "docker");
  if (plan.action == Plan::Action::kHijack && from.count(http::field::upgrade)) {
    to.set(http::field::connection, "Upgrade");
    to.set(http::field::upgrade, "tcp");
  } else {
    to.set(http::field::connection, "close");
  }
  to.body() = plan.body;
  to.prepare_payload();
  return to;
}

std::string header_text(const http::response_parser<http::string_body>& parser) {
  const auto& response = parser.get();
  std::string text = "HTTP/1.1 " + std::to_string(response.result_int()) + " " +
                     std::string(response.reason()) + "\r\n";
  for (const auto& field : response) {
    text += std::string(field.name_string()) + ": " + std::string(field.value()) + "\r\n";
  }
  return text + "\r\n";
}

class Proxy : public DockerProxy {
 public:
  Proxy(Scope scope, std::string socket_path, std::string engine_socket)
      : scope_(std::move(scope)),
        socket_path_(std::move(socket_path)),
        engine_socket_(std::move(engine_socket)),
        acceptor_(context_) {}

  ~Proxy() override { stop(); }

  Status listen() {
    try {
      ::unlink(socket_path_.c_str());
      acceptor_.open();
      acceptor_.bind(Endpoint(socket_path_));
      ::chmod(socket_path_.c_str(), 0600);
      acceptor_.listen();
    } catch (const std::exception& error) {
      return Error{"docker proxy " + socket_path_, error.what()};
    }
    accept_thread_ = std::thread([this] { accept_loop(); });
    return {};
  }

  void stop() override {
    std::list<std::shared_ptr<Connection>> connections;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      stopping_ = true;
      for (const auto& connection : connections_) {
        if (connection->protect) continue;  // creating: it finishes, then is removed with the rest
        shut(connection->client);
        if (connection->engine) shut(*connection->engine);
      }
    }
    if (accept_thread_.joinable()) {
      shut_acceptor();
      accept_thread_.join();
    }
    {
      std::lock_guard lock(mutex_);
      connections.swap(connections_);
    }
    for (const auto& connection : connections) {
      if (connection->thread.joinable()) connection->thread.join();
    }
    ::unlink(socket_path_.c_str());
  }

 private:
  struct Connection {
    explicit Connection(asio::io_context& context) : client(context) {}
    Socket client;
    std::optional<Socket> engine;
    bool protect = false;  // a create in flight: stop() lets it finish
    bool done = false;
    std::thread thread;
  };

  // Wakes accept(): shutdown() of a listening socket makes it fail on Linux; a connection to
  // it does in any case.
  void shut_acceptor() {
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    try {
      Socket wake(context_);
      wake.connect(Endpoint(socket_path_));
    } catch (const std::exception&) {
    }
  }

  void accept_loop() {
    for (;;) {
      auto connection = std::make_shared<Connection>(context_);
      beast::error_code error;
      acceptor_.accept(connection->client, error);
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      reap_locked();
      if (error) {
        if (error == asio::error::bad_descriptor || error == asio::error::invalid_argument) return;
        continue;
      }
      if (connections_.size() >= kMaxConnections) {
        answer(connection->client, 503, "too many connections to the scoped docker");
        continue;
      }
      connection->thread = std::thread([this, connection] {
        serve(*connection);
        // The answer ends with the connection: clients that read to EOF see it now.
        std::lock_guard lock(mutex_);
        beast::error_code ignored;
        connection->client.close(ignored);
        if (connection->engine) connection->engine->close(ignored);
        connection->done = true;
      });
      connections_.push_back(std::move(connection));
    }
  }

  void reap_locked() {
    for (auto it = connections_.begin(); it != connections_.end();) {
      if ((*it)->done) {
        (*it)->thread.join();
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // Marks the connection (un)protected; false when the proxy is stopping and it is not.
  bool still_serving(Connection& connection, bool protect) {
    std::lock_guard lock(mutex_);
    connection.protect = protect;
    return !stopping_ || protect;
  }

  void serve(Connection& connection) {
    try {
      beast::flat_buffer buffer;
      http::request_parser<http::string_body> parser;
      parser.header_limit(kMaxHeader);
      parser.body_limit(kMaxRequestBody);
      beast::error_code error;
      http::read(connection.client, buffer, parser, error);
      if (error == http::error::body_limit) return answer(connection.client, 413, "body too large");
      if (error == http::error::header_limit)
        return answer(connection.client, 431, "header too large");
      if (error) return;
      if (!still_serving(connection, true)) return;
      const auto& request = parser.get();
      EngineLookups lookups(scope_, engine_socket_);
      const Plan plan = plan_request(scope_,
                                     Request{std::string(request.method_string()),
                                             std::string(request.target()), request.body()},
                                     lookups);
      if (!still_serving(connection, plan.creates)) return;
      if (plan.action == Plan::Action::kRefuse) {
        return answer(connection.client, plan.status, plan.error);
      }
      relay(connection, request, plan, buffer);
    } catch (const std::exception&) {
      // A connection that failed mid-way is closed; the engine cleans up its side.
    }
  }

  void relay(Connection& connection, const http::request<http::string_body>& request,
             const Plan& plan, beast::flat_buffer& client_buffer) {
    {
      std::lock_guard lock(mutex_);
      connection.engine.emplace(context_);
    }
    Socket& engine = *connection.engine;
    beast::error_code error;
    engine.connect(Endpoint(engine_socket_), error);
    if (error) return answer(connection.client, 502, "the docker engine is not reachable");
    if (!still_serving(connection, plan.creates)) return;
    http::write(engine, engine_request(request, plan));
    beast::flat_buffer engine_buffer;
    http::response_parser<http::string_body> response;
    response.body_limit(kMaxListAnswer);
    if (request.method() == http::verb::head) response.skip(true);
    http::read_header(engine, engine_buffer, response);
    if (plan.action == Plan::Action::kFilterList) {
      http::read(engine, engine_buffer, response);
      // An error (a bad filter, say) passes as the engine said it; a list keeps the run's only.
      std::string body = response.get().body();
      if (response.get().result_int() == 200) {
        Result<std::string> kept = filter_list(scope_, plan.list_kind, body);
        if (!kept.ok()) return answer(connection.client, 502, kept.error().message);
        body = std::move(*kept);
      }
      http::response<http::string_body> filtered(response.get().result(), 11);
      filtered.set(http::field::content_type, "application/json");
      filtered.set(http::field::connection, "close");
      filtered.body() = std::move(body);
      filtered.prepare_payload();
      http::write(connection.client, filtered, error);
      return;
    }
    const std::string head = header_text(response);
    if (!write_all(connection.client, head.data(), head.size())) return;
    const auto early = engine_buffer.data();
    if (early.size() > 0 && !write_all(connection.client, early.data(), early.size())) return;
    const int status = response.get().result_int();
    if (plan.action != Plan::Action::kHijack || (status != 101 && status != 200)) {
      return pump(engine, connection.client);
    }
    std::thread upstream([&] {
      const auto sent = client_buffer.data();
      if (sent.size() == 0 || write_all(engine, sent.data(), sent.size())) {
        pump(connection.client, engine);
      }
      shut(engine, SHUT_WR);  // the test closed its stdin; its output may still come
    });
    pump(engine, connection.client);
    shut(connection.client);  // the stream ended: so does the session
    shut(engine);
    upstream.join();
  }

  const Scope scope_;
  const std::string socket_path_;
  const std::string engine_socket_;
  asio::io_context context_;
  asio::local::stream_protocol::acceptor acceptor_;
  std::thread accept_thread_;
  std::mutex mutex_;  // guards stopping_, connections_ and each Connection's engine/protect/done
  bool stopping_ = false;
  std::list<std::shared_ptr<Connection>> connections_;
};

}  // namespace

Result<std::unique_ptr<DockerProxy>> DockerProxy::start(Scope scope, const std::string& socket_path,
                                                        std::string engine_socket) {
  auto proxy = std::make_unique<Proxy>(std::move(scope), socket_path, std::move(engine_socket));
  TL_RETURN_IF_ERROR(proxy->listen());
  return std::unique_ptr<DockerProxy>(std::move(proxy));
}

}  // namespace testlooper::docker_proxy
