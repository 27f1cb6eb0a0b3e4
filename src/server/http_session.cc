// HTTP on one connection (http_session.h): a TLS handshake first when the server speaks TLS,
// then requests one after another: each head within the timeout and checked before its body is
// read (into memory or the file the handler names, within the limits), the handler's answer
// written piece by piece (a file streamed from disk), an upgrade handed to websocket_session.cc.
// clang-format off: before Boost.Asio, whose awaitable.hpp needs std::exchange under C++20.
#include <utility>
// clang-format on

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <boost/beast/websocket.hpp>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>

#include "server/http_request.h"
#include "server/http_session.h"

namespace testlooper::server::http_detail {
namespace {

namespace websocket = beast::websocket;

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

// A body made piece by piece by Response::stream, as Beast's serializer asks for it: no size,
// so the message is sent chunked (HTTP/1.1).
struct StreamBody {
  using value_type = std::function<bool(std::string&)>;

  class writer {
   public:
    using const_buffers_type = asio::const_buffer;
    template <bool isRequest, class Fields>
    writer(const http::header<isRequest, Fields>&, value_type& produce) : produce_(produce) {}
    void init(beast::error_code& ec) { ec = {}; }
    boost::optional<std::pair<const_buffers_type, bool>> get(beast::error_code& ec) {
      ec = {};
      piece_.clear();
      while (more_ && piece_.empty()) {
        try {
          more_ = produce_(piece_);
        } catch (const std::exception& e) {
          log_error("a streamed answer", e.what());
          ec = asio::error::operation_aborted;  // the connection ends: the answer is cut short
          return boost::none;
        }
      }
      if (piece_.empty()) return boost::none;
      return std::make_pair(const_buffers_type(piece_.data(), piece_.size()), more_);
    }

   private:
    value_type& produce_;
    std::string piece_;
    bool more_ = true;
  };
};

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
    continue_then(
        [self, file] {
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
        },
        [self, file] {
          self->file_parser_.reset();  // closes the file
          std::error_code ignored;
          std::filesystem::remove(file, ignored);
        });
  }

  // Answers "Expect: 100-continue" (asynchronously, within the timeout: a client that never
  // reads cannot block the io thread), then calls `next`.
  // `failed` runs instead when the answer cannot be written (the connection is then gone).
  template <class Next, class Failed = void (*)()>
  void continue_then(
      Next next, Failed failed = [] {}) {
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
      return start_websocket(std::move(stream_), shared_, std::move(slot_), std::move(request),
                             std::move(parsed));
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
    if (response.stream) {
      auto res = std::make_shared<http::response<StreamBody>>(
          static_cast<http::status>(response.status), version);
      res->body() = std::move(response.stream);
      // Without a length, HTTP/1.0 ends the body by closing the connection.
      return write(res, response, keep_alive && version >= 11);
    }
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

template <class Stream>
void start_http(tcp::socket socket, Shared& shared, std::unique_ptr<Slot> slot) {
  std::make_shared<HttpSession<Stream>>(std::move(socket), shared, std::move(slot))->start();
}

template void start_http<PlainStream>(tcp::socket, Shared&, std::unique_ptr<Slot>);
template void start_http<TlsStream>(tcp::socket, Shared&, std::unique_ptr<Slot>);

}  // namespace testlooper::server::http_detail
