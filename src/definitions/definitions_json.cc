#include "definitions/definitions_json.h"

#include <nlohmann/json.hpp>

#include "core/hash.h"
#include "definitions/resolver.h"

namespace testlooper::definitions {
namespace {

using nlohmann::json;

json optional_text(const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); }

json image_json(const Environment& env) {
  json image = json::object();
  if (env.image_kind == "dockerfile") {
    if (!env.image_path.empty()) image["dockerfile"] = env.image_path;
    image["dockerfile_contents"] = env.dockerfile_contents;
  } else if (env.image_kind == "ami") {
    image["base_ami"] = env.base_ami;
  } else if (env.image_kind == "host") {
    image["host"] = true;
  } else {
    return nullptr;
  }
  if (!env.setup_script_contents.empty()) image["setup_script_contents"] = env.setup_script_contents;
  return image;
}

json stage_json(const Stage& s) {
  json artifacts = json::array();
  for (const auto& a : s.artifacts) {
    artifacts.push_back({{"name", a.name},
                         {"directory", a.directory},
                         {"include_patterns", a.include_patterns},
                         {"exclude_patterns", a.exclude_patterns},
                         {"format", a.format}});
  }
  json out = {{"cleanup", s.cleanup}, {"order", s.order}, {"always_run", s.always_run},
              {"artifacts", artifacts}};
  if (!s.run_tests_command.empty()) {
    out["list_tests_command"] = s.list_tests_command;
    out["run_tests_command"] = s.run_tests_command;
  } else {
    out["command"] = s.command;
  }
  return out;
}

json dependency_json(const Dependency& d) {
  if (d.kind == Dependency::Kind::kSource) {
    return {{"kind", "source"}, {"repo", d.repo}, {"commit", d.commit}, {"path", d.path}};
  }
  return {{"kind", "build"}, {"name", d.build_name}, {"hash", d.build_hash}, {"artifact", d.artifact}};
}

json object_json(const ResolvedObject& o) {
  json deps = json::object();
  for (const auto& [path, d] : o.dependencies) deps[path] = dependency_json(d);
  json stages = json::array();
  for (const auto& s : o.stages) stages.push_back(stage_json(s));
  json out = {{"name", o.name},           {"full_name", o.full_name},
              {"kind", to_string(o.kind)}, {"hash", o.hash},
              {"environment", o.environment.name}, {"platform", o.environment.platform},
              {"image", image_json(o.environment)}, {"configuration", o.configuration},
              {"project", o.project},      {"variables", o.variables},
              {"dependencies", deps},      {"stages", stages},
              {"timeout", o.timeout},      {"min_cores", o.min_cores},
              {"max_cores", o.max_cores},  {"min_ram_gb", o.min_ram_gb},
              {"min_disk_gb", o.min_disk_gb}, {"max_retries", o.max_retries},
              {"retry_wait_seconds", o.retry_wait_seconds}};
  if (o.kind == ObjectKind::kDeployment) out["portExpose"] = o.port_expose;
  return out;
}

// The member `key` of `o`, or an empty value when it is missing (iterating a temporary
// from json::value() trips GCC 12's -Wmaybe-uninitialized).
const json& member(const json& o, const char* key) {
  static const json kEmpty;
  auto it = o.find(key);
  return it == o.end() ? kEmpty : *it;
}

Environment environment_from(const json& o) {
  Environment e;
  e.name = o.value("environment", "");
  e.platform = o.value("platform", "");
  const json& image = member(o, "image");
  if (image.is_object()) {
    if (image.contains("host")) e.image_kind = "host";
    if (image.contains("base_ami")) {
      e.image_kind = "ami";
      e.base_ami = image.value("base_ami", "");
    }
    if (image.contains("dockerfile_contents")) {
      e.image_kind = "dockerfile";
      e.dockerfile_contents = image.value("dockerfile_contents", "");
      e.image_path = image.value("dockerfile", "");
    }
    e.setup_script_contents = image.value("setup_script_contents", "");
  }
  return e;
}

Stage stage_from(const json& s) {
  Stage out;
  out.command = s.value("command", "");
  out.list_tests_command = s.value("list_tests_command", "");
  out.run_tests_command = s.value("run_tests_command", "");
  out.cleanup = s.value("cleanup", "");
  out.order = s.value("order", 0.0);
  out.always_run = s.value("always_run", false);
  for (const auto& a : member(s, "artifacts")) {
    out.artifacts.push_back({a.value("name", ""), a.value("directory", ""),
                             a.value("include_patterns", std::vector<std::string>{}),
                             a.value("exclude_patterns", std::vector<std::string>{}),
                             a.value("format", "Tar")});
  }
  return out;
}

}  // namespace

