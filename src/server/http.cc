// Boost.Beast behind HttpServer: one io_context, one thread. This file listens and accepts;
// the sessions that serve a connection are in http_session.cc and websocket_session.cc.
#include "server/http.h"

// clang-format off: before Boost.Asio, whose awaitable.hpp needs std::exchange under C++20.
#include <utility>
// clang-format on

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "core/hash.h"
#include "server/http_request.h"
#include "server/http_session.h"

namespace testlooper::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using http_detail::duration;
using http_detail::PlainStream;
using http_detail::Session;
using http_detail::Shared;
using http_detail::Slot;
using http_detail::TlsStream;

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
      http_detail::start_http<TlsStream>(std::move(socket), shared, std::move(slot));
    } else {
      http_detail::start_http<PlainStream>(std::move(socket), shared, std::move(slot));
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
