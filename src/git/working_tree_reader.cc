#include "git/working_tree_reader.h"

namespace testlooper::git {

const WorkingTree* WorkingTreeReader::tree(const std::string& repo,
                                           const std::string& commit) const {
  const auto it = trees_.find(repo);
  return it != trees_.end() && it->second->id() == commit ? it->second : nullptr;
}

Result<std::vector<std::string>> WorkingTreeReader::list_files(const std::string& repo,
                                                               const std::string& commit) {
  if (const WorkingTree* t = tree(repo, commit)) return t->list_files();
  return commits_.list_files(repo, commit);
}

Result<std::optional<std::string>> WorkingTreeReader::read_file(const std::string& repo,
                                                                const std::string& commit,
                                                                const std::string& path) {
  if (const WorkingTree* t = tree(repo, commit)) return t->read_file(path);
  return commits_.read_file(repo, commit, path);
}

Result<std::string> WorkingTreeReader::last_commit_touching(const std::string& repo,
                                                            const std::string& commit,
                                                            const std::string& path) {
  if (const WorkingTree* t = tree(repo, commit)) return t->last_commit_touching(path);
  return commits_.last_commit_touching(repo, commit, path);
}

Result<std::optional<std::vector<std::string>>> WorkingTreeReader::changed_paths(
    const std::string& repo, const std::string& commit) {
  if (const WorkingTree* t = tree(repo, commit)) return t->changed_paths();
  return commits_.changed_paths(repo, commit);
}

}  // namespace testlooper::git
