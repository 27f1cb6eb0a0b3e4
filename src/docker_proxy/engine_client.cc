// Calls to the Docker Engine API over its unix socket: ownership lookups and the run's removal.
#include "docker_proxy/engine_client.h"

#include <limits.h>
#include <stdlib.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/url.h"
#include "docker_proxy/bodies.h"
#include "docker_proxy/docker_proxy.h"

namespace testlooper::docker_proxy {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using nlohmann::json;
using Socket = asio::local::stream_protocol::socket;

json parse(const std::string& body) { return json::parse(body, nullptr, false); }

// labels[kScopeLabel] == run id, for the object `object` whose labels sit at `labels`.
bool carries_scope(const json& labels, const std::string& run_id) {
  if (!labels.is_object()) return false;
  const auto label = labels.find(kScopeLabel);
  return label != labels.end() && label->is_string() && *label == run_id;
}

std::string string_at(const json& object, const char* key) {
  if (!object.is_object()) return "";
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string scope_filter(const std::string& run_id) {
  json filters = {{"label", json::array({std::string(kScopeLabel) + "=" + run_id})}};
  return "filters=" + url_segment(filters.dump());
}

// The objects a list answer holds (containers/networks: an array; volumes: {"Volumes": [...]}).
json listed(const std::string& engine_socket, const std::string& target, const char* key) {
  Result<EngineAnswer> answer = call_engine(engine_socket, "GET", target);
  if (!answer.ok() || answer->status != 200) return json::array();
  json list = parse(answer->body);
  if (key && list.is_object()) list = list.value(key, json::array());
  return list.is_array() ? list : json::array();
}

}  // namespace

Result<EngineAnswer> call_engine(const std::string& engine_socket, const std::string& method,
                                 const std::string& target, const std::string& body) {
  try {
    asio::io_context context;
    Socket socket(context);
    socket.connect(asio::local::stream_protocol::endpoint(engine_socket));
    http::request<http::string_body> request(http::string_to_verb(method), target, 11);
    request.set(http::field::host, "docker");
    request.set(http::field::connection, "close");
    if (!body.empty()) request.set(http::field::content_type, "application/json");
    request.body() = body;
    request.prepare_payload();
    http::write(socket, request);
    boost::beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxListAnswer);
    http::read(socket, buffer, parser);
    return EngineAnswer{static_cast<int>(parser.get().result_int()), parser.get().body()};
  } catch (const std::exception& error) {
    return Error{"docker engine " + engine_socket, error.what()};
  }
}

std::optional<Owned> EngineLookups::find_one(Kind kind, const std::string& ref) {
  static const std::map<Kind, std::pair<std::string, std::string>> kPaths = {
      {Kind::kContainer, {"/containers/", "/json"}},
      {Kind::kNetwork, {"/networks/", ""}},
      {Kind::kVolume, {"/volumes/", ""}},
      {Kind::kExec, {"/exec/", "/json"}}};
  const auto& [before, after] = kPaths.at(kind);
  Result<EngineAnswer> answer = call_engine(engine_socket_, "GET", before + ref + after);
  if (!answer.ok() || answer->status != 200) return std::nullopt;
  const json object = parse(answer->body);
  if (!object.is_object()) return std::nullopt;
  switch (kind) {
    case Kind::kContainer: {
      const json config = object.value("Config", json::object());
      if (!config.is_object() || !carries_scope(config.value("Labels", json()), scope_.run_id)) {
        return std::nullopt;
      }
      return Owned{string_at(object, "Id"), string_at(object, "Name")};
    }
    case Kind::kNetwork:
      if (!carries_scope(object.value("Labels", json()), scope_.run_id)) return std::nullopt;
      return Owned{string_at(object, "Id"), string_at(object, "Name")};
    case Kind::kVolume:
      if (!carries_scope(object.value("Labels", json()), scope_.run_id)) return std::nullopt;
      return Owned{string_at(object, "Name"), string_at(object, "Name")};
    case Kind::kExec: {
      const std::string container = string_at(object, "ContainerID");
      if (!valid_name(container) || !find_one(Kind::kContainer, container)) return std::nullopt;
      return Owned{string_at(object, "ID"), ""};
    }
  }
  return std::nullopt;
}

