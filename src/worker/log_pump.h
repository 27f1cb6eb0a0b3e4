#pragma once
// Sends runs' logs to the server as they grow. One thread serves every run of a worker: each
// `interval` it sends what each followed log gained, and a run's end sends the rest at once.
// A thread and a 1 MiB buffer per run (the follower before this) were a fifth of a worker's CPU
// per trivial run (issue 18), and every run's log went in two messages where one does.
//
// Messages are {"type": "log", "run_id", "data"}, at most kLogChunk bytes of data each, never
// splitting a UTF-8 character of a log still being written (the JSON text carries invalid bytes
// as U+FFFD). `send` may block (back-pressure): the pump and finish() wait for it.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace testlooper::worker {

// The most a log message carries.
constexpr size_t kLogChunk = 1 << 20;
// The most of a log's end a result carries (its "log"), when the server reads it there.
constexpr size_t kResultLog = 64 << 10;

// The longest prefix of `text` that does not end inside a UTF-8 sequence.
size_t utf8_prefix(const std::string& text);

class LogPump {
 public:
  using Send = std::function<void(const std::string&)>;
  explicit LogPump(Send send, std::chrono::milliseconds interval = std::chrono::milliseconds(200));
  ~LogPump();
  LogPump(const LogPump&) = delete;
  LogPump& operator=(const LogPump&) = delete;

  struct Log;  // one run's log and how much of it was sent

  // One run's log, followed from follow() until finish() or its destruction.
  class Follower {
   public:
    Follower(LogPump& pump, std::string run_id);
    ~Follower();
    Follower(const Follower&) = delete;
    Follower& operator=(const Follower&) = delete;

    // The log was opened at `log` (from the runner's thread): sent as it grows from now on.
    void follow(const std::filesystem::path& log);
    // The run is over and its log now lives at `final_log`: the rest is sent before this
    // returns; or, when the rest is at most `keep` bytes, returned unsent, for the run's result
    // to carry (one message, not two, for a short run's log: issue 18).
    std::string finish(const std::filesystem::path& final_log, size_t keep = 0);

   private:
    LogPump& pump_;
    std::shared_ptr<Log> log_;
  };

 private:
  void add(const std::shared_ptr<Log>& log);
  void remove(const std::shared_ptr<Log>& log);
  std::string send_new(Log& log, const std::filesystem::path& path, bool final, size_t keep);
  void pump();

  Send send_;
  std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::shared_ptr<Log>> followed_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace testlooper::worker
