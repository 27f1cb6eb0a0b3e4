#include "worker/log_pump.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace testlooper::worker {

namespace fs = std::filesystem;
using nlohmann::json;

struct LogPump::Log {
  std::string run_id;
  std::mutex mutex;  // held while its bytes are read and sent
  fs::path path;     // empty until the log is open, and once finished
  size_t offset = 0;
};

size_t utf8_prefix(const std::string& text) {
  size_t end = text.size();
  for (size_t back = 1; back <= 3 && back <= text.size(); ++back) {
    const auto c = static_cast<unsigned char>(text[text.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    const size_t length = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (length > back) end = text.size() - back;
    break;
  }
  return end;
}

LogPump::LogPump(Send send, std::chrono::milliseconds interval)
    : send_(std::move(send)), interval_(interval), thread_([this] { pump(); }) {}

LogPump::~LogPump() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void LogPump::pump() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    wake_.wait(lock, [this] { return stop_ || !followed_.empty(); });
    // A log is first sent an interval after it opened: a short run's whole log goes at its end.
    if (wake_.wait_for(lock, interval_, [this] { return stop_; })) break;
    const std::vector<std::shared_ptr<Log>> logs = followed_;
    lock.unlock();
    for (const auto& log : logs) {
      std::lock_guard<std::mutex> held(log->mutex);
      if (!log->path.empty()) send_new(*log, log->path, false, 0);
    }
    lock.lock();
  }
}

void LogPump::add(const std::shared_ptr<Log>& log) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    followed_.push_back(log);
  }
  wake_.notify_all();
}

void LogPump::remove(const std::shared_ptr<Log>& log) {
  std::lock_guard<std::mutex> lock(mutex_);
  followed_.erase(std::remove(followed_.begin(), followed_.end(), log), followed_.end());
}

// Sends what `path` holds past what was sent, as it is now; or, when that is at most `keep`
// bytes of a final log, returns it unsent.
std::string LogPump::send_new(Log& log, const fs::path& path, bool final, size_t keep) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  struct stat st {};
  const size_t size = ::fstat(fd, &st) == 0 ? static_cast<size_t>(st.st_size) : 0;
  if (final && log.offset < size && size - log.offset <= keep) {
    std::string rest(size - log.offset, '\0');
    const ssize_t n = ::pread(fd, rest.data(), rest.size(), static_cast<off_t>(log.offset));
    ::close(fd);
    rest.resize(static_cast<size_t>(std::max<ssize_t>(n, 0)));
    log.offset += rest.size();
    return rest;
  }
  while (log.offset < size) {
    std::string data(std::min(kLogChunk, size - log.offset), '\0');
    const ssize_t n = ::pread(fd, data.data(), data.size(), static_cast<off_t>(log.offset));
    if (n <= 0) break;
    data.resize(static_cast<size_t>(n));
    // A character being written stays for the next look; a log's end is sent as it is.
    const size_t whole = utf8_prefix(data);
    if (whole < data.size() && (!final || data.size() == kLogChunk)) {
      if (whole == 0) break;  // only a character's start (at most 3 bytes): sent whole later
      data.resize(whole);
    }
    log.offset += data.size();
    send_(json{{"type", "log"}, {"run_id", log.run_id}, {"data", data}}.dump(
        -1, ' ', false, json::error_handler_t::replace));
  }
  ::close(fd);
  return "";
}

LogPump::Follower::Follower(LogPump& pump, std::string run_id)
    : pump_(pump), log_(std::make_shared<Log>()) {
  log_->run_id = std::move(run_id);
}

LogPump::Follower::~Follower() {
  pump_.remove(log_);
  std::lock_guard<std::mutex> lock(log_->mutex);
  log_->path.clear();
}

void LogPump::Follower::follow(const fs::path& log) {
  {
    std::lock_guard<std::mutex> lock(log_->mutex);
    log_->path = log;
  }
  pump_.add(log_);
}

std::string LogPump::Follower::finish(const fs::path& final_log, size_t keep) {
  pump_.remove(log_);
  std::lock_guard<std::mutex> lock(log_->mutex);  // after a send in progress
  log_->path.clear();
  if (final_log.empty()) return "";
  return pump_.send_new(*log_, final_log, true, keep);
}

}  // namespace testlooper::worker
