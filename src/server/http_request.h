// Inside the HTTP layer (not for handlers: they see http.h): what the connection code in
// http.cc shares with the request parsing in http_request.cc.
#pragma once

// clang-format off: before Boost.Asio, whose awaitable.hpp needs std::exchange under C++20.
#include <utility>
// clang-format on

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <boost/beast/websocket.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "server/http.h"

namespace testlooper::server {

// Under 64 KiB: beast stores a field's size in 16 bits and throws on a longer one.
inline constexpr uint32_t kParserHeaderLimit = kMaxHeaderBytes - 1;

// `s` in lower case (ASCII).
std::string lower(std::string_view s);

// "testlooper serve: <where>: <what>" on stderr.
void log_error(const std::string& where, const std::string& what);

// The parsed request of a head beast read, or its refusal: target (400/414), then check_head.
std::variant<Request, Response> request_of(const boost::beast::http::request_header<>& header,
                                           bool upgrade, const HttpOptions& options);

// A refusal for a head beast could not read (`header`: what it parsed of it).
Response head_error(const boost::beast::error_code& ec,
                    const boost::beast::http::request_header<>& header);

// The 413 message for a body over `limit`.
std::string too_large(uint64_t limit);

}  // namespace testlooper::server
