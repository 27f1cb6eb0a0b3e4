// Loading a commit's definitions: finding the file, parsing it, expanding macros, following
// includes and collecting every named definition into the commit's namespace (FORMAT.md §1-§5).
// Resolution (environments, objects, hashes) works on what this produces.
//
// Loader owns a cache of loaded commits (they reference each other through `repos:`), so one
// Loader serves one resolution and everything it reaches. Not thread-safe.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "definitions/definitions.h"
#include "definitions/node.h"

namespace testlooper::definitions {

// One named environment/build/test/deployment as written, after macro expansion.
struct Definition {
  Node key;                 // the name, for positions
  Node value;               // its body
  std::string origin_repo;  // the repo and commit of the file that defined it (Dockerfile paths)
  std::string origin_commit;
};

// A `repos:` entry with the node it was written at.
struct RepoEntry {
  Node key;
  RepoReference reference;
};

// A commit's namespace: the root file plus everything it includes.
struct CommitDefinitions {
  std::string repo;
  std::string commit;
  std::optional<std::string> file;
  std::map<std::string, RepoEntry> repos;
  std::map<std::string, Definition> environments;
  std::map<std::string, Definition> builds;
  std::map<std::string, Definition> tests;
  std::map<std::string, Definition> deployments;
  std::optional<Node> test_sets;
  std::optional<Node> triggers;
  bool has_head_pin() const;
};

class Loader {
 public:
  // `primary_repo` is the repo whose file paths are shown bare in errors; other repos' paths
  // are shown as "<repo>/<path>".
  Loader(SourceReader& reader, std::string primary_repo);

  // The namespace of (repo, commit), loaded once. Throws DefinitionError for errors in the
  // definitions and ReadError when the repo or commit cannot be read.
  // `at` is the node that refers to this commit: when given, a failure to read it becomes a
  // DefinitionError there (a broken reference is an error in the definitions).
  const CommitDefinitions& load(const std::string& repo, const std::string& commit,
                                const Node* at = nullptr);

  // The value of `result`; its error thrown as a DefinitionError at `at` when given, else as a
  // ReadError.
  template <class T>
  static T value_or_fail(Result<T> result, const Node* at);

  // The `repos:` entries of (repo, commit): all of them once it loaded, those read before the
  // error when loading it failed (so a broken commit still reports its pins), else none.
  std::map<std::string, RepoReference> repos_read(const std::string& repo,
                                                  const std::string& commit) const;

  SourceReader& reader() { return reader_; }
  // How a file of `repo` is named in messages.
  std::string display_path(const std::string& repo, const std::string& path) const;

 private:
  struct FileRef;
  class IncludeWalker;
  // Fills `defs` (repo and commit set); what it read stays there when it throws.
  void load_uncached(CommitDefinitions& defs);
  Node read_document(const std::string& repo, const std::string& commit, const std::string& path,
                     const Node* at);
  // `foreign`: the section is in a file of another repo (which may not define auto pins).
  void parse_repos(CommitDefinitions& defs, const Node& section, bool foreign);
  RepoReference parse_repo_value(CommitDefinitions& defs, const Node& key, const Node& value,
                                 bool foreign);
  RepoReference resolve_import(CommitDefinitions& defs, const Node& value);

  SourceReader& reader_;
  std::string primary_repo_;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<CommitDefinitions>> cache_;
  std::set<std::pair<std::string, std::string>> loading_;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<CommitDefinitions>> failed_;
};

// Thrown when the source itself cannot be read (not a definitions error).
class ReadError : public std::runtime_error {
 public:
  explicit ReadError(const Error& error) : std::runtime_error(error.to_string()), error_(error) {}
  const Error& error() const { return error_; }

 private:
  Error error_;
};

template <class T>
T Loader::value_or_fail(Result<T> result, const Node* at) {
  if (result.ok()) return std::move(result).value();
  if (at != nullptr) fail_at(*at, result.error().to_string());
  throw ReadError(result.error());
}

// Helpers shared by the loader and the resolver for reading typed fields out of Nodes.
// Each throws DefinitionError at the node, saying what was expected.
std::string as_string(const Node& node, const std::string& what);
long long as_int(const Node& node, const std::string& what);
double as_double(const Node& node, const std::string& what);
bool as_bool(const Node& node, const std::string& what);
std::vector<std::string> as_string_list(const Node& node, const std::string& what);
// `rel` (an include's path) joined onto the directory `dir`, '.' and '..' resolved; throws at
// `at` when it leaves the repository.
std::string join_path(const Node& at, const std::string& dir, const std::string& rel);
// The directory part of a '/'-separated path ("" for a top-level file).
std::string dir_of(const std::string& path);
// A `repos:` reference string "<repo>/<40-hex sha>" or "<repo>/HEAD"; throws at `at` otherwise.
RepoReference parse_reference_string(const Node& at);
// Rejects keys of `map` not in `allowed`, naming the key and what is allowed.
void check_keys(const Node& map, const std::vector<std::string>& allowed, const std::string& what);
// A section written as a map or as a list of maps, merged (duplicate names are errors).
std::vector<std::pair<Node, Node>> section_entries(const Node& section, const std::string& what);

}  // namespace testlooper::definitions
