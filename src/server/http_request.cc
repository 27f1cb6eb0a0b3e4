// The HTTP layer's requests (http.h): decoding and checking a request's head, and parsing raw
// bytes into a Request the way the server does (what fuzz_http drives). No sockets here.
#include "server/http_request.h"

#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "server/event_log.h"

namespace testlooper::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF): what JSON
// replies can quote.
bool is_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

// %-decodes `s` into `out`; '+' is a space when `plus_is_space`. The error, or nullopt.
std::optional<std::string> url_decode(std::string_view s, bool plus_is_space, std::string& out) {
  out.clear();
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      const int high = i + 2 < s.size() ? hex_digit(s[i + 1]) : -1;
      const int low = i + 2 < s.size() ? hex_digit(s[i + 2]) : -1;
      if (high < 0 || low < 0) return "malformed %-escape in the URL";
      c = static_cast<char>(high * 16 + low);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    if (c == '\0') return "NUL in the URL";
    out += c;
  }
  if (!is_utf8(out)) return "the URL is not UTF-8";
  return std::nullopt;
}

// The host name of a Host header or URL authority ("name", "name:port", "[v6]:port"), lower
// case; nullopt when the port is not a number.
std::optional<std::string> host_name(std::string_view authority) {
  size_t end = authority.size();
  if (!authority.empty() && authority[0] == '[') {
    end = authority.find(']');
    if (end == std::string_view::npos) return std::nullopt;
    ++end;
  } else if (const size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    end = colon;
  }
  const std::string_view port = authority.substr(end);
  if (!port.empty()) {
    if (port.size() < 2 || port.size() > 6 || port[0] != ':') return std::nullopt;
    for (char c : port.substr(1)) {
      if (c < '0' || c > '9') return std::nullopt;
    }
  }
  if (end == 0) return std::nullopt;
  return lower(authority.substr(0, end));
}

// The parts of HttpOptions::public_url the checks use.
struct PublicUrl {
  std::string host;    // lower case, without the port
  std::string origin;  // scheme://host[:port], lower case, without a default port
};

std::optional<PublicUrl> parse_public_url(const std::string& url) {
  const std::string u = lower(url);
  std::string scheme;
  for (const char* s : {"http", "https"}) {
    if (u.rfind(std::string(s) + "://", 0) == 0) scheme = s;
  }
  if (scheme.empty()) return std::nullopt;
  std::string authority = u.substr(scheme.size() + 3);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  if (authority.find_first_of("@ \t") != std::string::npos) return std::nullopt;
  auto host = host_name(authority);
  if (!host) return std::nullopt;
  const std::string default_port = scheme == "http" ? ":80" : ":443";
  if (authority.size() > default_port.size() &&
      authority.compare(authority.size() - default_port.size(), default_port.size(),
                        default_port) == 0 &&
      authority.size() - default_port.size() == host->size()) {
    authority = *host;
  }
  return PublicUrl{*host, scheme + "://" + authority};
}

// An IPv4 literal ("10.0.0.5") or a bracketed IPv6 one ("[::1]"), as a Host header's name.
bool is_ip_literal(const std::string& name) {
  boost::system::error_code ec;
  if (name.size() > 2 && name.front() == '[' && name.back() == ']') {
    asio::ip::make_address_v6(name.substr(1, name.size() - 2), ec);
  } else {
    asio::ip::make_address_v4(name, ec);
  }
  return !ec;
}

std::string clip(std::string_view s) { return std::string(s.substr(0, 100)); }

bool header_is(const Request& r, const std::string& name, std::string_view value) {
  auto it = r.headers.find(name);
  return it != r.headers.end() && lower(it->second) == value;
}

}  // namespace

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return out;
}

void log_error(const std::string& where, const std::string& what) {
  log_event("error", "http_error", {{"where", where}, {"message", what}});
}

std::variant<Request, Response> request_of(const http::request_header<>& header, bool upgrade,
                                           const HttpOptions& options) {
  Request out;
  out.method = std::string(header.method_string());
  const std::string_view target(header.target().data(), header.target().size());
  if (target.size() > kMaxTargetBytes) {
    return error_response(414,
                          "the URL is longer than " + std::to_string(kMaxTargetBytes) + " bytes");
  }
  if (auto e = decode_target(target, out)) return error_response(400, *e);
  for (const auto& h : header) {
    std::string& value = out.headers[lower(std::string(h.name_string()))];
    value = value.empty() ? std::string(h.value()) : value + ", " + std::string(h.value());
  }
  if (auto refusal = check_head(out, upgrade, options)) return *refusal;
  return out;
}

Response head_error(const beast::error_code& ec, const http::request_header<>& header) {
  if (ec == http::error::header_limit) {
    if (header.target().empty()) {  // the request line itself was too long
      return error_response(414,
                            "the URL is longer than " + std::to_string(kMaxTargetBytes) + " bytes");
    }
    return error_response(
        431, "the request head is larger than " + std::to_string(kMaxHeaderBytes - 1) + " bytes");
  }
  return error_response(400, "malformed HTTP request");
}

std::string too_large(uint64_t limit) {
  return "the body is larger than the limit of " + std::to_string(limit) + " bytes";
}

std::string bind_address(const std::string& bind) {
  if (lower(bind) == "localhost") return "127.0.0.1";
  std::string text = bind;
  if (text.size() > 2 && text.front() == '[' && text.back() == ']')
    text = text.substr(1, text.size() - 2);
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(text, ec);
  if (ec) return "";
  return address.to_string();
}

