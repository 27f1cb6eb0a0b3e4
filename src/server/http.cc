// Boost.Beast behind HttpServer: one io_context, one thread.
#include "server/http.h"

#include "server/http_request.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <boost/beast/websocket.hpp>
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
#include <utility>
#include <vector>

namespace testlooper::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

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

class WsSession;

// The Socket the handler holds: a handle on the connection, never its owner. The handler may
// keep it as long as it likes (even past the server): once the connection is gone, send() and
// close() do nothing, and destroying it touches nothing of the io_context.
class WsSocket : public Socket {
 public:
  WsSocket(std::string path, int id, asio::any_io_executor executor)
      : path_(std::move(path)), id_(id), executor_(std::move(executor)) {}
  void send(const std::string& text) override;
  void close(const std::string& reason) override;
  size_t buffered() const override;
  void post(std::function<void()> task) override { asio::post(executor_, std::move(task)); }
  const std::string& path() const override { return path_; }
  int id() const override { return id_; }

  std::weak_ptr<WsSession> session;

 private:
  std::string path_;
  int id_;
  asio::any_io_executor executor_;
};

// A WebSocket connection: owned by its pending operations (there is always a read while it is
// open) and listed in Shared for the shutdown.
class WsSession : public Session, public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(tcp::socket socket, Shared& shared, std::unique_ptr<Slot> slot, std::string path,
            int id)
      : ws_(std::move(socket)),
        shared_(shared),
        slot_(std::move(slot)),
        socket_(std::make_shared<WsSocket>(std::move(path), id, ws_.get_executor())) {}

  void start(http::request<http::string_body> request, Request parsed) {
    slot_->hold(weak_from_this());
    socket_->session = weak_from_this();
    beast::get_lowest_layer(ws_).expires_never();
    const auto timeout = duration(shared_.options.timeout_seconds);
    ws_.set_option(websocket::stream_base::timeout{timeout, timeout, true});
    ws_.read_message_max(64 << 20);
    auto self = shared_from_this();
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

  void send(const std::string& text) {
    if (closed_) return;
    queue_.push_back(text);
    buffered_ += text.size();
    if (queue_.size() == 1) write_next();
  }

  // A reason closes with 1008 (policy violation), none with 1000.
  void close(const std::string& reason) {
    close_with(reason.empty() ? websocket::close_code::normal : websocket::close_code::policy_error,
               reason.substr(0, 123));
  }

  size_t buffered() const { return buffered_; }

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
    auto self = shared_from_this();
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
    auto self = shared_from_this();
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
          self->shared_.handler.on_message(self->socket_, text);
        } catch (const std::exception& e) {
          log_error("a message on " + self->socket_->path(), e.what());
          self->close_with(websocket::close_code::internal_error, "internal error");
        }
      }
      self->read();
    });
  }

  void write_next() {
    auto self = shared_from_this();
    ws_.text(true);
    ws_.async_write(asio::buffer(queue_.front()), [self](beast::error_code ec, size_t) {
      if (ec) {
        self->queue_.clear();
        self->buffered_ = 0;
        return;
      }
      self->buffered_ -= self->queue_.front().size();
      self->queue_.pop_front();
      if (!self->queue_.empty()) self->write_next();
    });
  }

  websocket::stream<beast::tcp_stream> ws_;
  Shared& shared_;
  std::unique_ptr<Slot> slot_;
  std::shared_ptr<WsSocket> socket_;
  beast::flat_buffer buffer_;
  std::deque<std::string> queue_;
  size_t buffered_ = 0;  // bytes in queue_
  bool closed_ = false;
  bool opened_ = false;    // on_open accepted it (or threw)
  bool notified_ = false;  // on_close was called
};

void WsSocket::send(const std::string& text) {
  if (auto s = session.lock()) s->send(text);
}

void WsSocket::close(const std::string& reason) {
  if (auto s = session.lock()) s->close(reason);
}

size_t WsSocket::buffered() const {
  auto s = session.lock();
  return s ? s->buffered() : 0;
}

class HttpSession : public Session, public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, Shared& shared, std::unique_ptr<Slot> slot)
      : stream_(std::move(socket)), shared_(shared), slot_(std::move(slot)) {}

  void start() {
    slot_->hold(weak_from_this());
    read_head();
  }

  void shut_down() override { force_close(); }
  void force_close() override {
    waiting_for_head_ = false;
    beast::error_code ignored;
    stream_.socket().close(ignored);
  }
  bool waiting_for_head() const override { return waiting_for_head_; }

 private:
  std::chrono::milliseconds timeout() const { return duration(shared_.options.timeout_seconds); }

  // The head of the next request, within the timeout (slowloris, idle keep-alive).
  void read_head() {
    if (shared_.stopping) return;
    head_parser_.emplace();
    head_parser_->header_limit(kParserHeaderLimit);
    // Checked against the limit that applies in on_head (not boost::none: in Boost 1.74 that
    // refuses every body with a Content-Length).
    head_parser_->body_limit(std::numeric_limits<uint64_t>::max());
    stream_.expires_after(timeout());
    auto self = shared_from_this();
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
    auto self = shared_from_this();
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
    stream_.expires_after(timeout());
    auto self = shared_from_this();
    http::async_write(stream_, *res, [self, res, next, failed](beast::error_code ec, size_t) {
      if (ec) return failed();
      next();
    });
  }

  // Reads the body piece by piece: the timeout applies to each piece (progress), not the whole.
  template <class Parser, class Done>
  void read_body(Parser& parser, Done done) {
    if (parser.is_done()) return done(beast::error_code{});
    stream_.expires_after(timeout());
    auto self = shared_from_this();
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
      auto ws = std::make_shared<WsSession>(stream_.release_socket(), shared_, std::move(slot_),
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
    auto self = shared_from_this();
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
    stream_.expires_after(timeout());
    auto self = shared_from_this();
    http::async_write_some(stream_, *sr, [self, res, sr](beast::error_code ec, size_t) {
      if (ec) return;
      if (!sr->is_done()) return self->write_some(res, sr);
      if (!res->keep_alive()) {
        beast::error_code ignored;
        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        return self->drain();
      }
      self->read_head();
    });
  }

  // Reads and drops what the client still sends until it closes, for one timeout at most.
  void drain() {
    if (shared_.stopping) return;
    if (!drain_started_) {
      drain_started_ = true;
      stream_.expires_after(std::min(timeout(), std::chrono::milliseconds(5000)));
    }
    auto self = shared_from_this();
    stream_.async_read_some(asio::buffer(drain_buffer_), [self](beast::error_code ec, size_t) {
      if (!ec) self->drain();
    });
  }

  beast::tcp_stream stream_;
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
    // Close-on-exec from the start: a child (a local worker, git) never holds the port.
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(strerror(errno));
    acceptor.assign(tcp::v4(), fd);
    const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"),
                                 static_cast<unsigned short>(port));
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen();
    acceptor.non_blocking(true);
    bound_port = acceptor.local_endpoint().port();
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
    socket.assign(tcp::v4(), fd, ec);
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
    std::make_shared<HttpSession>(std::move(socket), shared, std::move(slot))->start();
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
  int bound_port = 0;
};

HttpServer::HttpServer(Handler& handler, int port, HttpOptions options) {
  try {
    impl_ = std::make_unique<Impl>(handler, port, std::move(options));
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot listen on 127.0.0.1:" + std::to_string(port) + ": " +
                             e.what());
  }
  impl_->accept();
}

HttpServer::~HttpServer() = default;

int HttpServer::port() const { return impl_->bound_port; }

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
