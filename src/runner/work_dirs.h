// WorkDirPool: the working directories (inputs/, output/, scratch/, control/) of runs, reused
// from run to run. Creating and removing directories is slow on some filesystems (ext4 with
// `discard` frees each removed directory's block synchronously: ~3.5 ms per rmdir), so a
// finished run's directories are emptied and handed to the next run instead.
//
// Each slot is work_root/<n>/ and is owned by one process at a time through an flock on
// work_root/<n>.lock, so several `testlooper` processes can share a store; a slot left by a
// crashed process is emptied when it is claimed again. Thread-safe.
#pragma once

#include <filesystem>
#include <mutex>
#include <vector>

#include "core/error.h"

namespace testlooper::runner {

class WorkDirPool {
 public:
  explicit WorkDirPool(std::filesystem::path work_root);
  ~WorkDirPool();  // releases the locks; the directories stay for the next process
  WorkDirPool(const WorkDirPool&) = delete;
  WorkDirPool& operator=(const WorkDirPool&) = delete;

  // An empty slot directory holding empty inputs/, output/, scratch/ and control/ (files of
  // the runner itself, such as the test list).
  Result<std::filesystem::path> claim();

  // Empties `slot` (from claim()) and keeps it for the next claim().
  void release(const std::filesystem::path& slot);

 private:
  Result<std::filesystem::path> lock_new_slot();

  std::filesystem::path work_root_;
  std::mutex mutex_;  // guards the members below
  std::vector<std::filesystem::path> free_;
  std::vector<int> lock_fds_;
  int next_ = 0;
};

// Removes everything inside `dir` but not `dir` itself. Best effort.
void empty_directory(const std::filesystem::path& dir);

}  // namespace testlooper::runner
