#include "server/config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <type_traits>

#include "server/http.h"

namespace testlooper::server {
namespace {

using nlohmann::json;

// Replaces $VAR and ${VAR} with the environment's values.
Result<std::string> expand(const std::string& text, const std::string& where) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$' || i + 1 >= text.size()) {
      out += text[i];
      continue;
    }
    size_t start = i + 1;
    size_t end = start;
    const bool braced = text[start] == '{';
    if (braced) {
      end = text.find('}', start);
      if (end == std::string::npos) return Error{where, "unterminated ${ in '" + text + "'"};
      ++start;
    } else {
      while (end < text.size() && (isalnum(static_cast<unsigned char>(text[end])) || text[end] == '_')) ++end;
    }
    const std::string name = text.substr(start, end - start);
    if (name.empty()) {
      out += '$';
      continue;
    }
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return Error{where, fmt::format("environment variable ${} is not set", name)};
    out += value;
    i = braced ? end : end - 1;
  }
  return out;
}

using Setter = std::function<Status(const json& value, const std::string& where)>;

Setter text(std::string& field) {
  return [&field](const json& v, const std::string& where) -> Status {
    if (!v.is_string()) return Error{where, "expected a string"};
    auto e = expand(v.get<std::string>(), where);
    if (!e.ok()) return e.error();
    field = *e;
    return {};
  };
}

Setter flag(bool& field) {
  return [&field](const json& v, const std::string& where) -> Status {
    if (!v.is_boolean()) return Error{where, "expected true or false"};
    field = v.get<bool>();
    return {};
  };
}

template <class T>
Setter number(T& field) {
  return [&field](const json& v, const std::string& where) -> Status {
    if (!v.is_number()) return Error{where, "expected a number"};
    if constexpr (std::is_integral_v<T>) {
      // An integer in T's range: get<T>() would truncate 4294967297 to 1.
      const bool fits = v.is_number_integer() &&
                        (v.is_number_unsigned()
                             ? v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max())
                             : v.get<int64_t>() >= std::numeric_limits<T>::min() &&
                                   v.get<int64_t>() <= std::numeric_limits<T>::max());
      if (!fits) return Error{where, "expected an integer that fits"};
    } else if (!std::isfinite(v.get<double>()) || std::abs(v.get<double>()) > 1e9) {
      return Error{where, "expected a number of at most 1e9"};
    }
    field = v.get<T>();
    return {};
  };
}

Setter boolean(bool& field) {
  return [&field](const json& v, const std::string& where) -> Status {
    if (!v.is_boolean()) return Error{where, "expected true or false"};
    field = v.get<bool>();
    return {};
  };
}

// A list of strings, each one expanded like text().
Setter texts(std::vector<std::string>& field) {
  return [&field](const json& v, const std::string& where) -> Status {
    if (!v.is_array()) return Error{where, "expected a list of strings"};
    std::vector<std::string> out;
    for (const auto& item : v) {
      std::string one;
      TL_RETURN_IF_ERROR(text(one)(item, where));
      out.push_back(one);
    }
    field = std::move(out);
    return {};
  };
}

// `setter`, noting in `given` that the key was given.
Setter noting(Setter setter, bool& given) {
  return [setter = std::move(setter), &given](const json& v, const std::string& where) -> Status {
    given = true;
    return setter(v, where);
  };
}

// The OAuth settings of `o` that are wrong (docs/configuration.md "Access"), or "".
std::string sign_in_error(const ServerOptions& o) {
  if (o.oauth_provider != "github" && o.oauth_provider != "gitlab") {
    return "auth.provider: must be \"github\" or \"gitlab\"";
  }
  if (o.auth_mode == auth::Mode::kOAuth && (o.oauth_key.empty() || o.oauth_secret.empty())) {
    return "auth.mode \"oauth\" needs source_control.oauth_key and source_control.oauth_secret";
  }
  for (const auto& [key, url] : {std::pair{"github_login_url", &o.github_login_url},
                                 {"github_api_url", &o.github_api_url},
                                 {"gitlab_login_url", &o.gitlab_login_url},
                                 {"gitlab_api_url", &o.gitlab_api_url}}) {
    const bool visible =
        std::all_of(url->begin(), url->end(), [](char c) { return c > ' ' && c <= '~'; });
    if (!visible || (!url->starts_with("http://") && !url->starts_with("https://"))) {
      return fmt::format("source_control.{}: must be an http:// or https:// URL", key);
    }
  }
  if (!(o.session_hours > 0)) return "auth.session_hours: must be positive";
  if (!(o.oauth_timeout_seconds > 0)) return "auth.provider_timeout_seconds: must be positive";
  return "";
}

