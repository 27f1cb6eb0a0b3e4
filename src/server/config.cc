#include "server/config.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "server/config_keys.h"
#include "server/http.h"

namespace testlooper::server {
namespace {

using config_keys::apply_section;
using config_keys::boolean;
using config_keys::ignored;
using config_keys::noting;
using config_keys::number;
using config_keys::object;
using config_keys::Setter;
using config_keys::text;
using config_keys::texts;
using nlohmann::json;

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

// What the original's keys (its Config.py) set that the seed's did not.
struct OriginalKeys {
  int port, https_port;   // server_ports.server_port, .server_https_port; -1 = not given
  std::string cert, key;  // server.path_to_certs
  std::string ssh_key;    // server.path_to_keys
  bool ssh_key_given;     // source_control.ssh_key was given (it wins)
  std::string store, build_store, test_store;  // artifacts' local paths
  bool aws;                                    // machine_management's Aws form
  int max_workers, max_cores, max_ram_gb;
  bool max_workers_given, max_cores_given, max_ram_given;
};

// machine_management.instance_types: [[{"cores": 4, "ram_gb": 16}, "m5.xlarge"], ...].
Setter instance_types(std::vector<fleet::InstanceType>& field) {
  return [&field](const json& v, const std::string& where) -> Status {
    const std::string expected = R"(expected [[{"cores": N, "ram_gb": N}, "type"], ...])";
    if (!v.is_array() || v.empty()) return Error{where, expected};
    std::vector<fleet::InstanceType> out;
    for (size_t i = 0; i < v.size(); ++i) {
      const std::string at = fmt::format("{}[{}]", where, i);
      const json& e = v[i];
      if (!e.is_array() || e.size() != 2 || !e[0].is_object() || !e[1].is_string())
        return Error{at, expected};
      fleet::InstanceType type;
      TL_RETURN_IF_ERROR(apply_section(
          e[0], at, {{"cores", number(type.cores)}, {"ram_gb", number(type.ram_gb)}}));
      type.name = e[1].get<std::string>();
      const bool name_ok =
          !type.name.empty() && type.name.size() <= 64 &&
          std::all_of(type.name.begin(), type.name.end(), [](char c) {
            return isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
          });
      if (!name_ok) return Error{at, "'" + type.name + "' is not an instance type name"};
      if (type.cores < 1 || type.ram_gb < 0)
        return Error{at, "cores must be at least 1 and ram_gb not negative"};
      out.push_back(type);
    }
    field = std::move(out);
    return {};
  };
}

// machine_management.host_ips: {"host name": "IP address", ...}, appended to /etc/hosts. A value
// that is not an IP address (the original's examples hold "...") is warned about and left out.
Setter host_ips(std::map<std::string, std::string>& field, std::vector<std::string>& warnings) {
  return [&field, &warnings](const json& v, const std::string& where) -> Status {
    if (!v.is_object()) return Error{where, R"(expected {"host name": "IP address", ...})"};
    std::map<std::string, std::string> out;
    for (const auto& [name, ip] : v.items()) {
      const std::string at = where + "." + name;
      const bool name_ok =
          !name.empty() && name.size() <= 253 && std::all_of(name.begin(), name.end(), [](char c) {
            return isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-';
          });
      if (!name_ok) return Error{at, "not a host name"};
      if (!ip.is_string()) return Error{at, "expected an IP address"};
      if (bind_address(ip.get<std::string>()).empty()) {
        warnings.push_back(at + " is ignored: '" + ip.get<std::string>() +
                           "' is not an IP address");
        continue;
      }
      out[name] = ip.get<std::string>();
    }
    field = std::move(out);
    return {};
  };
}

// notify: [{"url": "https://...", "secret": "..."}, ...] (docs/configuration.md "Notifications").
Setter notify_targets(std::vector<NotifyTarget>& field) {
  return [&field](const json& v, const std::string& where) -> Status {
    const std::string expected = R"(expected [{"url": "https://...", "secret": "..."}, ...])";
    if (!v.is_array() || v.size() > kMaxNotifyTargets) {
      return Error{where, fmt::format("{} (at most {})", expected, kMaxNotifyTargets)};
    }
    std::vector<NotifyTarget> out;
    for (size_t i = 0; i < v.size(); ++i) {
      const std::string at = fmt::format("{}[{}]", where, i);
      if (!v[i].is_object()) return Error{at, expected};
      NotifyTarget target;
      TL_RETURN_IF_ERROR(
          apply_section(v[i], at, {{"url", text(target.url)}, {"secret", text(target.secret)}}));
      if (auto e = notify_url_error(target.url); !e.empty()) return Error{at + ".url", e};
      if (target.secret.empty() || target.secret.size() > 1024)
        return Error{at + ".secret", "required: 1 to 1,024 bytes (the HMAC key)"};
      out.push_back(std::move(target));
    }
    field = std::move(out);
    return {};
  };
}

// The fleet's settings that are wrong when the Aws form is given.
Status check_fleet(const std::string& path, const fleet::FleetOptions& f) {
  if (!f.enabled) return {};
  const std::string m = "machine_management.";
  if (f.worker_name.empty())
    return Error{path, m + "worker_name: required (every instance is tagged with it)"};
  if (f.instance_types.empty()) return Error{path, m + "instance_types: required"};
  if (f.linux_ami.empty() && f.windows_ami.empty())
    return Error{path, m + "linux_ami or windows_ami: give at least one"};
  if (f.region.empty()) return Error{path, m + "region: must not be empty"};
  for (const auto& [key, url] :
       {std::pair{"endpoint_url", &f.endpoint_url}, {"server_url", &f.server_url}}) {
    if (!url->empty() && !url->starts_with("http://") && !url->starts_with("https://"))
      return Error{path, m + key + ": must be an http:// or https:// URL"};
  }
  for (const auto& [key, value] : {std::pair{"max_workers", f.max_workers},
                                   {"max_cores", f.max_cores},
                                   {"max_ram_gb", f.max_ram_gb}}) {
    if (value < -1) return Error{path, m + key + ": -1 (no limit) or more"};
  }
  if (!(f.idle_shutdown_seconds > 0))
    return Error{path, m + "idle_shutdown_seconds: must be positive"};
  if (!(f.boot_timeout_seconds > 0))
    return Error{path, m + "boot_timeout_seconds: must be positive"};
  return {};
}

// The artifacts' S3 form: key_prefix, or the original's build/test prefixes (one store: the
// build prefix wins, a different test prefix is warned about).
Status take_s3_keys(const std::string& path, const std::string& build_prefix,
                    const std::string& test_prefix, std::vector<std::string>& warnings,
                    fleet::S3Options& s3) {
  if (s3.key_prefix.empty()) s3.key_prefix = !build_prefix.empty() ? build_prefix : test_prefix;
  if (!test_prefix.empty() && test_prefix != s3.key_prefix) {
    warnings.push_back(
        "artifacts.test_artifact_key_prefix is ignored: builds and run records "
        "share one prefix, '" +
        s3.key_prefix + "'");
  }
  if (!s3.key_prefix.empty() && !s3.key_prefix.ends_with('/')) s3.key_prefix += '/';
  s3.enabled = !s3.bucket.empty();
  if (!s3.enabled && (!s3.key_prefix.empty() || !s3.endpoint_url.empty()))
    return Error{path, "artifacts: key_prefix and endpoint_url need a bucket"};
  if (!s3.endpoint_url.empty() && !s3.endpoint_url.starts_with("http://") &&
      !s3.endpoint_url.starts_with("https://"))
    return Error{path, "artifacts.endpoint_url: must be an http:// or https:// URL"};
  if (s3.enabled && s3.region.empty()) return Error{path, "artifacts.region: must not be empty"};
  return {};
}

// Maps `k` onto `o`; `address` (server_ports.server_address) becomes public_url's host when it is
// a host name rather than an address to listen on.
Status take_original_keys(const std::string& path, const OriginalKeys& k, std::string& address,
                          std::vector<std::string>& warnings, ServerOptions& o) {
  for (const auto& [value, key] :
       {std::pair{k.port, "server_port"}, {k.https_port, "server_https_port"}}) {
    if (value < -1 || value > 65535)
      return Error{path, std::string("server_ports.") + key + ": expected a port, 0 to 65535"};
  }
  if (k.port >= 0 && k.https_port >= 0 && k.port != k.https_port) {
    return Error{path, "server_ports.server_port and server_ports.server_https_port differ"};
  }
  if (k.port >= 0 || k.https_port >= 0) o.port = std::max(k.port, k.https_port);
  if (!k.cert.empty() || !k.key.empty()) {
    if ((!o.tls_cert.empty() && o.tls_cert != k.cert) || (!o.tls_key.empty() && o.tls_key != k.key))
      return Error{path, "server.path_to_certs and server.tls_cert/tls_key name different files"};
    o.tls_cert = k.cert;
    o.tls_key = k.key;
  }
  if (!k.ssh_key_given && !k.ssh_key.empty()) o.host.ssh_key = k.ssh_key;
  // One local store: the seed's key, else the original's build (then test) artifacts path.
  for (const std::string* given : {&k.build_store, &k.test_store}) {
    if (given->empty()) continue;
    if (o.artifacts_dir.empty() && k.store.empty()) {
      o.artifacts_dir = *given;
    } else if (*given != (k.store.empty() ? o.artifacts_dir : k.store)) {
      warnings.push_back(
          std::string("artifacts.") +
          (given == &k.build_store ? "path_to_build_artifacts" : "path_to_test_artifacts") +
          " is ignored: build and test artifacts share one store, " +
          (k.store.empty() ? o.artifacts_dir : k.store));
    }
  }
  if (!k.store.empty()) o.artifacts_dir = k.store;
  if (k.aws) {
    // The Aws form: the limits are the fleet's; the server starts no workers of its own.
    o.fleet.enabled = true;
    o.fleet.max_workers = k.max_workers_given ? k.max_workers : -1;
    o.fleet.max_cores = k.max_cores_given ? k.max_cores : -1;
    o.fleet.max_ram_gb = k.max_ram_given ? k.max_ram_gb : -1;
    o.local_workers = 0;
  } else if (k.max_workers_given) {
    if (k.max_workers < -1) return Error{path, "machine_management.max_workers: -1 or more"};
    // -1: no limit in the original; here one local worker per core.
    o.local_workers = k.max_workers == -1
                          ? static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))
                          : k.max_workers;
  }
  // A host name (the original's "$HOSTNAME"): the name the server is reached at.
  if (!address.empty() && bind_address(address).empty()) {
    if (o.public_url.empty()) {
      const bool tls = !o.tls_cert.empty();
      const bool default_port = o.port == 0 || o.port == (tls ? 443 : 80);
      o.public_url = (tls ? "https://" : "http://") + address +
                     (default_port ? "" : ":" + std::to_string(o.port));
    }
    address.clear();
  }
  return {};
}

}  // namespace

