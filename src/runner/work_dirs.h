// WorkDirPool: the working directories (inputs/, output/, scratch/, control/) of runs, reused
// from run to run. Creating and removing directories is slow on some filesystems (ext4 with
// `discard` frees each removed directory's block synchronously: ~3.5 ms per rmdir), so a
// finished run's directories are emptied and handed to the next run instead.
//
// Each slot is work_root/<n>/ and is owned by one process at a time through an flock on
// work_root/<n>.lock, so several `testlooper` processes can share a store. A slot whose lock is
// free but whose directory exists was left by an earlier process, which may have died (kill -9)
// with commands still running and writing into it: `reclaim` (kill_leftovers of the slot, the
// owner its commands are started with) ends them before the slot is emptied and used again. The
// pool does that for every such slot when it is made (so a restarted worker ends its previous
// life's processes at once) and again whenever it locks a slot. A pool that ends normally writes
// "clean" into the locks of the slots its runs released (emptied, their processes ended), and a
// lock is emptied when taken: a slot whose lock says clean needs no reclaim, so that each
// `testlooper run` does not ask docker three times per slot (tens of ms each) before its first
// run. Thread-safe.
#pragma once

#include <filesystem>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include "core/error.h"

namespace testlooper::runner {

class WorkDirPool {
 public:
  // Kills whatever processes commands started in slots (their paths) still have; returns when
  // they are gone.
  using Reclaim = std::function<void(const std::vector<std::filesystem::path>& slots)>;

  explicit WorkDirPool(std::filesystem::path work_root, Reclaim reclaim = {});
  ~WorkDirPool();  // releases the locks; the directories stay for the next process
  WorkDirPool(const WorkDirPool&) = delete;
  WorkDirPool& operator=(const WorkDirPool&) = delete;

  // An empty slot directory holding empty inputs/, output/, scratch/ and control/ (files of
  // the runner itself, such as the test list).
  Result<std::filesystem::path> claim();

  // Empties `slot` (from claim()): its standard directories, and removes anything else in it;
  // keeps it, ready, for the next claim().
  void release(const std::filesystem::path& slot);

 private:
  Result<std::filesystem::path> lock_new_slot();
  void reclaim_unlocked_slots();

  std::filesystem::path work_root_;  // absolute, so that owners name the same slot every time
  Reclaim reclaim_;
  std::mutex mutex_;  // guards the members below
  std::vector<std::filesystem::path> free_;
  std::vector<std::pair<std::filesystem::path, int>> locks_;  // each slot locked and its lock
  int next_ = 0;
};

// Removes everything inside `dir` but not `dir` itself. Best effort.
void empty_directory(const std::filesystem::path& dir);

}  // namespace testlooper::runner
