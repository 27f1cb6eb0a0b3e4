#include "git/working_tree.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "core/hash.h"
#include "git/repository_impl.h"

namespace testlooper::git {
namespace {

using StatusListHandle = internal::Handle<git_status_list, git_status_list_free>;

// The content git stores for the file or symlink at `file` (a symlink's is its target).
Result<std::string> read_disk(const std::string& file, bool symlink) {
  if (symlink) {
    std::string target(4096, '\0');
    const ssize_t n = ::readlink(file.c_str(), target.data(), target.size());
    if (n < 0) return internal::errno_error(file, "cannot read symlink");
    target.resize(static_cast<size_t>(n));
    return target;
  }
  std::ifstream in(file, std::ios::binary);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad() || !in.is_open()) return Error{file, "cannot read file"};
  return content;
}

std::string blob_id(const std::string& content) {
  git_oid oid;
  git_odb_hash(&oid, content.data(), content.size(), GIT_OBJECT_BLOB);
  return internal::to_hex(oid);
}

// True when `path` is `ancestor` or lies under it.
bool is_under(const std::string& path, const std::string& ancestor) {
  return ancestor.empty() || path == ancestor || path.rfind(ancestor + "/", 0) == 0;
}

// What is on disk at `dir/path` now, as a change (no file there, a directory included: deleted).
Result<WorkingTreeChange> change_on_disk(const std::string& dir, const std::string& path) {
  WorkingTreeChange change;
  change.path = path;
  struct stat info {};
  const std::string file = dir + "/" + path;
  if (::lstat(file.c_str(), &info) != 0) {
    if (errno != ENOENT && errno != ENOTDIR) return internal::errno_error(file, "cannot stat");
    change.deleted = true;
    return change;
  }
  if (!S_ISREG(info.st_mode) && !S_ISLNK(info.st_mode)) {
    // A directory (or a fifo...) holds no file at this path: HEAD's file there is gone.
    change.deleted = true;
    return change;
  }
  change.symlink = S_ISLNK(info.st_mode);
  change.executable = !change.symlink && (info.st_mode & S_IXUSR) != 0;
  if (change.symlink) {
    auto target = read_disk(file, true);
    TL_RETURN_IF_ERROR(target);
    change.blob = blob_id(*target);
    return change;
  }
  // Hashed as a stream: an untracked file may be large.
  git_oid oid;
  if (git_odb_hashfile(&oid, file.c_str(), GIT_OBJECT_BLOB) != 0) {
    return internal::git_error_at(file, "cannot read file");
  }
  change.blob = internal::to_hex(oid);
  return change;
}

// True when `change` leaves the path as HEAD's tree has it (same blob and mode, or absent).
bool same_as_head(const git_tree* head, const WorkingTreeChange& change) {
  git_tree_entry* raw = nullptr;
  if (git_tree_entry_bypath(&raw, head, change.path.c_str()) != 0) return change.deleted;
  internal::TreeEntryHandle entry(raw);
  if (change.deleted) return false;
  const git_filemode_t mode = change.symlink      ? GIT_FILEMODE_LINK
                              : change.executable ? GIT_FILEMODE_BLOB_EXECUTABLE
                                                  : GIT_FILEMODE_BLOB;
  return git_tree_entry_filemode(entry.get()) == mode &&
         internal::to_hex(*git_tree_entry_id(entry.get())) == change.blob;
}

// Every path git status reports as differing from HEAD in the index or the working tree.
Result<std::set<std::string>> status_paths(git_repository* repo, const std::string& where) {
  git_status_options options = GIT_STATUS_OPTIONS_INIT;
  options.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
  options.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS |
                  GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
  git_status_list* raw = nullptr;
  if (git_status_list_new(&raw, repo, &options) != 0) {
    return internal::git_error_at(where, "cannot read the working tree's status");
  }
  StatusListHandle list(raw);
  std::set<std::string> paths;
  for (size_t i = 0; i < git_status_list_entrycount(list.get()); ++i) {
    const git_status_entry* entry = git_status_byindex(list.get(), i);
    for (const git_diff_delta* delta : {entry->head_to_index, entry->index_to_workdir}) {
      if (delta == nullptr) continue;
      for (const char* path : {delta->old_file.path, delta->new_file.path}) {
        if (path != nullptr && *path != '\0') paths.insert(path);
      }
    }
  }
  return paths;
}

// What the working tree at `dir` holds that commit `head` does not, sorted by path; none for a
// bare repository.
Result<std::vector<WorkingTreeChange>> changes_from_head(const std::string& dir,
                                                         const std::string& head) {
  auto opened = internal::open_repository(dir, "cannot open the repository");
  TL_RETURN_IF_ERROR(opened);
  internal::RepositoryHandle repo = std::move(*opened);
  std::vector<WorkingTreeChange> changes;
  if (git_repository_is_bare(repo.get())) return changes;
  auto commit = internal::lookup_commit(repo.get(), dir, head);
  TL_RETURN_IF_ERROR(commit);
  auto head_tree = internal::commit_tree(commit->get(), dir);
  TL_RETURN_IF_ERROR(head_tree);
  auto paths = status_paths(repo.get(), dir);  // a std::set: sorted
  TL_RETURN_IF_ERROR(paths);
  for (const std::string& path : *paths) {
    auto change = change_on_disk(dir, path);
    TL_RETURN_IF_ERROR(change);
    if (!same_as_head(head_tree->get(), *change)) changes.push_back(std::move(change.value()));
  }
  return changes;
}

std::string hash_changes(const std::vector<WorkingTreeChange>& changes) {
  std::string text;
  for (const WorkingTreeChange& c : changes) {
    text += c.path + '\0';
    text += c.deleted ? "deleted"
                      : (c.symlink      ? "120000 "
                         : c.executable ? "100755 "
                                        : "100644 ") +
                            c.blob;
    text += '\n';
  }
  return sha256_hex(text);
}

// Creates the parent directories of `rel` under `dest`, refusing unsafe names.
Status make_parents(const std::string& dest, const std::string& rel) {
  std::string dir = dest;
  size_t begin = 0;
  for (size_t slash; (slash = rel.find('/', begin)) != std::string::npos; begin = slash + 1) {
    const std::string name = rel.substr(begin, slash - begin);
    if (!internal::is_safe_name(name)) return Error{rel, "refusing to export this path"};
    dir += "/" + name;
    TL_RETURN_IF_ERROR(internal::make_directory(dir));
  }
  if (!internal::is_safe_name(rel.substr(begin))) return Error{rel, "refusing to export this path"};
  return Status();
}

}  // namespace

