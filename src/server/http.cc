// Boost.Beast behind HttpServer: one io_context, one thread.
#include "server/http.h"

// clang-format off: before Boost.Asio, whose awaitable.hpp needs std::exchange under C++20.
#include <utility>
// clang-format on

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/hash.h"
#include "server/http_request.h"

namespace testlooper::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

// A session's stream: plain TCP, or TLS over it (HttpOptions::tls_cert). Sessions are templates
// on it; every limit and timeout is the TCP layer's, so both get the same.
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
template <class Stream>
constexpr bool kIsTls = std::is_same_v<Stream, TlsStream>;

// A server context for `cert` (a PEM chain) and `key`: TLS 1.2 and later. Throws
// std::runtime_error naming the file at fault and OpenSSL's reason.
std::unique_ptr<ssl::context> server_tls_context(const std::string& cert, const std::string& key,
                                                 const std::string& chain) {
  auto context = std::make_unique<ssl::context>(ssl::context::tls_server);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                       ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
  auto load = [](const std::string& flag, const std::string& file, auto use) {
    if (FILE* f = ::fopen(file.c_str(), "r")) {
      ::fclose(f);
    } else {
      throw std::runtime_error(flag + " " + file + ": cannot read it: " + strerror(errno));
    }
    beast::error_code ec;
    use(ec);
    if (ec) {
      // Asio took OpenSSL's first error into `ec`; what follows it says where it happened.
      const std::string more = openssl_reason();
      throw std::runtime_error(flag + " " + file + ": " + ec.message() +
                               (more.empty() ? "" : " (" + more + ")"));
    }
  };
  ERR_clear_error();
  load("--tls-cert", cert,
       [&](beast::error_code& ec) { context->use_certificate_chain_file(cert, ec); });
  load("--tls-key", key,
       [&](beast::error_code& ec) { context->use_private_key_file(key, ssl::context::pem, ec); });
  if (!chain.empty()) {
    // The original's path_to_certs.chain: the certificates sent after the leaf.
    load("server.path_to_certs.chain", chain, [&](beast::error_code& ec) {
      BIO* bio = BIO_new_file(chain.c_str(), "r");
      int added = 0;
      while (bio != nullptr) {
        X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
        if (x == nullptr) break;
        if (SSL_CTX_add0_chain_cert(context->native_handle(), x) != 1) {
          X509_free(x);
          added = -1;
          break;
        }
        ++added;
      }
      if (bio != nullptr) BIO_free(bio);
      ERR_clear_error();  // the end of the file reads as an error
      if (added <= 0) ec = boost::asio::error::invalid_argument;
    });
  }
  if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
    throw std::runtime_error("--tls-key " + key + " is not the key of --tls-cert " + cert + ": " +
                             openssl_reason());
  }
  return context;
}

std::chrono::milliseconds duration(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(std::max(0.001, seconds) * 1000));
}

// Opens `path` close-on-exec, without following a final symlink; -1 unless a regular file.
int open_regular_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return -1;
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// What every session shares with the server: the handler, the options, and the open connections
// (per client address, and each session for the shutdown).
class Session {
 public:
  virtual ~Session() = default;
  // Asks the peer to go (WebSocket 1001 "going away"; an HTTP connection is closed).
  virtual void shut_down() = 0;
  // Closes the socket now.
  virtual void force_close() = 0;
  // True while the connection has no request in progress: it waits for a request's head (a
  // new or idle keep-alive connection, or a slow client). Such a connection may be closed to
  // make room for another from the same client.
  virtual bool waiting_for_head() const { return false; }
};

struct Shared {
  Handler& handler;
  HttpOptions options;
  std::unique_ptr<ssl::context> tls;  // set when the server speaks TLS
  std::map<std::string, int> per_client;
  std::map<uint64_t, std::weak_ptr<Session>> sessions;  // oldest first
  std::map<uint64_t, std::string> addresses;             // by the same keys
  uint64_t next_key = 0;
  int next_ws_id = 0;
  bool stopping = false;
};