Result<ResolvedObject> object_from_json(const std::string& text) {
  const json o = json::parse(text, nullptr, false);
  if (!o.is_object()) return Error{"object", "not a JSON object"};
  try {
    ResolvedObject out;
    out.name = o.at("name").get<std::string>();
    out.full_name = o.value("full_name", out.name);
    const std::string kind = o.value("kind", "test");
    out.kind = kind == "build" ? ObjectKind::kBuild : kind == "deployment" ? ObjectKind::kDeployment : ObjectKind::kTest;
    out.hash = o.value("hash", "");
    out.environment = environment_from(o);
    out.configuration = o.value("configuration", "");
    out.project = o.value("project", "");
    out.variables = o.value("variables", std::map<std::string, std::string>{});
    for (const auto& [path, d] : member(o, "dependencies").items()) {
      Dependency dep;
      dep.kind = d.value("kind", "") == "build" ? Dependency::Kind::kBuild : Dependency::Kind::kSource;
      dep.repo = d.value("repo", "");
      dep.commit = d.value("commit", "");
      dep.path = d.value("path", "");
      dep.build_name = d.value("name", "");
      dep.build_hash = d.value("hash", "");
      dep.artifact = d.value("artifact", "");
      out.dependencies[path] = dep;
    }
    for (const auto& s : member(o, "stages")) out.stages.push_back(stage_from(s));
    out.timeout = o.value("timeout", 3600);
    out.min_cores = o.value("min_cores", 1);
    out.max_cores = o.value("max_cores", 1);
    out.min_ram_gb = o.value("min_ram_gb", 0);
    out.min_disk_gb = o.value("min_disk_gb", 0);
    out.max_retries = o.value("max_retries", 0);
    out.retry_wait_seconds = o.value("retry_wait_seconds", 0);
    out.port_expose = o.value("portExpose", std::map<std::string, int>{});
    return out;
  } catch (const json::exception& e) {
    return Error{"object", std::string("malformed object: ") + e.what()};
  }
}

std::string identity_hash(const ResolvedObject& o) {
  json deps = json::object();
  for (const auto& [path, d] : o.dependencies) {
    deps[path] = d.kind == Dependency::Kind::kSource
                     ? json{{"source", d.repo}, {"commit", d.commit}, {"path", d.path}}
                     : json{{"build", d.build_hash}, {"artifact", d.artifact}};
  }
  json stages = json::array();
  for (const auto& s : o.stages) stages.push_back(stage_json(s));
  const json identity = {
      {"v", 1},
      {"name", o.name},
      {"kind", to_string(o.kind)},
      {"platform", o.environment.platform},
      {"image", image_json(o.environment)},
      {"variables", o.variables},
      {"dependencies", deps},
      {"stages", stages},
      {"limits", {o.timeout, o.min_cores, o.max_cores, o.min_ram_gb, o.min_disk_gb, o.max_retries,
                  o.retry_wait_seconds}},
      {"ports", o.port_expose}};
  return sha256_hex(identity.dump(-1, ' ', false, json::error_handler_t::replace));
}

std::string object_to_json(const ResolvedObject& object, int indent) {
  return object_json(object).dump(indent, ' ', false, json::error_handler_t::replace);
}

std::string commit_to_json(const ResolvedCommit& c, int indent) {
  json repos = json::object();
  for (const auto& [name, r] : c.repos) {
    repos[name] = {{"repo", r.repo}, {"commit", r.commit}, {"path", optional_text(r.path)},
                   {"branch", optional_text(r.branch)}, {"auto", r.auto_update}};
  }
  json envs = json::object();
  for (const auto& [name, e] : c.environments) {
    envs[name] = {{"platform", e.platform.empty() ? json(nullptr) : json(e.platform)},
                  {"image", image_json(e)},
                  {"variables", e.variables},
                  {"inheritance", e.inheritance},
                  {"test_configuration", e.test_configuration}};
  }
  json objects = json::array();
  for (const auto& o : c.objects) objects.push_back(object_json(o));
  json out = {{"repo", c.repo},
              {"commit", c.commit},
              {"file", optional_text(c.file)},
              {"error", optional_text(c.error)},
              {"pinned_to_head", c.pinned_to_head},
              {"repos", repos},
              {"environments", envs},
              {"objects", objects},
              {"test_sets", c.test_sets},
              {"triggered_test_sets", c.triggered_test_sets}};
  return out.dump(indent, ' ', false, json::error_handler_t::replace);
}

}  // namespace testlooper::definitions
