// Repository::last_commit_touching: walks the first-parent chain comparing the tree entry at a
// path with the parent's, memoising the answer for every commit walked so that a later call from
// any of them (or from a descendant) stops as soon as it meets a known commit.
#include <vector>

#include "git/git.h"
#include "git/repository_impl.h"

namespace testlooper::git {
namespace {

// What a commit's tree holds at one path: nothing, or an object id with a file mode.
struct EntryState {
  bool present = false;
  git_oid id{};
  git_filemode_t mode = GIT_FILEMODE_UNREADABLE;

  bool operator==(const EntryState& other) const {
    if (present != other.present) return false;
    return !present || (mode == other.mode && git_oid_equal(&id, &other.id));
  }
};

// The entry at `path` ("" = the root tree) in `commit`'s tree.
Result<EntryState> entry_state(const git_commit* commit, const std::string& path,
                               const std::string& where) {
  if (path.empty()) return EntryState{true, *git_commit_tree_id(commit), GIT_FILEMODE_TREE};
  auto tree = internal::commit_tree(commit, where);
  TL_RETURN_IF_ERROR(tree);
  auto entry = internal::entry_at(tree->get(), path, where);
  TL_RETURN_IF_ERROR(entry);
  if (*entry == nullptr) return EntryState{};
  return EntryState{true, *git_tree_entry_id(entry->get()), git_tree_entry_filemode(entry->get())};
}

}  // namespace

Result<std::string> Repository::last_commit_touching(const std::string& sha,
                                                     const std::string& path) const {
  const std::string& where = impl_->path;
  const std::string clean = internal::trim_slashes(path);  // "dir/" shares "dir"'s memo
  auto start = internal::lookup_commit(impl_->repo.get(), where, sha);
  TL_RETURN_IF_ERROR(start);
  internal::CommitHandle current = std::move(start.value());
  std::optional<EntryState> current_state;  // computed lazily: a memo hit needs none
  std::vector<git_oid> walked;              // commits whose answer is `answer`
  git_oid answer;
  while (true) {
    const git_oid id = *git_commit_id(current.get());
    if (auto hit = impl_->last_touch.find(internal::memo_key(id, clean));
        hit != impl_->last_touch.end()) {
      answer = hit->second;
      break;
    }
    walked.push_back(id);
    if (git_commit_parentcount(current.get()) == 0) {
      answer = id;
      break;
    }
    if (!current_state) {
      auto state = entry_state(current.get(), clean, where);
      TL_RETURN_IF_ERROR(state);
      current_state = *state;
    }
    auto parent =
        internal::lookup_commit(impl_->repo.get(), where, *git_commit_parent_id(current.get(), 0));
    TL_RETURN_IF_ERROR(parent);
    auto parent_state = entry_state(parent->get(), clean, where);
    TL_RETURN_IF_ERROR(parent_state);
    if (!(*parent_state == *current_state)) {
      answer = id;
      break;
    }
    current = std::move(parent.value());
    current_state = *parent_state;
  }
  for (const git_oid& id : walked) impl_->last_touch.emplace(internal::memo_key(id, clean), answer);
  return internal::to_hex(answer);
}

}  // namespace testlooper::git
