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

}  // namespace

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
