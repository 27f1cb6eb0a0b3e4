// WorkingTreeReader: a SourceReader that answers for working trees (git/working_tree.h) under
// their id() -- "<HEAD sha>+dirty:<hash>" -- and passes every other question (other repos,
// real commits) to the reader it wraps. This is how `testlooper run` resolves the definitions
// of a working tree with uncommitted changes: resolve_commit(reader, repo, tree.id()).
// Not thread-safe (one resolver thread); the wrapped reader and the trees must outlive it.
#pragma once

#include <map>
#include <string>

#include "definitions/source_reader.h"
#include "git/working_tree.h"

namespace testlooper::git {

class WorkingTreeReader : public definitions::SourceReader {
 public:
  explicit WorkingTreeReader(definitions::SourceReader& commits) : commits_(commits) {}

  // Answers for (`repo`, tree.id()) from `tree` from now on.
  void add(const std::string& repo, const WorkingTree& tree) { trees_[repo] = &tree; }

  Result<std::vector<std::string>> list_files(const std::string& repo,
                                              const std::string& commit) override;
  Result<std::optional<std::string>> read_file(const std::string& repo, const std::string& commit,
                                               const std::string& path) override;
  Result<std::string> last_commit_touching(const std::string& repo, const std::string& commit,
                                           const std::string& path) override;
  Result<std::optional<std::vector<std::string>>> changed_paths(const std::string& repo,
                                                                const std::string& commit) override;

 private:
  // The tree that (`repo`, `commit`) names, or nullptr.
  const WorkingTree* tree(const std::string& repo, const std::string& commit) const;

  definitions::SourceReader& commits_;
  std::map<std::string, const WorkingTree*> trees_;
};

}  // namespace testlooper::git