// A connection's place in Shared while it lives.
class Slot {
 public:
  Slot(Shared& shared, std::string address)
      : shared_(shared), address_(std::move(address)), key_(++shared.next_key) {
    ++shared_.per_client[address_];
    shared_.addresses[key_] = address_;
  }
  ~Slot() {
    shared_.sessions.erase(key_);
    shared_.addresses.erase(key_);
    if (--shared_.per_client[address_] <= 0) shared_.per_client.erase(address_);
  }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  void hold(std::weak_ptr<Session> session) { shared_.sessions[key_] = std::move(session); }
  const std::string& address() const { return address_; }

 private:
  Shared& shared_;
  std::string address_;
  uint64_t key_;
};

// What a WsSocket reaches of its connection, whatever the stream.
class WsConnection : public Session {
 public:
  virtual void send(const std::string& text, bool binary) = 0;
  virtual void close(const std::string& reason) = 0;
  virtual size_t buffered() const = 0;
};

// The Socket the handler holds: a handle on the connection, never its owner. The handler may
// keep it as long as it likes (even past the server): once the connection is gone, send() and
// close() do nothing, and destroying it touches nothing of the io_context.
class WsSocket : public Socket {
 public:
  WsSocket(std::string path, int id, asio::any_io_executor executor)
      : path_(std::move(path)), id_(id), executor_(std::move(executor)) {}
  void send(const std::string& text) override;
  void send_binary(const std::string& bytes) override;
  void close(const std::string& reason) override;
  size_t buffered() const override;
  void post(std::function<void()> task) override { asio::post(executor_, std::move(task)); }
  const std::string& path() const override { return path_; }
  int id() const override { return id_; }

  std::weak_ptr<WsConnection> session;

 private:
  std::string path_;
  int id_;
  asio::any_io_executor executor_;
};

// A WebSocket connection: owned by its pending operations (there is always a read while it is
// open) and listed in Shared for the shutdown.
template <class Stream>
class WsSession : public WsConnection, public std::enable_shared_from_this<WsSession<Stream>> {
 public:
  WsSession(Stream stream, Shared& shared, std::unique_ptr<Slot> slot, std::string path, int id)
      : ws_(std::move(stream)),
        shared_(shared),
        slot_(std::move(slot)),
        socket_(std::make_shared<WsSocket>(std::move(path), id, ws_.get_executor())) {}

  void start(http::request<http::string_body> request, Request parsed) {
    slot_->hold(this->weak_from_this());
    socket_->session = this->weak_from_this();
    beast::get_lowest_layer(ws_).expires_never();
    const auto timeout = duration(shared_.options.timeout_seconds);
    ws_.set_option(websocket::stream_base::timeout{timeout, timeout, true});
    ws_.read_message_max(64 << 20);
    auto self = this->shared_from_this();
    ws_.async_accept(request, [self, parsed = std::move(parsed)](beast::error_code ec) {
      if (ec) return;
      if (self->shared_.stopping) return self->shut_down();
      bool accepted = false;
      try {
        accepted = self->shared_.handler.on_open(self->socket_, parsed);
      } catch (const std::exception& e) {
        log_error("opening " + self->socket_->path(), e.what());
        self->opened_ = true;  // the handler may have kept it: it hears of the close
        self->close_with(websocket::close_code::internal_error, "internal error");
        self->read();
        return;
      }
      if (!accepted) return self->close("");
      self->opened_ = true;
      self->read();
    });
  }

  void send(const std::string& text, bool binary) override {
    if (closed_) return;
    queue_.push_back({text, binary});
    buffered_ += text.size();
    if (queue_.size() == 1) write_next();
  }

  // A reason closes with 1008 (policy violation), none with 1000.
  void close(const std::string& reason) override {
    close_with(reason.empty() ? websocket::close_code::normal : websocket::close_code::policy_error,
               reason.substr(0, 123));
  }

  size_t buffered() const override { return buffered_; }

  void shut_down() override {
    close_with(websocket::close_code::going_away, "the server is stopping; reconnect later");
  }

