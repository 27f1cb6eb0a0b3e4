// ServerUrl, the client TLS context, and opening connections (server_connection.h,
// tls_stream.h).
#include "worker/server_connection.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/hash.h"
#include "worker/tls_stream.h"

namespace testlooper::worker {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

bool is_ip_address(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// The first certificate of a PEM file; nullptr when there is none.
std::shared_ptr<X509> read_certificate(const std::string& file) {
  FILE* f = ::fopen(file.c_str(), "r");
  if (f == nullptr) return nullptr;
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  ::fclose(f);
  return cert == nullptr ? nullptr : std::shared_ptr<X509>(cert, X509_free);
}

}  // namespace

std::string ServerUrl::authority() const {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port;
}

Result<ServerUrl> parse_server_url(const std::string& url) {
  ServerUrl out;
  std::string rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    out.tls = true;
    rest = url.substr(8);
  } else {
    return Error{url, "not an http:// or https:// URL"};
  }
  const std::string authority = rest.substr(0, rest.find_first_of("/?#"));
  std::string port;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string::npos) return Error{url, "unterminated [ in the host"};
    out.host = authority.substr(1, close - 1);
    port = authority.substr(close + 1);
    boost::system::error_code ec;
    asio::ip::make_address_v6(out.host, ec);
    if (ec) return Error{url, "not an IPv6 address between [ and ]"};
  } else {
    const size_t colon = authority.find(':');
    out.host = authority.substr(0, colon);
    port = colon == std::string::npos ? "" : authority.substr(colon);
  }
  if (out.host.empty() || out.host.find_first_of("@ \t") != std::string::npos)
    return Error{url, "no host, or not one"};
  if (port.empty()) {
    out.port = out.tls ? "443" : "80";
  } else {
    out.port = port.substr(1);
    if (port[0] != ':' || out.port.empty() || out.port.size() > 5 ||
        out.port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(out.port) > 65535) {
      return Error{url, "the port is not a number up to 65535"};
    }
  }
  return out;
}

Result<std::shared_ptr<ssl::context>> client_tls_context(const TlsTrust& trust) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
  context->set_verify_mode(ssl::verify_peer);
  ERR_clear_error();
  const std::string& file = trust.server_cert.empty() ? trust.ca_file : trust.server_cert;
  const std::string flag = trust.server_cert.empty() ? "--ca-file" : "--server-cert";
  if (!file.empty()) {
    if (FILE* f = ::fopen(file.c_str(), "r")) {
      ::fclose(f);
    } else {
      return Error{flag + " " + file, std::string("cannot read it: ") + strerror(errno)};
    }
  }
  boost::system::error_code ec;
  if (!trust.server_cert.empty()) {
    // Pinned: the peer's certificate must be this one; its chain and names do not matter (the
    // handshake proves the peer holds its key).
    std::shared_ptr<X509> pinned = read_certificate(trust.server_cert);
    if (!pinned) return Error{flag + " " + file, "no PEM certificate in it: " + openssl_reason()};
    context->set_verify_callback([pinned](bool, ssl::verify_context& ctx) {
      X509_STORE_CTX* store = ctx.native_handle();
      if (X509_STORE_CTX_get_error_depth(store) > 0) return true;
      X509* cert = X509_STORE_CTX_get_current_cert(store);
      return cert != nullptr && X509_cmp(cert, pinned.get()) == 0;
    });
    return context;
  }
  if (trust.ca_file.empty()) {
    context->set_default_verify_paths(ec);
  } else {
    context->load_verify_file(trust.ca_file, ec);
  }
  if (ec) {
    const std::string reason = openssl_reason();
    return Error{trust.ca_file.empty() ? "the system's CA store" : flag + " " + file,
                 reason.empty() ? ec.message() : reason};
  }
  return context;
}

Result<ServerEndpoint> server_endpoint(const std::string& url, const TlsTrust& trust) {
  Result<ServerUrl> parsed = parse_server_url(url);
  if (!parsed.ok()) return parsed.error();
  ServerEndpoint out{*parsed, trust, nullptr};
  if (out.url.tls) {
    auto context = client_tls_context(trust);
    if (!context.ok()) return context.error();
    out.tls = *context;
  }
  return out;
}

void connect_tcp(tcp::socket& socket, const ServerUrl& url) {
  tcp::resolver resolver(socket.get_executor());
  asio::connect(socket, resolver.resolve(url.host, url.port));
}

void connect_tls(ssl::stream<tcp::socket>& stream, const ServerUrl& url, const TlsTrust& trust) {
  connect_tcp(stream.next_layer(), url);
  SSL* handle = stream.native_handle();
  const bool address = is_ip_address(url.host);
  // SNI names a host, never an address (RFC 6066).
  if (!address) SSL_set_tlsext_host_name(handle, url.host.c_str());
  // The certificate must be for the URL's host (its DNS or IP subjectAltName), unless pinned.
  if (trust.server_cert.empty()) {
    const int set = address
                        ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(handle), url.host.c_str())
                        : SSL_set1_host(handle, url.host.c_str());
    if (set != 1) throw std::runtime_error("cannot check the certificate's host " + url.host);
  }
  boost::system::error_code ec;
  stream.handshake(ssl::stream_base::client, ec);
  if (ec) {
    const long result = SSL_get_verify_result(handle);
    std::string why = ec.message();
    if (result != X509_V_OK) {
      why = std::string("certificate verify failed: ") + X509_verify_cert_error_string(result);
    }
    throw std::runtime_error("TLS handshake with " + url.authority() + " failed: " + why);
  }
}

}  // namespace testlooper::worker
