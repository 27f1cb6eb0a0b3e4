#include "definitions/resolver.h"

#include <fmt/format.h>

#include <algorithm>

#include "definitions/stages.h"

namespace testlooper::definitions {
namespace {

const std::vector<std::string> kObjectKeys = {
    "command",    "cleanup",      "stages",      "environment",       "mixins",    "configuration",
    "project",    "dependencies", "variables",   "timeout",           "min_cores", "max_cores",
    "min_ram_gb", "min_disk_gb",  "max_retries", "retry_wait_seconds"};

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('/', start);
    if (end == std::string::npos) end = text.size();
    parts.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

std::string join(const std::vector<std::string>& parts, size_t from, size_t to) {
  std::string out;
  for (size_t i = from; i < to; ++i) out += (i == from ? "" : "/") + parts[i];
  return out;
}

std::string first_segment(const std::string& name) { return name.substr(0, name.find('/')); }
std::string last_segment(const std::string& name) { return name.substr(name.rfind('/') + 1); }

class VariableResolver {
 public:
  explicit VariableResolver(const std::map<std::string, Node>& raw) : raw_(raw) {}

  std::map<std::string, std::string> all() {
    for (const auto& [name, node] : raw_) value(name);
    return done_;
  }

 private:
  const std::string& value(const std::string& name) {
    if (auto it = done_.find(name); it != done_.end()) return it->second;
    const Node& node = raw_.at(name);
    if (std::find(stack_.begin(), stack_.end(), name) != stack_.end()) {
      std::string cycle;
      for (auto it = std::find(stack_.begin(), stack_.end(), name); it != stack_.end(); ++it) {
        cycle += *it + " -> ";
      }
      fail_at(node, "variables refer to each other in a cycle: " + cycle + name);
    }
    stack_.push_back(name);
    const std::string text =
        node.is_null() ? "" : as_string(node, fmt::format("variable '{}'", name));
    std::string result =
        substitute(text, [&](const std::string& other) -> std::optional<std::string> {
          if (raw_.count(other) == 0) return std::nullopt;
          return value(other);
        });
    stack_.pop_back();
    return done_[name] = std::move(result);
  }