  void force_close() override {
    notify_closed();
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

 private:
  void close_with(websocket::close_code code, const std::string& reason) {
    if (closed_) return;
    closed_ = true;
    auto self = this->shared_from_this();
    ws_.async_close(websocket::close_reason(code, reason), [self](beast::error_code) {});
  }

  // Tells the handler, once, that a socket it accepted is gone.
  void notify_closed() {
    if (!opened_ || notified_) return;
    notified_ = true;
    try {
      shared_.handler.on_close(socket_);
    } catch (const std::exception& e) {
      log_error("closing " + socket_->path(), e.what());
    }
  }

  void read() {
    auto self = this->shared_from_this();
    ws_.async_read(buffer_, [self](beast::error_code ec, size_t) {
      if (ec) {
        self->closed_ = true;
        self->notify_closed();
        return;
      }
      const std::string text = beast::buffers_to_string(self->buffer_.data());
      self->buffer_.consume(self->buffer_.size());
      if (!self->closed_) {  // once closing, the rest is read until the peer's close frame
        try {
          if (self->ws_.got_binary()) {
            self->shared_.handler.on_binary(self->socket_, text);
          } else {
            self->shared_.handler.on_message(self->socket_, text);
          }
        } catch (const std::exception& e) {
          log_error("a message on " + self->socket_->path(), e.what());
          self->close_with(websocket::close_code::internal_error, "internal error");
        }
      }
      self->read();
    });
  }

  void write_next() {
    auto self = this->shared_from_this();
    ws_.binary(queue_.front().second);
    ws_.async_write(asio::buffer(queue_.front().first), [self](beast::error_code ec, size_t) {
      if (ec) {
        self->queue_.clear();
        self->buffered_ = 0;
        return;
      }
      self->buffered_ -= self->queue_.front().first.size();
      self->queue_.pop_front();
      if (!self->queue_.empty()) self->write_next();
    });
  }

  websocket::stream<Stream> ws_;
  Shared& shared_;
  std::unique_ptr<Slot> slot_;
  std::shared_ptr<WsSocket> socket_;
  beast::flat_buffer buffer_;
  std::deque<std::pair<std::string, bool>> queue_;  // (message, binary)
  size_t buffered_ = 0;                             // bytes in queue_
  bool closed_ = false;
  bool opened_ = false;    // on_open accepted it (or threw)
  bool notified_ = false;  // on_close was called
};

void WsSocket::send(const std::string& text) {
  if (auto s = session.lock()) s->send(text, false);
}

void WsSocket::send_binary(const std::string& bytes) {
  if (auto s = session.lock()) s->send(bytes, true);
}

void WsSocket::close(const std::string& reason) {
  if (auto s = session.lock()) s->close(reason);
}

size_t WsSocket::buffered() const {
  auto s = session.lock();
  return s ? s->buffered() : 0;
}

template <class Stream>
class HttpSession : public Session, public std::enable_shared_from_this<HttpSession<Stream>> {
 public:
  HttpSession(tcp::socket socket, Shared& shared, std::unique_ptr<Slot> slot)
      : stream_(make_stream(std::move(socket), shared)), shared_(shared), slot_(std::move(slot)) {}

  // A TLS connection first completes its handshake, within the timeout like a request's head
  // (a client that never handshakes is closed after it, and may be closed to make room for
  // another of the same client). Plain HTTP sent to the TLS port gets a plain 400 saying so; a
  // failed handshake closes the connection.
  void start() {
    slot_->hold(this->weak_from_this());
    if constexpr (kIsTls<Stream>) {
      lowest().expires_after(timeout());
      waiting_for_head_ = true;
      auto self = this->shared_from_this();
      beast::async_detect_ssl(lowest(), buffer_, [self](beast::error_code ec, bool tls) {
        if (ec || !tls) {
          self->waiting_for_head_ = false;
          if (!ec) self->refuse_plain_http();
          return;
        }
        self->stream_.async_handshake(ssl::stream_base::server, self->buffer_.data(),
                                      [self](beast::error_code ec, size_t used) {
                                        self->waiting_for_head_ = false;
                                        if (ec) return;
                                        self->buffer_.consume(used);
                                        self->read_head();
                                      });
      });
    } else {
      read_head();
    }
  }

