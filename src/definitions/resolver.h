// The resolver: turns a loaded namespace into ResolvedObjects (FORMAT.md §6-§10): effective
// environments, variables (late-bound), dependencies across repos and commits, stages and the
// identity hash. One Resolver serves one top-level resolution; it memoises every object it
// resolves, in any commit, by full name. Throws DefinitionError / ReadError; not thread-safe.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "definitions/environment_merge.h"
#include "definitions/loader.h"
#include "definitions/macros.h"

namespace testlooper::definitions {

class Resolver {
 public:
  Resolver(SourceReader& reader, const std::string& repo);

  // Resolves the commit's objects, environments, test sets and triggers.
  ResolvedCommit resolve(const std::string& commit);

  // The `repos:` entries of this repo's `commit` read so far (all of them, or those read before
  // a definitions error), for reporting a commit whose resolution failed.
  std::map<std::string, RepoReference> repos_read(const std::string& commit) const {
    return loader_.repos_read(repo_, commit);
  }

 private:
  const ResolvedObject& resolve_object(const CommitDefinitions& ns, ObjectKind kind,
                                       const Definition& def);
  ResolvedObject build_object(const CommitDefinitions& ns, ObjectKind kind, const Definition& def);
  void resolve_dependencies(const CommitDefinitions& ns, const Definition& def,
                            const MergedEnvironment& env, const VariableLookup& lookup,
                            ResolvedObject& out);
  Dependency resolve_dependency(const CommitDefinitions& ns, const Node& value,
                                const VariableLookup& lookup, bool in_environment);
  Dependency source_dependency(const Node& at, const std::string& repo, const std::string& commit,
                               const std::string& path);
  Dependency build_dependency(const CommitDefinitions& ns, const Node& at,
                              const std::vector<std::string>& segments, size_t first);
  std::string cycle_text(const std::string& full_name) const;

  std::string repo_;
  Loader loader_;
  EnvironmentMerger merger_;
  std::map<std::string, ResolvedObject> objects_;  // by full name
  std::vector<std::string> stack_;                 // full names being resolved, for cycles
};

// The identity hash of a resolved object (FORMAT.md §9); ignores its repo, commit and display axes.
std::string identity_hash(const ResolvedObject& object);

// The final variables: each value with `${other}` substituted, chains followed, cycles errors.
std::map<std::string, std::string> resolve_variables(const std::map<std::string, Node>& raw);

}  // namespace testlooper::definitions
