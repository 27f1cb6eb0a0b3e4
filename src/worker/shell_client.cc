#include "worker/shell_client.h"

// clang-format off: before Boost.Asio, whose awaitable.hpp needs std::exchange under C++20.
#include <utility>
// clang-format on

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <deque>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "worker/tls_stream.h"

namespace testlooper::worker {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

int g_winch_pipe[2] = {-1, -1};
void on_winch(int) {
  const char c = 'w';
  (void)!::write(g_winch_pipe[1], &c, 1);
}

// The terminal's mode, raw while the shell runs, restored however it ends.
class RawMode {
 public:
  RawMode() {
    if (!::isatty(STDIN_FILENO) || ::tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    ::cfmakeraw(&raw);
    active_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  ~RawMode() {
    if (active_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }

 private:
  termios saved_{};
  bool active_ = false;
};

std::string resize_message() {
  winsize size{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) != 0 || size.ws_col == 0 || size.ws_row == 0)
    return "";
  return nlohmann::json{{"type", "resize"}, {"cols", size.ws_col}, {"rows", size.ws_row}}.dump();
}

// One connection: reads on the io thread, writes queued from the input thread (one at a time).
template <class Ws>
int attach(Ws& ws, asio::io_context& io) {
  struct Out {
    std::string bytes;
    bool binary;
  };
  std::deque<Out> queue;
  std::atomic<bool> done{false};
  std::string close_reason;
  std::function<void()> write_next = [&] {
    ws.binary(queue.front().binary);
    ws.async_write(asio::buffer(queue.front().bytes), [&](beast::error_code ec, size_t) {
      if (ec) return;
      queue.pop_front();
      if (!queue.empty()) write_next();
    });
  };
  auto send = [&](std::string bytes, bool binary) {
    asio::post(io, [&, bytes = std::move(bytes), binary]() mutable {
      queue.push_back({std::move(bytes), binary});
      if (queue.size() == 1) write_next();
    });
  };
  beast::flat_buffer buffer;
  std::function<void()> read_next = [&] {
    ws.async_read(buffer, [&](beast::error_code ec, size_t) {
      if (ec) {
        if (ec == websocket::error::closed) {
          close_reason = std::string(ws.reason().reason.data(), ws.reason().reason.size());
        }
        done = true;
        io.stop();
        return;
      }
      const std::string data = beast::buffers_to_string(buffer.data());
      buffer.consume(buffer.size());
      if (ws.got_binary()) (void)!::write(STDOUT_FILENO, data.data(), data.size());
      read_next();
    });
  };
  read_next();
  RawMode raw;
  if (const std::string m = resize_message(); !m.empty()) send(m, false);
  std::thread input([&] {
    char chunk[4096];
    while (!done) {
      pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {g_winch_pipe[0], POLLIN, 0}};
      if (::poll(fds, 2, 200) <= 0) continue;
      if (fds[1].revents & POLLIN) {
        char c;
        (void)!::read(g_winch_pipe[0], &c, 1);
        if (const std::string m = resize_message(); !m.empty()) send(m, false);
      }
      if (fds[0].revents & (POLLIN | POLLHUP)) {
        const ssize_t n = ::read(STDIN_FILENO, chunk, sizeof(chunk));
        if (n <= 0) break;  // stdin ended
        send(std::string(chunk, static_cast<size_t>(n)), true);
      }
    }
    // Closes politely once what was typed is written.
    asio::post(io, [&] {
      if (done) return;
      ws.async_close(websocket::close_code::normal, [&](beast::error_code) { io.stop(); });
    });
  });
  io.run();
  done = true;
  input.join();
  if (!close_reason.empty()) std::cerr << "\r\ntestlooper shell: " << close_reason << "\r\n";
  return 0;
}

}  // namespace

int run_shell(const ShellOptions& options) {
  signal(SIGPIPE, SIG_IGN);
  Result<ServerEndpoint> server =
      server_endpoint(options.server_url, TlsTrust{options.ca_file, ""});
  if (!server.ok()) {
    std::cerr << "testlooper shell: " << server.error().to_string() << std::endl;
    return 1;
  }
  if (::pipe(g_winch_pipe) != 0) return 1;
  struct sigaction action {};
  action.sa_handler = on_winch;
  action.sa_flags = SA_RESTART;
  sigaction(SIGWINCH, &action, nullptr);
  const std::string path = "/api/deployments/" + options.deployment + "/terminal";
  asio::io_context io;
  auto decorate = [&](auto& ws) {
    ws.set_option(websocket::stream_base::decorator([&](websocket::request_type& r) {
      if (!options.token.empty())
        r.set(beast::http::field::authorization, "Bearer " + options.token);
    }));
    ws.read_message_max(16 << 20);
  };
  try {
    if (server->tls) {
      websocket::stream<asio::ssl::stream<tcp::socket>> ws(io, *server->tls);
      connect_tls(ws.next_layer(), server->url, server->trust);
      decorate(ws);
      ws.handshake(server->url.authority(), path);
      return attach(ws, io);
    }
    websocket::stream<tcp::socket> ws(io);
    connect_tcp(ws.next_layer(), server->url);
    decorate(ws);
    ws.handshake(server->url.authority(), path);
    return attach(ws, io);
  } catch (const std::exception& e) {
    std::cerr << "testlooper shell: cannot attach to deployment " << options.deployment << ": "
              << e.what() << std::endl;
    return 1;
  }
}

}  // namespace testlooper::worker
