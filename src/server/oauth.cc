#include "server/oauth.h"

#include <fmt/format.h>

#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "core/url.h"
#include "hosting/rest.h"

namespace testlooper::server {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// A provider's answer is small (a token, a user): more is not what we asked for.
constexpr size_t kMaxAnswerBytes = 1 << 20;

std::string without_trailing_slash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

std::string display_name(const OAuthSettings& s) {
  return s.provider == "gitlab" ? "GitLab" : "GitHub";
}

struct Answer {
  long status = 0;
  std::string body;
};

// One HTTP call to the provider: POST `form` when not empty, else GET. Redirects are not
// followed; only http and https are spoken.
Result<Answer> call(const OAuthSettings& s, const std::string& what, const std::string& url,
                    const std::vector<std::string>& headers, const std::string& form,
                    Clock::time_point deadline, const std::atomic<bool>& stop) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  const std::string where = display_name(s) + " (" + what + ")";
  if (left <= 0) return Error{where, "no answer in time"};
  hosting::RestRequest request;
  request.method = form.empty() ? "GET" : "POST";
  request.url = url;
  request.headers = headers;
  request.body = form;
  request.timeout_seconds = static_cast<double>(left) / 1000;
  request.max_answer_bytes = kMaxAnswerBytes;
  request.stop = &stop;
  auto answer = hosting::rest_call(request, where);
  // libcurl's timer may fire a few milliseconds before the deadline (it started counting after
  // `left` was read, in whole milliseconds): within 100 ms of it, the budget is what was spent.
  if (!answer.ok() && Clock::now() + std::chrono::milliseconds(100) >= deadline) {
    // The sign-in's whole budget is spent (its calls share it): say the budget, not the rest.
    return Error{where, fmt::format("no answer within {} s", s.timeout_seconds)};
  }
  if (!answer.ok()) return answer.error();
  return Answer{answer->status, std::move(answer->body)};
}

// `answer`'s body as a JSON object, or an Error that says what came instead.
Result<json> json_object(const Answer& answer, const std::string& where) {
  json body = json::parse(answer.body, nullptr, false);
  if (!body.is_object()) {
    return Error{where, fmt::format("answered HTTP {} with something that is not a JSON object",
                                    answer.status)};
  }
  return body;
}

// The string `body[key]` when it is one of 1..max characters, else nullopt.
std::optional<std::string> text_field(const json& body, const std::string& key, size_t max) {
  auto it = body.find(key);
  if (it == body.end() || !it->is_string()) return std::nullopt;
  std::string value = it->get<std::string>();
  if (value.empty() || value.size() > max) return std::nullopt;
  return value;
}

std::string form_of(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [k, v] : fields) out += (out.empty() ? "" : "&") + k + "=" + url_segment(v);
  return out;
}

// A login as the providers allow it (letters, digits, '-', '_', '.'), at most 255 characters:
// anything else is not used as a name or in a URL.
bool is_login(const std::string& login) {
  if (login.empty() || login.size() > 255) return false;
  for (unsigned char c : login) {
    if (!isalnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

}  // namespace

OAuthSettings oauth_settings(const ServerOptions& o) {
  OAuthSettings s;
  s.provider = o.oauth_provider.empty() ? "github" : o.oauth_provider;
  s.key = o.oauth_key;
  s.secret = o.oauth_secret;
  const bool gitlab = s.provider == "gitlab";
  s.login_url = without_trailing_slash(gitlab ? o.gitlab_login_url : o.github_login_url);
  s.api_url = without_trailing_slash(gitlab ? o.gitlab_api_url : o.github_api_url);
  s.org = gitlab ? o.group : o.owner;
  s.timeout_seconds = o.oauth_timeout_seconds;
  return s;
}

std::string authorize_url(const OAuthSettings& s, const std::string& redirect_uri,
                          const std::string& state) {
  if (s.provider == "gitlab") {
    return s.login_url + "/oauth/authorize?client_id=" + url_segment(s.key) +
           "&redirect_uri=" + url_segment(redirect_uri) +
           "&response_type=code&scope=read_user+read_api&state=" + url_segment(state);
  }
  return s.login_url + "/login/oauth/authorize?client_id=" + url_segment(s.key) +
         "&redirect_uri=" + url_segment(redirect_uri) +
         "&scope=read:org&state=" + url_segment(state);
}

Result<SignedIn> sign_in(const OAuthSettings& s, const std::string& code,
                         const std::string& redirect_uri, const std::atomic<bool>& stop) {
  const auto deadline =
      Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(s.timeout_seconds * 1000));
  const bool gitlab = s.provider == "gitlab";
  const std::string name = display_name(s);
  // 1. The code for an access token.
  std::vector<std::pair<std::string, std::string>> fields = {{"client_id", s.key},
                                                             {"client_secret", s.secret},
                                                             {"code", code},
                                                             {"redirect_uri", redirect_uri}};
  if (gitlab) fields.emplace_back("grant_type", "authorization_code");
  const std::string token_url =
      gitlab ? s.login_url + "/oauth/token" : s.login_url + "/login/oauth/access_token";
  auto answer =
      call(s, "token", token_url, {"Accept: application/json"}, form_of(fields), deadline, stop);
  if (!answer.ok()) return answer.error();
  auto body = json_object(*answer, name + " (token)");
  if (!body.ok()) return body.error();
  auto token = text_field(*body, "access_token", 4096);
  if (answer->status != 200 || !token) {
    // GitHub answers 200 with {"error": "bad_verification_code"} for a wrong or used code.
    auto why = text_field(*body, "error", 200);
    return Error{name + " (token)", fmt::format("refused the sign-in code (HTTP {}{})",
                                                answer->status, why ? ": " + *why : std::string())};
  }
  for (char c : *token) {
    if (c <= ' ' || c > '~') return Error{name + " (token)", "answered a malformed access token"};
  }
  const std::vector<std::string> auth = {"Authorization: Bearer " + *token,
                                         "Accept: application/json"};
  // 2. The user.
  answer = call(s, "user", s.api_url + "/user", auth, "", deadline, stop);
  if (!answer.ok()) return answer.error();
  if (answer->status != 200) {
    return Error{name + " (user)", fmt::format("answered HTTP {} for the user", answer->status)};
  }
  body = json_object(*answer, name + " (user)");
  if (!body.ok()) return body.error();
  auto login = text_field(*body, gitlab ? "username" : "login", 255);
  if (!login || !is_login(*login)) return Error{name + " (user)", "answered no valid user name"};
  SignedIn out{*login, false};
  if (s.org.empty()) return out;
  // 3. The membership.
  std::string member_url;
  if (gitlab) {
    auto id = body->find("id");
    if (id == body->end() || !id->is_number_unsigned()) {
      return Error{name + " (user)", "answered no valid user id"};
    }
    member_url = fmt::format("{}/groups/{}/members/all/{}", s.api_url, url_segment(s.org),
                             id->get<uint64_t>());
  } else {
    member_url = s.api_url + "/orgs/" + url_segment(s.org) + "/members/" + url_segment(*login);
  }
  answer = call(s, "membership", member_url, auth, "", deadline, stop);
  if (!answer.ok()) return answer.error();
  // GitHub: 204 a member, 404 not (302 when the token may not see the members: not one).
  // GitLab: 200 a member, 404 not.
  const long yes = gitlab ? 200 : 204;
  if (answer->status == yes) {
    out.member = true;
  } else if (answer->status != 404 && answer->status != 302) {
    return Error{name + " (membership)",
                 fmt::format("answered HTTP {} for the membership", answer->status)};
  }
  return out;
}

}  // namespace testlooper::server
