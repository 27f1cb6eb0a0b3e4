#include "server/port_proxy.h"

// clang-format off: before Boost.Asio, whose awaitable.hpp needs std::exchange under C++20.
#include <utility>
// clang-format on

#include <fmt/format.h>

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <boost/beast/websocket.hpp>
#include <cctype>
#include <chrono>
#include <deque>
#include <set>
#include <sstream>

#include "server/event_log.h"
#include "server/http_request.h"

namespace testlooper::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

std::chrono::milliseconds proxy_timeout() {
  return std::chrono::milliseconds(static_cast<int64_t>(kPortProxySeconds * 1000));
}

// `text` %-encoded but for unreserved characters and those in `keep`.
std::string encode(const std::string& text, std::string_view keep) {
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        keep.find(static_cast<char>(c)) != std::string_view::npos) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string target_of(const std::string& path, const std::map<std::string, std::string>& query) {
  std::string out = encode(path, "/:@!$&'()*+,;=");
  char separator = '?';
  for (const auto& [k, v] : query) {
    out += separator + encode(k, "") + "=" + encode(v, "");
    separator = '&';
  }
  return out;
}

// Whether cookie `name` is one of TestLooper's own (its session, its sign-in).
bool is_own_cookie(std::string_view name) { return lower(name).starts_with("testlooper_"); }

// `cookies` (a Cookie header's value) without TestLooper's own.
std::string without_own_cookies(const std::string& cookies) {
  std::string out;
  std::istringstream in(cookies);
  for (std::string part; std::getline(in, part, ';');) {
    const size_t start = part.find_first_not_of(' ');
    if (start == std::string::npos) continue;
    part = part.substr(start);
    if (is_own_cookie(part.substr(0, part.find('=')))) continue;
    out += (out.empty() ? "" : "; ") + part;
  }
  return out;
}

// The headers a hop, or TestLooper itself, consumes: never forwarded either way. The names a
// Connection header lists are added by the caller.
const std::set<std::string>& dropped_headers() {
  static const std::set<std::string> names = {"connection",
                                              "keep-alive",
                                              "proxy-authenticate",
                                              "proxy-authorization",
                                              "proxy-connection",
                                              "te",
                                              "trailer",
                                              "transfer-encoding",
                                              "upgrade",
                                              "host",
                                              "authorization",
                                              "x-csrf-token",
                                              "content-length",
                                              "expect",
                                              "x-forwarded-for",
                                              "x-forwarded-prefix"};
  return names;
}

std::set<std::string> connection_listed(const std::string& connection) {
  std::set<std::string> out;
  std::istringstream in(connection);
  for (std::string name; std::getline(in, name, ',');) {
    const size_t a = name.find_first_not_of(" \t"), b = name.find_last_not_of(" \t");
    if (a != std::string::npos) out.insert(lower(name.substr(a, b - a + 1)));
  }
  return out;
}

// Sets on `fields` what `request` forwards (for a WebSocket, without the handshake's own).
template <class Fields>
void set_forwarded(Fields& fields, const PortRequest& request, bool websocket) {
  fields.set(http::field::host, request.host + ":" + std::to_string(request.port));
  for (const auto& [name, value] : request.headers) {
    if (websocket && name.starts_with("sec-websocket-")) continue;
    if (name == "cookie") {
      if (const std::string rest = without_own_cookies(value); !rest.empty())
        fields.set(http::field::cookie, rest);
      continue;
    }
    fields.set(name, value);
  }
  if (!request.client.empty()) fields.set("X-Forwarded-For", request.client);
  if (!request.prefix.empty()) fields.set("X-Forwarded-Prefix", request.prefix);
}

// A proxied answer's headers the client gets: not the hop-by-hop ones, not those the server
// writes itself, and no Set-Cookie of TestLooper's own cookies.
template <class Fields>
void copy_answer_headers(const Fields& in, const std::string& prefix, Response& out) {
  std::set<std::string> dropped = dropped_headers();
  if (auto c = in.find(http::field::connection); c != in.end()) {
    const auto listed = connection_listed(std::string(c->value()));
    dropped.insert(listed.begin(), listed.end());
  }
  for (const auto& field : in) {
    const std::string name = lower(std::string(field.name_string()));
    if (dropped.count(name) || name == "content-type" || name == "cache-control") continue;
    std::string value(field.value());
    if (name == "set-cookie" && is_own_cookie(value.substr(0, value.find('=')))) continue;
    // A redirect to a path of the deployment's stays under its port's prefix.
    if (name == "location" && value.starts_with("/") && !value.starts_with("//"))
      value = prefix + value;
    out.headers.emplace_back(std::string(field.name_string()), value);
  }
}

}  // namespace