Status apply_section(const json& section, const std::string& name, const std::map<std::string, Setter>& keys) {
  if (!section.is_object()) return Error{name, "expected an object"};
  for (const auto& [key, value] : section.items()) {
    auto it = keys.find(key);
    const std::string where = name + "." + key;
    if (it == keys.end()) {
      std::string known;
      for (const auto& [k, s] : keys) known += (known.empty() ? "" : ", ") + k;
      return Error{where, fmt::format("unknown or unsupported key '{}'; this section takes: {}", key, known)};
    }
    TL_RETURN_IF_ERROR(it->second(value, where));
  }
  return {};
}

}  // namespace

Status load_config(const std::string& path, ServerOptions& o) {
  std::ifstream in(path);
  if (!in) return Error{path, "cannot read the config file"};
  const json config = json::parse(in, nullptr, false);
  if (!config.is_object()) return Error{path, "the config must be a JSON object"};
  std::string address;  // the seed's server_ports.server_address: server.bind's other name
  std::string bind;
  int max_cores = 0;
  int max_ram_gb = 0;
  std::string auth_mode;
  bool auth_disabled = false;
  std::string github_url, gitlab_url;
  std::string access_token, private_token, github_clone_url, gitlab_clone_url;
  bool github_login_given = false, github_api_given = false, gitlab_given = false,
       gitlab_login_given = false, gitlab_api_given = false;
  const std::map<std::string, std::map<std::string, Setter>> sections = {
      {"server",
       {{"path_to_local_data", text(o.data_dir)},
        {"poll_seconds", number(o.poll_seconds)},
        {"default_target_runs", number(o.default_target_runs)},
        {"worker_timeout_seconds", number(o.worker_timeout_seconds)},
        {"max_run_hours", number(o.max_run_hours)},
        {"infra_backoff_seconds", number(o.infra_backoff_seconds)},
        {"max_log_mb", number(o.max_log_mb)},
        {"webhook_secret", text(o.webhook_secret)},
        {"extra_runs", number(o.extra_runs)},
        {"extra_confidence", number(o.extra_confidence)},
        {"public_url", text(o.public_url)},
        {"http_timeout_seconds", number(o.http_timeout_seconds)},
        {"max_connections_per_client", number(o.max_connections_per_client)},
        {"bind", text(bind)},
        {"tls_cert", text(o.tls_cert)},
        {"tls_key", text(o.tls_key)},
        {"insecure_no_auth", flag(o.insecure_no_auth)}}},
      {"server_ports", {{"server_address", text(address)}, {"server_port", number(o.port)}}},
      {"source_control",
       {{"path_to_repos", text(o.repos_dir)},
        // GitHub or GitLab as the source (docs/configuration.md "Git hosting").
        {"access_token", text(access_token)},
        {"private_token", text(private_token)},
        {"github_clone_url", text(github_clone_url)},
        {"gitlab_clone_url", text(gitlab_clone_url)},
        {"ssh_key", text(o.host.ssh_key)},
        {"poll_seconds", number(o.host.poll_seconds)},
        {"timeout_seconds", number(o.host.timeout_seconds)},
        {"webhook_secret", text(o.webhook_secret)},
        // Sign-in with GitHub or GitLab (the seed's keys; docs/configuration.md "Access").
        {"auth_disabled", boolean(auth_disabled)},
        {"oauth_key", text(o.oauth_key)},
        {"oauth_secret", text(o.oauth_secret)},
        {"github_url", text(github_url)},
        {"github_login_url", noting(text(o.github_login_url), github_login_given)},
        {"github_api_url", noting(text(o.github_api_url), github_api_given)},
        {"owner", text(o.owner)},
        {"gitlab_url", noting(text(gitlab_url), gitlab_given)},
        {"gitlab_login_url", noting(text(o.gitlab_login_url), gitlab_login_given)},
        {"gitlab_api_url", noting(text(o.gitlab_api_url), gitlab_api_given)},
        {"group", noting(text(o.group), gitlab_given)}}},
      {"auth",
       {{"mode", text(auth_mode)},
        {"public_read", boolean(o.public_read)},
        {"admins", texts(o.admins)},
        {"session_hours", number(o.session_hours)},
        {"provider", text(o.oauth_provider)},
        {"provider_timeout_seconds", number(o.oauth_timeout_seconds)}}},
      {"statuses", {{"enabled", boolean(o.post_statuses)}, {"fail_on", texts(o.status_fail_on)}}},
      {"artifacts", {{"path_to_local_artifact_storage", text(o.artifacts_dir)}}},
      {"machine_management",
       {{"max_workers", number(o.local_workers)},
        {"max_cores", number(max_cores)},
        {"max_ram_gb", number(max_ram_gb)}}}};
  // The statistics' settings may also stand at the top level.
  const std::map<std::string, Setter> top = {{"extra_runs", number(o.extra_runs)},
                                             {"extra_confidence", number(o.extra_confidence)}};
  for (const auto& [key, value] : config.items()) {
    if (auto t = top.find(key); t != top.end()) {
      auto s = t->second(value, key);
      if (!s.ok()) return Error{path, s.error().where + ": " + s.error().message};
      continue;
    }
    auto section = sections.find(key);
    if (section == sections.end()) {
      return Error{
          path,
          fmt::format("unknown or unsupported section '{}'; expected server, server_ports, "
                      "source_control, statuses, artifacts, machine_management, auth, extra_runs, "
                      "extra_confidence",
                      key)};
    }
    auto s = apply_section(value, key, section->second);
    if (!s.ok()) return Error{path, s.error().where + ": " + s.error().message};
  }
  if (!bind.empty() && !address.empty() && bind_address(bind) != bind_address(address)) {
    return Error{path, "server.bind and server_ports.server_address name different addresses"};
  }
  if (!bind.empty() || !address.empty()) o.bind = bind.empty() ? address : bind;
  if (bind_address(o.bind).empty()) {
    return Error{path, std::string(bind.empty() ? "server_ports.server_address" : "server.bind") +
                           ": '" + o.bind + "' is not an IP address"};
  }
  if (o.tls_cert.empty() != o.tls_key.empty())
    return Error{path, "server.tls_cert and server.tls_key: give both or neither"};
  if (!access_token.empty() && !private_token.empty()) {
    return Error{path,
                 "source_control: access_token (GitHub) and private_token (GitLab) are two "
                 "sources; give one"};
  }
  const bool hosted = !access_token.empty() || !private_token.empty();
  if (hosted && !o.repos_dir.empty()) {
    return Error{path,
                 "source_control: path_to_repos and a GitHub or GitLab token are two "
                 "sources; give one (the server keeps its own mirrors of hosted repos)"};
  }
  if (!hosted && o.repos_dir.empty()) {
    return Error{path,
                 "source_control: give path_to_repos, or access_token and owner (GitHub), "
                 "or private_token and group (GitLab)"};
  }
  if (!(o.host.poll_seconds > 0))
    return Error{path, "source_control.poll_seconds: must be positive"};
  if (!(o.host.timeout_seconds > 0))
    return Error{path, "source_control.timeout_seconds: must be positive"};
  for (const auto& verdict : o.status_fail_on) {
    if (verdict != "broken" && verdict != "flaky" && verdict != "flaky_rising") {
      return Error{path,
                   "statuses.fail_on: '" + verdict + "' is not one of broken, flaky, flaky_rising"};
    }
  }
  if (o.extra_runs < 0) return Error{path, "extra_runs: must not be negative"};
  if (!(o.max_run_hours > 0)) return Error{path, "server.max_run_hours: must be positive"};
  if (!(o.infra_backoff_seconds > 0))
    return Error{path, "server.infra_backoff_seconds: must be positive"};
  if (o.max_log_mb < 1 || o.max_log_mb > kMaxLogMb) {
    return Error{path, "server.max_log_mb: must be between 1 and " + std::to_string(kMaxLogMb)};
  }
  if (o.extra_confidence <= 0 || o.extra_confidence >= 1) {
    return Error{path, "extra_confidence: must be between 0 and 1 (exclusive)"};
  }
  if (auto e = public_url_error(o.public_url); !e.empty())
    return Error{path, "server.public_url: " + e};
  if (!(o.http_timeout_seconds > 0))
    return Error{path, "server.http_timeout_seconds: must be positive"};
  if (o.max_connections_per_client < 1)
    return Error{path, "server.max_connections_per_client: must be at least 1"};
  if (!auth_mode.empty()) {
    const auto mode = auth::parse_mode(auth_mode);
    if (!mode) return Error{path, "auth.mode: expected none, token or oauth"};
    o.auth_mode = *mode;
  }
  if (auth_disabled) {
    if (!auth_mode.empty() && o.auth_mode != auth::Mode::kNone) {
      return Error{path,
                   "source_control.auth_disabled: true contradicts auth.mode '" + auth_mode + "'"};
    }
    o.auth_mode = auth::Mode::kNone;
  }
  // github_url / gitlab_url (the seed's): the service's address, the login and API URLs under it.
  if (!github_url.empty()) {
    while (github_url.ends_with('/')) github_url.pop_back();
    if (!github_login_given) o.github_login_url = github_url;
    if (!github_api_given) {
      o.github_api_url =
          github_url == "https://github.com" ? "https://api.github.com" : github_url + "/api/v3";
    }
  }
  if (!gitlab_url.empty()) {
    while (gitlab_url.ends_with('/')) gitlab_url.pop_back();
    if (!gitlab_login_given) o.gitlab_login_url = gitlab_url;
    if (!gitlab_api_given) o.gitlab_api_url = gitlab_url + "/api/v4";
  }
  if (o.oauth_provider.empty()) {
    o.oauth_provider =
        gitlab_given || gitlab_login_given || gitlab_api_given || !private_token.empty() ? "gitlab"
                                                                                         : "github";
  }
  if (auto e = sign_in_error(o); !e.empty()) return Error{path, e};
  if (!access_token.empty()) {
    if (o.owner.empty())
      return Error{path, "source_control.access_token needs owner (whose repositories)"};
    o.host.kind = hosting::Kind::kGitHub;
    o.host.token = access_token;
    o.host.owner = o.owner;
    o.host.web_url = github_url.empty() ? "https://github.com" : github_url;
    o.host.api_url = o.github_api_url;
    o.host.clone_url = github_clone_url;
  } else if (!private_token.empty()) {
    if (o.group.empty())
      return Error{path, "source_control.private_token needs group (whose repositories)"};
    o.host.kind = hosting::Kind::kGitLab;
    o.host.token = private_token;
    o.host.owner = o.group;
    o.host.web_url = gitlab_url.empty() ? "https://gitlab.com" : gitlab_url;
    o.host.api_url = o.gitlab_api_url;
    o.host.clone_url = gitlab_clone_url;
  }
  while (o.host.clone_url.ends_with('/')) o.host.clone_url.pop_back();
  const int workers = std::max(1, o.local_workers);
  if (max_cores > 0) o.worker_cores = std::max(1, max_cores / workers);
  if (max_ram_gb > 0) o.worker_ram_gb = std::max(1, max_ram_gb / workers);
  return {};
}

void take_sign_in_options(const ServerOptions& from, ServerOptions& to) {
  to.auth_mode = from.auth_mode;
  to.admins = from.admins;
  to.session_hours = from.session_hours;
  to.oauth_provider = from.oauth_provider;
  to.oauth_key = from.oauth_key;
  to.oauth_secret = from.oauth_secret;
  to.github_login_url = from.github_login_url;
  to.github_api_url = from.github_api_url;
  to.owner = from.owner;
  to.gitlab_login_url = from.gitlab_login_url;
  to.gitlab_api_url = from.gitlab_api_url;
  to.group = from.group;
  to.oauth_timeout_seconds = from.oauth_timeout_seconds;
}

}  // namespace testlooper::server
