#include "server/log_viewers.h"

#include <utility>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "server/protocol.h"

namespace testlooper::server {

struct LogViewers::Viewer {
  std::string run_id;
  std::string path;
  std::shared_ptr<Socket> socket;
  uint64_t offset = 0;  // bytes of the log read so far (held included)
  bool live = true;     // the run may still append
  bool busy = false;    // a task for it is in flight
  bool more = false;    // the run appended while a task was in flight
  bool closed = false;
  std::string held;  // a chunk read but not sent: the socket had too much unsent
  double stalled_since = 0;
  bool drained_wait = false;  // the pending wait is for an ended run's socket to drain
};

namespace {

// The size of `data` without a UTF-8 sequence cut short at its end: each chunk goes out as a
// text message, which a browser refuses unless it is valid UTF-8 on its own.
size_t whole_characters(const std::string& data) {
  for (size_t back = 1; back <= std::min<size_t>(4, data.size()); ++back) {
    const auto byte = static_cast<unsigned char>(data[data.size() - back]);
    if ((byte & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    const size_t length = byte < 0x80 ? 1 : byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : 2;
    return length > back ? data.size() - back : data.size();
  }
  return data.size();
}

// Up to LogViewers::kChunk bytes of `path` from `offset`, ending on a whole character ("" at
// its end or when unreadable).
std::string read_chunk(const std::string& path, uint64_t offset) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return "";
  std::string data(LogViewers::kChunk, '\0');
  const ssize_t n = ::pread(fd, data.data(), data.size(), static_cast<off_t>(offset));
  ::close(fd);
  data.resize(n > 0 ? static_cast<size_t>(n) : 0);
  data.resize(whole_characters(data));
  return data;
}

}  // namespace

LogViewers::LogViewers() : reader_([this] { reader_loop(); }) {}

LogViewers::~LogViewers() { stop(); }

void LogViewers::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  reader_.join();
  std::lock_guard<std::mutex> lock(mutex_);
  tasks_.clear();
}

void LogViewers::add(const std::string& run_id, const std::string& path,
                     const std::shared_ptr<Socket>& socket, bool live) {
  auto viewer = std::make_shared<Viewer>();
  viewer->run_id = run_id;
  viewer->path = path;
  viewer->socket = socket;
  viewer->live = live;
  by_run_[run_id].insert(viewer);
  pump(viewer);
}

void LogViewers::appended(const std::string& run_id) {
  auto it = by_run_.find(run_id);
  if (it == by_run_.end()) return;
  const auto viewers = it->second;  // pump may close one
  for (const auto& viewer : viewers) pump(viewer);
}

void LogViewers::ended(const std::string& run_id) {
  auto it = by_run_.find(run_id);
  if (it == by_run_.end()) return;
  const auto viewers = it->second;  // pump may close one
  for (const auto& viewer : viewers) {
    viewer->live = false;
    pump(viewer);
  }
}

void LogViewers::remove(const std::shared_ptr<Socket>& socket) {
  for (auto& [run_id, viewers] : by_run_) {
    for (const auto& viewer : viewers) {
      if (viewer->socket != socket) continue;
      viewer->closed = true;
      viewers.erase(viewer);
      if (viewers.empty()) by_run_.erase(run_id);
      return;
    }
  }
}

void LogViewers::close(const std::shared_ptr<Viewer>& viewer, const std::string& reason) {
  viewer->socket->close(reason);
  remove(viewer->socket);
}

// Sends what is held when the socket can take it, then reads on; or waits for it to drain.
void LogViewers::pump(const std::shared_ptr<Viewer>& viewer) {
  if (viewer->closed) return;
  if (viewer->busy) {
    viewer->more = true;
    return;
  }
  const double now = now_seconds();
  if (!viewer->held.empty()) {
    if (viewer->socket->buffered() >= kMaxUnsent) {
      if (viewer->stalled_since == 0) viewer->stalled_since = now;
      if (now - viewer->stalled_since > kStallSeconds)
        return close(viewer, "the viewer reads too slowly");
      viewer->busy = true;
      return submit(
          {viewer, false, std::chrono::steady_clock::now() + std::chrono::milliseconds(20)});
    }
    viewer->stalled_since = 0;
    viewer->socket->send(viewer->held);
    viewer->held.clear();
  }
  viewer->busy = true;
  viewer->more = false;
  submit({viewer, true, {}});
}

void LogViewers::on_read(const std::shared_ptr<Viewer>& viewer, std::string data) {
  viewer->busy = false;
  if (viewer->closed) return;
  if (data.empty()) {
    if (!viewer->live && viewer->socket->buffered() == 0) return close(viewer, "");
    if (!viewer->live) {
      // Closed once everything is written: a close now would drop what is still queued. A
      // viewer that takes nothing more is closed after kStallSeconds all the same.
      const double now = now_seconds();
      if (viewer->stalled_since == 0) viewer->stalled_since = now;
      if (now - viewer->stalled_since > kStallSeconds) return close(viewer, "the viewer reads too slowly");
      viewer->busy = true;
      viewer->drained_wait = true;
      return submit(
          {viewer, false, std::chrono::steady_clock::now() + std::chrono::milliseconds(20)});
    }
    if (viewer->more) pump(viewer);
    return;
  }
  viewer->offset += data.size();
  viewer->held = std::move(data);
  pump(viewer);
}

void LogViewers::submit(Task task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    if (task.read) {
      tasks_.push_back(std::move(task));
    } else {
      const auto at = task.at;
      waits_.emplace(at, std::move(task));
    }
  }
  wake_.notify_one();
}

void LogViewers::reader_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    const auto due = [this] {
      return !waits_.empty() && waits_.begin()->first <= std::chrono::steady_clock::now();
    };
    // Each wake re-reads the earliest deadline: a wait submitted meanwhile may be the next.
    while (!stopping_ && tasks_.empty() && !due()) {
      if (waits_.empty()) {
        wake_.wait(lock);
      } else {
        wake_.wait_until(lock, waits_.begin()->first);
      }
    }
    if (stopping_) return;
    if (due()) {
      // A wait is over: the io thread looks again (without reading the file when the run has
      // ended and only the socket had to drain).
      std::shared_ptr<Viewer> viewer = waits_.begin()->second.viewer;
      waits_.erase(waits_.begin());
      lock.unlock();
      viewer->socket->post([this, viewer] {
        viewer->busy = false;
        if (std::exchange(viewer->drained_wait, false)) return on_read(viewer, "");
        pump(viewer);
      });
      lock.lock();
      continue;
    }
    if (tasks_.empty()) continue;
    Task task = std::move(tasks_.front());
    tasks_.pop_front();
    lock.unlock();
    std::shared_ptr<Viewer> viewer = task.viewer;
    std::string data = read_chunk(viewer->path, viewer->offset);
    viewer->socket->post(
        [this, viewer, data = std::move(data)]() mutable { on_read(viewer, std::move(data)); });
    lock.lock();
  }
}

}  // namespace testlooper::server
