// The server's network layer: an HTTP/1.1 + WebSocket server on Boost.Beast (kept out of this
// header). Every request and every WebSocket message is handed to the Handler on the one
// io_context thread, so the handler needs no locks: the server's state is owned by that thread.
//
// Everything from the network is checked here before the handler sees it (docs/security.md):
// the target's escapes and size, the header's size, the Host (loopback names and the public
// URL's host only), the Origin of state-changing requests and WebSocket upgrades, and the body's
// size before it is read. Refusals are 4xx responses with a JSON body {"error": "..."}; no
// exception from the handler leaves the server.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace testlooper::server {

struct Request {
  std::string method;                          // "GET", "POST", ...
  std::string path;                            // %-decoded, without the query; never holds a NUL
  std::map<std::string, std::string> query;    // %-decoded, '+' = space; never holds a NUL
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  // When set, the body was streamed into this file instead (Handler::body_file_for); the server
  // removes the file after handle() unless the handler moved it away.
  std::string body_file;
  // The client's IP address as the server sees it ("127.0.0.1", "::1"; a proxy's own address
  // behind one); "" when the request did not come through HttpServer.
  std::string client;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string file;  // when set, the body is this file's content (streamed)
  // When set, the body is made piece by piece as the client reads it: each call appends the next
  // piece to its argument and returns whether more follow (HTTP/1.1 chunked; an HTTP/1.0
  // client's connection closes after it). Called on the io thread, after the handler returned:
  // it may read the server's state as it is then. An exception ends the connection.
  std::function<bool(std::string&)> stream;
  // Further header fields ("Location", "Set-Cookie", ...; one entry per field line).
  std::vector<std::pair<std::string, std::string>> headers;
};

// The limits on what a client may send, applied before it is read.
inline constexpr size_t kMaxTargetBytes = 8 << 10;         // a longer target: 414
inline constexpr size_t kMaxHeaderBytes = 64 << 10;        // the head must be smaller: 431
inline constexpr uint64_t kMaxBodyBytes = 64ull << 20;     // bodies read into memory: 413
inline constexpr uint64_t kMaxFileBodyBytes = 4ull << 30;  // bodies streamed to a file: 413

struct HttpOptions {
  // Seconds a client may take to send a request's head, stay idle between keep-alive requests,
  // or make no progress sending a body or reading a response; a WebSocket peer silent this long
  // (the server pings it after half of it) is closed.
  double timeout_seconds = 30;
  // Open connections from one client address; more are closed at once.
  int max_connections_per_client = 64;
  // The URL the server is reached at through a proxy ("" = loopback only): its host is served
  // besides IP literals and the loopback names, and its origin is the server's own.
  std::string public_url;
  // The address listened on (bind_address() takes it): "127.0.0.1", "::", "[::1]", "localhost".
  std::string bind = "127.0.0.1";
  // PEM files; with both set the server speaks HTTPS and WSS only (TLS 1.2 and later).
  std::string tls_cert;
  std::string tls_key;
  std::string tls_chain;  // PEM certificates sent after tls_cert's ("" = none)
};

// The IP address `bind` names, as Asio writes it ("0.0.0.0", "::1"): IPv4 or IPv6 literals (the
// latter with or without brackets), and "localhost" (127.0.0.1). "" when it names none.
std::string bind_address(const std::string& bind);

// Whether `address` (an IP literal, as bind_address() returns it) is a loopback address: 127/8,
// ::1, or an IPv4-mapped 127/8. A wildcard (0.0.0.0, ::) is not.
bool is_loopback_address(const std::string& address);

// "" when `cert` and `key` can serve TLS (both set, readable, PEM, and the key the
// certificate's; `chain`, when given, a readable file of PEM certificates) or are both empty;
// else what is wrong, naming the file and OpenSSL's reason.
std::string tls_files_error(const std::string& cert, const std::string& key,
                            const std::string& chain = "");

// "" when `url` can be HttpOptions::public_url (http:// or https://, a host, an optional port
// and path), else what is wrong with it.
std::string public_url_error(const std::string& url);

// A JSON error response: {"error": message}.
Response error_response(int status, const std::string& message);

// Decodes a request target ("/path?query") into request.path and request.query: a malformed
// %-escape or a NUL after decoding is an error (returned); '+' is a space in the query only.
std::optional<std::string> decode_target(std::string_view target, Request& request);

// The checks on a request's head (method, target, headers; no body yet) that need no socket:
// header size, Host (IP literals, loopback names and public_url's host: a name other than those
// may be an attacker's, rebound to this address, so it is refused), and for state-changing requests
// and WebSocket upgrades (`upgrade`) the Origin and Sec-Fetch-Site. The refusal, or nullopt.
std::optional<Response> check_head(const Request& head, bool upgrade, const HttpOptions& options);

