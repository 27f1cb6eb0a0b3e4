// WorkingTree: a repository's working tree as `testlooper run` tests it -- the files on disk,
// tracked or untracked, that git does not ignore -- seen as HEAD plus a list of changes.
//
// open() takes a snapshot of what differs from HEAD (git status: staged and unstaged changes to
// tracked files, untracked files that no .gitignore excludes; submodules are not looked into):
// each changed path with the blob id and mode of its content on disk, or "deleted". A path whose
// content and mode on disk equal HEAD's is no change. The working tree's identity, id(), is
// HEAD's sha when nothing differs, else "<HEAD sha>+dirty:<changes_hash()>": a different string
// for every different content, so nothing resolved or built from a dirty tree shares an
// identity with the commit's (or another dirty tree's) unless it reads none of the changes.
//
// Reads answer with the snapshot's content: unchanged files come from HEAD's git objects, and a
// changed file is read from disk and checked against the blob id taken at open(), so a file
// edited while testlooper works is an Error ("changed while testlooper read it"), never a silent
// mix of two states. Owns its Repository: movable, not copyable, not thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "git/git.h"

namespace testlooper::git {

// One path where the working tree differs from HEAD.
struct WorkingTreeChange {
  std::string path;  // '/'-separated, relative to the working tree
  bool deleted = false;
  bool executable = false;
  bool symlink = false;
  std::string blob;  // 40-hex git blob id of the content on disk; "" when deleted
};

class WorkingTree {
 public:
  // Snapshots the working tree of the repository at `dir` (see the file comment). A bare
  // repository is a clean tree at HEAD. Error when `dir` is no repository or HEAD names no
  // commit yet.
  static Result<WorkingTree> open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const std::string& head() const { return head_; }
  bool dirty() const { return !changes_.empty(); }
  const std::vector<WorkingTreeChange>& changes() const { return changes_; }
  // sha256 (64 hex) over the sorted changes; "" when clean.
  const std::string& changes_hash() const { return changes_hash_; }
  // head() when clean, else head() + "+dirty:" + changes_hash().
  std::string id() const;

  // The SourceReader questions (definitions/source_reader.h) about the working tree.
  Result<std::vector<std::string>> list_files() const;
  Result<std::optional<std::string>> read_file(const std::string& path) const;
  // id() when a change is at, under or above `path`; else HEAD's answer.
  Result<std::string> last_commit_touching(const std::string& path) const;
  // HEAD's changed paths and the working tree's changes, sorted and unique.
  Result<std::optional<std::vector<std::string>>> changed_paths() const;

  // Writes the working tree's files (or those under `subpath`, "" = all) into `dest_dir` as
  // Repository::export_tree does, with `.git_commit` holding HEAD's log entry (what `git log -n 1`
  // prints in the working tree). Error when a changed file no longer has its snapshot content.
  Status export_tree(const std::string& subpath, const std::string& dest_dir) const;

 private:
  WorkingTree(std::string dir, Repository repository, std::string head);
  // The content of change `change` on disk, checked against its blob id.
  Result<std::string> read_change(const WorkingTreeChange& change) const;
  const WorkingTreeChange* find_change(const std::string& path) const;
  // Writes HEAD's files under `sub` (or only .git_commit when HEAD has none there).
  Status export_head(const std::string& sub, const std::string& dest_dir) const;
  // Writes changed file `change` as `dest_dir/rel`.
  Status write_change(const WorkingTreeChange& change, const std::string& dest_dir,
                      const std::string& rel) const;

  std::string dir_;
  Repository repository_;
  std::string head_;
  std::vector<WorkingTreeChange> changes_;  // sorted by path
  std::string changes_hash_;
};

}  // namespace testlooper::git
