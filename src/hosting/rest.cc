#include "hosting/rest.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <mutex>

#include "core/http_header.h"

namespace testlooper::hosting {
namespace {

struct Transfer {
  RestAnswer answer;
  size_t limit = 0;
  bool too_large = false;
  const std::atomic<bool>* stop = nullptr;
};

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* stop = static_cast<Transfer*>(user)->stop;
  return stop != nullptr && stop->load() ? 1 : 0;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (t->answer.body.size() + n > t->limit) {
    t->too_large = true;
    return 0;  // aborts the transfer
  }
  t->answer.body.append(data, n);
  return n;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  add_header_line(std::string_view(data, n), &t->answer.headers);
  return n;
}

}  // namespace

std::optional<std::string> RestAnswer::header(const std::string& name) const {
  return find_header(headers, name);
}

Result<RestAnswer> rest_call(const RestRequest& request, const std::string& where) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return Error{where, "cannot make an HTTP client"};
  Transfer transfer;
  transfer.limit = request.max_answer_bytes;
  transfer.stop = request.stop;
  curl_slist* list = nullptr;
  for (const auto& h : request.headers) list = curl_slist_append(list, h.c_str());
  list = curl_slist_append(list, "User-Agent: testlooper");
  list = curl_slist_append(list, "Expect:");
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout_seconds * 1000));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
      request.method == "PATCH") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE,
                   static_cast<curl_off_t>(request.max_answer_bytes));
  const CURLcode code = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &transfer.answer.status);
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  if (transfer.too_large || code == CURLE_FILESIZE_EXCEEDED)
    return Error{where, fmt::format("answered more than {} bytes", request.max_answer_bytes)};
  if (code == CURLE_OPERATION_TIMEDOUT)
    return Error{where, fmt::format("no answer within {} s", request.timeout_seconds)};
  if (code == CURLE_ABORTED_BY_CALLBACK) return Error{where, "the server is stopping"};
  if (code != CURLE_OK)
    return Error{where, std::string("cannot be reached: ") + curl_easy_strerror(code)};
  return std::move(transfer.answer);
}

std::string next_link(const std::string& link_header) {
  // <https://api.github.com/...&page=2>; rel="next", <...>; rel="last"
  size_t at = 0;
  while (at < link_header.size()) {
    const size_t open = link_header.find('<', at);
    if (open == std::string::npos) return "";
    const size_t close = link_header.find('>', open);
    if (close == std::string::npos) return "";
    size_t end = link_header.find(',', close);
    if (end == std::string::npos) end = link_header.size();
    const std::string params = link_header.substr(close + 1, end - close - 1);
    if (params.find("rel=\"next\"") != std::string::npos ||
        params.find("rel=next") != std::string::npos)
      return link_header.substr(open + 1, close - open - 1);
    at = end + 1;
  }
  return "";
}

}  // namespace testlooper::hosting