  void shut_down() override { force_close(); }
  void force_close() override {
    waiting_for_head_ = false;
    beast::error_code ignored;
    lowest().socket().close(ignored);
  }
  bool waiting_for_head() const override { return waiting_for_head_; }

 private:
  static Stream make_stream(tcp::socket socket, Shared& shared) {
    if constexpr (kIsTls<Stream>) {
      return Stream(beast::tcp_stream(std::move(socket)), *shared.tls);
    } else {
      return Stream(std::move(socket));
    }
  }

  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  // Answers plain HTTP sent to the TLS port, in plain HTTP, and closes the connection.
  void refuse_plain_http() {
    const Response refusal =
        error_response(400, "this server speaks HTTPS only: use an https:// URL");
    auto res = std::make_shared<http::response<http::string_body>>(http::status::bad_request, 11);
    res->set(http::field::content_type, refusal.content_type);
    res->body() = refusal.body;
    res->keep_alive(false);
    res->prepare_payload();
    lowest().expires_after(timeout());
    auto self = this->shared_from_this();
    http::async_write(lowest(), *res, [self, res](beast::error_code ec, size_t) {
      if (ec) return;
      beast::error_code ignored;
      self->lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
      self->drain();
    });
  }

  std::chrono::milliseconds timeout() const { return duration(shared_.options.timeout_seconds); }

  // The head of the next request, within the timeout (slowloris, idle keep-alive).
  void read_head() {
    if (shared_.stopping) return;
    head_parser_.emplace();
    head_parser_->header_limit(kParserHeaderLimit);
    // Checked against the limit that applies in on_head (not boost::none: in Boost 1.74 that
    // refuses every body with a Content-Length).
    head_parser_->body_limit(std::numeric_limits<uint64_t>::max());
    lowest().expires_after(timeout());
    auto self = this->shared_from_this();
    waiting_for_head_ = true;
    http::async_read_header(stream_, buffer_, *head_parser_, [self](beast::error_code ec, size_t) {
      self->waiting_for_head_ = false;
      self->on_head(ec);
    });
  }

  static bool is_parse_error(const beast::error_code& ec) {
    return ec.category() == beast::error_code(http::error::bad_target).category() &&
           ec != http::error::end_of_stream && ec != http::error::partial_message;
  }

  // The head is in: checks it, then reads the body into memory or into the file the handler
  // names, within the limit that applies.
  void on_head(beast::error_code ec) {
    if (ec) {
      if (!is_parse_error(ec)) return;  // closed, or timed out
      return refuse(head_error(ec, head_parser_->get()));
    }
    const auto& header = head_parser_->get();
    upgrade_ = websocket::is_upgrade(header);
    auto head = request_of(header, upgrade_, shared_.options);
    if (auto* refusal = std::get_if<Response>(&head)) return refuse(*refusal);
    head_ = std::move(std::get<Request>(head));
    head_.client = slot_->address();
    try {
      if (auto early = shared_.handler.refuse_early(head_)) return refuse(*early);
    } catch (const std::exception& e) {
      log_error("refuse_early " + head_.path, e.what());
      return refuse(error_response(500, "internal error"));
    }
    std::string file;
    if (!upgrade_) {
      try {
        file = shared_.handler.body_file_for(head_);
      } catch (const std::exception& e) {
        log_error("body_file_for " + head_.path, e.what());
        return refuse(error_response(500, "internal error"));
      }
    }
    const uint64_t limit = file.empty() ? kMaxBodyBytes : kMaxFileBodyBytes;
    if (auto length = head_parser_->content_length(); length && *length > limit) {
      return refuse(error_response(413, too_large(limit)));
    }
    auto self = this->shared_from_this();
    if (file.empty()) {
      string_parser_.emplace(std::move(*head_parser_));
      string_parser_->body_limit(limit);
      return continue_then([self] {
        self->read_body(*self->string_parser_, [self](beast::error_code ec) {
          if (ec) return self->on_body_error(ec, kMaxBodyBytes);
          self->dispatch(self->string_parser_->release());
        });
      });
    }
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
      log_error("cannot create " + file, strerror(errno));
      return refuse(error_response(500, "cannot store the upload"));
    }
    file_parser_.emplace(std::move(*head_parser_));
    file_parser_->body_limit(limit);
    beast::file body_file;
    body_file.native_handle(fd);
    file_parser_->get().body().reset(std::move(body_file), ec);
    continue_then([self, file] {
      self->read_body(*self->file_parser_, [self, file](beast::error_code ec) {
        auto request = self->file_parser_->release();
        request.body().close();
        std::error_code ignored;
        if (ec) {
          std::filesystem::remove(file, ignored);
          return self->on_body_error(ec, kMaxFileBodyBytes);
        }
        Request parsed = std::move(self->head_);
        parsed.body_file = file;
        self->respond(parsed, request.version(), request.keep_alive());
        std::filesystem::remove(file, ignored);
      });
    }, [self, file] {
      self->file_parser_.reset();  // closes the file
      std::error_code ignored;
      std::filesystem::remove(file, ignored);
    });
  }

