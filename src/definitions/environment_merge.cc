#include "definitions/environment_merge.h"

#include <fmt/format.h>

#include <algorithm>

namespace testlooper::definitions {
namespace {

const std::vector<std::string> kRootKeys = {
    "platform", "image", "variables", "dependencies", "test_configuration", "test_stages",
    "test_timeout", "test_min_cores", "test_max_cores", "test_min_ram_gb", "test_min_disk_gb",
    "test_max_retries", "test_retry_wait_seconds"};
const std::vector<std::string> kDerivedKeys = {
    "base", "setup_script_contents", "variables", "dependencies", "test_configuration",
    "test_stages", "test_timeout", "test_min_cores", "test_max_cores", "test_min_ram_gb",
    "test_min_disk_gb", "test_max_retries", "test_retry_wait_seconds"};
const std::vector<std::string> kLimitKeys = {"test_timeout", "test_min_cores", "test_max_cores",
                                             "test_min_ram_gb", "test_min_disk_gb",
                                             "test_max_retries", "test_retry_wait_seconds"};

bool is_root(const Node& env) { return env.find("image") != nullptr || env.find("platform") != nullptr; }

void read_image(const Definition& def, Loader& loader, Environment& env) {
  const Node& body = def.value;
  const Node* platform = body.find("platform");
  const Node* image = body.find("image");
  if (platform == nullptr || image == nullptr) {
    fail_at(def.key, fmt::format("root environment '{}' needs both 'platform' and 'image'",
                                 def.key.text));
  }
  env.platform = as_string(*platform, "platform");
  if (env.platform != "linux" && env.platform != "windows") {
    fail_at(*platform, fmt::format("platform must be 'linux' or 'windows', not '{}'", env.platform));
  }
  check_keys(*image, {"dockerfile", "dockerfile_contents", "base_ami", "setup_script_contents", "host"},
             "an image");
  if (const Node* path = image->find("dockerfile")) {
    std::string p = as_string(*path, "an image's dockerfile");
    while (!p.empty() && p.front() == '/') p.erase(0, 1);
    auto text = Loader::value_or_fail(
        loader.reader().read_file(def.origin_repo, def.origin_commit, p), path);
    if (!text.has_value()) fail_at(*path, fmt::format("Dockerfile '{}' does not exist", p));
    env.image_kind = "dockerfile";
    env.image_path = p;
    env.dockerfile_contents = *text;
  } else if (const Node* contents = image->find("dockerfile_contents")) {
    env.image_kind = "dockerfile";
    env.dockerfile_contents = as_string(*contents, "dockerfile_contents");
  } else if (const Node* ami = image->find("base_ami")) {
    env.image_kind = "ami";
    env.base_ami = as_string(*ami, "base_ami");
    if (const Node* s = image->find("setup_script_contents")) {
      env.setup_script_contents = as_string(*s, "setup_script_contents");
    }
  } else if (const Node* host = image->find("host")) {
    if (!as_bool(*host, "image 'host'")) fail_at(*host, "'host' image must be 'host: true'");
    env.image_kind = "host";
  } else {
    fail_at(*image, "an image needs one of 'dockerfile', 'dockerfile_contents', 'base_ami', 'host'");
  }
  if (image->entries.size() != 1 && env.image_kind != "ami") {
    fail_at(*image, "an image has exactly one of 'dockerfile', 'dockerfile_contents', 'host'");
  }
}

}  // namespace

EnvironmentMerger::EnvRef EnvironmentMerger::find(const CommitDefinitions& ns,
                                                  const std::string& name, const Node& at) {
  const CommitDefinitions* target = &ns;
  std::string local = name;
  if (const size_t slash = name.find('/'); slash != std::string::npos) {
    const std::string ref = name.substr(0, slash);
    auto it = ns.repos.find(ref);
    if (it == ns.repos.end()) {
      fail_at(at, fmt::format("environment '{}': no repo reference named '{}'", name, ref));
    }
    const RepoReference& r = it->second.reference;
    if (r.commit == "HEAD") fail_at(at, fmt::format("environment '{}' is in a HEAD pin", name));
    target = &loader_.load(r.repo, r.commit, &at);
    local = name.substr(slash + 1);
  }
  auto it = target->environments.find(local);
  if (it == target->environments.end()) {
    fail_at(at, fmt::format("no environment named '{}'", name));
  }
  return EnvRef{target, &it->second, target->repo + "/" + target->commit + "/" + local};
}

std::vector<EnvironmentMerger::EnvRef> EnvironmentMerger::bases_of(const EnvRef& env) {
  const Node& body = env.def->value;
  if (!body.is_map()) fail_at(body, fmt::format("environment '{}' must be a map", env.def->key.text));
  if (is_root(body)) {
    check_keys(body, kRootKeys, fmt::format("root environment '{}'", env.def->key.text));
    return {};
  }
  check_keys(body, kDerivedKeys, fmt::format("environment '{}'", env.def->key.text));
  const Node* base = body.find("base");
  if (base == nullptr) {
    fail_at(env.def->key, fmt::format("environment '{}' needs 'platform' and 'image' (a root) or "
                                      "'base' (derived, or 'base: []' for a mixin)",
                                      env.def->key.text));
  }
  std::vector<EnvRef> out;
  for (const auto& name : as_string_list(*base, "base")) out.push_back(find(*env.ns, name, *base));
  return out;
}

const std::vector<EnvironmentMerger::EnvRef>& EnvironmentMerger::linearise(const EnvRef& env) {
  if (auto it = linearisations_.find(env.id); it != linearisations_.end()) return it->second;
  if (std::find(in_progress_.begin(), in_progress_.end(), env.id) != in_progress_.end()) {
    std::string cycle;
    for (auto it = std::find(in_progress_.begin(), in_progress_.end(), env.id);
         it != in_progress_.end(); ++it) {
      cycle += it->substr(it->rfind('/') + 1) + " -> ";
    }
    fail_at(env.def->key, "environment bases form a cycle: " + cycle + env.def->key.text);
  }
  in_progress_.push_back(env.id);
  std::vector<EnvRef> result = c3({env}, bases_of(env), env.def->key);
  in_progress_.pop_back();
  return linearisations_.emplace(env.id, std::move(result)).first->second;
}

// C3 with the *last* listed base first in precedence: L = head + merge(L(Bn)..L(B1), [Bn..B1]).
std::vector<EnvironmentMerger::EnvRef> EnvironmentMerger::c3(const std::vector<EnvRef>& head,
                                                             const std::vector<EnvRef>& bases,
                                                             const Node& at) {
  std::vector<std::vector<EnvRef>> seqs;
  for (auto it = bases.rbegin(); it != bases.rend(); ++it) seqs.push_back(linearise(*it));
  seqs.emplace_back(bases.rbegin(), bases.rend());
  std::vector<EnvRef> out = head;
  auto in_tail = [&](const std::string& id) {
    for (const auto& s : seqs) {
      for (size_t i = 1; i < s.size(); ++i) {
        if (s[i].id == id) return true;
      }
    }
    return false;
  };
  while (true) {
    seqs.erase(std::remove_if(seqs.begin(), seqs.end(), [](auto& s) { return s.empty(); }),
               seqs.end());
    if (seqs.empty()) return out;
    const EnvRef* next = nullptr;
    for (const auto& s : seqs) {
      if (!in_tail(s[0].id)) {
        next = &s[0];
        break;
      }
    }
    if (next == nullptr) fail_at(at, "the order of environment bases is inconsistent (no C3 linearisation)");
    const EnvRef chosen = *next;
    out.push_back(chosen);
    for (auto& s : seqs) {
      if (!s.empty() && s[0].id == chosen.id) s.erase(s.begin());
    }
  }
}

void EnvironmentMerger::merge_fields(const std::vector<EnvRef>& order, MergedEnvironment& out,
                                     const Node& at, bool require_root) {
  const EnvRef* root = nullptr;
  for (const auto& e : order) {
    out.environment.inheritance.push_back(e.def->key.text);
    if (!is_root(e.def->value)) continue;
    if (root != nullptr) {
      fail_at(at, fmt::format("environment '{}' inherits two roots: '{}' and '{}'",
                              out.environment.name, root->def->key.text, e.def->key.text));
    }
    root = &e;
  }
  if (root == nullptr && require_root) {
    fail_at(at, fmt::format("environment '{}' has no root environment (one with platform and "
                            "image) among its bases", out.environment.name));
  }
  if (root != nullptr) read_image(*root->def, loader_, out.environment);
  // Least derived first, so that more derived environments override and concatenate after.
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const Node& body = it->def->value;
    if (const Node* vars = body.find("variables")) {
      if (!vars->is_map()) fail_at(*vars, "'variables' must be a map");
      for (const auto& [k, v] : vars->entries) out.variables[k.text] = v;
    }
    if (const Node* deps = body.find("dependencies")) {
      for (const auto& [k, v] : section_entries(*deps, "dependencies")) {
        out.dependencies[k.text] = EnvironmentDependency{v, it->ns};
      }
    }
    if (const Node* stages = body.find("test_stages")) {
      if (!stages->is_list()) fail_at(*stages, "'test_stages' must be a list of stages");
      for (const auto& s : stages->items) out.test_stages.push_back(s);
    }
    if (const Node* script = body.find("setup_script_contents")) {
      out.environment.setup_script_contents += as_string(*script, "setup_script_contents");
    }
  }
  for (const auto& e : order) {
    const Node& body = e.def->value;
    for (const auto& key : kLimitKeys) {
      const Node* v = body.find(key);
      if (v == nullptr || out.limits[key] != 0) continue;
      out.limits[key] = as_int(*v, key);
    }
    if (const Node* c = body.find("test_configuration"); c && out.environment.test_configuration.empty()) {
      out.environment.test_configuration = as_string(*c, "test_configuration");
    }
  }
}

const MergedEnvironment& EnvironmentMerger::merge(const CommitDefinitions& ns,
                                                  const std::string& name,
                                                  const std::vector<std::string>& mixins,
                                                  const Node& at, bool require_root) {
  std::string key = ns.repo + "/" + ns.commit + "/" + name;
  for (const auto& m : mixins) key += "+" + m;
  if (!require_root) key += "?";
  if (auto it = merged_.find(key); it != merged_.end()) return it->second;
  const EnvRef env = find(ns, name, at);
  MergedEnvironment out;
  out.environment.name = name;
  std::vector<EnvRef> order;
  if (mixins.empty()) {
    order = linearise(env);
  } else {
    std::vector<EnvRef> bases{env};
    for (const auto& m : mixins) bases.push_back(find(ns, m, at));
    order = c3({}, bases, at);
  }
  merge_fields(order, out, at, require_root);
  return merged_.emplace(key, std::move(out)).first->second;
}

}  // namespace testlooper::definitions
