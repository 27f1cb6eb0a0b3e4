// Boost.Beast behind HttpServer: one io_context, one thread.
#include "server/http.h"

#include <optional>
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <filesystem>
#include <sstream>

namespace testlooper::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

std::string url_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

// Bodies read into memory, and bodies streamed to a file (Handler::body_file_for).
constexpr uint64_t kBodyLimit = 64ull << 20;
constexpr uint64_t kFileBodyLimit = 4ull << 30;

Request to_request(const http::request_header<>& r) {
  Request out;
  out.method = std::string(r.method_string());
  const std::string target(r.target());
  const size_t q = target.find('?');
  out.path = url_decode(target.substr(0, q));
  if (q != std::string::npos) {
    std::istringstream query(target.substr(q + 1));
    for (std::string part; std::getline(query, part, '&');) {
      const size_t eq = part.find('=');
      out.query[url_decode(part.substr(0, eq))] = eq == std::string::npos ? "" : url_decode(part.substr(eq + 1));
    }
  }
  for (const auto& h : r) {
    std::string name(h.name_string());
    for (auto& c : name) c = static_cast<char>(tolower(c));
    out.headers[name] = std::string(h.value());
  }
  return out;
}

class WsSession : public Socket, public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(tcp::socket socket, Handler& handler, std::string path, int id)
      : ws_(std::move(socket)), handler_(handler), path_(std::move(path)), id_(id) {}

  void start(http::request<http::string_body> request, Request parsed) {
    ws_.read_message_max(64 << 20);
    auto self = shared_from_this();
    ws_.async_accept(request, [self, parsed](beast::error_code ec) {
      if (ec) return;
      if (!self->handler_.on_open(self, parsed)) {
        self->close("");
        return;
      }
      self->read();
    });
  }

  void send(const std::string& text) override {
    if (closed_) return;
    queue_.push_back(text);
    buffered_ += text.size();
    if (queue_.size() == 1) write_next();
  }

  void close(const std::string& reason) override {
    if (closed_) return;
    closed_ = true;
    auto self = shared_from_this();
    const websocket::close_reason why(
        reason.empty() ? websocket::close_code::normal : websocket::close_code::policy_error,
        reason.substr(0, 123));
    ws_.async_close(why, [self](beast::error_code) {});
  }

  size_t buffered() const override { return buffered_; }
  void post(std::function<void()> task) override {
    asio::post(ws_.get_executor(), std::move(task));
  }

  const std::string& path() const override { return path_; }
  int id() const override { return id_; }

 private:
  void read() {
    auto self = shared_from_this();
    ws_.async_read(buffer_, [self](beast::error_code ec, size_t) {
      if (ec) {
        self->closed_ = true;
        self->handler_.on_close(self);
        return;
      }
      const std::string text = beast::buffers_to_string(self->buffer_.data());
      self->buffer_.consume(self->buffer_.size());
      self->handler_.on_message(self, text);
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

  websocket::stream<tcp::socket> ws_;
  Handler& handler_;
  std::string path_;
  int id_;
  beast::flat_buffer buffer_;
  std::deque<std::string> queue_;
  size_t buffered_ = 0;  // bytes in queue_
  bool closed_ = false;
};

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, Handler& handler, int& next_id)
      : socket_(std::move(socket)), handler_(handler), next_id_(next_id) {}

  void read() {
    head_parser_.emplace();
    head_parser_->body_limit(kFileBodyLimit);
    auto self = shared_from_this();
    http::async_read_header(socket_, buffer_, *head_parser_, [self](beast::error_code ec, size_t) {
      if (ec) return;
      self->read_body();
    });
  }

 private:
  // The head is in: reads the body into memory, or into the file the handler names.
  void read_body() {
    const auto& head = head_parser_->get();
    const std::string file =
        websocket::is_upgrade(head) ? "" : handler_.body_file_for(to_request(head));
    auto self = shared_from_this();
    if (file.empty()) {
      string_parser_.emplace(std::move(*head_parser_));
      string_parser_->body_limit(kBodyLimit);
      http::async_read(socket_, buffer_, *string_parser_, [self](beast::error_code ec, size_t) {
        if (ec) return;
        self->dispatch(self->string_parser_->release());
      });
      return;
    }
    if (head[http::field::expect] == "100-continue") {
      beast::error_code ignored;
      http::write(socket_,
                  http::response<http::empty_body>{http::status::continue_, head.version()},
                  ignored);
    }
    file_parser_.emplace(std::move(*head_parser_));
    file_parser_->body_limit(kFileBodyLimit);
    beast::error_code ec;
    file_parser_->get().body().open(file.c_str(), beast::file_mode::write, ec);
    if (ec) return;
    http::async_read(socket_, buffer_, *file_parser_, [self, file](beast::error_code ec, size_t) {
      auto request = self->file_parser_->release();
      request.body().close();
      std::error_code ignored;
      if (ec) {
        std::filesystem::remove(file, ignored);
        return;
      }
      Request parsed = to_request(request);
      parsed.body_file = file;
      self->respond(parsed, request.version(), request.keep_alive());
      std::filesystem::remove(file, ignored);
    });
  }

  void dispatch(http::request<http::string_body> request) {
    Request parsed = to_request(request);
    parsed.body = request.body();
    if (websocket::is_upgrade(request)) {
      auto ws = std::make_shared<WsSession>(std::move(socket_), handler_, parsed.path, ++next_id_);
      ws->start(std::move(request), std::move(parsed));
      return;
    }
    respond(parsed, request.version(), request.keep_alive());
  }

  // Hands the request to the handler and writes its response: a file is streamed from disk.
  void respond(const Request& parsed, unsigned version, bool keep_alive) {
    Response response;
    try {
      response = handler_.handle(parsed);
    } catch (const std::exception& e) {
      response =
          Response{500, "application/json", std::string("{\"error\": \"internal error\"}"), ""};
    }
    if (!response.file.empty()) {
      auto res = std::make_shared<http::response<http::file_body>>(
          static_cast<http::status>(response.status), version);
      beast::error_code ec;
      res->body().open(response.file.c_str(), beast::file_mode::scan, ec);
      if (!ec) return write(res, response.content_type, keep_alive);
    }
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(response.status), version);
    res->body() = std::move(response.body);
    write(res, response.content_type, keep_alive);
  }

  template <class Message>
  void write(std::shared_ptr<Message> res, const std::string& content_type, bool keep_alive) {
    res->set(http::field::content_type, content_type);
    res->set(http::field::cache_control, "no-store");
    res->keep_alive(keep_alive);
    res->prepare_payload();
    auto self = shared_from_this();
    http::async_write(socket_, *res, [self, res](beast::error_code ec, size_t) {
      if (ec || !res->keep_alive()) {
        beast::error_code ignored;
        self->socket_.shutdown(tcp::socket::shutdown_send, ignored);
        return;
      }
      self->read();
    });
  }

  tcp::socket socket_;
  Handler& handler_;
  int& next_id_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> head_parser_;
  std::optional<http::request_parser<http::string_body>> string_parser_;
  std::optional<http::request_parser<http::file_body>> file_parser_;
};

}  // namespace