std::optional<Owned> EngineLookups::find_owned(Kind kind, const std::string& ref) {
  if (!valid_name(ref)) return std::nullopt;
  if (kind != Kind::kExec) {
    // A name the test gave is stored with the prefix; ids and prefixed names are tried as is.
    const std::optional<std::string> name = scoped_name(scope_, ref);
    if (name && *name != ref) {
      if (std::optional<Owned> owned = find_one(kind, *name)) return owned;
    }
  }
  std::optional<Owned> owned = find_one(kind, ref);
  if (owned && (owned->id.empty() || !valid_name(owned->id))) return std::nullopt;
  return owned;
}

Status EngineLookups::ensure_volume(const std::string& name) {
  Result<EngineAnswer> answer = call_engine(engine_socket_, "GET", "/volumes/" + name);
  if (!answer.ok()) return answer.error();
  if (answer->status == 200) {
    if (carries_scope(parse(answer->body).value("Labels", json()), scope_.run_id)) return {};
    return Error{"", "a volume of that name exists and is not this run's"};
  }
  json create = {{"Name", name}, {"Labels", scope_labels(scope_)}};
  answer = call_engine(engine_socket_, "POST", "/volumes/create", create.dump());
  if (!answer.ok()) return answer.error();
  if (answer->status != 201 && answer->status != 200) {
    return Error{"", "the engine could not create it (" + std::to_string(answer->status) + ")"};
  }
  return {};
}

std::optional<std::string> EngineLookups::real_path(const std::string& path) {
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) return std::nullopt;
  return std::string(resolved);
}

std::optional<std::vector<std::string>> EngineLookups::bind_sources(const std::string& id) {
  Result<EngineAnswer> answer = call_engine(engine_socket_, "GET", "/containers/" + id + "/json");
  if (!answer.ok() || answer->status != 200) return std::nullopt;
  const json container = parse(answer->body);
  if (!container.is_object()) return std::nullopt;
  const json mounts = container.value("Mounts", json::array());
  if (!mounts.is_array()) return std::nullopt;
  std::vector<std::string> sources;
  for (const json& mount : mounts) {
    if (string_at(mount, "Type") == "bind") sources.push_back(string_at(mount, "Source"));
  }
  return sources;
}

std::string engine_socket_from_environment() {
  const char* host = ::getenv("DOCKER_HOST");
  if (host == nullptr || *host == '\0') return "/var/run/docker.sock";
  const std::string value = host;
  if (value.rfind("unix://", 0) == 0) return value.substr(7);
  return "";
}

Status remove_scope(const std::string& engine_socket, const std::string& run_id) {
  const std::string filter = scope_filter(run_id);
  std::string failed;
  auto remove = [&](const std::string& target) {
    Result<EngineAnswer> answer = call_engine(engine_socket, "DELETE", target);
    if (!answer.ok()) {
      failed += " " + target + " (" + answer.error().message + ")";
    } else if (answer->status >= 300 && answer->status != 404) {
      failed += " " + target + " (" + std::to_string(answer->status) + ")";
    }
  };
  // Containers first (they hold networks and volumes); one being auto-removed may take a moment.
  for (int round = 0; round < 100; ++round) {
    const json containers = listed(engine_socket, "/containers/json?all=1&" + filter, nullptr);
    failed.clear();  // only the last round's failures count: removals in progress finish
    if (containers.empty()) break;
    if (round > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (const json& container : containers) {
      const std::string id = string_at(container, "Id");
      if (valid_name(id)) remove("/containers/" + id + "?force=1&v=1");
    }
  }
  for (const json& network : listed(engine_socket, "/networks?" + filter, nullptr)) {
    const std::string id = string_at(network, "Id");
    if (valid_name(id)) remove("/networks/" + id);
  }
  for (const json& volume : listed(engine_socket, "/volumes?" + filter, "Volumes")) {
    const std::string name = string_at(volume, "Name");
    if (valid_name(name)) remove("/volumes/" + name);
  }
  if (!failed.empty()) return Error{"scoped docker of " + run_id, "could not remove" + failed};
  return {};
}

}  // namespace testlooper::docker_proxy
