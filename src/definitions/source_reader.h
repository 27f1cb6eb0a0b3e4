// SourceReader: the only way the definitions module reads anything. Given a repo name and a
// commit, it lists and reads files of that commit's tree and answers the few history questions
// the language needs. Implemented over git by src/git (GitSourceReader) and in memory by tests.
//
// Contract: every method is a pure function of its arguments for a given repository state;
// failures (unknown repo, unknown commit) come back as Errors, never exceptions. Not required
// to be thread-safe; the resolver calls it from one thread.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace testlooper::definitions {

class SourceReader {
 public:
  virtual ~SourceReader() = default;

  // Every file path (no directories) in the commit's tree, '/'-separated, any order.
  virtual Result<std::vector<std::string>> list_files(const std::string& repo,
                                                      const std::string& commit) = 0;

  // The content of `path` at `commit`; nullopt when there is no such file.
  virtual Result<std::optional<std::string>> read_file(const std::string& repo,
                                                       const std::string& commit,
                                                       const std::string& path) = 0;

  // The newest commit on the first-parent chain from `commit` whose content under `path` (a
  // file or a directory) differs from its first parent's (or the root commit). `path` is never
  // empty. A change brought in by a merge is credited to the merge commit.
  virtual Result<std::string> last_commit_touching(const std::string& repo,
                                                   const std::string& commit,
                                                   const std::string& path) = 0;

  // Paths changed between `commit` and its first parent; nullopt for a root commit.
  virtual Result<std::optional<std::vector<std::string>>> changed_paths(
      const std::string& repo, const std::string& commit) = 0;
};

}  // namespace testlooper::definitions
