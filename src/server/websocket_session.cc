// A connection upgraded to a WebSocket (http_session.h): the Socket its handler holds, and the
// session that reads messages to the handler and writes the handler's in order.
// clang-format off: before Boost.Asio, whose awaitable.hpp needs std::exchange under C++20.
#include <utility>
// clang-format on

#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <string>

#include "server/http_request.h"
#include "server/http_session.h"

namespace testlooper::server::http_detail {
namespace {

namespace websocket = beast::websocket;

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

}  // namespace

template <class Stream>
void start_websocket(Stream stream, Shared& shared, std::unique_ptr<Slot> slot,
                     http::request<http::string_body> request, Request parsed) {
  auto ws = std::make_shared<WsSession<Stream>>(std::move(stream), shared, std::move(slot),
                                                parsed.path, ++shared.next_ws_id);
  ws->start(std::move(request), std::move(parsed));
}

template void start_websocket<PlainStream>(PlainStream, Shared&, std::unique_ptr<Slot>,
                                           http::request<http::string_body>, Request);
template void start_websocket<TlsStream>(TlsStream, Shared&, std::unique_ptr<Slot>,
                                         http::request<http::string_body>, Request);

}  // namespace testlooper::server::http_detail
