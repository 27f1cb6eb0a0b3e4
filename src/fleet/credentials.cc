// Where AWS credentials come from: the environment, a credentials file, or (asked for apart) the
// instance metadata service of an EC2 instance with an IAM role.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>

#include "fleet/aws.h"

namespace testlooper::fleet {
namespace {

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

std::string trimmed(std::string_view s) {
  size_t begin = 0, end = s.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(s[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(s[end - 1]))) --end;
  return std::string(s.substr(begin, end - begin));
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// The profile `profile` of the INI credentials file `path` ([name] sections, key = value lines,
// '#' and ';' comments), as botocore reads it.
Result<Credentials> read_credentials_file(const std::string& path, const std::string& profile) {
  std::ifstream in(path);
  if (!in) return Error{path, "cannot be read (no AWS_ACCESS_KEY_ID in the environment either)"};
  Credentials found;
  bool in_profile = false, seen_profile = false;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const std::string text = trimmed(line);
    const std::string where = fmt::format("{}:{}", path, number);
    if (text.empty() || text[0] == '#' || text[0] == ';') continue;
    if (text[0] == '[') {
      if (text.back() != ']') return Error{where, "a section header must end with ']'"};
      in_profile = trimmed(text.substr(1, text.size() - 2)) == profile;
      seen_profile = seen_profile || in_profile;
      continue;
    }
    const size_t eq = text.find('=');
    if (eq == std::string::npos) return Error{where, "expected 'name = value' or '[profile]'"};
    if (!in_profile) continue;
    const std::string key = lower(trimmed(text.substr(0, eq)));
    const std::string value = trimmed(text.substr(eq + 1));
    if (key == "aws_access_key_id") found.access_key_id = value;
    if (key == "aws_secret_access_key") found.secret_access_key = value;
    if (key == "aws_session_token" || key == "aws_security_token") found.session_token = value;
  }
  if (!seen_profile) return Error{path, fmt::format("has no profile [{}]", profile)};
  if (found.access_key_id.empty() || found.secret_access_key.empty())
    return Error{path, fmt::format("profile [{}] needs aws_access_key_id and "
                                   "aws_secret_access_key",
                                   profile)};
  return found;
}

// A role name as IAM allows it: 1..128 of [A-Za-z0-9+=,.@_-].
bool is_role_name(const std::string& text) {
  return !text.empty() && text.size() <= 128 &&
         std::all_of(text.begin(), text.end(), [](unsigned char c) {
           return std::isalnum(c) ||
                  std::string_view("+=,.@_-").find(static_cast<char>(c)) != std::string_view::npos;
         });
}

// A GET or PUT to the metadata service: the body of a 200, else an Error.
Result<std::string> metadata_call(const std::string& url, const std::string& method,
                                  const std::string& path, const std::string& header) {
  AwsRequest request{.method = method, .path = path, .headers = {header}};
  request.timeout_seconds = 3;
  request.connect_timeout_seconds = 1;
  request.max_answer_bytes = 64 << 10;
  const std::string where = "instance metadata " + url;
  auto answer = aws_call(Endpoint{.service = "", .url = url}, Credentials{}, request, where);
  if (!answer.ok()) return answer.error();
  if (answer->status != 200) return answer_error(*answer, where + path);
  return std::move(answer->body);
}

// The JSON of a role's credentials (AccessKeyId, SecretAccessKey, Token, Expiration).
Result<Credentials> parse_role_credentials(const std::string& text, const std::string& where) {
  const auto json = nlohmann::json::parse(text, nullptr, false);
  if (!json.is_object()) return Error{where, "the role's credentials are not a JSON object"};
  Credentials found;
  for (auto [name, field] : {std::pair{"AccessKeyId", &found.access_key_id},
                             std::pair{"SecretAccessKey", &found.secret_access_key},
                             std::pair{"Token", &found.session_token}}) {
    const auto it = json.find(name);
    if (it == json.end() || !it->is_string() || it->get_ref<const std::string&>().empty() ||
        it->get_ref<const std::string&>().size() > 4096)
      return Error{where, fmt::format("the role's credentials have no {}", name)};
    *field = it->get<std::string>();
  }
  const auto expiration = json.find("Expiration");
  if (expiration == json.end() || !expiration->is_string())
    return Error{where, "the role's credentials have no Expiration"};
  const auto expires = parse_aws_time(expiration->get<std::string>());
  if (!expires) return Error{where, "the role's credentials' Expiration is not an AWS time"};
  found.expires_at = *expires;
  return found;
}

}  // namespace

Result<Credentials> load_credentials() {
  Credentials from_env{env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"),
                       env("AWS_SESSION_TOKEN")};
  if (!from_env.access_key_id.empty() || !from_env.secret_access_key.empty()) {
    if (from_env.access_key_id.empty() || from_env.secret_access_key.empty())
      return Error{"environment", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together"};
    return from_env;
  }
  std::string path = env("AWS_SHARED_CREDENTIALS_FILE");
  if (path.empty()) {
    if (env("HOME").empty())
      return Error{"environment", "no AWS_ACCESS_KEY_ID, and no HOME to find ~/.aws/credentials"};
    path = env("HOME") + "/.aws/credentials";
  }
  const std::string profile = env("AWS_PROFILE").empty() ? "default" : env("AWS_PROFILE");
  return read_credentials_file(path, profile);
}

Result<Credentials> instance_credentials(const std::string& metadata_url) {
  std::string url = metadata_url;
  if (url.empty()) url = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  if (url.empty()) url = "http://169.254.169.254";
  while (!url.empty() && url.back() == '/') url.pop_back();
  auto token =
      metadata_call(url, "PUT", "/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds: 300");
  if (!token.ok()) return token.error();
  if (token->empty() || token->size() > 1024 ||
      std::any_of(token->begin(), token->end(),
                  [](unsigned char c) { return c < 0x21 || c > 0x7e; }))
    return Error{"instance metadata " + url, "answered no session token"};
  const std::string with_token = "X-aws-ec2-metadata-token: " + *token;
  const std::string roles_path = "/latest/meta-data/iam/security-credentials/";
  auto roles = metadata_call(url, "GET", roles_path, with_token);
  if (!roles.ok()) return roles.error();
  const std::string role = trimmed(roles->substr(0, roles->find('\n')));
  if (!is_role_name(role)) return Error{"instance metadata " + url, "names no IAM role"};
  auto credentials = metadata_call(url, "GET", roles_path + role, with_token);
  if (!credentials.ok()) return credentials.error();
  return parse_role_credentials(*credentials, "instance metadata " + url + roles_path + role);
}

std::optional<int64_t> parse_aws_time(const std::string& text) {
  std::tm tm{};
  int consumed = 0;
  if (text.size() > 40 ||
      std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6)
    return std::nullopt;
  std::string tail = text.substr(static_cast<size_t>(consumed));
  if (tail.starts_with(".")) {
    size_t i = 1;
    while (i < tail.size() && std::isdigit(static_cast<unsigned char>(tail[i]))) ++i;
    tail = tail.substr(i);
  }
  if (tail != "Z" && tail != "+00:00" && !tail.empty()) return std::nullopt;
  if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60 || tm.tm_year < 1970 || tm.tm_year > 9999)
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm));
}

}  // namespace testlooper::fleet
