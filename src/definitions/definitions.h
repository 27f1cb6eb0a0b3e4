// The definitions module: reads a commit's test-definition file (FORMAT.md), expands macros and
// includes, merges environments and resolves every build, test and deployment into plain data
// with a stable identity hash.
//
// Pure: all reading goes through a SourceReader. `resolve_commit` never throws; a definitions
// error comes back inside ResolvedCommit::error as "path:line:col: message" (the commit still
// resolves to "has an error"), while a failure to read the repo itself is a Result error.
// Thread-compatible: resolve different commits from different threads with different readers.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "definitions/source_reader.h"

namespace testlooper::definitions {

// A `repos:` entry after resolving imports.
struct RepoReference {
  std::string repo;                   // the referenced repo's name
  std::string commit;                 // 40-hex sha, or "HEAD" for a pin not yet pointing anywhere
  std::optional<std::string> path;    // a slice: subdirectory of the referenced tree
  std::optional<std::string> branch;  // set for pins
  bool auto_update = false;           // pins with `auto: true`
};

// One artifact of a stage, published when the stage ends.
struct Artifact {
  std::string name;       // "" = the unnamed artifact (then it is the only one of its build)
  std::string directory;  // relative to the output dir; "" = the whole output dir
  std::vector<std::string> include_patterns;
  std::vector<std::string> exclude_patterns;
  std::string format = "Tar";  // "Tar" | "Zip" | "Files"
};

// One stage of a build or test, after variable substitution. Exactly one of `command` or
// (`list_tests_command`, `run_tests_command`) is meaningful; the latter only for tests.
struct Stage {
  std::string command;
  std::string list_tests_command;
  std::string run_tests_command;
  std::string cleanup;
  double order = 0;
  bool always_run = false;
  std::vector<Artifact> artifacts;
};

// An environment after C3 merging of its bases (and an object's mixins).
struct Environment {
  std::string name;
  std::string platform;  // "linux" | "windows"
  // The image: kind is "dockerfile" (contents = the Dockerfile text, path = where it was read,
  // empty for dockerfile_contents), "ami" (base_ami + setup script) or "host".
  std::string image_kind;
  std::string image_path;
  std::string dockerfile_contents;
  std::string base_ami;
  std::string setup_script_contents;  // concatenated, root first
  std::map<std::string, std::string> variables;  // merged and substituted
  std::vector<std::string> inheritance;          // most derived first
  std::string test_configuration;
};

// Where a dependency's files come from.
struct Dependency {
  enum class Kind { kSource, kBuild };
  Kind kind = Kind::kSource;
  // kSource: a tree (or slice) of a commit. For a slice, `commit` is the last commit that touched
  // `path`, so the identity ignores unrelated changes.
  std::string repo;
  std::string commit;
  std::string path;  // "" = whole tree
  // kBuild: "repo/commit/build" and the build's identity; artifact "" = the whole build output.
  std::string build_name;
  std::string build_hash;
  std::string artifact;
};

enum class ObjectKind { kBuild, kTest, kDeployment };

// A fully resolved build, test or deployment.
struct ResolvedObject {
  std::string name;       // short name within the commit, e.g. "build/linux"
  std::string full_name;  // "repo/commit/name"
  ObjectKind kind = ObjectKind::kTest;
  std::string hash;  // identity: sha256 of the resolved definition (see FORMAT.md §9)
  Environment environment;
  std::string configuration;
  std::string project;
  std::map<std::string, std::string> variables;       // final, substituted
  std::map<std::string, Dependency> dependencies;     // relpath -> dependency
  std::vector<Stage> stages;                          // sorted by order, environment first
  int timeout = 3600;
  int min_cores = 1;
  int max_cores = 1;
  int min_ram_gb = 0;
  int min_disk_gb = 0;
  int max_retries = 0;
  int retry_wait_seconds = 0;
  std::map<std::string, int> port_expose;  // deployments
};

// Everything one commit's definitions say, resolved.
struct ResolvedCommit {
  std::string repo;
  std::string commit;
  std::optional<std::string> file;   // the definitions file, nullopt when the commit has none
  std::optional<std::string> error;  // "path:line:col: message" when the definitions are wrong
  bool pinned_to_head = false;       // a repo reference is a HEAD pin: tests are not parsed
  std::map<std::string, RepoReference> repos;
  std::map<std::string, Environment> environments;
  std::vector<ResolvedObject> objects;  // sorted by name
  std::map<std::string, std::vector<std::string>> test_sets;  // names, closure included
  std::vector<std::string> triggered_test_sets;
  // Builds of other commits that this commit's objects depend on (by full name), resolved.
  std::vector<ResolvedObject> external_builds;

  const ResolvedObject* find(const std::string& name) const;
};

// Resolves the definitions of `repo` at `commit`. Errors in the definitions are reported in
// ResolvedCommit::error; the Result fails only when the commit itself cannot be read.
Result<ResolvedCommit> resolve_commit(SourceReader& reader, const std::string& repo,
                                      const std::string& commit);

// Finds the definitions file among a tree's paths (FORMAT.md §1); nullopt when there is none.
std::optional<std::string> find_definitions_file(const std::vector<std::string>& paths);

const char* to_string(ObjectKind kind);

// The identity hash of a resolved object (FORMAT.md §9): what `hash` holds after resolving;
// recomputed by whoever changes an object's definition (e.g. the build a dependency names).
std::string identity_hash(const ResolvedObject& object);

}  // namespace testlooper::definitions
