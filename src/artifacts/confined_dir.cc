// ConfinedDir: writes under a directory with *at() calls that never follow a link.
#include "artifacts/confined_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace testlooper::artifacts {
namespace {

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

std::string errno_text() { return std::strerror(errno); }

}  // namespace

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::vector<std::string>> entry_components(std::string_view name) {
  if (name.find('\0') != std::string_view::npos) return Error{"", "entry name holds a NUL"};
  if (!name.empty() && name[0] == '/') return Error{"", "absolute entry name"};
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= name.size()) {
    const size_t slash = std::min(name.find('/', start), name.size());
    const std::string_view part = name.substr(start, slash - start);
    if (part == "..") return Error{"", "entry name goes up with '..'"};
    if (!part.empty() && part != ".") parts.emplace_back(part);
    start = slash + 1;
  }
  return parts;
}

ConfinedDir::ConfinedDir(Fd root, fs::path path, const UnpackOptions& options)
    : root_(std::move(root)), path_(std::move(path)), options_(options) {}

Result<ConfinedDir> ConfinedDir::open(const fs::path& dest_dir, const UnpackOptions& options) {
  std::error_code ec;
  fs::create_directories(dest_dir, ec);
  if (ec) return Error{dest_dir.string(), "cannot create directory: " + ec.message()};
  Fd root(::open(dest_dir.c_str(), kDirFlags));
  if (!root.valid()) return Error{dest_dir.string(), "cannot open directory: " + errno_text()};
  return ConfinedDir(std::move(root), dest_dir, options);
}

Error ConfinedDir::refuse(std::string_view name, const std::string& why) const {
  return Error{"", "archive entry '" + std::string(name) + "': " + why};
}

Status ConfinedDir::count_entry(std::string_view name) {
  if (++entries_ > options_.max_entries) {
    return refuse(name, "more than " + std::to_string(options_.max_entries) + " entries");
  }
  return {};
}

Status ConfinedDir::fits(uint64_t bytes) const {
  if (bytes > options_.max_bytes || bytes_ > options_.max_bytes - bytes) {
    return Error{
        "", "the archive unpacks to more than " + std::to_string(options_.max_bytes) + " bytes"};
  }
  return {};
}

Status ConfinedDir::charge(uint64_t bytes) {
  TL_RETURN_IF_ERROR(fits(bytes));
  bytes_ += bytes;
  return {};
}

Result<Fd> ConfinedDir::open_parent(const std::vector<std::string>& parts, std::string_view name) {
  Fd dir(::dup(root_.get()));
  if (!dir.valid()) return refuse(name, "cannot open: " + errno_text());
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (::mkdirat(dir.get(), parts[i].c_str(), 0755) != 0 && errno != EEXIST) {
      return refuse(name, "cannot create directory '" + parts[i] + "': " + errno_text());
    }
    Fd next(::openat(dir.get(), parts[i].c_str(), kDirFlags));
    if (!next.valid()) {
      return refuse(name, "'" + parts[i] + "' is not a directory (a link or a file is there)");
    }
    dir = std::move(next);
  }
  return dir;
}

Status ConfinedDir::add_directory(std::string_view name, mode_t mode) {
  Result<std::vector<std::string>> parts = entry_components(name);
  if (!parts.ok()) return refuse(name, parts.error().message);
  TL_RETURN_IF_ERROR(count_entry(name));
  if (parts->empty()) return {};  // "." itself
  Result<Fd> parent = open_parent(*parts, name);
  if (!parent.ok()) return parent.error();
  const char* leaf = parts->back().c_str();
  if (::mkdirat(parent->get(), leaf, 0700) != 0 && errno != EEXIST) {
    return refuse(name, "cannot create directory: " + errno_text());
  }
  Fd dir(::openat(parent->get(), leaf, kDirFlags));
  if (!dir.valid()) return refuse(name, "not a directory (a link or a file is there)");
  // Kept writable by us, so later entries can go into it.
  if (::fchmod(dir.get(), (mode & 0777) | 0700) != 0) {
    return refuse(name, "cannot set its mode: " + errno_text());
  }
  return {};
}

