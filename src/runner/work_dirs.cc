#include "runner/work_dirs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
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

// Empties the slot and makes sure its standard subdirectories exist.
Status prepare_slot(const fs::path& slot) {
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(slot, ec)) {
    const std::string name = entry.path().filename().string();
    const bool standard =
        name == "inputs" || name == "output" || name == "scratch" || name == "control";
    if (standard && entry.is_directory() && !entry.is_symlink()) {
      empty_directory(entry.path());
    } else {
      fs::remove_all(entry.path(), ec);
    }
  }
  for (const char* subdir : kSubdirs) {
    fs::create_directories(slot / subdir, ec);
    if (ec) return Error{(slot / subdir).string(), "cannot create directory: " + ec.message()};
  }
  return {};
}

}  // namespace

void empty_directory(const fs::path& dir) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code remove_ec;
    fs::remove_all(it->path(), remove_ec);
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
