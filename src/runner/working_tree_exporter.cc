// with_working_trees: a SourceExporter for working trees with uncommitted changes, in front of
// the git exporter (`testlooper run` on a dirty tree).
#include <mutex>

#include "git/working_tree.h"
#include "runner/runner.h"

namespace testlooper::runner {
namespace {

class WorkingTreeExporter : public SourceExporter {
 public:
  WorkingTreeExporter(std::unique_ptr<SourceExporter> commits,
                      std::map<std::string, const git::WorkingTree*> trees)
      : commits_(std::move(commits)), trees_(std::move(trees)) {}

  Status export_tree(const std::string& repo, const std::string& commit, const std::string& path,
                     const fs::path& dest) override {
    const auto it = trees_.find(repo);
    if (it == trees_.end() || it->second->id() != commit) {
      return commits_->export_tree(repo, commit, path, dest);
    }
    std::lock_guard lock(mutex_);  // a WorkingTree is not thread-safe
    return it->second->export_tree(path, dest.string());
  }

 private:
  std::unique_ptr<SourceExporter> commits_;
  const std::map<std::string, const git::WorkingTree*> trees_;
  std::mutex mutex_;
};

}  // namespace

std::unique_ptr<SourceExporter> with_working_trees(
    std::unique_ptr<SourceExporter> commits, std::map<std::string, const git::WorkingTree*> trees) {
  return std::make_unique<WorkingTreeExporter>(std::move(commits), std::move(trees));
}

}  // namespace testlooper::runner