Result<Fd> ConfinedDir::create_file(std::string_view name) {
  Result<std::vector<std::string>> parts = entry_components(name);
  if (!parts.ok()) return refuse(name, parts.error().message);
  if (parts->empty()) return refuse(name, "a file entry without a name");
  TL_RETURN_IF_ERROR(count_entry(name));
  Result<Fd> parent = open_parent(*parts, name);
  if (!parent.ok()) return parent.error();
  const char* leaf = parts->back().c_str();
  constexpr int kCreate = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  Fd file(::openat(parent->get(), leaf, kCreate, 0600));
  if (file.valid()) return file;
  if (errno != EEXIST) return refuse(name, "cannot create: " + errno_text());
  // A regular file of that name (a later artifact of the same build staged over an earlier one,
  // or a duplicate entry) is replaced: its name is removed, never written through. Anything
  // else there (a symlink, a directory, a device) is refused.
  struct stat there {};
  if (::fstatat(parent->get(), leaf, &there, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(there.st_mode)) {
    return refuse(name, "an entry of that name that is not a regular file is already there");
  }
  if (::unlinkat(parent->get(), leaf, 0) != 0)
    return refuse(name, "cannot replace: " + errno_text());
  file = Fd(::openat(parent->get(), leaf, kCreate, 0600));
  if (file.valid()) return file;
  return refuse(name, "cannot create: " + errno_text());
}

Status ConfinedDir::finish_file(const Fd& file, std::string_view name, mode_t mode, int64_t mtime) {
  if (::fchmod(file.get(), mode & 0777) != 0) {
    return Error{"", "archive entry '" + std::string(name) + "': cannot set its mode"};
  }
  if (mtime > 0) {
    const struct timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(mtime), 0}};
    ::futimens(file.get(), times);  // best effort: a wrong mtime only costs a rebuild
  }
  return {};
}

Status ConfinedDir::add_symlink(std::string_view name, std::string_view target) {
  using Symlinks = UnpackOptions::Symlinks;
  if (options_.symlinks == Symlinks::kNone) return refuse(name, "symlinks are not accepted here");
  Result<std::vector<std::string>> parts = entry_components(name);
  if (!parts.ok()) return refuse(name, parts.error().message);
  if (parts->empty()) return refuse(name, "a symlink entry without a name");
  if (target.empty() || target.find('\0') != std::string_view::npos) {
    return refuse(name, "empty symlink target");
  }
  if (options_.symlinks == Symlinks::kInside)
    TL_RETURN_IF_ERROR(check_inside(name, *parts, target));
  TL_RETURN_IF_ERROR(count_entry(name));
  Result<Fd> parent = open_parent(*parts, name);
  if (!parent.ok()) return parent.error();
  if (::symlinkat(std::string(target).c_str(), parent->get(), parts->back().c_str()) != 0) {
    if (errno == EEXIST) return refuse(name, "an entry of that name is already there");
    return refuse(name, "cannot create symlink: " + errno_text());
  }
  return {};
}

Status ConfinedDir::check_inside(std::string_view name, const std::vector<std::string>& parts,
                                 std::string_view target) const {
  if (target[0] == '/') {
    return refuse(name, "symlink target must be a relative path inside the destination");
  }
  size_t ups = 0;
  bool below = false;
  size_t start = 0;
  while (start <= target.size()) {
    const size_t slash = std::min(target.find('/', start), target.size());
    const std::string_view part = target.substr(start, slash - start);
    if (part == ".." && below) return refuse(name, "symlink target has '..' after a name");
    if (part == "..") ++ups;
    if (!part.empty() && part != "." && part != "..") below = true;
    start = slash + 1;
  }
  if (ups > parts.size() - 1) return refuse(name, "symlink target leaves the destination");
  return {};
}

}  // namespace testlooper::artifacts
