// Inside the HTTP layer (not for handlers: they see http.h): the connections behind HttpServer.
// http.cc listens and accepts them; http_session.cc serves HTTP on one (TLS first, when the server
// speaks it); websocket_session.cc serves one upgraded to a WebSocket. A session is a template
// on its stream, plain TCP or TLS over it, instantiated for both in its own file.
#pragma once

// clang-format off: before Boost.Asio, whose awaitable.hpp needs std::exchange under C++20.
#include <utility>
// clang-format on

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <type_traits>

#include "server/http.h"

namespace testlooper::server::http_detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

// A session's stream: plain TCP, or TLS over it (HttpOptions::tls_cert). Sessions are templates
// on it; every limit and timeout is the TCP layer's, so both get the same.
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
template <class Stream>
constexpr bool kIsTls = std::is_same_v<Stream, TlsStream>;

inline std::chrono::milliseconds duration(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(std::max(0.001, seconds) * 1000));
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
  std::map<uint64_t, std::string> addresses;            // by the same keys
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

// Serves HTTP on an accepted connection (`slot`: its place in `shared`), after a TLS handshake
// when Stream is TlsStream. The session owns itself through its pending operations.
template <class Stream>
void start_http(tcp::socket socket, Shared& shared, std::unique_ptr<Slot> slot);

// Takes `stream` over from an HTTP session whose `request` (`parsed`, its body read) asks for a
// WebSocket: accepts the upgrade and hands the socket to the handler (Handler::on_open).
template <class Stream>
void start_websocket(Stream stream, Shared& shared, std::unique_ptr<Slot> slot,
                     http::request<http::string_body> request, Request parsed);

}  // namespace testlooper::server::http_detail
