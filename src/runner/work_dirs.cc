#include "runner/work_dirs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace testlooper::runner {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSubdirs[] = {"inputs", "output", "scratch", "control"};
constexpr std::string_view kClean = "clean\n";

// The slot of lock file `fd` was left clean by its last owner (see work_dirs.h).
bool says_clean(int fd) {
  char text[8] = {};
  return ::pread(fd, text, sizeof text, 0) == std::ssize(kClean) && kClean == text;
}

// One entry of a directory: its name and whether it is a directory (not a link to one).
struct Entry {
  std::string name;
  bool directory = false;
};

// The entries of `dir` but "." and "..", read with getdents64 directly: a slot is looked at
// after every run, and std::filesystem's iterator spends three more system calls per directory
// (fstat, two fcntl) and a stat per entry asked about, which cost 2 us each where system calls
// are slow (a VM without hardware paging). nullopt when `dir` cannot be opened.
std::optional<std::vector<Entry>> list_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return std::nullopt;
  std::vector<Entry> entries;
  alignas(8) char buffer[8192];
  for (;;) {
    const long n = ::syscall(SYS_getdents64, fd, buffer, sizeof buffer);
    if (n <= 0) break;
    for (long offset = 0; offset < n;) {
      const auto* d = reinterpret_cast<const struct dirent64*>(buffer + offset);
      offset += d->d_reclen;
      const std::string_view name = d->d_name;
      if (name == "." || name == "..") continue;
      bool directory = d->d_type == DT_DIR;
      if (d->d_type == DT_UNKNOWN) {
        struct stat st {};
        directory = ::fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
      }
      entries.push_back({std::string(name), directory});
    }
  }
  ::close(fd);
  return entries;
}

// Empties the slot and makes sure its standard subdirectories exist. A slot a trivial run
// leaves as it found it costs 20 system calls.
Status prepare_slot(const fs::path& slot) {
  std::error_code ec;
  bool present[std::size(kSubdirs)] = {};
  for (const Entry& entry : list_directory(slot).value_or(std::vector<Entry>{})) {
    const auto* standard = std::find_if(std::begin(kSubdirs), std::end(kSubdirs),
                                        [&](const char* name) { return entry.name == name; });
    if (standard != std::end(kSubdirs) && entry.directory) {
      empty_directory(slot / entry.name);
      present[standard - std::begin(kSubdirs)] = true;
    } else {
      fs::remove_all(slot / entry.name, ec);
    }
  }
  for (size_t i = 0; i < std::size(kSubdirs); ++i) {
    if (present[i]) continue;
    fs::create_directories(slot / kSubdirs[i], ec);
    if (ec) return Error{(slot / kSubdirs[i]).string(), "cannot create directory: " + ec.message()};
  }
  return {};
}

}  // namespace

void empty_directory(const fs::path& dir) {
  std::error_code ec;
  for (const Entry& entry : list_directory(dir).value_or(std::vector<Entry>{})) {
    fs::remove_all(dir / entry.name, ec);
  }
}

WorkDirPool::WorkDirPool(fs::path work_root, Reclaim reclaim)
    : work_root_(fs::absolute(work_root).lexically_normal()), reclaim_(std::move(reclaim)) {
  if (reclaim_) reclaim_unlocked_slots();
}

void WorkDirPool::reclaim_unlocked_slots() {
  std::error_code ec;
  std::vector<fs::path> slots;
  std::vector<int> locks;
  for (const fs::directory_entry& entry : fs::directory_iterator(work_root_, ec)) {
    const fs::path lock_path = entry.path();
    if (lock_path.extension() != ".lock") continue;
    const fs::path slot = work_root_ / lock_path.stem();
    const int fd = ::open(lock_path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) continue;
    // A slot in use by a live process is locked; only the ones of dead processes are reclaimed.
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0 && fs::exists(slot, ec) && !says_clean(fd)) {
      slots.push_back(slot);
      locks.push_back(fd);
    } else {
      ::close(fd);
    }
  }
  if (!slots.empty()) reclaim_(slots);  // all at once: one docker listing, not one per slot
  for (const int fd : locks) ::close(fd);
}

WorkDirPool::~WorkDirPool() {
  for (const auto& [slot, fd] : locks_) {
    // Released by its run: emptied, and what its commands started was ended with the run.
    if (std::find(free_.begin(), free_.end(), slot) != free_.end()) {
      (void)!::pwrite(fd, kClean.data(), kClean.size(), 0);
    }
    ::close(fd);
  }
}

Result<fs::path> WorkDirPool::claim() {
  fs::path slot;
  {
    std::lock_guard lock(mutex_);
    if (!free_.empty()) {
      slot = std::move(free_.back());
      free_.pop_back();
    }
  }
  if (!slot.empty()) return slot;  // release() left it ready: no second look per run
  Result<fs::path> locked = lock_new_slot();
  if (!locked.ok()) return locked.error();
  if (Status prepared = prepare_slot(*locked); !prepared.ok()) return prepared.error();
  return locked;
}

void WorkDirPool::release(const fs::path& slot) {
  // Whatever the run left anywhere in the slot goes now, so that claim() can hand it out as it
  // is; a slot that cannot be made ready again is not used again.
  if (!prepare_slot(slot).ok()) return;
  std::lock_guard lock(mutex_);
  free_.push_back(slot);
}

Result<fs::path> WorkDirPool::lock_new_slot() {
  std::error_code ec;
  fs::create_directories(work_root_, ec);
  if (ec) return Error{work_root_.string(), "cannot create directory: " + ec.message()};
  std::lock_guard lock(mutex_);
  for (;; ++next_) {
    const fs::path lock_path = work_root_ / (std::to_string(next_) + ".lock");
    const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Error{lock_path.string(), "cannot create lock file"};
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      continue;
    }
    const fs::path slot = work_root_ / std::to_string(next_++);
    locks_.emplace_back(slot, fd);
    // Its last owner may have died after this pool was made. Dirty from now until it is released
    // and this pool ends.
    const bool clean = says_clean(fd);
    if (::ftruncate(fd, 0) != 0) return Error{lock_path.string(), "cannot write the lock file"};
    if (reclaim_ && fs::exists(slot, ec) && !clean) reclaim_({slot});
    fs::create_directories(slot, ec);
    if (ec) return Error{slot.string(), "cannot create directory: " + ec.message()};
    return slot;
  }
}

}  // namespace testlooper::runner
