// Environments (FORMAT.md §6): C3 linearisation of bases with the last listed base winning, and
// the merge of their fields. Variable substitution happens later, per object (late binding).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "definitions/loader.h"

namespace testlooper::definitions {

// A dependency declared by an environment, resolved later in the namespace that declared it.
struct EnvironmentDependency {
  Node value;
  const CommitDefinitions* ns = nullptr;
};

// The merged fields of an environment (and an object's mixins), before substitution.
struct MergedEnvironment {
  Environment environment;                 // name, platform, image, inheritance, configuration
  std::map<std::string, Node> variables;   // precedence applied, values unsubstituted
  std::map<std::string, EnvironmentDependency> dependencies;
  std::vector<Node> test_stages;           // root first
  std::map<std::string, long long> limits;  // "test_timeout" ... : first non-zero value
};

// Resolves and merges environments across namespaces. Caches linearisations; one per Loader.
class EnvironmentMerger {
 public:
  explicit EnvironmentMerger(Loader& loader) : loader_(loader) {}

  // The environment `name` of `ns` (local, or "<refname>/<env>"), with `mixins` added after it
  // (the last mixin wins). `at` is where the object named it, for errors.
  // A pure mixin (no root among its bases) is an error unless `require_root` is false, when it
  // merges with an empty platform and image. Results are cached.
  const MergedEnvironment& merge(const CommitDefinitions& ns, const std::string& name,
                                 const std::vector<std::string>& mixins, const Node& at,
                                 bool require_root = true);

 private:
  struct EnvRef {
    const CommitDefinitions* ns;
    const Definition* def;
    std::string id;  // unique across namespaces
  };
  EnvRef find(const CommitDefinitions& ns, const std::string& name, const Node& at);
  std::vector<EnvRef> bases_of(const EnvRef& env);
  const std::vector<EnvRef>& linearise(const EnvRef& env);
  std::vector<EnvRef> c3(const std::vector<EnvRef>& head, const std::vector<EnvRef>& bases,
                         const Node& at);
  void merge_fields(const std::vector<EnvRef>& order, MergedEnvironment& out, const Node& at,
                    bool require_root);

  Loader& loader_;
  std::map<std::string, std::vector<EnvRef>> linearisations_;
  std::vector<std::string> in_progress_;
  std::map<std::string, MergedEnvironment> merged_;
};

}  // namespace testlooper::definitions