  // Answers "Expect: 100-continue" (asynchronously, within the timeout: a client that never
  // reads cannot block the io thread), then calls `next`.
  // `failed` runs instead when the answer cannot be written (the connection is then gone).
  template <class Next, class Failed = void (*)()>
  void continue_then(Next next, Failed failed = [] {}) {
    if (lower(head_.headers["expect"]) != "100-continue") return next();
    auto res = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
    lowest().expires_after(timeout());
    auto self = this->shared_from_this();
    http::async_write(stream_, *res, [self, res, next, failed](beast::error_code ec, size_t) {
      if (ec) return failed();
      next();
    });
  }

  // Reads the body piece by piece: the timeout applies to each piece (progress), not the whole.
  template <class Parser, class Done>
  void read_body(Parser& parser, Done done) {
    if (parser.is_done()) return done(beast::error_code{});
    lowest().expires_after(timeout());
    auto self = this->shared_from_this();
    http::async_read_some(stream_, buffer_, parser,
                          [self, &parser, done](beast::error_code ec, size_t) {
                            if (ec) return done(ec);
                            self->read_body(parser, done);
                          });
  }

  void on_body_error(const beast::error_code& ec, uint64_t limit) {
    if (ec == http::error::body_limit) return refuse(error_response(413, too_large(limit)));
    if (is_parse_error(ec)) return refuse(error_response(400, "malformed HTTP request body"));
  }

  void dispatch(http::request<http::string_body> request) {
    Request parsed = std::move(head_);
    parsed.body = std::move(request.body());
    if (upgrade_) {
      auto ws = std::make_shared<WsSession<Stream>>(std::move(stream_), shared_, std::move(slot_),
                                                    parsed.path, ++shared_.next_ws_id);
      ws->start(std::move(request), std::move(parsed));
      return;
    }
    respond(parsed, request.version(), request.keep_alive());
  }

  // Hands the request to the handler and writes its response: a file is streamed from disk.
  void respond(const Request& parsed, unsigned version, bool keep_alive) {
    if (respond_async(parsed, version, keep_alive)) return;
    write_response(handle_safely(shared_.handler, parsed), version, keep_alive);
  }

  // Handler::handle_async: the answer is written when the handler calls back (on the io thread).
  bool respond_async(const Request& parsed, unsigned version, bool keep_alive) {
    auto self = this->shared_from_this();
    auto executor = stream_.get_executor();
    // `self` moves into the posted task: the handler's thread never holds the last reference,
    // so the session is destroyed on the io thread.
    Handler::Completion done = [self, executor, version,
                                keep_alive](std::function<Response()> make) mutable {
      if (!self) return;  // called twice
      asio::post(executor, [self = std::move(self), make = std::move(make), version, keep_alive] {
        Response response;
        try {
          response = make();
        } catch (const std::exception& e) {
          log_error("an asynchronous answer", e.what());
          response = error_response(500, "internal error");
        }
        self->write_response(std::move(response), version, keep_alive);
      });
    };
    try {
      return shared_.handler.handle_async(parsed, std::move(done));
    } catch (const std::exception& e) {
      log_error("handle_async " + parsed.path, e.what());
      write_response(error_response(500, "internal error"), version, keep_alive);
      return true;
    }
  }