std::optional<PortPath> parse_port_path(const std::string& path) {
  const std::string prefix = "/api/deployments/", ports = "/ports/";
  if (!path.starts_with(prefix)) return std::nullopt;
  const size_t at = path.find(ports, prefix.size());
  if (at == std::string::npos) return std::nullopt;
  PortPath out;
  out.id = path.substr(prefix.size(), at - prefix.size());
  const std::string rest = path.substr(at + ports.size());
  const size_t slash = rest.find('/');
  out.name = rest.substr(0, slash);
  out.path = slash == std::string::npos ? "/" : rest.substr(slash);
  return out;
}

void log_port_use(const std::string& who, const PortPath& where, const std::string& method,
                  int status) {
  log_event("info", "deployment_port",
            {{"who", who},
             {"deployment", where.id.substr(0, 64)},
             {"port", where.name.substr(0, 200)},
             {"method", method},
             {"path", where.path.substr(0, 1024)},
             {"status", std::to_string(status)}});
}

bool is_proxied_method(const std::string& method) {
  for (const char* m : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
    if (method == m) return true;
  }
  return false;
}

PortRequest port_request(const Request& request, const PortPath& where, const std::string& host,
                         int port) {
  PortRequest out;
  out.host = host;
  out.port = port;
  out.method = request.method;
  out.target = target_of(where.path, request.query);
  std::set<std::string> dropped = dropped_headers();
  if (auto c = request.headers.find("connection"); c != request.headers.end()) {
    const auto listed = connection_listed(c->second);
    dropped.insert(listed.begin(), listed.end());
  }
  for (const auto& [name, value] : request.headers) {
    if (!dropped.count(name)) out.headers[name] = value;
  }
  out.body = request.body;
  out.client = request.client;
  out.prefix = "/api/deployments/" + where.id + "/ports/" + encode(where.name, "");
  return out;
}

Response forward_to_port(const PortRequest& request) {
  try {
    asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(proxy_timeout());
    tcp::resolver resolver(io);
    stream.connect(resolver.resolve(request.host, std::to_string(request.port)));
    http::request<http::string_body> out(http::string_to_verb(request.method), request.target, 11);
    set_forwarded(out, request, false);
    out.body() = request.body;
    out.prepare_payload();
    stream.expires_after(proxy_timeout());
    http::write(stream, out);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxBodyBytes);
    if (request.method == "HEAD") parser.skip(true);
    stream.expires_after(proxy_timeout());
    http::read(stream, buffer, parser);
    const auto& in = parser.get();
    Response r;
    r.status = static_cast<int>(in.result_int());
    auto type = in.find(http::field::content_type);
    r.content_type = type == in.end() ? "application/octet-stream" : std::string(type->value());
    r.body = in.body();
    copy_answer_headers(in, request.prefix, r);
    return r;
  } catch (const std::exception& e) {
    return error_response(502, std::string("the deployment's port did not answer: ") + e.what());
  }
}

namespace {

class Bridge : public PortBridge, public std::enable_shared_from_this<Bridge> {
 public:
  Bridge(std::shared_ptr<Socket> client, PortRequest request,
         std::function<void(int status)> opened)
      : client_(std::move(client)), request_(std::move(request)), opened_(std::move(opened)) {}

  void run(const std::atomic<bool>& stop) override {
    connect();
    while (!io_.stopped()) {
      if (stop) {
        stopping_ = true;  // the server goes (and its io thread): nothing more is posted to it
        beast::error_code ignored;
        beast::get_lowest_layer(ws_).socket().close(ignored);
        break;
      }
      io_.run_for(std::chrono::milliseconds(200));
    }
    // What is pending ends (aborted) and lets go of this bridge.
    io_.restart();
    io_.run_for(std::chrono::seconds(1));
  }

  void send(const std::string& message, bool binary) override {
    asio::post(io_, [weak = weak_from_this(), message, binary] {
      auto self = weak.lock();
      if (!self || self->closing_) return;
      self->queued_ += message.size();
      if (self->queued_ > kMaxPortSocketBuffer) {
        return self->end_client("the deployment's port reads too slowly");
      }
      self->queue_.emplace_back(message, binary);
      if (self->open_ && self->queue_.size() == 1) self->write_next();
    });
  }

  void close() override {
    asio::post(io_, [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->close_port();
    });
  }

