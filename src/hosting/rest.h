// One HTTP call to a host's REST API (libcurl): what the listing, the statuses and anything else
// that talks JSON to GitHub or GitLab share. Thread-safe; each call makes its own connection.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace testlooper::hosting {

struct RestRequest {
  std::string method = "GET";        // GET, POST, PUT, PATCH, DELETE
  std::string url;                   // http:// or https:// only; redirects are not followed
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // sent when not empty (give a Content-Type header)
  double timeout_seconds = 30;
  size_t max_answer_bytes = 8 << 20;        // a longer answer is an error
  const std::atomic<bool>* stop = nullptr;  // when it becomes true, the call ends (an Error)
};

struct RestAnswer {
  long status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in order
  std::string body;
  // The first header named `name` (lower case), or nullopt.
  std::optional<std::string> header(const std::string& name) const;
};

// Performs `request`. Error{where, ...} when no HTTP answer came: "cannot be reached: ..."
// (connection refused, TLS), "no answer within N s", "answered more than N bytes", "the server
// is stopping" (`stop`); any HTTP status is an answer.
Result<RestAnswer> rest_call(const RestRequest& request, const std::string& where);

// The URL of rel="next" in an RFC 8288 Link header (GitHub's and GitLab's pagination), or "".
std::string next_link(const std::string& link_header);

}  // namespace testlooper::hosting