  void write_response(Response response, unsigned version, bool keep_alive) {
    if (!response.file.empty()) {
      const int fd = open_regular_file(response.file);
      if (fd >= 0) {
        auto res = std::make_shared<http::response<http::file_body>>(
            static_cast<http::status>(response.status), version);
        beast::file file;
        file.native_handle(fd);
        beast::error_code ec;
        res->body().reset(std::move(file), ec);
        if (!ec) return write(res, response, keep_alive);
      }
      response = error_response(404, "no such file");
    }
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(response.status), version);
    res->body() = std::move(response.body);
    write(res, response, keep_alive);
  }

  // Answers `response` and closes the connection (after reading what the client still sends,
  // for a while, so that it sees the answer rather than a reset).
  void refuse(const Response& response) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(response.status), 11);
    res->body() = response.body;
    write(res, response, false);
  }

  template <class Message>
  void write(std::shared_ptr<Message> res, const Response& response, bool keep_alive) {
    for (const auto& [name, value] : response.headers) res->insert(name, value);
    res->set(http::field::content_type, response.content_type);
    res->set(http::field::cache_control, "no-store");
    res->keep_alive(keep_alive && !shared_.stopping);
    res->prepare_payload();
    using Serializer =
        http::serializer<false, typename Message::body_type, typename Message::fields_type>;
    write_some(res, std::make_shared<Serializer>(*res));
  }

  // Writes the response piece by piece: the timeout applies to each piece (progress).
  template <class Message, class Serializer>
  void write_some(std::shared_ptr<Message> res, std::shared_ptr<Serializer> sr) {
    lowest().expires_after(timeout());
    auto self = this->shared_from_this();
    http::async_write_some(stream_, *sr, [self, res, sr](beast::error_code ec, size_t) {
      if (ec) return;
      if (!sr->is_done()) return self->write_some(res, sr);
      if (!res->keep_alive()) return self->finish();
      self->read_head();
    });
  }

  // Ends the connection after a response that closes it: TLS says so (close_notify) first.
  void finish() {
    if constexpr (kIsTls<Stream>) {
      lowest().expires_after(std::min(timeout(), std::chrono::milliseconds(5000)));
      auto self = this->shared_from_this();
      stream_.async_shutdown([self](beast::error_code) {
        beast::error_code ignored;
        self->lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
        self->drain();
      });
    } else {
      beast::error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
      drain();
    }
  }

  // Reads and drops what the client still sends until it closes, for one timeout at most.
  void drain() {
    if (shared_.stopping) return;
    if (!drain_started_) {
      drain_started_ = true;
      lowest().expires_after(std::min(timeout(), std::chrono::milliseconds(5000)));
    }
    auto self = this->shared_from_this();
    lowest().async_read_some(asio::buffer(drain_buffer_), [self](beast::error_code ec, size_t) {
      if (!ec) self->drain();
    });
  }

  Stream stream_;
  bool waiting_for_head_ = false;
  Shared& shared_;
  std::unique_ptr<Slot> slot_;
  beast::flat_buffer buffer_;
  Request head_;
  bool upgrade_ = false;
  bool drain_started_ = false;
  std::array<char, 16384> drain_buffer_{};
  std::optional<http::request_parser<http::empty_body>> head_parser_;
  std::optional<http::request_parser<http::string_body>> string_parser_;
  std::optional<http::request_parser<http::file_body>> file_parser_;
};

}  // namespace

