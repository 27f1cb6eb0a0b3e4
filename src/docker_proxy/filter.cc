// The scoped docker's routes: which endpoints pass, with which objects, rewritten how.
#include "docker_proxy/filter.h"

#include <nlohmann/json.hpp>

#include "core/url.h"
#include "docker_proxy/bodies.h"

namespace testlooper::docker_proxy {
namespace {

using nlohmann::json;

// A request target, split and validated.
struct Target {
  std::string version;                                     // "/v1.43" or ""
  std::vector<std::string> segments;                       // of the path after the version
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
};

bool path_char(char c) {
  return isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' || c == ':' ||
         c == '@' || c == '+' || c == '/';
}

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] != '%') {
      out += text[i];
    } else {
      if (i + 2 >= text.size()) return std::nullopt;
      if (!isxdigit(static_cast<unsigned char>(text[i + 1])) ||
          !isxdigit(static_cast<unsigned char>(text[i + 2]))) {
        return std::nullopt;
      }
      out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    }
  }
  return out;
}

// Paths are plain: no escapes, no empty, "." or ".." segments (the engine's router must read
// them as we do); the version prefix is "/v<digits>.<digits>".
std::optional<Target> parse_target(const std::string& raw) {
  Target target;
  const size_t question = raw.find('?');
  const std::string path = raw.substr(0, question);
  if (path.empty() || path[0] != '/' || path.size() > 1024) return std::nullopt;
  for (const char c : path) {
    if (!path_char(c)) return std::nullopt;
  }
  size_t start = 1;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    std::string segment = path.substr(start, slash - start);
    if (segment.empty() || segment == "." || segment == "..") return std::nullopt;
    target.segments.push_back(std::move(segment));
    start = slash + 1;
  }
  const std::string& first = target.segments.front();
  if (first.size() > 1 && first[0] == 'v' && isdigit(static_cast<unsigned char>(first[1]))) {
    const size_t dot = first.find('.');
    if (dot == std::string::npos || dot + 1 == first.size() ||
        first.find_first_not_of("0123456789", 1) != dot ||
        first.find_first_not_of("0123456789", dot + 1) != std::string::npos) {
      return std::nullopt;
    }
    target.version = "/" + first;
    target.segments.erase(target.segments.begin());
    if (target.segments.empty()) return std::nullopt;
  }
  if (question == std::string::npos) return target;
  std::string_view query = std::string_view(raw).substr(question + 1);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t equals = pair.find('=');
    std::optional<std::string> key = percent_decode(pair.substr(0, equals));
    std::optional<std::string> value = percent_decode(
        equals == std::string_view::npos ? std::string_view() : pair.substr(equals + 1));
    if (!key || !value || key->empty()) return std::nullopt;
    for (const auto& [seen, unused] : target.query) {
      if (seen == *key) return std::nullopt;  // the engine reads the first; we refuse ambiguity
    }
    target.query.emplace_back(std::move(*key), std::move(*value));
  }
  return target;
}

std::string render(const Target& target, const std::vector<std::string>& segments) {
  std::string out = target.version;
  for (const std::string& segment : segments) out += "/" + segment;
  char separator = '?';
  for (const auto& [key, value] : target.query) {
    out += separator + url_segment(key) + "=" + url_segment(value);
    separator = '&';
  }
  return out;
}

Plan refuse(int status, std::string message) {
  Plan plan;
  plan.status = status;
  plan.error = std::move(message);
  return plan;
}

Plan forward(const Request& request, std::string target,
             Plan::Action action = Plan::Action::kForward) {
  Plan plan;
  plan.action = action;
  plan.target = std::move(target);
  plan.body = request.body;
  return plan;
}

const char* kind_noun(Kind kind) {
  switch (kind) {
    case Kind::kContainer:
      return "container";
    case Kind::kNetwork:
      return "network";
    case Kind::kVolume:
      return "volume";
    case Kind::kExec:
      return "exec instance";
  }
  return "object";
}

void set_query(Target& target, const std::string& key, const std::string& value) {
  for (auto& [k, v] : target.query) {
    if (k == key) {
      v = value;
      return;
    }
  }
  target.query.emplace_back(key, value);
}

std::optional<std::string> query_value(const Target& target, const std::string& key) {
  for (const auto& [k, v] : target.query) {
    if (k == key) return v;
  }
  return std::nullopt;
}