WorkingTree::WorkingTree(std::string dir, Repository repository, std::string head)
    : dir_(std::move(dir)), repository_(std::move(repository)), head_(std::move(head)) {}

Result<WorkingTree> WorkingTree::open(const std::string& dir) {
  auto repository = Repository::open(dir);
  TL_RETURN_IF_ERROR(repository);
  auto head = repository->resolve("HEAD");
  if (!head.ok()) return Error{dir, "the repo has no commit yet (HEAD names none)"};
  WorkingTree tree(dir, std::move(repository.value()), *head);
  auto changes = changes_from_head(dir, tree.head_);
  TL_RETURN_IF_ERROR(changes);
  tree.changes_ = std::move(changes.value());
  if (tree.dirty()) tree.changes_hash_ = hash_changes(tree.changes_);
  return tree;
}

std::string WorkingTree::id() const { return dirty() ? head_ + "+dirty:" + changes_hash_ : head_; }

const WorkingTreeChange* WorkingTree::find_change(const std::string& path) const {
  auto it =
      std::lower_bound(changes_.begin(), changes_.end(), path,
                       [](const WorkingTreeChange& c, const std::string& p) { return c.path < p; });
  return it != changes_.end() && it->path == path ? &*it : nullptr;
}

Result<std::string> WorkingTree::read_change(const WorkingTreeChange& change) const {
  auto content = read_disk(dir_ + "/" + change.path, change.symlink);
  if (!content.ok() || blob_id(*content) != change.blob) {
    return Error{dir_ + "/" + change.path,
                 "changed while testlooper read the working tree; run again to test the new state"};
  }
  return content;
}