struct HttpServer::Impl {
  Impl(Handler& h, int port) : handler(h), acceptor(io) {
    const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
    acceptor.open(endpoint.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen();
  }

  void accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;
      // Small messages (worker results, events) go out at once, not after Nagle's delay.
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<HttpSession>(std::move(socket), handler, next_id)->read();
      accept();
    });
  }

  void schedule(std::shared_ptr<asio::steady_timer> timer, double seconds, std::function<void()> task) {
    timer->expires_after(std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
    timer->async_wait([this, timer, seconds, task](beast::error_code ec) {
      if (ec) return;
      task();
      schedule(timer, seconds, task);
    });
  }

  Handler& handler;
  asio::io_context io;
  tcp::acceptor acceptor;
  int next_id = 0;
};

HttpServer::HttpServer(Handler& handler, int port) {
  try {
    impl_ = std::make_unique<Impl>(handler, port);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot listen on 127.0.0.1:" + std::to_string(port) + ": " + e.what());
  }
  impl_->accept();
}

HttpServer::~HttpServer() = default;

int HttpServer::port() const { return impl_->acceptor.local_endpoint().port(); }

void HttpServer::run() { impl_->io.run(); }

void HttpServer::stop() { impl_->io.stop(); }

void HttpServer::post(std::function<void()> task) { asio::post(impl_->io, std::move(task)); }

void HttpServer::every(double seconds, std::function<void()> task) {
  impl_->schedule(std::make_shared<asio::steady_timer>(impl_->io), seconds, std::move(task));
}

}  // namespace testlooper::server