struct HttpServer::Impl {
  Impl(Handler& h, int port, HttpOptions options)
      : shared{h, std::move(options)}, acceptor(io), accept_retry(io) {
    if (auto e = public_url_error(shared.options.public_url); !e.empty())
      throw std::runtime_error("--public-url: " + e);
    const std::string address = bind_address(shared.options.bind);
    if (address.empty())
      throw std::runtime_error("--bind: '" + shared.options.bind + "' is not an IP address");
    const std::string& cert = shared.options.tls_cert;
    const std::string& key = shared.options.tls_key;
    if (cert.empty() != key.empty()) throw std::runtime_error(tls_files_error(cert, key));
    if (!cert.empty()) shared.tls = server_tls_context(cert, key, shared.options.tls_chain);
    const tcp::endpoint endpoint(asio::ip::make_address(address),
                                 static_cast<unsigned short>(port));
    protocol = endpoint.protocol();
    // Close-on-exec from the start: a child (a local worker, git) never holds the port.
    const int fd = ::socket(protocol.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(strerror(errno));
    acceptor.assign(protocol, fd);
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen();
    acceptor.non_blocking(true);
    bound_port = acceptor.local_endpoint().port();
    // A wildcard is reached at its family's loopback address.
    auto local = endpoint.address();
    if (local.is_unspecified()) {
      local = local.is_v4() ? asio::ip::address(asio::ip::address_v4::loopback())
                            : asio::ip::address(asio::ip::address_v6::loopback());
    }
    const std::string host = local.is_v6() ? "[" + local.to_string() + "]" : local.to_string();
    url =
        std::string(shared.tls ? "https://" : "http://") + host + ":" + std::to_string(bound_port);
  }

  ~Impl() { shut_down_all(); }

  // Waits for connections and accepts them with accept4 (close-on-exec, like the listening
  // socket; asio's accept would leave them inheritable). An error such as EMFILE re-arms the
  // wait after a back-off (50 ms, doubling up to 1 s): the server never stops accepting.
  void accept() {
    acceptor.async_wait(tcp::acceptor::wait_read, [this](beast::error_code ec) {
      if (shared.stopping || ec == asio::error::operation_aborted) return;
      if (ec) return retry_accept(ec.message());
      for (int i = 0; i < 64; ++i) {
        const int fd =
            ::accept4(acceptor.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) {
          backoff_seconds = 0;
          accepted(fd);
          continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return retry_accept(strerror(errno));
      }
      accept();
    });
  }

  void retry_accept(const std::string& why) {
    if (backoff_seconds == 0) log_error("accept", why + " (retrying)");
    backoff_seconds = backoff_seconds == 0 ? 0.05 : std::min(1.0, backoff_seconds * 2);
    accept_retry.expires_after(duration(backoff_seconds));
    accept_retry.async_wait([this](beast::error_code ec) {
      if (!ec && !shared.stopping) accept();
    });
  }

  void accepted(int fd) {
    tcp::socket socket(io);
    beast::error_code ec;
    socket.assign(protocol, fd, ec);
    if (ec) {
      ::close(fd);
      return;
    }
    const auto remote = socket.remote_endpoint(ec);
    if (ec) return;
    const std::string address = remote.address().to_string();
    if (auto it = shared.per_client.find(address);
        it != shared.per_client.end() && it->second >= shared.options.max_connections_per_client &&
        !make_room_for(address)) {
      return;  // closed at once
    }
    // Small messages (worker results, events) go out at once, not after Nagle's delay.
    socket.set_option(tcp::no_delay(true), ec);
    auto slot = std::make_unique<Slot>(shared, address);
    if (shared.tls) {
      std::make_shared<HttpSession<TlsStream>>(std::move(socket), shared, std::move(slot))->start();
    } else {
      std::make_shared<HttpSession<PlainStream>>(std::move(socket), shared, std::move(slot))
          ->start();
    }
  }

  // A client at its cap gets a new connection when one of its connections has no request in
  // progress: the oldest such one is closed. So slow or idle connections (slowloris) cannot
  // lock out a client that sends whole requests; requests in progress and WebSockets are never
  // closed for it. False when none may go.
  bool make_room_for(const std::string& address) {
    for (const auto& [key, where] : shared.addresses) {
      if (where != address) continue;
      auto session = shared.sessions.find(key);
      if (session == shared.sessions.end()) continue;
      if (auto s = session->second.lock(); s && s->waiting_for_head()) {
        s->force_close();  // its slot is freed when its pending read ends
        return true;
      }
    }
    return false;
  }

  void schedule(std::shared_ptr<asio::steady_timer> timer, double seconds,
                std::function<void()> task) {
    timer->expires_after(duration(seconds));
    timer->async_wait([this, timer, seconds, task](beast::error_code ec) {
      if (ec || shared.stopping) return;
      try {
        task();
      } catch (const std::exception& e) {  // a failed round, not the end of the timer
        log_error("periodic task", e.what());
      }
      schedule(timer, seconds, task);
    });
  }

  // Closes every connection and returns when every session is gone (3 s at most for the peers
  // to close; then the rest are closed by force): nothing outlives the io_context.
  void shut_down_all() {
    if (shut_down) return;
    shut_down = true;
    shared.stopping = true;
    beast::error_code ignored;
    acceptor.close(ignored);
    accept_retry.cancel();
    for (auto& t : timers) t->cancel();
    io.restart();
    auto each_session = [this](auto f) {
      std::vector<std::shared_ptr<Session>> live;
      for (auto& [key, weak] : shared.sessions) {
        if (auto s = weak.lock()) live.push_back(s);
      }
      for (auto& s : live) f(*s);
    };
    auto run_until_gone = [this](std::chrono::milliseconds limit) {
      const auto until = std::chrono::steady_clock::now() + limit;
      while (!shared.sessions.empty() && std::chrono::steady_clock::now() < until) {
        if (io.stopped()) io.restart();
        if (io.run_one_for(std::chrono::milliseconds(50)) == 0)
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    };
    each_session([](Session& s) { s.shut_down(); });
    run_until_gone(std::chrono::milliseconds(3000));
    each_session([](Session& s) { s.force_close(); });
    run_until_gone(std::chrono::milliseconds(1000));
    if (io.stopped()) io.restart();
    io.poll();
  }

  Shared shared;  // before io: sessions destroyed with io's handlers still find it
  asio::io_context io;
  tcp::acceptor acceptor;
  asio::steady_timer accept_retry;
  std::vector<std::shared_ptr<asio::steady_timer>> timers;
  double backoff_seconds = 0;
  bool shut_down = false;
  tcp protocol = tcp::v4();
  int bound_port = 0;
  std::string url;  // HttpServer::local_url()
};

HttpServer::HttpServer(Handler& handler, int port, HttpOptions options) {
  const std::string bind = options.bind;
  try {
    impl_ = std::make_unique<Impl>(handler, port, std::move(options));
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot listen on " + bind + ":" + std::to_string(port) + ": " +
                             e.what());
  }
  impl_->accept();
}

HttpServer::~HttpServer() = default;

int HttpServer::port() const { return impl_->bound_port; }

std::string HttpServer::local_url() const { return impl_->url; }

std::string tls_files_error(const std::string& cert, const std::string& key,
                            const std::string& chain) {
  if (cert.empty() && key.empty()) return "";
  if (cert.empty()) return "--tls-key needs --tls-cert (server.tls_cert): it is missing";
  if (key.empty()) return "--tls-cert needs --tls-key (server.tls_key): it is missing";
  try {
    server_tls_context(cert, key, chain);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

void HttpServer::run() {
  // An exception out of beast (none is expected: the handler's are caught) costs its
  // connection, not the server.
  for (;;) {
    try {
      impl_->io.run();
      break;
    } catch (const std::exception& e) {
      log_error("io loop", e.what());
    } catch (...) {
      log_error("io loop", "unknown exception");
    }
  }
  impl_->shut_down_all();
}

void HttpServer::stop() { impl_->io.stop(); }

void HttpServer::post(std::function<void()> task) { asio::post(impl_->io, std::move(task)); }

void HttpServer::every(double seconds, std::function<void()> task) {
  auto timer = std::make_shared<asio::steady_timer>(impl_->io);
  impl_->timers.push_back(timer);
  impl_->schedule(timer, seconds, std::move(task));
}

}  // namespace testlooper::server
