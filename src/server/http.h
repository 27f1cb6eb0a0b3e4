// The server's network layer: an HTTP/1.1 + WebSocket server on Boost.Beast (kept out of this
// header). Every request and every WebSocket message is handed to the Handler on the one
// io_context thread, so the handler needs no locks: the server's state is owned by that thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

namespace testlooper::server {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  // When set, the body was streamed into this file instead (Handler::body_file_for); the server
  // removes the file after handle() unless the handler moved it away.
  std::string body_file;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string file;  // when set, the body is this file's content (streamed)
};

// A WebSocket connection as the handler sees it. Everything but post() may be called from the
// io thread only.
class Socket {
 public:
  virtual ~Socket() = default;
  virtual void send(const std::string& text) = 0;
  // Closes the connection; `reason` (at most 123 bytes are sent) tells the peer why, and a
  // non-empty one closes with code 1008 (policy violation) rather than 1000.
  virtual void close(const std::string& reason = "") = 0;
  // Bytes handed to send() and not yet written (for back-pressure).
  virtual size_t buffered() const = 0;
  // Runs `task` on the io thread; thread-safe.
  virtual void post(std::function<void()> task) = 0;
  virtual const std::string& path() const = 0;
  virtual int id() const = 0;
};

class Handler {
 public:
  virtual ~Handler() = default;
  virtual Response handle(const Request& request) = 0;
  // Where to stream the body of the request whose head (no body yet) is `head`: a new file's
  // path for a large upload (up to 4 GiB), or "" to read the body into Request::body (up to
  // 64 MiB). A bigger body closes the connection.
  virtual std::string body_file_for(const Request& head) {
    (void)head;
    return "";
  }
  // A WebSocket opened on `socket->path()`; return false to refuse it.
  virtual bool on_open(const std::shared_ptr<Socket>& socket, const Request& request) = 0;
  virtual void on_message(const std::shared_ptr<Socket>& socket, const std::string& text) = 0;
  virtual void on_close(const std::shared_ptr<Socket>& socket) = 0;
};

class HttpServer {
 public:
  // Binds 127.0.0.1:`port` (0 = any free port). Throws std::runtime_error when it cannot.
  HttpServer(Handler& handler, int port);
  ~HttpServer();
  int port() const;
  // Runs the io loop on this thread until stop().
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
