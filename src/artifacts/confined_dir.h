// ConfinedDir: a destination directory that unpack() writes archive entries into, so that no
// entry, however crafted, lands outside it (issue 10, item 1).
//
// Every directory is opened component by component from the destination with
// O_DIRECTORY|O_NOFOLLOW, never through a symlink; every file is created with
// O_CREAT|O_EXCL|O_NOFOLLOW, so nothing is ever written through an existing entry (a regular
// file of the same name is unlinked first and created anew; any other entry there is an error). Entry names are relative paths without ".." (absolute names are refused);
// symlinks are kept only when allowed and when their target is relative and stays inside the
// destination (see add_symlink). The byte and entry budgets of UnpackOptions are charged as
// entries are written.
//
// Internal to the artifacts module. Thread-compatible: one ConfinedDir per unpack.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "artifacts/artifacts.h"
#include "core/error.h"

namespace testlooper::artifacts {

// An owned file descriptor, closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

// The components of an entry name, "." and empty ones dropped. Error for an absolute name, a
// ".." component, or a NUL.
Result<std::vector<std::string>> entry_components(std::string_view name);

class ConfinedDir {
 public:
  // Creates `dest_dir` (and its parents: that path is the caller's, not the archive's) and opens
  // it. REQUIRES: `options` outlives nothing; it is copied.
  static Result<ConfinedDir> open(const fs::path& dest_dir, const UnpackOptions& options);

  // Creates directory `name` (and its parents); an existing real directory is fine.
  Status add_directory(std::string_view name, mode_t mode);

  // Creates regular file `name` (parents created), empty, open for writing. Error when anything
  // of that name exists. Call charge() for the bytes written to it, then finish_file().
  Result<Fd> create_file(std::string_view name);

  // Sets the permission bits (mode & 0777: never setuid/setgid/sticky) and the modification time
  // (when `mtime` > 0) of a file from create_file().
  static Status finish_file(const Fd& file, std::string_view name, mode_t mode, int64_t mtime);

  // Creates symlink `name` -> `target`, as UnpackOptions::symlinks allows. With kInside, `target`
  // must be relative and stay inside the destination: ".." may only lead the target, no further
  // up than the link's own depth, so the link resolves inside even through other (equally
  // confined) links.
  Status add_symlink(std::string_view name, std::string_view target);

  // Charges `bytes` more against the byte budget; error once it is exceeded.
  Status charge(uint64_t bytes);

  // Error when `bytes` more would exceed the byte budget (nothing is charged).
  Status fits(uint64_t bytes) const;

 private:
  ConfinedDir(Fd root, fs::path path, const UnpackOptions& options);

  Status count_entry(std::string_view name);
  // Error unless `target`, seen from link `name` (split into `parts`), stays inside.
  Status check_inside(std::string_view name, const std::vector<std::string>& parts,
                      std::string_view target) const;
  // Opens the directory holding `parts.back()`, creating missing directories.
  Result<Fd> open_parent(const std::vector<std::string>& parts, std::string_view name);
  Error refuse(std::string_view name, const std::string& why) const;

  Fd root_;
  fs::path path_;
  UnpackOptions options_;
  uint64_t bytes_ = 0;
  uint64_t entries_ = 0;
};

}  // namespace testlooper::artifacts
