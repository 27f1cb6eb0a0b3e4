// Inside the worker (with Boost.Asio): opening a connection to the server, plain or TLS
// (worker/server_connection.h).
#pragma once

// clang-format off: before Boost.Asio, whose awaitable.hpp needs std::exchange under C++20.
#include <utility>
// clang-format on

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include "worker/server_connection.h"

namespace testlooper::worker {

// Connects `socket` to the server (throws std::system_error when it cannot).
void connect_tcp(boost::asio::ip::tcp::socket& socket, const ServerUrl& url);

// Connects `stream` and completes the TLS handshake: SNI for a host name, and the certificate
// checked as `trust` says (the stream's context was made from it by client_tls_context) and,
// unless pinned, against the URL's host. Throws std::runtime_error saying
// why the certificate was refused ("certificate verify failed: unable to get local issuer
// certificate") or what else failed.
void connect_tls(boost::asio::ssl::stream<boost::asio::ip::tcp::socket>& stream,
                 const ServerUrl& url, const TlsTrust& trust);

}  // namespace testlooper::worker