// Routes of one object: /containers/{ref}/..., /networks/{ref}/..., /exec/{id}/...,
// /volumes/{name}. The object must be the scope's; the path then names it by id.
Plan object_route(const Scope& scope, const Request& request, Target& target, Kind kind,
                  Engine& engine) {
  const std::vector<std::string>& s = target.segments;
  const std::string& method = request.method;
  const std::string action = s.size() > 2 ? s[2] : "";
  if (s.size() > 3) return refuse(403, "not allowed through the scoped docker");
  static const std::vector<std::string> kContainerGet = {"json", "logs", "top", "stats", "changes"};
  static const std::vector<std::string> kContainerPost = {
      "start", "stop", "kill", "wait", "restart", "pause", "unpause", "resize", "attach", "exec"};
  auto in = [](const std::vector<std::string>& list, const std::string& what) {
    return std::find(list.begin(), list.end(), what) != list.end();
  };
  bool allowed = false;
  switch (kind) {
    case Kind::kContainer:
      allowed = (method == "GET" && in(kContainerGet, action)) ||
                (method == "POST" && in(kContainerPost, action)) ||
                (method == "DELETE" && action.empty());
      break;
    case Kind::kNetwork:
      allowed = (method == "GET" && action.empty()) || (method == "DELETE" && action.empty()) ||
                (method == "POST" && (action == "connect" || action == "disconnect"));
      break;
    case Kind::kVolume:
      allowed = (method == "GET" || method == "DELETE") && action.empty();
      break;
    case Kind::kExec:
      allowed = (method == "GET" && action == "json") ||
                (method == "POST" && (action == "start" || action == "resize"));
      break;
  }
  if (!allowed)
    return refuse(403, "not allowed through the scoped docker: " + method + " " +
                           (s[0] + (action.empty() ? "/{id}" : "/{id}/" + action)));
  const std::optional<Owned> owned = engine.find_owned(kind, s[1]);
  if (!owned) return refuse(404, std::string("No such ") + kind_noun(kind) + ": " + s[1]);
  if (kind == Kind::kContainer && (action == "start" || action == "restart")) {
    const std::optional<std::vector<std::string>> sources = engine.bind_sources(owned->id);
    if (!sources) return refuse(404, std::string("No such container: ") + s[1]);
    for (const std::string& source : *sources) {
      if (!bind_source_allowed(scope, source, engine)) {
        return refuse(403, "bind mount of '" + source +
                               "' refused: it no longer leads inside the run's directories");
      }
    }
  }
  std::vector<std::string> segments = s;
  segments[1] = owned->id;
  std::string body = request.body;
  if (kind == Kind::kContainer && action == "exec") {
    Result<std::string> rewritten = rewrite_exec_create(request.body);
    if (!rewritten.ok()) return refuse(403, rewritten.error().message);
    body = *rewritten;
  }
  if (kind == Kind::kNetwork && !action.empty()) {
    Result<std::string> rewritten = rewrite_network_connect(request.body, engine);
    if (!rewritten.ok()) return refuse(403, rewritten.error().message);
    body = *rewritten;
  }
  if (kind == Kind::kContainer && method == "DELETE") set_query(target, "v", "1");
  const bool hijack = (kind == Kind::kContainer && action == "attach") ||
                      (kind == Kind::kExec && action == "start");
  Plan plan = forward(request, render(target, segments),
                      hijack ? Plan::Action::kHijack : Plan::Action::kForward);
  plan.body = std::move(body);
  return plan;
}

Plan create_route(const Scope& scope, const Request& request, Target& target, Kind kind,
                  Engine& engine) {
  Result<std::string> body = Error{"", ""};
  switch (kind) {
    case Kind::kContainer: {
      const std::optional<std::string> name = query_value(target, "name");
      if (name && !name->empty()) {
        const std::optional<std::string> prefixed = scoped_name(scope, *name);
        if (!prefixed) return refuse(400, "invalid container name: " + *name);
        set_query(target, "name", *prefixed);
      }
      for (const auto& [key, value] : target.query) {
        if (key != "name" && key != "platform") {
          return refuse(400, "unknown parameter of containers/create: " + key);
        }
      }
      body = rewrite_container_create(scope, request.body, engine);
      break;
    }
    case Kind::kNetwork:
      body = rewrite_network_create(scope, request.body);
      break;
    case Kind::kVolume:
      body = rewrite_volume_create(scope, request.body);
      break;
    case Kind::kExec:
      break;
  }
  if (!body.ok()) return refuse(403, body.error().message);
  Plan plan = forward(request, render(target, target.segments));
  plan.body = std::move(*body);
  plan.creates = true;
  return plan;
}

}  // namespace

