// make_git_exporter: SourceExporter over tl_git, one Repository per repo, exports serialised
// because a git::Repository is not thread-safe.
#include <map>
#include <mutex>

#include "git/git.h"
#include "runner/runner.h"

namespace testlooper::runner {
namespace {

class GitExporter : public SourceExporter {
 public:
  explicit GitExporter(RepoLocator locate) : locate_(std::move(locate)) {}

  Status export_tree(const std::string& repo, const std::string& commit, const std::string& path,
                     const fs::path& dest) override {
    std::lock_guard lock(mutex_);
    Result<git::Repository*> repository = open(repo);
    if (!repository.ok()) return repository.error();
    return (*repository)->export_tree(commit, path, dest.string());
  }

 private:
  Result<git::Repository*> open(const std::string& repo) {
    if (auto it = repositories_.find(repo); it != repositories_.end()) return &it->second;
    const std::optional<std::string> dir = locate_(repo);
    if (!dir) return Error{repo, "unknown repo"};
    Result<git::Repository> opened = git::Repository::open(*dir);
    if (!opened.ok()) return opened.error();
    return &repositories_.emplace(repo, std::move(opened).value()).first->second;
  }

  RepoLocator locate_;
  std::mutex mutex_;  // guards repositories_ and every use of them
  std::map<std::string, git::Repository> repositories_;
};

}  // namespace

std::unique_ptr<SourceExporter> make_git_exporter(RepoLocator locate) {
  return std::make_unique<GitExporter>(std::move(locate));
}

}  // namespace testlooper::runner