// Parses one complete HTTP/1.1 request from `bytes` as the server does (same limits, same
// checks; bodies are read into memory up to kMaxBodyBytes): the request or the refusal.
std::variant<Request, Response> parse_request(std::string_view bytes, const HttpOptions& options);

// A WebSocket connection as the handler sees it: a handle, not the connection's owner. It may be
// kept past the connection (send() and close() then do nothing) and even past the HttpServer.
// Everything but post() may be called from the io thread only.
class Socket {
 public:
  virtual ~Socket() = default;
  virtual void send(const std::string& text) = 0;
  // Sends `bytes` in a binary frame (a terminal's output).
  virtual void send_binary(const std::string& bytes) = 0;
  // Closes the connection; `reason` (at most 123 bytes are sent) tells the peer why, and a
  // non-empty one closes with code 1008 (policy violation) rather than 1000.
  virtual void close(const std::string& reason = "") = 0;
  // Bytes handed to send() and not yet written (for back-pressure); 0 once closed.
  virtual size_t buffered() const = 0;
  // Runs `task` on the io thread; thread-safe (while the HttpServer exists).
  virtual void post(std::function<void()> task) = 0;
  virtual const std::string& path() const = 0;
  virtual int id() const = 0;
};

// The handler's entry points may throw: the server answers 500 (handle), refuses the request
// (refuse_early, body_file_for, on_open) or closes that WebSocket with code 1011 (on_message).
class Handler {
 public:
  virtual ~Handler() = default;
  virtual Response handle(const Request& request) = 0;
  // The answer to a request that waits on something slow (another server): called on the io
  // thread instead of handle(); returns false when `request` is not such a request (handle()
  // answers it then), else true, and the request's answer is written once `done` is called
  // (from any thread, once, before the handler is destroyed) with a function that makes the
  // response: it runs on the io thread (a throw there answers 500). The connection stays open
  // meanwhile; the server's timeouts still apply to writing the answer.
  using Completion = std::function<void(std::function<Response()> make)>;
  virtual bool handle_async(const Request& request, Completion done) {
    (void)request;
    (void)done;
    return false;
  }
  // Where to stream the body of the request whose head (no body yet) is `head`: a new file's
  // path for a large upload (up to kMaxFileBodyBytes), or "" to read the body into
  // Request::body (up to kMaxBodyBytes). A bigger body is refused with 413.
  virtual std::string body_file_for(const Request& head) {
    (void)head;
    return "";
  }
  // Called with the head of every request (no body read yet), WebSocket upgrades included: a
  // response refuses the request with it before its body is read or the connection upgraded.
  virtual std::optional<Response> refuse_early(const Request& head) {
    (void)head;
    return std::nullopt;
  }
  // A WebSocket opened on `socket->path()`; return false to refuse it.
  virtual bool on_open(const std::shared_ptr<Socket>& socket, const Request& request) = 0;
  virtual void on_message(const std::shared_ptr<Socket>& socket, const std::string& text) = 0;
  // A binary frame (a terminal's keystrokes); ignored unless overridden.
  virtual void on_binary(const std::shared_ptr<Socket>& socket, const std::string& bytes) {
    (void)socket;
    (void)bytes;
  }
  // Called once for every socket on_open accepted, at the latest when the server stops.
  virtual void on_close(const std::shared_ptr<Socket>& socket) = 0;
};

// handler.handle(request), with an exception turned into a 500 (logged, its text not sent).
Response handle_safely(Handler& handler, const Request& request);

class HttpServer {
 public:
  // Binds options.bind:`port` (0 = any free port). Throws std::runtime_error when it cannot, or
  // when options.public_url, options.bind or the TLS files are not valid.
  HttpServer(Handler& handler, int port, HttpOptions options = {});
  // Stops and closes every connection (see run()).
  ~HttpServer();
  int port() const;
  // Where a client on this machine reaches the server: "http://127.0.0.1:9081",
  // "https://[::1]:9081", ... (the loopback address of a wildcard bind's family).
  std::string local_url() const;
  // Runs the io loop on this thread until stop(); then closes every connection (WebSockets with
  // 1001 "going away"), calls on_close for every open WebSocket, and returns once every session
  // is gone (a few seconds at most), so nothing of the network outlives run().
  void run();
  // Thread-safe.
  void stop();
  // Runs `task` on the io thread (thread-safe).
  void post(std::function<void()> task);
  // Runs `task` on the io thread every `seconds` until stop().
  void every(double seconds, std::function<void()> task);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace testlooper::server