Result<std::vector<std::string>> WorkingTree::list_files() const {
  auto files = repository_.list_files(head_);
  TL_RETURN_IF_ERROR(files);
  std::set<std::string> all(files->begin(), files->end());
  for (const WorkingTreeChange& change : changes_) {
    if (change.deleted) all.erase(change.path);
    if (!change.deleted) all.insert(change.path);
  }
  return std::vector<std::string>(all.begin(), all.end());
}

Result<std::optional<std::string>> WorkingTree::read_file(const std::string& path) const {
  const WorkingTreeChange* change = find_change(internal::trim_slashes(path));
  if (change == nullptr) return repository_.read_file(head_, path);
  if (change->deleted) return std::optional<std::string>();
  auto content = read_change(*change);
  TL_RETURN_IF_ERROR(content);
  return std::optional(std::move(content.value()));
}

Result<std::string> WorkingTree::last_commit_touching(const std::string& path) const {
  const std::string trimmed = internal::trim_slashes(path);
  for (const WorkingTreeChange& change : changes_) {
    if (is_under(change.path, trimmed) || is_under(trimmed, change.path)) return id();
  }
  return repository_.last_commit_touching(head_, path);
}

Result<std::optional<std::vector<std::string>>> WorkingTree::changed_paths() const {
  auto paths = repository_.changed_paths(head_);
  TL_RETURN_IF_ERROR(paths);
  std::set<std::string> all;
  if (*paths) all.insert((*paths)->begin(), (*paths)->end());
  for (const WorkingTreeChange& change : changes_) all.insert(change.path);
  return std::optional(std::vector<std::string>(all.begin(), all.end()));
}

Status WorkingTree::export_head(const std::string& sub, const std::string& dest_dir) const {
  auto head_files = repository_.list_files(head_);
  TL_RETURN_IF_ERROR(head_files);
  if (std::any_of(head_files->begin(), head_files->end(),
                  [&](const std::string& f) { return is_under(f, sub); })) {
    return repository_.export_tree(head_, sub, dest_dir);
  }
  // A directory only the working tree has: just .git_commit, the changes come next.
  std::error_code error;
  std::filesystem::create_directories(dest_dir, error);
  if (error) return Error{dest_dir, "cannot create directory: " + error.message()};
  auto log = repository_.log_entry(head_);
  TL_RETURN_IF_ERROR(log);
  return internal::write_file(dest_dir + "/.git_commit", *log, false);
}

Status WorkingTree::write_change(const WorkingTreeChange& change, const std::string& dest_dir,
                                 const std::string& rel) const {
  TL_RETURN_IF_ERROR(make_parents(dest_dir, rel));
  auto content = read_change(change);
  TL_RETURN_IF_ERROR(content);
  const std::string file = dest_dir + "/" + rel;
  if (!change.symlink) return internal::write_file(file, *content, change.executable);
  TL_RETURN_IF_ERROR(internal::remove_existing(file));
  if (::symlink(content->c_str(), file.c_str()) != 0) {
    return internal::errno_error(file, "cannot create symlink");
  }
  return Status();
}

Status WorkingTree::export_tree(const std::string& subpath, const std::string& dest_dir) const {
  const std::string sub = internal::trim_slashes(subpath);
  TL_RETURN_IF_ERROR(export_head(sub, dest_dir));
  const size_t prefix = sub.empty() ? 0 : sub.size() + 1;
  // Deletions first: a deleted file may be where a new directory goes.
  for (const WorkingTreeChange& change : changes_) {
    if (!change.deleted || !is_under(change.path, sub) || change.path == sub) continue;
    TL_RETURN_IF_ERROR(internal::remove_existing(dest_dir + "/" + change.path.substr(prefix)));
  }
  for (const WorkingTreeChange& change : changes_) {
    if (change.deleted || !is_under(change.path, sub) || change.path == sub) continue;
    TL_RETURN_IF_ERROR(write_change(change, dest_dir, change.path.substr(prefix)));
  }
  return Status();
}

}  // namespace testlooper::git
