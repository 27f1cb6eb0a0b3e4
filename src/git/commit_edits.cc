// Writing commits: commit_edits (a new commit changing some files of its parent's tree), and
// commits_between for how far a pin is behind its branch.
#include <vector>

#include "git/git.h"
#include "git/repository_impl.h"

namespace testlooper::git {
namespace {

using internal::commit_tree;
using internal::entry_at;
using internal::git_error_at;
using internal::lookup_commit;
using internal::to_hex;

using SignatureHandle = internal::Handle<git_signature, git_signature_free>;

}  // namespace

Result<std::optional<size_t>> Repository::commits_between(const std::string& ancestor,
                                                          const std::string& descendant) const {
  auto a = lookup_commit(impl_->repo.get(), impl_->path, ancestor);
  if (!a.ok()) return a.error();
  auto d = lookup_commit(impl_->repo.get(), impl_->path, descendant);
  if (!d.ok()) return d.error();
  const git_oid* a_id = git_commit_id(a->get());
  const git_oid* d_id = git_commit_id(d->get());
  if (git_oid_equal(a_id, d_id)) return std::optional<size_t>(0);
  const int is = git_graph_descendant_of(impl_->repo.get(), d_id, a_id);
  if (is < 0) return git_error_at(impl_->path, "cannot compare " + ancestor + " and " + descendant);
  if (is == 0) return std::optional<size_t>();
  size_t ahead = 0;
  size_t behind = 0;
  if (git_graph_ahead_behind(&ahead, &behind, impl_->repo.get(), d_id, a_id) != 0) {
    return git_error_at(impl_->path, "cannot count commits from " + ancestor + " to " + descendant);
  }
  return std::optional<size_t>(ahead);
}

Result<std::string> Repository::commit_edits(const std::string& parent,
                                             const std::map<std::string, std::string>& files,
                                             const std::string& author_name,
                                             const std::string& author_email,
                                             const std::string& message) {
  git_repository* repo = impl_->repo.get();
  const std::string& where = impl_->path;
  auto parent_commit = lookup_commit(repo, where, parent);
  if (!parent_commit.ok()) return parent_commit.error();
  auto tree = commit_tree(parent_commit->get(), where);
  if (!tree.ok()) return tree.error();
  std::vector<git_tree_update> updates;
  std::vector<std::string> paths;
  paths.reserve(files.size());
  for (const auto& [path, content] : files) {
    const std::string clean = internal::trim_slashes(path);
    if (clean.empty()) return Error{where, "cannot write a file with an empty path"};
    git_tree_update update{};
    update.action = GIT_TREE_UPDATE_UPSERT;
    update.filemode = GIT_FILEMODE_BLOB;
    auto existing = entry_at(tree->get(), clean, where);
    if (!existing.ok()) return existing.error();
    if (*existing) {
      const git_filemode_t mode = git_tree_entry_filemode(existing->get());
      if (mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE) {
        return Error{where, "'" + clean + "' is not a regular file in " + parent};
      }
      update.filemode = mode;
    }
    if (git_blob_create_from_buffer(&update.id, repo, content.data(), content.size()) != 0) {
      return git_error_at(where, "cannot write the new content of '" + clean + "'");
    }
    paths.push_back(clean);
    update.path = paths.back().c_str();
    updates.push_back(update);
  }
  git_oid tree_id;
  if (git_tree_create_updated(&tree_id, repo, tree->get(), updates.size(), updates.data()) != 0) {
    return git_error_at(where, "cannot write the edited tree");
  }
  internal::TreeHandle new_tree;
  {
    git_tree* raw = nullptr;
    if (git_tree_lookup(&raw, repo, &tree_id) != 0)
      return git_error_at(where, "cannot read the edited tree");
    new_tree.reset(raw);
  }
  git_signature* raw_signature = nullptr;
  if (git_signature_now(&raw_signature, author_name.c_str(), author_email.c_str()) != 0) {
    return git_error_at(where, "bad author '" + author_name + " <" + author_email + ">'");
  }
  SignatureHandle signature(raw_signature);
  const git_commit* parents[] = {parent_commit->get()};
  git_oid commit_id;
  if (git_commit_create(&commit_id, repo, nullptr, signature.get(), signature.get(), nullptr,
                        message.c_str(), new_tree.get(), 1, parents) != 0) {
    return git_error_at(where, "cannot write the commit");
  }
  return to_hex(commit_id);
}

}  // namespace testlooper::git
