// GitSourceReader: the definitions module's SourceReader over real git repositories.
//
// Repositories are found by name through a locator function and opened once, on first use;
// the Repository objects are owned by the reader. Commit arguments accept any revision
// Repository::resolve() does and are resolved to a sha on every call, so caches are keyed by
// sha: list_files answers for the most recently used commits and last_commit_touching answers
// per (repo, sha, path). Errors name the repo ("repo 'lib' not found at /x/lib: ...") or the
// commit ("commit abc not found in repo 'lib'"). Not thread-safe (one resolver thread).
#pragma once

#include <cstddef>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "definitions/source_reader.h"
#include "git/git.h"

namespace testlooper::git {

// A SourceReader answering from git repositories located by name; see the file comment.
class GitSourceReader : public definitions::SourceReader {
 public:
  // Maps a repo name to its repository directory; nullopt when there is no such repo.
  using Locator = std::function<std::optional<std::string>(const std::string& repo)>;

  // How many commits' file lists are kept (least recently used are dropped first).
  static constexpr size_t kFileListCacheSize = 64;

  explicit GitSourceReader(Locator locate);

  // A reader whose repo `name` lives at `repos_root + "/" + name`.
  static GitSourceReader under_root(std::string repos_root);

  // The SourceReader questions; contracts in definitions/source_reader.h.
  Result<std::vector<std::string>> list_files(const std::string& repo,
                                              const std::string& commit) override;
  Result<std::optional<std::string>> read_file(const std::string& repo, const std::string& commit,
                                               const std::string& path) override;
  Result<std::string> last_commit_touching(const std::string& repo, const std::string& commit,
                                           const std::string& path) override;
  Result<std::optional<std::vector<std::string>>> changed_paths(const std::string& repo,
                                                                const std::string& commit) override;

  // The (repo, commit) pairs asked for that the repos do not hold (yet), since the reader was
  // made or forget_missing(): what a resolution that failed for want of a commit waits on.
  const std::set<std::pair<std::string, std::string>>& missing() const { return missing_; }
  void forget_missing() { missing_.clear(); }

 private:
  // The opened repository for `repo`, opening it on first use. Failures are not cached.
  Result<Repository*> repository(const std::string& repo);
  // The sha `commit` names in `repo`; Error "commit X not found in repo 'R'".
  Result<std::string> resolve(const std::string& repo, const Repository& repository,
                              const std::string& commit);
  // Drops least recently used file lists beyond kFileListCacheSize.
  void trim_file_lists();

  Locator locate_;
  std::map<std::string, Repository> repositories_;
  // list_files answers by repo + '\0' + sha, with their recency order (front = newest).
  struct FileList {
    std::vector<std::string> files;
    std::list<std::string>::iterator recency;
  };
  std::unordered_map<std::string, FileList> file_lists_;
  std::list<std::string> file_list_recency_;
  // last_commit_touching answers by repo + '\0' + sha + '\0' + path.
  std::unordered_map<std::string, std::string> last_touch_;
  std::set<std::pair<std::string, std::string>> missing_;
};

}  // namespace testlooper::git
