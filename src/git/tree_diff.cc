// changed_between: a tree-to-tree diff that only descends into subtrees whose ids differ.
// libgit2 1.5's git_diff_tree_to_tree iterates every entry of both trees even where whole
// subtrees are identical, which made changed_paths cost O(files) per commit; this walk costs
// O(entries of the changed directories).
#include <string>
#include <vector>

#include "git/repository_impl.h"

namespace testlooper::git::internal {
namespace {

// Collects changed paths between pairs of trees of one repository.
class TreeDiff {
 public:
  TreeDiff(git_repository* repo, const std::string& where) : repo_(repo), where_(where) {}

  // Adds the paths that differ between `old_tree` and `new_tree` (either may be null: empty),
  // each prefixed by `prefix`.
  Status diff(const git_tree* old_tree, const git_tree* new_tree, const std::string& prefix) {
    for (size_t i = 0; new_tree != nullptr && i < git_tree_entrycount(new_tree); ++i) {
      const git_tree_entry* added = git_tree_entry_byindex(new_tree, i);
      const git_tree_entry* removed =
          old_tree != nullptr ? git_tree_entry_byname(old_tree, git_tree_entry_name(added))
                              : nullptr;
      if (removed != nullptr &&
          git_tree_entry_filemode(removed) == git_tree_entry_filemode(added) &&
          git_oid_equal(git_tree_entry_id(removed), git_tree_entry_id(added))) {
        continue;
      }
      TL_RETURN_IF_ERROR(diff_entries(removed, added, prefix + git_tree_entry_name(added)));
    }
    for (size_t i = 0; old_tree != nullptr && i < git_tree_entrycount(old_tree); ++i) {
      const git_tree_entry* removed = git_tree_entry_byindex(old_tree, i);
      const char* name = git_tree_entry_name(removed);
      if (new_tree == nullptr || git_tree_entry_byname(new_tree, name) == nullptr) {
        TL_RETURN_IF_ERROR(diff_entries(removed, nullptr, prefix + name));
      }
    }
    return Status();
  }

  std::vector<std::string>& paths() { return paths_; }

 private:
  // Adds what differs between two entries at `path` (either may be null: absent).
  Status diff_entries(const git_tree_entry* removed, const git_tree_entry* added,
                      const std::string& path) {
    const bool removed_tree = removed != nullptr && is_tree(removed);
    const bool added_tree = added != nullptr && is_tree(added);
    if ((removed != nullptr && !removed_tree) || (added != nullptr && !added_tree)) {
      paths_.push_back(path);  // a file, symlink or submodule appeared, vanished or changed
    }
    if (!removed_tree && !added_tree) return Status();
    TreeHandle old_tree, new_tree;
    if (removed_tree) TL_RETURN_IF_ERROR(lookup(removed, old_tree));
    if (added_tree) TL_RETURN_IF_ERROR(lookup(added, new_tree));
    return diff(old_tree.get(), new_tree.get(), path + "/");
  }

  static bool is_tree(const git_tree_entry* entry) {
    return git_tree_entry_filemode(entry) == GIT_FILEMODE_TREE;
  }

  Status lookup(const git_tree_entry* entry, TreeHandle& tree) {
    git_tree* raw = nullptr;
    if (git_tree_lookup(&raw, repo_, git_tree_entry_id(entry)) != 0) {
      return git_error_at(where_, "cannot read tree " + to_hex(*git_tree_entry_id(entry)));
    }
    tree.reset(raw);
    return Status();
  }

  git_repository* repo_;
  const std::string& where_;
  std::vector<std::string> paths_;
};

}  // namespace

Result<std::vector<std::string>> changed_between(git_repository* repo, const git_tree* old_tree,
                                                 const git_tree* new_tree,
                                                 const std::string& where) {
  TreeDiff diff(repo, where);
  TL_RETURN_IF_ERROR(diff.diff(old_tree, new_tree, ""));
  return std::move(diff.paths());
}

}  // namespace testlooper::git::internal
