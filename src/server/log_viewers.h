// LogViewers: the live-log WebSockets (/api/runs/{id}/log/live). Each viewer is sent its run's
// log file from the start, in chunks of at most kChunk bytes read on a reader thread of its own
// (never on the io thread), then each new piece as the run appends it; it is closed once the
// run has ended and it has been sent everything. Back-pressure per viewer: no more is read for
// a viewer while more than kMaxUnsent bytes wait to be written to it, so memory stays bounded
// by a few chunks per viewer whatever the log's size; a viewer that takes nothing for
// kStallSeconds is closed.
//
// Thread-safety: every public method is called on the io thread; the reader thread only reads
// files and hands results back through Socket::post. stop() (or the destructor) must run before
// the io_context of the sockets is destroyed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "server/http.h"

namespace testlooper::server {

class LogViewers {
 public:
  static constexpr size_t kChunk = 64 << 10;
  static constexpr size_t kMaxUnsent = 1 << 20;
  static constexpr double kStallSeconds = 60;

  LogViewers();
  ~LogViewers();
  LogViewers(const LogViewers&) = delete;
  LogViewers& operator=(const LogViewers&) = delete;

  // Starts streaming the log at `path` of `run_id` to `socket`; `live` when the run may still
  // append to it.
  void add(const std::string& run_id, const std::string& path,
           const std::shared_ptr<Socket>& socket, bool live);
  // Run `run_id` appended to its log.
  void appended(const std::string& run_id);
  // Run `run_id` ended: its viewers are closed once they have been sent the whole log.
  void ended(const std::string& run_id);
  void remove(const std::shared_ptr<Socket>& socket);
  // Joins the reader thread; nothing more is read or sent.
  void stop();

 private:
  struct Viewer;
  // A read of the next chunk (`read`), or a wait until `at` for a viewer's socket to drain
  // (waits never hold up the reads of other viewers).
  struct Task {
    std::shared_ptr<Viewer> viewer;
    bool read = true;
    std::chrono::steady_clock::time_point at;
  };

  void pump(const std::shared_ptr<Viewer>& viewer);
  void on_read(const std::shared_ptr<Viewer>& viewer, std::string data);
  void close(const std::shared_ptr<Viewer>& viewer, const std::string& reason);
  void submit(Task task);
  void reader_loop();

  std::map<std::string, std::set<std::shared_ptr<Viewer>>> by_run_;  // io thread only
  std::mutex mutex_;  // guards tasks_, waits_ and stopping_
  std::condition_variable wake_;
  std::deque<Task> tasks_;                                           // reads, in order
  std::multimap<std::chrono::steady_clock::time_point, Task> waits_;  // waits, by deadline
  bool stopping_ = false;
  std::thread reader_;
};

}  // namespace testlooper::server
