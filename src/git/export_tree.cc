// Repository::export_tree: writes a (sub)tree of a commit to a directory with POSIX calls, so
// that file modes (umask applied, as git checkout does) and symlinks come out as git would
// write them, and no entry can escape the destination.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "git/git.h"
#include "git/repository_impl.h"

namespace testlooper::git {
namespace {

// An open file descriptor, closed when it goes out of scope.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now, reporting the result (close can report a failed write).
  int close() {
    const int result = ::close(fd_);
    fd_ = -1;
    return result;
  }

 private:
  int fd_;
};

}  // namespace

namespace internal {

Error errno_error(const std::string& where, const std::string& what) {
  return Error{where, what + ": " + std::strerror(errno)};
}

// True when `name` can be one path component under the destination: not empty, ".", "..",
// nor ".git" (git refuses to check those out either), and without a '/'.
bool is_safe_name(std::string_view name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos) {
    return false;
  }
  return !(name.size() == 4 && name[0] == '.' && (name[1] | 0x20) == 'g' &&
           (name[2] | 0x20) == 'i' && (name[3] | 0x20) == 't');
}

// Removes whatever non-directory is at `path`, so a new file or symlink can take its place.
Status remove_existing(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return errno_error(path, "cannot replace existing file");
  }
  return Status();
}

// Creates `path` as a regular file holding `content`, with mode 0777 or 0666 less the umask.
Status write_file(const std::string& path, std::string_view content, bool executable) {
  TL_RETURN_IF_ERROR(remove_existing(path));
  FileDescriptor fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                           executable ? 0777 : 0666));
  if (fd.get() < 0) return errno_error(path, "cannot create file");
  while (!content.empty()) {
    const ssize_t written = ::write(fd.get(), content.data(), content.size());
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) return errno_error(path, "cannot write file");
    content.remove_prefix(static_cast<size_t>(written));
  }
  if (fd.close() != 0) return errno_error(path, "cannot write file");
  return Status();
}

// Creates directory `path` unless a real directory (not a symlink to one) is already there.
Status make_directory(const std::string& path) {
  if (::mkdir(path.c_str(), 0777) == 0) return Status();
  struct stat info {};
  if (errno == EEXIST && ::lstat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) {
    return Status();
  }
  return errno_error(path, "cannot create directory");
}

}  // namespace internal

namespace {

using internal::errno_error;
using internal::is_safe_name;
using internal::make_directory;
using internal::remove_existing;
using internal::write_file;

// Writes the entries of git trees below a destination directory.
class TreeWriter {
 public:
  TreeWriter(git_repository* repo, const std::string& where) : repo_(repo), where_(where) {}

  // Writes every entry of `tree` into the existing directory `dir`.
  Status write_tree(const git_tree* tree, const std::string& dir) {
    for (size_t i = 0; i < git_tree_entrycount(tree); ++i) {
      const git_tree_entry* entry = git_tree_entry_byindex(tree, i);
      const std::string name = git_tree_entry_name(entry);
      if (!is_safe_name(name)) return Error{where_, "refusing to export tree entry '" + name + "'"};
      TL_RETURN_IF_ERROR(write_entry(entry, dir + "/" + name));
    }
    return Status();
  }

 private:
  Status write_entry(const git_tree_entry* entry, const std::string& path) {
    const git_filemode_t mode = git_tree_entry_filemode(entry);
    if (mode == GIT_FILEMODE_COMMIT) return make_directory(path);  // submodule placeholder
    if (mode == GIT_FILEMODE_TREE) {
      TL_RETURN_IF_ERROR(make_directory(path));
      git_tree* raw = nullptr;
      if (git_tree_lookup(&raw, repo_, git_tree_entry_id(entry)) != 0) {
        return internal::git_error_at(where_, "cannot read tree for " + path);
      }
      internal::TreeHandle tree(raw);
      return write_tree(tree.get(), path);
    }
    git_blob* raw = nullptr;
    if (git_blob_lookup(&raw, repo_, git_tree_entry_id(entry)) != 0) {
      return internal::git_error_at(where_, "cannot read blob for " + path);
    }
    internal::BlobHandle blob(raw);
    const std::string_view content(static_cast<const char*>(git_blob_rawcontent(blob.get())),
                                   static_cast<size_t>(git_blob_rawsize(blob.get())));
    if (mode != GIT_FILEMODE_LINK) {
      return write_file(path, content, mode == GIT_FILEMODE_BLOB_EXECUTABLE);
    }
    TL_RETURN_IF_ERROR(remove_existing(path));
    if (::symlink(std::string(content).c_str(), path.c_str()) != 0) {
      return errno_error(path, "cannot create symlink");
    }
    return Status();
  }

  git_repository* repo_;
  const std::string& where_;
};

}  // namespace

Status Repository::export_tree(const std::string& sha, const std::string& subpath,
                               const std::string& dest_dir) const {
  const std::string& where = impl_->path;
  auto commit = internal::lookup_commit(impl_->repo.get(), where, sha);
  TL_RETURN_IF_ERROR(commit);
  auto root = internal::commit_tree(commit->get(), where);
  TL_RETURN_IF_ERROR(root);
  internal::TreeHandle tree = std::move(root.value());
  auto entry = internal::entry_at(tree.get(), subpath, where);
  TL_RETURN_IF_ERROR(entry);
  if (*entry != nullptr) {
    git_tree* raw = nullptr;
    if (git_tree_entry_type(entry->get()) != GIT_OBJECT_TREE ||
        git_tree_lookup(&raw, impl_->repo.get(), git_tree_entry_id(entry->get())) != 0) {
      return Error{where, "'" + subpath + "' is not a directory in commit " + sha};
    }
    tree.reset(raw);
  } else if (subpath.find_first_not_of('/') != std::string::npos) {
    return Error{where, "no directory '" + subpath + "' in commit " + sha};
  }
  auto log = log_entry(sha);
  TL_RETURN_IF_ERROR(log);
  std::error_code error;
  std::filesystem::create_directories(dest_dir, error);
  if (error) return Error{dest_dir, "cannot create directory: " + error.message()};
  TL_RETURN_IF_ERROR(TreeWriter(impl_->repo.get(), where).write_tree(tree.get(), dest_dir));
  return internal::write_file(dest_dir + "/.git_commit", *log, false);
}

}  // namespace testlooper::git
