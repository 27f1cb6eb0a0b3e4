// How a worker (or any command talking to a server) reaches its server: the URL's parts, and for
// https:// URLs the TLS context that verifies the server (docs/cli.md "worker").
#pragma once

#include <memory>
#include <string>

#include "core/error.h"

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl

namespace testlooper::worker {

struct ServerUrl {
  bool tls = false;  // https://
  std::string host;  // a name or an IP address, without an IPv6 literal's brackets
  std::string port;  // 80 or 443 unless given
  // host:port as a Host header carries it ("[::1]:9081").
  std::string authority() const;
};

// "http://HOST[:PORT][/...]" or "https://..." (HOST a name, an IPv4 address or a bracketed
// IPv6 one); an error saying what is wrong otherwise.
Result<ServerUrl> parse_server_url(const std::string& url);

// Whom a TLS client trusts.
struct TlsTrust {
  // PEM certificates of the authorities that may sign the server's certificate; "" = the
  // system's store. The certificate must also be for the URL's host.
  std::string ca_file;
  // Instead: exactly this (PEM) certificate, whatever its names and issuer; what a server passes
  // to its local workers (it is its own --tls-cert).
  std::string server_cert;
};

// A client context (TLS 1.2 and later) that verifies the server as `trust` says; an error naming
// the file and OpenSSL's reason when it cannot be read. Verification is never turned off.
Result<std::shared_ptr<boost::asio::ssl::context>> client_tls_context(const TlsTrust& trust);

// A server as its clients reach it: the URL, whom to trust, and for https:// the context.
struct ServerEndpoint {
  ServerUrl url;
  TlsTrust trust;
  std::shared_ptr<boost::asio::ssl::context> tls;  // set for https:// URLs
};

// parse_server_url(url), with client_tls_context(trust) for https://.
Result<ServerEndpoint> server_endpoint(const std::string& url, const TlsTrust& trust);

}  // namespace testlooper::worker
