// The output of a run's commands (internal to the runner): the run's log.txt, capped, and the
// pipe each command writes its stdout and stderr into.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "runner/thread_pool.h"

namespace testlooper::runner {

// The run's log.txt: the runner's own lines (always kept) and the commands' output, of which
// only what fits under `max_bytes` (counting the whole file) is kept; the rest is counted, and a
// final line says where the log was cut. Thread-safe (a command's output is copied into it by
// its OutputPipe's thread).
class LogFile {
 public:
  LogFile(const std::filesystem::path& path, int64_t max_bytes);
  ~LogFile() { close(); }
  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;
  int fd() const { return fd_; }
  void close();
  // One line of the runner's own ("[testlooper] text"), on a line of its own.
  void line(const std::string& text);
  // Command output: kept while the log is under its cap.
  void output(const char* data, size_t size);
  // The last line of a log that was cut.
  void say_if_cut();

 private:
  void append(std::string_view text);

  std::mutex mutex_;
  int fd_;
  int64_t max_bytes_;
  int64_t size_ = 0;
  int64_t dropped_ = 0;
  bool ends_in_newline_ = true;
};

// The stdout and stderr of one command: a pipe whose reading end is copied into the log (so that
// the log can be capped however much a command writes). While the command's own process runs,
// the thread that waits for it copies (copy_until_exit), when the process has a descriptor to
// wait on; else a thread of `copiers` does (copy_on). Either way finish() copies what is left.
// Copying on the waiting thread spares each run two thread hand-offs (the copier's start and
// its end), which cost more than a trivial command where switching threads is slow. Used by
// one thread.
class OutputPipe {
 public:
  explicit OutputPipe(LogFile& log);
  ~OutputPipe() { finish(); }
  OutputPipe(const OutputPipe&) = delete;
  OutputPipe& operator=(const OutputPipe&) = delete;

  // The descriptor commands write to; -1 when the pipe could not be made.
  int write_fd() const { return write_fd_; }

  // Copies on a thread of `copiers` until finish().
  void copy_on(ThreadPool& copiers);

  // Copies on this thread until `exit_fd` is readable (the command's process ended) or
  // `deadline` passed, whichever is first.
  void copy_until_exit(int exit_fd, std::chrono::steady_clock::time_point deadline);

  // The command ended (and every process it started is gone): copies what is left and stops.
  void finish();

 private:
  // Reads once into the log: what read(2) returned.
  ssize_t read_some();
  // Copies until no writer is left (or, once finishing, until one that escaped every kill has
  // held the pipe for 5 s).
  void copy();

  LogFile& log_;
  int read_fd_ = -1;
  int write_fd_ = -1;
  std::vector<char> buffer_;
  std::atomic<bool> finishing_{false};
  std::mutex mutex_;  // guards copying_ once a copier runs
  std::condition_variable copied_;
  bool copying_ = false;  // the posted copier has not returned yet
  bool posted_ = false;   // copy_on() posted a copier; only the owning thread touches it
};

}  // namespace testlooper::runner
