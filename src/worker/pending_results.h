#pragma once
// The results a worker has sent and its server has not acknowledged yet, kept on disk so that a
// worker that loses its server (or is killed and started again) gives them in its next hello.
//
// One append-only journal: a line per result (its JSON object, with "run_id") and a line per
// acknowledgement ({"ack": run id}). Nothing is created or deleted per run: a file per result
// (created, renamed, deleted on the ack) cost a third of a worker's CPU per trivial run on ext4
// without a journal, where each new inode is found by skipping every recently deleted one. The
// journal is emptied in place once nothing is pending, and rewritten (atomically) only when it
// grows past a bound with results still pending. A line cut short by a crash is skipped.
// Thread-safe.

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace testlooper::worker {

class PendingResults {
 public:
  // Reads `path` (and the one-file-per-result directory `legacy_dir` of older workers, which is
  // folded in and removed), keeping what was not acknowledged.
  PendingResults(std::string path, std::string legacy_dir);
  ~PendingResults();
  PendingResults(const PendingResults&) = delete;
  PendingResults& operator=(const PendingResults&) = delete;

  // `result_json`: one JSON object, dumped without newlines (nlohmann's dump() escapes them).
  void add(const std::string& run_id, const std::string& result_json);
  void acknowledge(const std::string& run_id);
  // The results not acknowledged, oldest first.
  std::vector<std::string> all() const;

  // Bytes past which the journal is rewritten with only what is pending.
  static constexpr int64_t kRewriteBytes = 64 << 20;
  // Bytes past which an empty journal is truncated.
  static constexpr int64_t kTruncateBytes = 1 << 20;

 private:
  std::vector<std::string> in_order() const;  // mutex_ held
  void append(const std::string& line);
  void rewrite();

  mutable std::mutex mutex_;
  std::string path_;
  int fd_ = -1;
  int64_t bytes_ = 0;
  uint64_t next_ = 0;
  std::map<std::string, std::pair<uint64_t, std::string>> pending_;  // run id → (order, JSON)
};

}  // namespace testlooper::worker
