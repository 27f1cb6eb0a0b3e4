#include "definitions/test_sets.h"

#include <fmt/format.h>

#include <set>

#include "core/glob.h"
#include "definitions/loader.h"

namespace testlooper::definitions {
namespace {

void add_closure(const ResolvedObject& object, const std::string& prefix,
                 const std::map<std::string, ResolvedObject>& objects, std::set<std::string>& out) {
  for (const auto& [path, dep] : object.dependencies) {
    if (dep.kind != Dependency::Kind::kBuild) continue;
    const std::string shown = dep.build_name.rfind(prefix, 0) == 0 ? dep.build_name.substr(prefix.size())
                                                                   : dep.build_name;
    if (!out.insert(shown).second) continue;
    auto it = objects.find(dep.build_name);
    if (it != objects.end()) add_closure(it->second, prefix, objects, out);
  }
}

std::vector<std::string> select(const std::vector<std::string>& globs, const std::string& prefix,
                                const std::vector<ResolvedObject>& commit_objects,
                                const std::map<std::string, ResolvedObject>& objects) {
  std::set<std::string> out;
  for (const auto& o : commit_objects) {
    if (o.kind == ObjectKind::kDeployment) continue;
    for (const auto& g : globs) {
      if (!glob_match(g, o.name)) continue;
      out.insert(o.name);
      add_closure(o, prefix, objects, out);
      break;
    }
  }
  return {out.begin(), out.end()};
}

}  // namespace

std::map<std::string, std::vector<std::string>> compute_test_sets(
    const std::optional<Node>& section, const std::string& prefix,
    const std::vector<ResolvedObject>& commit_objects,
    const std::map<std::string, ResolvedObject>& objects) {
  std::map<std::string, std::vector<std::string>> sets;
  sets["all"] = select({"*"}, prefix, commit_objects, objects);
  if (!section) return sets;
  for (const auto& [key, value] : section_entries(*section, "test_sets")) {
    sets[key.text] = select(as_string_list(value, fmt::format("test set '{}'", key.text)), prefix,
                            commit_objects, objects);
  }
  return sets;
}

std::vector<std::string> triggered_sets(const std::optional<Node>& triggers,
                                        const std::map<std::string, std::vector<std::string>>& sets,
                                        const std::optional<std::vector<std::string>>& changed) {
  struct Trigger {
    std::vector<std::string> paths;
    std::vector<std::string> sets;
  };
  std::vector<Trigger> parsed;
  if (triggers && !triggers->is_null()) {
    if (!triggers->is_list()) fail_at(*triggers, "'triggers' must be a list of {name, paths, test_sets}");
    for (const auto& t : triggers->items) {
      check_keys(t, {"name", "paths", "test_sets"}, "a trigger");
      const Node* paths = t.find("paths");
      const Node* set_globs = t.find("test_sets");
      if (paths == nullptr || set_globs == nullptr) fail_at(t, "a trigger needs 'paths' and 'test_sets'");
      parsed.push_back({as_string_list(*paths, "a trigger's paths"),
                        as_string_list(*set_globs, "a trigger's test_sets")});
    }
  }
  if (!changed) return {"all"};
  if (!triggers || triggers->is_null()) {
    if (changed->empty()) return {};
    return {"all"};
  }
  std::set<std::string> out;
  for (const auto& [path_globs, wanted] : parsed) {
    bool fired = false;
    for (const auto& path : *changed) {
      for (const auto& g : path_globs) fired = fired || glob_match(g, "HEAD/" + path);
    }
    if (!fired) continue;
    for (const auto& [name, members] : sets) {
      for (const auto& g : wanted) {
        if (glob_match(g, name)) out.insert(name);
      }
    }
  }
  return {out.begin(), out.end()};
}

}  // namespace testlooper::definitions
