// resolve_commit: the module's entry point, where exceptions stop.
#include "definitions/definitions.h"

#include <fmt/format.h>

#include <algorithm>

#include "definitions/resolver.h"
#include "definitions/test_sets.h"

namespace testlooper::definitions {
namespace {

bool is_definitions_file(const std::string& path) {
  const std::string name = path.substr(path.rfind('/') + 1);
  if (name == "testDefinitions.yml" || name == "testDefinitions.json" || name == "testlooper.yml") {
    return true;
  }
  const std::string suffix = ".testlooper.yml";
  return name.size() >= suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::optional<std::string> find_definitions_file(const std::vector<std::string>& paths) {
  std::optional<std::string> best;
  for (const auto& p : paths) {
    if (is_definitions_file(p) && (!best || p < *best)) best = p;
  }
  return best;
}

const char* to_string(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::kBuild:
      return "build";
    case ObjectKind::kTest:
      return "test";
    case ObjectKind::kDeployment:
      return "deployment";
  }
  return "?";
}

const ResolvedObject* ResolvedCommit::find(const std::string& name) const {
  for (const auto& o : objects) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

ResolvedCommit Resolver::resolve(const std::string& commit) {
  ResolvedCommit out;
  const CommitDefinitions& ns = loader_.load(repo_, commit);
  out.repo = repo_;
  out.commit = commit;
  out.file = ns.file;
  if (!ns.file) return out;
  for (const auto& [name, entry] : ns.repos) out.repos[name] = entry.reference;
  if (ns.has_head_pin()) {
    out.pinned_to_head = true;
    return out;
  }
  for (const auto& [name, def] : ns.environments) {
    const MergedEnvironment& merged = merger_.merge(ns, name, {}, def.key, false);
    Environment env = merged.environment;
    env.variables = resolve_variables(merged.variables);
    out.environments[name] = env;
  }
  for (const auto& [name, def] : ns.tests) {
    if (ns.builds.count(name))
      fail_at(def.key, fmt::format("'{}' names both a build and a test", name));
  }
  const std::pair<const std::map<std::string, Definition>*, ObjectKind> sections[] = {
      {&ns.builds, ObjectKind::kBuild},
      {&ns.tests, ObjectKind::kTest},
      {&ns.deployments, ObjectKind::kDeployment}};
  for (const auto& [section, kind] : sections) {
    for (const auto& [name, def] : *section) out.objects.push_back(resolve_object(ns, kind, def));
  }
  std::sort(out.objects.begin(), out.objects.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  const std::string prefix = repo_ + "/" + commit + "/";
  for (const auto& [full, object] : objects_) {
    if (full.rfind(prefix, 0) != 0) out.external_builds.push_back(object);
  }
  out.test_sets = compute_test_sets(ns.test_sets, prefix, out.objects, objects_);
  auto changed = loader_.reader().changed_paths(repo_, commit);
  if (!changed.ok()) throw ReadError(changed.error());
  out.triggered_test_sets = triggered_sets(ns.triggers, out.test_sets, *changed);
  return out;
}

Result<ResolvedCommit> resolve_commit(SourceReader& reader, const std::string& repo,
                                      const std::string& commit) {
  ResolvedCommit partial;
  partial.repo = repo;
  partial.commit = commit;
  Resolver resolver(reader, repo);
  try {
    return resolver.resolve(commit);
  } catch (const ReadError& e) {
    return e.error();
  } catch (const DefinitionError& e) {
    auto files = reader.list_files(repo, commit);
    if (files.ok()) partial.file = find_definitions_file(*files);
    partial.error = e.what();
    // Its pins still count (the server fetches what they name, and moves them).
    partial.repos = resolver.repos_read(commit);
    return partial;
  }
}

}  // namespace testlooper::definitions
