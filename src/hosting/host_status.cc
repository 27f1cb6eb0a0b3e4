// Posting commit statuses: GitHub's Statuses API, GitLab's commit status API.
#include <fmt/format.h>

#include <cctype>
#include <nlohmann/json.hpp>

#include "hosting/host_impl.h"

namespace testlooper::hosting {
namespace {

using nlohmann::json;

// Whether byte `c` continues a UTF-8 sequence (10xxxxxx).
bool continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// The byte offset where code point `n` of `text` starts (text.size() when it has fewer).
size_t code_point_offset(const std::string& text, size_t n) {
  size_t at = 0;
  for (size_t seen = 0; at < text.size() && seen < n; ++seen) {
    ++at;
    while (at < text.size() && continuation(text[at])) ++at;
  }
  return at;
}

const char* github_state(CommitStatus::State state) {
  switch (state) {
    case CommitStatus::State::kPending:
      return "pending";
    case CommitStatus::State::kSuccess:
      return "success";
    case CommitStatus::State::kFailure:
      return "failure";
    case CommitStatus::State::kError:
      break;
  }
  return "error";
}

// GitLab has no "error": an infrastructure problem is shown as failed, its description says why.
const char* gitlab_state(CommitStatus::State state) {
  switch (state) {
    case CommitStatus::State::kPending:
      return "pending";
    case CommitStatus::State::kSuccess:
      return "success";
    case CommitStatus::State::kFailure:
    case CommitStatus::State::kError:
      break;
  }
  return "failed";
}

// "owner/name" with each part encoded (a GitHub repository's path).
std::string encoded_full_name(const std::string& full_name) {
  const size_t slash = full_name.find('/');
  if (slash == std::string::npos) return path_segment(full_name);
  return path_segment(full_name.substr(0, slash)) + "/" + path_segment(full_name.substr(slash + 1));
}

// The host's message in a JSON error body ({"message": ...} on both hosts; GitLab's may be an
// object or an array), cut short; the body's start when it is not JSON.
std::string host_message(const std::string& body) {
  const json parsed = json::parse(body, nullptr, false);
  std::string message = body;
  if (parsed.is_object() && parsed.contains("message")) {
    const json& m = parsed["message"];
    message = m.is_string() ? m.get<std::string>()
                            : m.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  return fit_description(message, 200);
}

// POSTs `body` to `url`; an Error naming the HTTP status and the host's message unless 2xx.
Status post_json(const std::string& where, const std::string& url, std::vector<std::string> headers,
                 const json& body, double timeout_seconds) {
  headers.push_back("Content-Type: application/json");
  RestRequest request;
  request.method = "POST";
  request.url = url;
  request.headers = std::move(headers);
  request.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  request.timeout_seconds = timeout_seconds;
  request.max_answer_bytes = 1 << 20;
  auto answer = rest_call(request, where);
  if (!answer.ok()) return answer.error();
  if (answer->status < 200 || answer->status > 299)
    return Error{where, fmt::format("HTTP {}: {}", answer->status, host_message(answer->body))};
  return {};
}

}  // namespace

std::string path_segment(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

size_t code_points(const std::string& text) {
  size_t n = 0;
  for (char c : text) n += continuation(c) ? 0 : 1;
  return n;
}

std::string fit_description(const std::string& text, size_t limit) {
  if (code_point_offset(text, limit) == text.size()) return text;
  if (limit == 0) return "";
  return text.substr(0, code_point_offset(text, limit - 1)) + "…";
}

Status GitHubHost::post_status(const HostedRepo& repo, const std::string& sha,
                               const CommitStatus& status) {
  const json body = {{"state", github_state(status.state)},
                     {"target_url", status.target_url},
                     {"description", fit_description(status.description, description_limit())},
                     {"context", status.context}};
  return post_json(
      "GitHub status of " + repo.full_name + " " + sha,
      options_.api_url + "/repos/" + encoded_full_name(repo.full_name) + "/statuses/" + sha,
      headers(), body, options_.timeout_seconds);
}

Status GitLabHost::post_status(const HostedRepo& repo, const std::string& sha,
                               const CommitStatus& status) {
  const json body = {{"state", gitlab_state(status.state)},
                     {"name", status.context},
                     {"target_url", status.target_url},
                     {"description", fit_description(status.description, description_limit())}};
  const std::string project = path_segment(repo.id.empty() ? repo.full_name : repo.id);
  return post_json("GitLab status of " + repo.full_name + " " + sha,
                   options_.api_url + "/projects/" + project + "/statuses/" + sha, headers(), body,
                   options_.timeout_seconds);
}

}  // namespace testlooper::hosting
