// ServerClient: synchronous Boost.Beast HTTP requests, one connection each.
#include <unistd.h>

// clang-format off: before Boost.Asio, whose awaitable.hpp needs std::exchange under C++20.
#include <utility>
// clang-format on

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast.hpp>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/url.h"
#include "worker/server_files.h"
#include "worker/tls_stream.h"

namespace testlooper::worker {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr uint64_t kMaxTextBody = 64ull << 20;

// The server's {"error": message} when the body is one, else the body itself (shortened).
std::string server_message(int status, const std::string& body) {
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  const std::string text = j.is_object() && j.contains("error") && j["error"].is_string()
                               ? j["error"].get<std::string>()
                               : body.substr(0, 500);
  return "HTTP " + std::to_string(status) + ": " + text;
}

template <class Body>
void prepare(http::request<Body>& request, const std::string& authority) {
  request.set(http::field::host, authority);
  request.set(http::field::user_agent, "testlooper-worker");
  request.keep_alive(false);
  request.prepare_payload();
}

// Sends `request` and reads the response with `parser`, over TLS for an https:// server; throws
// on network errors (a refused certificate among them).
template <class Body, class ResponseBody>
void exchange(const ServerEndpoint& server, http::request<Body>& request,
              http::response_parser<ResponseBody>& parser) {
  asio::io_context io;
  prepare(request, server.url.authority());
  auto talk = [&](auto& stream) {
    http::write(stream, request);
    beast::flat_buffer buffer;
    http::read(stream, buffer, parser);
    // The response is complete (its length was known): no TLS close_notify is awaited.
    beast::error_code ignored;
    beast::get_lowest_layer(stream).shutdown(tcp::socket::shutdown_both, ignored);
  };
  if (server.tls) {
    asio::ssl::stream<tcp::socket> stream(io, *server.tls);
    connect_tls(stream, server.url, server.trust);
    talk(stream);
  } else {
    tcp::socket socket(io);
    connect_tcp(socket, server.url);
    talk(socket);
  }
}

std::string unique_suffix() {
  static std::atomic<uint64_t> counter{0};
  return std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

// Sends `request` and reads a text reply: its body on 200, else the server's error. Throws on
// network errors, as exchange() does.
template <class Request>
Result<std::string> text_exchange(const ServerEndpoint& server, const std::string& target,
                                  Request& request) {
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxTextBody);
  exchange(server, request, parser);
  const auto& response = parser.get();
  if (response.result_int() != 200)
    return Error{target, server_message(response.result_int(), response.body())};
  return response.body();
}

}  // namespace

ServerClient::ServerClient(ServerEndpoint server, std::string token)
    : server_(std::move(server)), token_(std::move(token)) {}

Result<std::string> ServerClient::get(const std::string& target) const {
  try {
    http::request<http::empty_body> request{http::verb::get, target, 11};
    request.set(http::field::authorization, "Bearer " + token_);
    return text_exchange(server_, target, request);
  } catch (const std::exception& e) {
    return Error{target, std::string("request failed: ") + e.what()};
  }
}

Status ServerClient::download(const std::string& target, const fs::path& dest) const {
  std::error_code ec;
  fs::create_directories(dest.parent_path(), ec);
  const fs::path temp = dest.string() + ".tmp-" + unique_suffix();
  try {
    http::request<http::empty_body> request{http::verb::get, target, 11};
    request.set(http::field::authorization, "Bearer " + token_);
    http::response_parser<http::file_body> parser;
    parser.body_limit(std::numeric_limits<uint64_t>::max());
    beast::error_code open_error;
    parser.get().body().open(temp.c_str(), beast::file_mode::write, open_error);
    if (open_error) return Error{temp.string(), "cannot create: " + open_error.message()};
    exchange(server_, request, parser);
    parser.get().body().close();
    const int status = parser.get().result_int();
    if (status != 200) {
      std::ifstream in(temp, std::ios::binary);
      const std::string body((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
      fs::remove(temp, ec);
      return Error{target, server_message(status, body)};
    }
  } catch (const std::exception& e) {
    fs::remove(temp, ec);
    return Error{target, std::string("download failed: ") + e.what()};
  }
  fs::rename(temp, dest, ec);
  if (ec) {
    fs::remove(temp, ec);
    return Error{dest.string(), "cannot rename into place"};
  }
  return {};
}

bool ServerClient::is_transient(const Error& error) {
  for (const char* prefix :
       {"request failed: ", "download failed: ", "upload failed: ", "HTTP 5"}) {
    if (error.message.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

Result<std::string> ServerClient::upload(const std::string& target, const fs::path& file,
                                         const std::string& upload_token) const {
  try {
    http::request<http::file_body> request{http::verb::post, target, 11};
    beast::error_code open_error;
    request.body().open(file.c_str(), beast::file_mode::scan, open_error);
    if (open_error) return Error{file.string(), "cannot read: " + open_error.message()};
    request.set(http::field::content_type, "application/octet-stream");
    request.set(http::field::authorization, "Bearer " + token_);
    request.set("X-TestLooper-Upload", upload_token);
    return text_exchange(server_, target, request);
  } catch (const std::exception& e) {
    return Error{target, std::string("upload failed: ") + e.what()};
  }
}

}  // namespace testlooper::worker