 private:
  void connect() {
    beast::error_code ec;
    tcp::resolver resolver(io_);
    const auto endpoints = resolver.resolve(request_.host, std::to_string(request_.port), ec);
    if (ec) return failed("the deployment's port did not answer: " + ec.message());
    beast::get_lowest_layer(ws_).expires_after(proxy_timeout());
    auto self = shared_from_this();
    beast::get_lowest_layer(ws_).async_connect(endpoints, [self](beast::error_code ec,
                                                                 const tcp::endpoint&) {
      if (ec) return self->failed("the deployment's port did not answer: " + ec.message());
      if (self->closing_) return self->close_socket();
      self->ws_.set_option(
          websocket::stream_base::decorator([request = self->request_](websocket::request_type& r) {
            set_forwarded(r, request, true);
          }));
      self->ws_.async_handshake(
          self->request_.host + ":" + std::to_string(self->request_.port), self->request_.target,
          [self](beast::error_code ec) {
            if (ec) {
              return self->failed("the deployment's port refused the WebSocket: " + ec.message());
            }
            self->opened();
          });
    });
  }

  void opened() {
    beast::get_lowest_layer(ws_).expires_never();
    ws_.set_option(websocket::stream_base::timeout{proxy_timeout(), proxy_timeout(), true});
    ws_.read_message_max(kMaxPortSocketBuffer);
    ws_.auto_fragment(false);
    open_ = true;
    report(101);
    if (closing_) return close_port();
    read();
    if (!queue_.empty()) write_next();
  }

  void failed(const std::string& why) {
    report(502);
    close_socket();
    end_client(why);
  }

  void report(int status) {
    if (!opened_) return;
    auto opened = std::move(opened_);
    opened_ = nullptr;
    opened(status);
  }

  // Closes the client's end (`why` non-empty: with 1008 and it), on the server's io thread.
  void end_client(const std::string& why) {
    closing_ = true;
    if (stopping_ || client_closed_) return;
    client_closed_ = true;
    client_->post([client = client_, why] { client->close(why); });
    if (open_) close_port();
  }

  void read() {
    auto self = shared_from_this();
    ws_.async_read(buffer_, [self](beast::error_code ec, size_t) {
      if (ec) {
        self->open_ = false;
        self->close_socket();
        // A close frame came (its teardown may still have failed: the peer had gone).
        const auto& reason = self->ws_.reason();
        if (ec == websocket::error::closed || reason.code != websocket::close_code::none) {
          self->end_client(reason.code == websocket::close_code::normal
                               ? ""
                               : "the deployment's port closed the connection (" +
                                     std::to_string(reason.code) + ")");
        } else {
          self->end_client("the connection to the deployment's port ended: " + ec.message());
        }
        return;
      }
      std::string message = beast::buffers_to_string(self->buffer_.data());
      self->buffer_.consume(self->buffer_.size());
      const bool binary = self->ws_.got_binary();
      if (!self->stopping_ && !self->client_closed_) {
        self->client_->post([client = self->client_, message = std::move(message), binary] {
          if (client->buffered() > kMaxPortSocketBuffer) {
            return client->close("too slow: the deployment's port sends faster than it is read");
          }
          binary ? client->send_binary(message) : client->send(message);
        });
      }
      self->read();
    });
  }

  void write_next() {
    auto self = shared_from_this();
    ws_.binary(queue_.front().second);
    ws_.async_write(asio::buffer(queue_.front().first), [self](beast::error_code ec, size_t) {
      if (ec) {
        self->queue_.clear();
        self->queued_ = 0;
        return;
      }
      self->queued_ -= self->queue_.front().first.size();
      self->queue_.pop_front();
      if (!self->queue_.empty()) return self->write_next();
      if (self->closing_) self->close_port();
    });
  }

  // Closes the deployment's end: a close frame once what is queued is written.
  void close_port() {
    closing_ = true;
    if (!open_) return close_socket();
    if (!queue_.empty() || close_sent_) return;
    close_sent_ = true;
    ws_.async_close(websocket::close_code::normal,
                    [self = shared_from_this()](beast::error_code) { self->close_socket(); });
  }

  void close_socket() {
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

  asio::io_context io_;
  websocket::stream<beast::tcp_stream> ws_{io_};
  std::shared_ptr<Socket> client_;
  PortRequest request_;
  std::function<void(int)> opened_;
  beast::flat_buffer buffer_;
  std::deque<std::pair<std::string, bool>> queue_;  // for the deployment: (message, binary)
  size_t queued_ = 0;                               // bytes in queue_
  bool open_ = false;                               // the WebSocket to the deployment is up
  bool closing_ = false;                            // either end went
  bool close_sent_ = false;     // the close frame to the deployment is on its way
  bool client_closed_ = false;  // the client was told to close
  bool stopping_ = false;       // the server stops
};

}  // namespace

std::shared_ptr<PortBridge> make_port_bridge(std::shared_ptr<Socket> client, PortRequest request,
                                             std::function<void(int status)> opened) {
  return std::make_shared<Bridge>(std::move(client), std::move(request), std::move(opened));
}

}  // namespace testlooper::server