bool is_loopback_address(const std::string& address) {
  boost::system::error_code ec;
  const auto a = asio::ip::make_address(address, ec);
  if (ec) return false;
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).is_loopback();
  return a.is_loopback();
}

std::string public_url_error(const std::string& url) {
  if (url.empty() || parse_public_url(url)) return "";
  return "'" + clip(url) + "' is not an http:// or https:// URL with a host";
}

Response error_response(int status, const std::string& message) {
  // Quoted request text may be anything: invalid UTF-8 is replaced, not thrown on.
  return Response{status, "application/json",
                  nlohmann::json{{"error", message}}.dump(-1, ' ', false,
                                                          nlohmann::json::error_handler_t::replace),
                  ""};
}

std::optional<std::string> decode_target(std::string_view target, Request& request) {
  if (target.empty() || target[0] != '/') return "the URL must be a path";
  const size_t q = target.find('?');
  if (auto e = url_decode(target.substr(0, q), false, request.path)) return e;
  request.query.clear();
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    std::string key, value;
    if (auto e = url_decode(part.substr(0, eq), true, key)) return e;
    if (eq != std::string_view::npos) {
      if (auto e = url_decode(part.substr(eq + 1), true, value)) return e;
    }
    request.query[key] = value;
  }
  return std::nullopt;
}

std::optional<Response> check_head(const Request& head, bool upgrade, const HttpOptions& options) {
  const auto public_url = parse_public_url(options.public_url);
  std::string host;
  if (auto it = head.headers.find("host"); it != head.headers.end()) {
    host = lower(it->second);
    const auto name = host_name(host);
    // An IP literal cannot be rebound (DNS rebinding needs a name): a client of a server bound
    // to a non-loopback address sends one, or the public URL's host.
    const bool served = name && (*name == "localhost" || is_ip_literal(*name) ||
                                 (public_url && *name == public_url->host));
    if (!served) {
      return error_response(421, "this server does not serve the host '" + clip(it->second) +
                                     "' (IP addresses, localhost, and the host of "
                                     "server.public_url)");
    }
  }
  const std::string& m = head.method;
  if (!upgrade && (m == "GET" || m == "HEAD" || m == "OPTIONS")) return std::nullopt;
  if (header_is(head, "sec-fetch-site", "cross-site")) {
    return error_response(403, "cross-site request refused");
  }
  if (auto it = head.headers.find("origin"); it != head.headers.end()) {
    const std::string origin = lower(it->second);
    const std::string scheme = options.tls_cert.empty() ? "http://" : "https://";
    const bool own =
        (!host.empty() && origin == scheme + host) || (public_url && origin == public_url->origin);
    if (!own)
      return error_response(403,
                            "cross-origin request refused (Origin '" + clip(it->second) + "')");
  }
  return std::nullopt;
}

namespace {

std::variant<Request, Response> parse_request_or_throw(std::string_view bytes,
                                                       const HttpOptions& options) {
  http::request_parser<http::empty_body> head_parser;
  head_parser.header_limit(kParserHeaderLimit);
  head_parser.body_limit(std::numeric_limits<uint64_t>::max());
  head_parser.eager(false);
  beast::error_code ec;
  const size_t used = head_parser.put(asio::buffer(bytes.data(), bytes.size()), ec);
  if (!ec && !head_parser.is_header_done()) ec = http::error::partial_message;
  if (ec) {
    if (ec == http::error::need_more)
      ec = bytes.size() > kParserHeaderLimit ? http::error::header_limit
                                             : http::error::partial_message;
    return head_error(ec, head_parser.get());
  }
  const bool upgrade = websocket::is_upgrade(head_parser.get());
  auto head = request_of(head_parser.get(), upgrade, options);
  if (std::holds_alternative<Response>(head)) return head;
  if (auto length = head_parser.content_length(); length && *length > kMaxBodyBytes) {
    return error_response(413, too_large(kMaxBodyBytes));
  }
  http::request_parser<http::string_body> parser(std::move(head_parser));
  parser.body_limit(kMaxBodyBytes);
  parser.eager(true);
  std::string_view rest = bytes.substr(used);
  while (!parser.is_done()) {
    ec = {};
    const size_t n = parser.put(asio::buffer(rest.data(), rest.size()), ec);
    rest.remove_prefix(n);
    if (ec == http::error::body_limit) return error_response(413, too_large(kMaxBodyBytes));
    if ((ec == http::error::need_more || !ec) && n == 0 && !parser.is_done()) {
      return error_response(400, "incomplete HTTP request body");
    }
    if (ec && ec != http::error::need_more)
      return error_response(400, "malformed HTTP request body");
  }
  Request request = std::move(std::get<Request>(head));
  request.body = parser.release().body();
  return request;
}

}  // namespace

std::variant<Request, Response> parse_request(std::string_view bytes, const HttpOptions& options) {
  try {
    return parse_request_or_throw(bytes, options);
  } catch (const std::exception&) {
    return error_response(400, "malformed HTTP request");
  }
}

Response handle_safely(Handler& handler, const Request& request) {
  try {
    return handler.handle(request);
  } catch (const std::exception& e) {
    log_error(request.method + " " + request.path, e.what());
  } catch (...) {
    log_error(request.method + " " + request.path, "unknown exception");
  }
  return error_response(500, "internal error");
}

}  // namespace testlooper::server
