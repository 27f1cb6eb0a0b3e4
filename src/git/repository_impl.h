// PRIVATE to src/git: included only by src/git/*.cc, never by a public header, because it pulls
// in libgit2. Holds the RAII handles for libgit2 objects, Repository::Impl, and the small helpers
// the Repository methods share (error conversion, commit lookup, oid formatting).
#pragma once

#include <git2.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "git/git.h"

namespace testlooper::git {
namespace internal {

// unique_ptr deleter calling libgit2's free function for T.
template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* object) const { Free(object); }
};

template <class T, void (*Free)(T*)>
using Handle = std::unique_ptr<T, Deleter<T, Free>>;

using RepositoryHandle = Handle<git_repository, git_repository_free>;
using ObjectHandle = Handle<git_object, git_object_free>;
using CommitHandle = Handle<git_commit, git_commit_free>;
using TreeHandle = Handle<git_tree, git_tree_free>;
using TreeEntryHandle = Handle<git_tree_entry, git_tree_entry_free>;
using BlobHandle = Handle<git_blob, git_blob_free>;
using ReferenceHandle = Handle<git_reference, git_reference_free>;
using BranchIteratorHandle = Handle<git_branch_iterator, git_branch_iterator_free>;
using ConfigHandle = Handle<git_config, git_config_free>;
using OdbHandle = Handle<git_odb, git_odb_free>;

// A git_buf released when it goes out of scope.
struct OwnedBuf {
  git_buf buf = GIT_BUF_INIT;
  OwnedBuf() = default;
  OwnedBuf(const OwnedBuf&) = delete;
  OwnedBuf& operator=(const OwnedBuf&) = delete;
  ~OwnedBuf() { git_buf_dispose(&buf); }
};

// Initialises libgit2 once per process (never shut down: handles may outlive main's locals).
void init_libgit2();

// The repository at `path` (git_repository_open_ext, no search upwards) with its object database
// already open. libgit2 1.5 opens it lazily, and when that first open fails (the objects folder
// removed under an open repository, an unreadable objects/info/alternates) it leaks the half-made
// database on every lookup; here a database that cannot be opened is an empty one instead, so its
// objects are not found, and the references stay readable, as before.
Result<RepositoryHandle> open_repository(const std::string& path, const std::string& what);

// An Error at `where` saying `what`, followed by libgit2's last error message when there is one.
Error git_error_at(const std::string& where, const std::string& what);

// 40 lowercase hex characters.
std::string to_hex(const git_oid& oid);

// The commit `rev` names (rev-parse syntax, tags peeled). Error names `rev`.
Result<CommitHandle> lookup_commit(git_repository* repo, const std::string& where,
                                   const std::string& rev);

// The commit with id `id`.
Result<CommitHandle> lookup_commit(git_repository* repo, const std::string& where,
                                   const git_oid& id);

// The root tree of `commit`.
Result<TreeHandle> commit_tree(const git_commit* commit, const std::string& where);

// `path` without leading and trailing '/'.
std::string trim_slashes(const std::string& path);

// The tree entry at `path` ('/'-separated, leading/trailing slashes ignored) in `tree`; nullptr
// when there is none. An Error only for failures other than "not found".
Result<TreeEntryHandle> entry_at(const git_tree* tree, const std::string& path,
                                 const std::string& where);

// Paths (files, symlinks, submodules; never directories) that differ between two trees, in
// no particular order, possibly repeated; a null tree is empty. Renames are not detected.
Result<std::vector<std::string>> changed_between(git_repository* repo, const git_tree* old_tree,
                                                 const git_tree* new_tree,
                                                 const std::string& where);

// The shortest prefix of `id`, at least as long as git's default abbreviation for this
// repository (core.abbrev, or "auto" scaled by the packed object count), naming one object.
Result<std::string> unique_abbrev(git_repository* repo, const git_oid& id,
                                  const std::string& where);

// Key for per-(commit, path) memos: the raw oid bytes followed by the path.
std::string memo_key(const git_oid& commit, const std::string& path);

// Writing files as git checkout would (export_tree.cc), also used for working trees.
// An Error at `where`: `what` followed by strerror(errno).
Error errno_error(const std::string& where, const std::string& what);
// True when `name` can be one path component under a destination: not empty, ".", "..",
// nor ".git" (in any case), and without a '/'.
bool is_safe_name(std::string_view name);
// Removes whatever non-directory is at `path` (nothing there is fine).
Status remove_existing(const std::string& path);
// Creates `path` as a regular file holding `content`, mode 0777 or 0666 less the umask,
// replacing a file or symlink there and never writing through a symlink.
Status write_file(const std::string& path, std::string_view content, bool executable);
// Creates directory `path` unless a real directory (not a symlink to one) is already there.
Status make_directory(const std::string& path);

}  // namespace internal

// The state behind a Repository: the libgit2 handle and memos of pure answers.
struct Repository::Impl {
  internal::RepositoryHandle repo;
  std::string path;  // as given to open(); the `where` of every Error
  // last_commit_touching answers, by memo_key(commit, path).
  std::unordered_map<std::string, git_oid> last_touch;
};

}  // namespace testlooper::git