std::string Scope::name_prefix() const {
  std::string prefix = "tl-";
  for (const char c : run_id) {
    prefix += isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' ? c : '_';
  }
  return prefix + "-";
}

std::map<std::string, std::string> scope_labels(const Scope& scope) {
  std::map<std::string, std::string> labels = {{kScopeLabel, scope.run_id},
                                               {kRunLabel, scope.run_id}};
  if (!scope.owner.empty()) labels[kOwnerLabel] = scope.owner;
  return labels;
}

Plan plan_request(const Scope& scope, const Request& request, Engine& engine) {
  if (request.body.size() > kMaxRequestBody) return refuse(413, "request body too large");
  std::optional<Target> parsed = parse_target(request.target);
  if (!parsed) return refuse(400, "malformed request target");
  Target& target = *parsed;
  const std::vector<std::string>& s = target.segments;
  const std::string& m = request.method;
  const bool get = m == "GET" || m == "HEAD";
  const std::string normal = render(target, s);
  if (s.size() == 1 && get && (s[0] == "_ping" || s[0] == "version" || s[0] == "info")) {
    return forward(request, normal);
  }
  static const std::map<std::string, Kind> kKinds = {{"containers", Kind::kContainer},
                                                     {"networks", Kind::kNetwork},
                                                     {"volumes", Kind::kVolume},
                                                     {"exec", Kind::kExec}};
  if (s[0] == "images") {
    if (s.size() == 2 && get && s[1] == "json") return forward(request, normal);
    if (s.size() >= 3 && get && s.back() == "json") return forward(request, normal);
    if (s.size() == 2 && m == "POST" && s[1] == "create") {
      if (!query_value(target, "fromImage") || query_value(target, "fromSrc")) {
        return refuse(403, "only pulls (fromImage) pass the scoped docker");
      }
      return forward(request, normal);
    }
    return refuse(403, "not allowed through the scoped docker: " + m + " images/...");
  }
  const auto kind = kKinds.find(s[0]);
  if (kind == kKinds.end()) return refuse(403, "not allowed through the scoped docker: " + s[0]);
  const bool list_path =
      kind->second == Kind::kContainer ? (s.size() == 2 && s[1] == "json") : s.size() == 1;
  if (list_path && get && kind->second != Kind::kExec) {
    Plan plan = forward(request, normal, Plan::Action::kFilterList);
    plan.list_kind = kind->second;
    return plan;
  }
  if (s.size() == 2 && s[1] == "create" && m == "POST" && kind->second != Kind::kExec) {
    return create_route(scope, request, target, kind->second, engine);
  }
  if (s.size() == 2 && s[1] == "prune") {
    return refuse(403,
                  "prune is not allowed through the scoped docker (the run's objects are "
                  "removed when it ends)");
  }
  if (s.size() >= 2) return object_route(scope, request, target, kind->second, engine);
  return refuse(403, "not allowed through the scoped docker: " + m + " " + s[0]);
}

Result<std::string> filter_list(const Scope& scope, Kind kind, const std::string& body) {
  if (body.size() > kMaxListAnswer) return Error{"docker proxy", "list answer too large"};
  json answer = json::parse(body, nullptr, false);
  if (answer.is_discarded()) return Error{"docker proxy", "the engine's list is not JSON"};
  auto mine = [&](const json& object) {
    if (!object.is_object()) return false;
    const auto labels = object.find("Labels");
    if (labels == object.end() || !labels->is_object()) return false;
    const auto label = labels->find(kScopeLabel);
    return label != labels->end() && label->is_string() && *label == scope.run_id;
  };
  json* list = &answer;
  if (kind == Kind::kVolume) {
    if (!answer.is_object() || !answer.contains("Volumes")) {
      return Error{"docker proxy", "the engine's volume list has no Volumes"};
    }
    list = &answer["Volumes"];
    if (list->is_null()) *list = json::array();
  }
  if (!list->is_array()) return Error{"docker proxy", "the engine's list is not an array"};
  json kept = json::array();
  for (json& object : *list) {
    if (mine(object)) kept.push_back(std::move(object));
  }
  *list = std::move(kept);
  return answer.dump();
}

}  // namespace testlooper::docker_proxy