  const std::map<std::string, Node>& raw_;
  std::map<std::string, std::string> done_;
  std::vector<std::string> stack_;
};

int limit(const Node& body, const char* key, const MergedEnvironment& env, const char* env_key,
          int fallback) {
  if (const Node* n = body.find(key)) {
    const long long v = as_int(*n, key);
    if (v < 0 || v > 1'000'000'000) fail_at(*n, fmt::format("{} must be between 0 and 1e9", key));
    return static_cast<int>(v);
  }
  auto it = env.limits.find(env_key);
  if (it != env.limits.end() && it->second != 0) return static_cast<int>(it->second);
  return fallback;
}

}  // namespace

std::map<std::string, std::string> resolve_variables(const std::map<std::string, Node>& raw) {
  return VariableResolver(raw).all();
}

Resolver::Resolver(SourceReader& reader, const std::string& repo)
    : repo_(repo), loader_(reader, repo), merger_(loader_) {}

std::string Resolver::cycle_text(const std::string& full_name) const {
  auto start = std::find(stack_.begin(), stack_.end(), full_name);
  bool one_commit = true;
  const std::string prefix = full_name.substr(0, full_name.find('/', full_name.find('/') + 1) + 1);
  for (auto it = start; it != stack_.end(); ++it)
    one_commit = one_commit && it->rfind(prefix, 0) == 0;
  auto shown = [&](const std::string& n) { return one_commit ? n.substr(prefix.size()) : n; };
  std::string text;
  for (auto it = start; it != stack_.end(); ++it) text += shown(*it) + " -> ";
  return text + shown(full_name);
}

const ResolvedObject& Resolver::resolve_object(const CommitDefinitions& ns, ObjectKind kind,
                                               const Definition& def) {
  const std::string full = ns.repo + "/" + ns.commit + "/" + def.key.text;
  if (auto it = objects_.find(full); it != objects_.end()) return it->second;
  if (std::find(stack_.begin(), stack_.end(), full) != stack_.end()) {
    fail_at(def.key, "Circular test dependency found: " + cycle_text(full));
  }
  stack_.push_back(full);
  ResolvedObject object = build_object(ns, kind, def);
  stack_.pop_back();
  return objects_.emplace(full, std::move(object)).first->second;
}

ResolvedObject Resolver::build_object(const CommitDefinitions& ns, ObjectKind kind,
                                      const Definition& def) {
  const Node& body = def.value;
  std::vector<std::string> keys = kObjectKeys;
  if (kind == ObjectKind::kDeployment) keys.push_back("portExpose");
  check_keys(body, keys, fmt::format("{} '{}'", to_string(kind), def.key.text));
  ResolvedObject out;
  out.name = def.key.text;
  out.full_name = ns.repo + "/" + ns.commit + "/" + out.name;
  out.kind = kind;
  const Node* env_node = body.find("environment");
  const std::string env_name =
      env_node ? as_string(*env_node, "environment") : last_segment(out.name);
  std::vector<std::string> mixins;
  if (const Node* m = body.find("mixins")) mixins = as_string_list(*m, "mixins");
  const MergedEnvironment& env =
      merger_.merge(ns, env_name, mixins, env_node ? *env_node : def.key);
  out.environment = env.environment;
  std::map<std::string, Node> raw_vars = env.variables;
  if (const Node* vars = body.find("variables")) {
    if (!vars->is_map()) fail_at(*vars, "'variables' must be a map");
    for (const auto& [k, v] : vars->entries) raw_vars[k.text] = v;
  }
  out.variables = resolve_variables(raw_vars);
  const VariableLookup lookup = [&](const std::string& name) -> std::optional<std::string> {
    auto it = out.variables.find(name);
    if (it == out.variables.end()) return std::nullopt;
    return it->second;
  };
  std::map<std::string, std::string> env_vars;
  for (const auto& [k, v] : env.variables) env_vars[k] = out.variables[k];
  out.environment.variables = env_vars;
  resolve_dependencies(ns, def, env, lookup, out);
  const bool tests_allowed = kind == ObjectKind::kTest;
  for (const auto& s : env.test_stages) out.stages.push_back(parse_stage(s, lookup, tests_allowed));
  if (const Node* stages = body.find("stages"); stages && !stages->is_null()) {
    if (!stages->is_list()) fail_at(*stages, "'stages' must be a list of stages");
    for (const auto& s : stages->items) out.stages.push_back(parse_stage(s, lookup, tests_allowed));
  }
  const Node* command = body.find("command");
  const Node* cleanup = body.find("cleanup");
  if (cleanup && !command) fail_at(*cleanup, "'cleanup' goes with 'command'");
  if (command) {
    out.stages.push_back(
        command_stage(substitute(as_string(*command, "command"), lookup),
                      cleanup ? substitute(as_string(*cleanup, "cleanup"), lookup) : ""));
  }
  // A test with neither (the original accepted it) runs nothing and succeeds.
  if (out.stages.empty() && kind != ObjectKind::kTest) {
    fail_at(def.key,
            fmt::format("{} '{}' needs a 'command' or 'stages'", to_string(kind), out.name));
  }
  finish_stages(out.stages, def.key);
  out.timeout = limit(body, "timeout", env, "test_timeout", 3600);
  out.min_cores = std::max(1, limit(body, "min_cores", env, "test_min_cores", 1));
  out.max_cores = std::max(out.min_cores, limit(body, "max_cores", env, "test_max_cores", 0));
  out.min_ram_gb = limit(body, "min_ram_gb", env, "test_min_ram_gb", 0);
  out.min_disk_gb = limit(body, "min_disk_gb", env, "test_min_disk_gb", 0);
  out.max_retries = limit(body, "max_retries", env, "test_max_retries", 0);
  out.retry_wait_seconds = limit(body, "retry_wait_seconds", env, "test_retry_wait_seconds", 0);
  if (const Node* ports = body.find("portExpose")) {
    if (!ports->is_map()) fail_at(*ports, "'portExpose' must be a map of name: port");
    for (const auto& [k, v] : ports->entries)
      out.port_expose[k.text] = static_cast<int>(as_int(v, "a port"));
  }
  const Node* configuration = body.find("configuration");
  out.configuration = configuration ? as_string(*configuration, "configuration")
                      : !env.environment.test_configuration.empty()
                          ? env.environment.test_configuration
                          : env_name;
  const Node* project = body.find("project");
  out.project = project ? as_string(*project, "project") : first_segment(out.name);
  out.hash = identity_hash(out);
  return out;
}

void Resolver::resolve_dependencies(const CommitDefinitions& ns, const Definition& def,
                                    const MergedEnvironment& env, const VariableLookup& lookup,
                                    ResolvedObject& out) {
  std::map<std::string, std::pair<const Node*, const CommitDefinitions*>> chosen;
  for (const auto& [relpath, dep] : env.dependencies) chosen[relpath] = {&dep.value, dep.ns};
  std::map<std::string, Node> own_keys;
  if (const Node* deps = def.value.find("dependencies")) {
    for (const auto& [k, v] : section_entries(*deps, "dependencies")) own_keys.emplace(k.text, v);
  }
  for (const auto& [relpath, value] : own_keys) chosen[relpath] = {&value, nullptr};
  for (const auto& [relpath, source] : chosen) {
    const std::string path = substitute(relpath, lookup);
    if (path.empty() || path.front() == '/' || path == ".." || path.rfind("../", 0) == 0 ||
        path.find("/../") != std::string::npos) {
      fail_at(*source.first,
              fmt::format("dependency path '{}' must be relative, inside $TEST_INPUTS", path));
    }
    const bool in_env = source.second != nullptr;
    out.dependencies[path] =
        resolve_dependency(in_env ? *source.second : ns, *source.first, lookup, in_env);
  }
}

Dependency Resolver::resolve_dependency(const CommitDefinitions& ns, const Node& value,
                                        const VariableLookup& lookup, bool in_environment) {
  const std::string raw = as_string(value, "a dependency");
  if (first_segment(raw).find("${") != std::string::npos) {
    fail_at(value, fmt::format("the first segment of dependency '{}' may not contain '${{'", raw));
  }
  const std::vector<std::string> segs = split(substitute(raw, lookup));
  if (segs[0] == "HEAD") {
    if (segs.size() == 1) return source_dependency(value, ns.repo, ns.commit, "");
    if (segs[1] == "source")
      return source_dependency(value, ns.repo, ns.commit, join(segs, 2, segs.size()));
    return build_dependency(ns, value, segs, 1);
  }
  if (auto it = ns.repos.find(segs[0]); it != ns.repos.end()) {
    const RepoReference& r = it->second.reference;
    if (r.commit == "HEAD")
      fail_at(value, fmt::format("repo '{}' is a HEAD pin and has no commit yet", segs[0]));
    const std::string base = r.path.value_or("");
    if (segs.size() == 1) return source_dependency(value, r.repo, r.commit, base);
    if (segs[1] == "source") {
      const std::string sub = join(segs, 2, segs.size());
      return source_dependency(value, r.repo, r.commit,
                               base.empty()  ? sub
                               : sub.empty() ? base
                                             : base + "/" + sub);
    }
    return build_dependency(loader_.load(r.repo, r.commit, &value), value, segs, 1);
  }
  if (in_environment) {
    fail_at(value, fmt::format("dependency '{}': inside an environment, name builds as "
                               "'HEAD/<build>' or '<repo>/<build>'",
                               raw));
  }
  return build_dependency(ns, value, segs, 0);
}

Dependency Resolver::source_dependency(const Node& at, const std::string& repo,
                                       const std::string& commit, const std::string& path) {
  Dependency d;
  d.kind = Dependency::Kind::kSource;
  d.repo = repo;
  d.commit = commit;
  d.path = path;
  if (path.empty()) return d;
  const auto files = Loader::value_or_fail(loader_.reader().list_files(repo, commit), &at);
  const bool exists = std::any_of(files.begin(), files.end(), [&](const std::string& f) {
    return f == path || f.rfind(path + "/", 0) == 0;
  });
  if (!exists)
    fail_at(at, fmt::format("'{}' does not exist in {} at {}", path, repo, commit.substr(0, 12)));
  d.commit = Loader::value_or_fail(loader_.reader().last_commit_touching(repo, commit, path), &at);
  return d;
}

Dependency Resolver::build_dependency(const CommitDefinitions& ns, const Node& at,
                                      const std::vector<std::string>& segs, size_t first) {
  for (size_t end = first + 1; end <= segs.size(); ++end) {
    auto it = ns.builds.find(join(segs, first, end));
    if (it == ns.builds.end()) continue;
    // Checked here as well as in resolve_object so that the error points at this dependency.
    const std::string full = ns.repo + "/" + ns.commit + "/" + it->first;
    if (std::find(stack_.begin(), stack_.end(), full) != stack_.end()) {
      fail_at(at, "Circular test dependency found: " + cycle_text(full));
    }
    const ResolvedObject& build = resolve_object(ns, ObjectKind::kBuild, it->second);
    Dependency d;
    d.kind = Dependency::Kind::kBuild;
    d.build_name = build.full_name;
    d.build_hash = build.hash;
    d.artifact = join(segs, end, segs.size());
    if (d.artifact.empty()) return d;
    std::string names;
    for (const auto& s : build.stages) {
      for (const auto& a : s.artifacts) {
        if (a.name == d.artifact) return d;
        names += (names.empty() ? "" : ", ") + (a.name.empty() ? "(unnamed)" : a.name);
      }
    }
    fail_at(at, fmt::format("build '{}' has no artifact '{}'; its artifacts: {}", build.name,
                            d.artifact, names.empty() ? "none" : names));
  }
  fail_at(at, fmt::format("dependency '{}' names no build of {}/{}", join(segs, 0, segs.size()),
                          ns.repo, ns.commit.substr(0, 12)));
}

}  // namespace testlooper::definitions
