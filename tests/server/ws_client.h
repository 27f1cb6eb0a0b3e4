// The WebSocket client for server tests (Boost.Beast, synchronous from the test's view): connects
// to the server on loopback, optionally with `Authorization: Bearer <token>` and an `Origin`,
// sends text, and reads messages with a deadline. connected() says whether the upgrade was
// accepted; after the connection ends, ended_by(), close_code() and close_reason() say how.
// Not thread-safe; one per connection.
#pragma once

// clang-format off: before Boost.Asio, whose awaitable.hpp needs std::exchange under C++20.
#include <utility>
// clang-format on

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <optional>
#include <string>

namespace testlooper::fixtures {

class WsClient {
 public:
  // Connects and upgrades, sending `token` and `origin` unless empty; connected() is false when
  // either failed (a refused upgrade), and ended_by() then says why.
  WsClient(int port, const std::string& path, const std::string& token = "",
           const std::string& origin = "")
      : ws_(io_) {
    namespace http = boost::beast::http;
    try {
      boost::asio::ip::tcp::resolver resolver(io_);
      boost::asio::connect(ws_.next_layer(), resolver.resolve("127.0.0.1", std::to_string(port)));
      ws_.set_option(boost::beast::websocket::stream_base::decorator(
          [token, origin](boost::beast::websocket::request_type& r) {
            if (!token.empty()) r.set(http::field::authorization, "Bearer " + token);
            if (!origin.empty()) r.set(http::field::origin, origin);
          }));
      ws_.handshake("127.0.0.1:" + std::to_string(port), path);
      ws_.read_message_max(1 << 30);
      connected_ = true;
    } catch (const boost::system::system_error& e) {
      ended_by_ = e.code();
    } catch (const std::exception&) {
      ended_by_ = boost::asio::error::fault;
    }
  }

  bool connected() const { return connected_; }

  // False when the connection is gone.
  bool send(const std::string& text) {
    boost::beast::error_code ec;
    ws_.text(true);
    ws_.write(boost::asio::buffer(text), ec);
    return !ec;
  }

  // Sends `bytes` in a binary frame; false when the connection is gone.
  bool send_binary(const std::string& bytes) {
    boost::beast::error_code ec;
    ws_.binary(true);
    ws_.write(boost::asio::buffer(bytes), ec);
    return !ec;
  }

  // Whether the last message read() returned came in a binary frame.
  bool got_binary() const { return ws_.got_binary(); }

  // The next message, or nullopt when the connection closed (or broke) or nothing came within
  // `seconds` (then the connection is dropped).
  std::optional<std::string> read(double seconds = 30) {
    if (!connected_) return std::nullopt;
    boost::beast::flat_buffer buffer;
    bool done = false;
    boost::beast::error_code error;
    ws_.async_read(buffer, [&](boost::beast::error_code ec, size_t) {
      error = ec;
      done = true;
    });
    io_.restart();
    io_.run_for(std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
    if (!done) {
      boost::beast::error_code ignored;
      ws_.next_layer().close(ignored);
      io_.restart();
      io_.run();
      connected_ = false;
      ended_by_ = boost::asio::error::timed_out;
      return std::nullopt;
    }
    if (error) {
      if (error == boost::beast::websocket::error::closed) {
        code_ = ws_.reason().code;
        reason_ = std::string(ws_.reason().reason.data(), ws_.reason().reason.size());
      }
      connected_ = false;
      ended_by_ = error;
      return std::nullopt;
    }
    return boost::beast::buffers_to_string(buffer.data());
  }

  // Reads (and drops) messages until the connection ends; how it ended (see ended_by()), or
  // boost::asio::error::timed_out when it was still open after `seconds` (then it is dropped).
  boost::beast::error_code read_until_closed(double seconds = 30) {
    const auto until = std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
    while (connected_) {
      const double left =
          std::chrono::duration<double>(until - std::chrono::steady_clock::now()).count();
      if (left <= 0) {
        drop();
        ended_by_ = boost::asio::error::timed_out;
      } else {
        read(left);
      }
    }
    return ended_by_;
  }

  // Reads (and drops) messages until the server closes the connection; its close reason, or
  // nullopt when it did not close within `seconds` (then it is dropped) or broke without a close
  // frame.
  std::optional<std::string> close_reason(double seconds = 30) {
    read_until_closed(seconds);
    return reason_;
  }

  // How the connection ended: boost::beast::websocket::error::closed after a close frame
  // (close_code() and close_reason() say why), boost::asio::error::eof when the server closed
  // the TCP connection without one, timed_out after a read deadline passed, another error when
  // it broke or the upgrade failed; empty while connected or after drop().
  boost::beast::error_code ended_by() const { return ended_by_; }

  // The code of the server's close frame, once one came.
  std::optional<int> close_code() const { return code_; }

  // Drops the TCP connection.
  void drop() {
    boost::beast::error_code ignored;
    ws_.next_layer().close(ignored);
    connected_ = false;
  }

 private:
  boost::asio::io_context io_;
  boost::beast::websocket::stream<boost::asio::ip::tcp::socket> ws_;
  bool connected_ = false;
  boost::beast::error_code ended_by_;
  std::optional<int> code_;
  std::optional<std::string> reason_;
};

}  // namespace testlooper::fixtures