Status load_config(const std::string& path, ServerOptions& o,
                   std::vector<std::string>* warnings_out) {
  std::ifstream in(path);
  if (!in) return Error{path, "cannot read the config file"};
  const json config = json::parse(in, nullptr, false);
  if (!config.is_object()) return Error{path, "the config must be a JSON object"};
  std::string address;  // the seed's server_ports.server_address: server.bind's other name
  std::string bind;
  int max_workers = 0, max_cores = 0, max_ram_gb = 0;
  bool max_workers_given = false, max_cores_given = false, max_ram_given = false;
  // The original's keys (its Config.py) besides the seed's: see docs/configuration.md
  // "The original TestLooper's config.json".
  std::vector<std::string> warnings;  // "<key> is ignored: <why>", one per key
  int port = -1, https_port = -1;     // server_ports.server_port, .server_https_port
  std::string cert_path, key_path;    // server.path_to_certs
  std::string server_keys;            // server.path_to_keys: the source's ssh key
  bool ssh_key_given = false;
  std::string store, build_store, test_store;  // artifacts: the one local store
  bool aws = false;                            // machine_management's Aws form
  const std::string kNoRedis = "TestLooper keeps its state in SQLite (<data>/state.db), not Redis";
  std::string build_prefix, test_prefix;  // the original's S3 key prefixes
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
        {"deployment_idle_seconds", number(o.deployment_idle_seconds)},
        {"deployment_max_hours", number(o.deployment_max_hours)},
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
        {"insecure_no_auth", boolean(o.insecure_no_auth)},
        {"path_to_certs",
         object({{"cert", text(cert_path)}, {"key", text(key_path)}, {"chain", text(o.tls_chain)}},
                /*nullable=*/true)},
        {"path_to_keys", text(server_keys)},
        {"path_to_local_repos",
         ignored("the server keeps its mirrors of GitHub or GitLab repos under <data>/repos",
                 warnings)},
        {"database", ignored(kNoRedis, warnings)},
        {"redis_port", ignored(kNoRedis, warnings)}}},
      {"server_ports",
       {{"server_address", text(address)},
        {"server_port", number(port)},
        {"server_https_port", number(https_port)},
        {"server_worker_port",
         ignored("workers connect on the server's one port (server_https_port)", warnings)},
        {"server_worker_port_use_ssl",
         ignored("workers use TLS exactly when the server does (path_to_certs)", warnings)},
        {"redis_port", ignored(kNoRedis, warnings)}}},
      {"source_control",
       {{"path_to_repos", text(o.repos_dir)},
        // GitHub or GitLab as the source (docs/configuration.md "Git hosting").
        {"access_token", text(access_token)},
        {"private_token", text(private_token)},
        {"github_clone_url", text(github_clone_url)},
        {"gitlab_clone_url", text(gitlab_clone_url)},
        {"ssh_key", noting(text(o.host.ssh_key), ssh_key_given)},
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
      {"artifacts",
       {{"path_to_local_artifact_storage", text(store)},
        {"path_to_build_artifacts", text(build_store)},
        {"path_to_test_artifacts", text(test_store)},
        // The S3 form (docs/configuration.md "Artifacts in S3").
        {"bucket", text(o.s3.bucket)},
        {"region", text(o.s3.region)},
        {"key_prefix", text(o.s3.key_prefix)},
        {"endpoint_url", text(o.s3.endpoint_url)},
        {"build_artifact_key_prefix", text(build_prefix)},
        {"test_artifact_key_prefix", text(test_prefix)}}},
      {"machine_management",
       {{"max_workers", noting(number(max_workers), max_workers_given)},
        {"max_cores", noting(number(max_cores), max_cores_given)},
        {"max_ram_gb", noting(number(max_ram_gb), max_ram_given)},
        {"local_storage_path", ignored("local workers work under <data>/workers", warnings)},
        {"docker_scope",
         ignored("image names are not scoped (each commit's images are built by hash)", warnings)},
        // The fleet's Aws form (docs/configuration.md "The fleet"): any of these makes it so.
        {"region", noting(text(o.fleet.region), aws)},
        {"endpoint_url", noting(text(o.fleet.endpoint_url), aws)},
        {"vpc_id", noting(text(o.fleet.vpc_id), aws)},
        {"subnet", noting(text(o.fleet.subnet), aws)},
        {"security_group", noting(text(o.fleet.security_group), aws)},
        {"keypair", noting(text(o.fleet.keypair), aws)},
        {"bootstrap_bucket", noting(text(o.fleet.bootstrap_bucket), aws)},
        {"bootstrap_key_prefix", noting(text(o.fleet.bootstrap_key_prefix), aws)},
        {"worker_name", noting(text(o.fleet.worker_name), aws)},
        {"worker_iam_role_name", noting(text(o.fleet.worker_iam_role_name), aws)},
        {"linux_ami", noting(text(o.fleet.linux_ami), aws)},
        {"windows_ami", noting(text(o.fleet.windows_ami), aws)},
        {"path_to_keys", noting(text(o.fleet.path_to_keys), aws)},
        {"instance_types", noting(instance_types(o.fleet.instance_types), aws)},
        {"host_ips", noting(host_ips(o.fleet.host_ips, warnings), aws)},
        {"idle_shutdown_seconds", noting(number(o.fleet.idle_shutdown_seconds), aws)},
        {"boot_timeout_seconds", noting(number(o.fleet.boot_timeout_seconds), aws)},
        {"server_url", noting(text(o.fleet.server_url), aws)}}}};
  // The statistics' settings may also stand at the top level.
  // The original's deploy config has an http_server section its Config.py never read.
  const std::map<std::string, Setter> top = {
      {"extra_runs", number(o.extra_runs)},
      {"extra_confidence", number(o.extra_confidence)},
      {"notify", notify_targets(o.notify)},
      {"http_server", ignored("the original TestLooper never read it either", warnings)}};
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
                      "extra_confidence, notify, http_server",
                      key)};
    }
    auto s = apply_section(value, key, section->second);
    if (!s.ok()) return Error{path, s.error().where + ": " + s.error().message};
  }
  TL_RETURN_IF_ERROR(take_original_keys(path,
                                        OriginalKeys{.port = port,
                                                     .https_port = https_port,
                                                     .cert = cert_path,
                                                     .key = key_path,
                                                     .ssh_key = server_keys,
                                                     .ssh_key_given = ssh_key_given,
                                                     .store = store,
                                                     .build_store = build_store,
                                                     .test_store = test_store,
                                                     .aws = aws,
                                                     .max_workers = max_workers,
                                                     .max_cores = max_cores,
                                                     .max_ram_gb = max_ram_gb,
                                                     .max_workers_given = max_workers_given,
                                                     .max_cores_given = max_cores_given,
                                                     .max_ram_given = max_ram_given},
                                        address, warnings, o));
  TL_RETURN_IF_ERROR(check_fleet(path, o.fleet));
  TL_RETURN_IF_ERROR(take_s3_keys(path, build_prefix, test_prefix, warnings, o.s3));
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
  if (!o.tls_chain.empty() && o.tls_cert.empty())
    return Error{path, "server.path_to_certs.chain needs the certificate and key (cert, key)"};
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
  if (!(o.deployment_idle_seconds > 0))
    return Error{path, "server.deployment_idle_seconds: must be positive"};
  if (!(o.deployment_max_hours > 0))
    return Error{path, "server.deployment_max_hours: must be positive"};
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
  if (gitlab_api_given && o.gitlab_api_url.ends_with("/api/v3")) {  // the original's example
    o.gitlab_api_url.back() = '4';
    warnings.push_back("source_control.gitlab_api_url: GitLab removed its API v3; using " +
                       o.gitlab_api_url);
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
  if (o.host.kind == hosting::Kind::kLocal && !server_keys.empty())
    warnings.push_back(
        "server.path_to_keys is ignored: only a GitHub or GitLab source fetches "
        "with an ssh key");
  for (auto& w : warnings) w = path + ": " + w;
  if (warnings_out != nullptr) *warnings_out = std::move(warnings);
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
