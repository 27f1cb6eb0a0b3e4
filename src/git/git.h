// Read access to git repositories, wrapped around libgit2: commits, trees, blobs, branches,
// first-parent history, the `git log -n 1` text of a commit, and exporting a tree to disk.
//
// Only plain types cross this header; libgit2 stays inside src/git/*.cc. Every failure comes
// back as an Error whose `where` is the repository path given to open(). A Repository owns its
// libgit2 handle and a memo of answers that are pure functions of commit objects; it is movable,
// not copyable, and not thread-safe (use one per thread). A moved-from Repository may only be
// destroyed or assigned to.
//
// Revisions: every `sha` argument accepts anything resolve() does ("HEAD", a branch, a short or
// full sha, "HEAD~2", a tag); tags are peeled to the commit they name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace testlooper::git {

// One commit as stored: identity, parents in order, author, and message.
struct CommitInfo {
  std::string sha;                   // 40 lowercase hex
  std::vector<std::string> parents;  // first parent first; empty for a root commit
  std::string author_name;
  std::string author_email;
  int64_t author_time = 0;  // seconds since the epoch (UTC)
  std::string subject;      // first line of the message, without its newline
  std::string message;      // full message as stored (leading blank lines removed)
};

// A local branch and the commit it points at.
struct BranchHead {
  std::string name;  // short name: "main", "feature/x"
  std::string sha;   // 40 lowercase hex
};

// One opened repository (bare or with a working tree).
class Repository {
 public:
  // Opens the repository at `path`: a bare repository, a `.git` directory or a working tree
  // whose `.git` is directly inside `path`. Never searches parent directories.
  static Result<Repository> open(const std::string& path);

  Repository(Repository&& other) noexcept;
  Repository& operator=(Repository&& other) noexcept;
  Repository(const Repository&) = delete;
  Repository& operator=(const Repository&) = delete;
  ~Repository();

  // The 40-hex sha of the commit `rev` names (git rev-parse syntax, peeled to a commit).
  // Error (naming `rev`) when it names nothing or something that is not a commit.
  Result<std::string> resolve(const std::string& rev) const;

  // The commit `sha` names.
  Result<CommitInfo> commit(const std::string& sha) const;

  // Every blob path (files and symlinks, no directories, no submodules) in the commit's tree,
  // '/'-separated, sorted bytewise.
  Result<std::vector<std::string>> list_files(const std::string& sha) const;

  // The content of the blob at `path` in the commit's tree (a symlink's content is its target);
  // nullopt when `path` is absent or names a directory or submodule.
  Result<std::optional<std::string>> read_file(const std::string& sha,
                                               const std::string& path) const;

  // Paths that differ between the commit's tree and its first parent's (tree-to-tree, no rename
  // detection: a rename lists both old and new path), sorted and unique; nullopt for a root.
  Result<std::optional<std::vector<std::string>>> changed_paths(const std::string& sha) const;

  // The newest commit C on the first-parent chain from `sha` whose entry at `path` (a file or a
  // directory; id and mode) differs from C's first parent's, or the root when none differs.
  // An absent path equals an absent path. "" means the whole tree. Unlike `git log -1 -- path`
  // a change brought in by a merge is attributed to the merge commit. Answers are memoised per
  // (commit, path), so resolving a whole history commit by commit is linear overall.
  Result<std::string> last_commit_touching(const std::string& sha, const std::string& path) const;

  // Every local branch, sorted by name.
  Result<std::vector<BranchHead>> branches() const;

  // `sha`, its first parent, its first parent's first parent, ... newest first, at most `limit`.
  Result<std::vector<std::string>> first_parent_history(const std::string& sha, size_t limit) const;

  // How many commits `descendant` has that `ancestor` has not (git rev-list --count
  // ancestor..descendant); nullopt when `ancestor` is not an ancestor of `descendant` (or equal).
  Result<std::optional<size_t>> commits_between(const std::string& ancestor,
                                                const std::string& descendant) const;

  // Writes a new commit whose parent is `parent` and whose tree is the parent's with the files
  // of `files` (path -> new content) replaced or added (an existing file keeps its mode), and
  // returns its sha. Author and committer are `author_name` <`author_email`> now. Nothing else
  // changes: no branch, no index, no working tree is touched (the commit is on no branch yet).
  Result<std::string> commit_edits(const std::string& parent,
                                   const std::map<std::string, std::string>& files,
                                   const std::string& author_name, const std::string& author_email,
                                   const std::string& message);

  // Exactly what `git --no-pager log --no-mailmap -n 1 <sha>` prints in git's default (medium)
  // format, final newline included. Merge commits get git's "Merge:" line, parents abbreviated
  // as git does (core.abbrev, or "auto": 7+ characters scaled by the packed object count,
  // lengthened until unique) -- the one part that depends on more than the commit itself.
  Result<std::string> log_entry(const std::string& sha) const;

  // Writes the files of the commit's tree, or of its subdirectory `subpath` ("" = whole tree),
  // into `dest_dir` (created with parents), keeping executable bits and symlinks, plus
  // `dest_dir/.git_commit` holding log_entry(sha). Submodules become empty directories. Files
  // already in `dest_dir` with the same names are replaced; others are left alone. Blob content
  // is written raw (no smudge filters, no line-ending conversion).
  Status export_tree(const std::string& sha, const std::string& subpath,
                     const std::string& dest_dir) const;

 private:
  struct Impl;
  explicit Repository(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace testlooper::git
