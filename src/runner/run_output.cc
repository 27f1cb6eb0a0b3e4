#include "runner/run_output.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>

#include "core/log_cap.h"

namespace testlooper::runner {

using std::chrono::steady_clock;

LogFile::LogFile(const std::filesystem::path& path, int64_t max_bytes)
    : fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)),
      max_bytes_(max_bytes) {}

void LogFile::close() {
  std::lock_guard lock(mutex_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void LogFile::line(const std::string& text) {
  std::lock_guard lock(mutex_);
  append((ends_in_newline_ ? "" : "\n") + std::string("[testlooper] ") + text + "\n");
}

void LogFile::output(const char* data, size_t size) {
  std::lock_guard lock(mutex_);
  const int64_t room = std::max<int64_t>(0, max_bytes_ - size_);
  const size_t kept = static_cast<size_t>(std::min<int64_t>(room, static_cast<int64_t>(size)));
  dropped_ += static_cast<int64_t>(size - kept);
  if (kept > 0) append(std::string_view(data, kept));
}

void LogFile::say_if_cut() {
  std::lock_guard lock(mutex_);
  if (dropped_ == 0) return;
  append((ends_in_newline_ ? "" : "\n") + log_cut_line(max_bytes_, dropped_) + "\n");
}

void LogFile::append(std::string_view text) {
  if (fd_ < 0 || text.empty()) return;
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd_, text.data() + done, text.size() - done);
    if (n <= 0) break;  // disk full: the log is best effort, the run's outcome is not
    done += static_cast<size_t>(n);
  }
  size_ += static_cast<int64_t>(done);
  ends_in_newline_ = text.back() == '\n';
}

OutputPipe::OutputPipe(LogFile& log) : log_(log) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return;
  read_fd_ = fds[0];
  write_fd_ = fds[1];
  (void)::fcntl(read_fd_, F_SETPIPE_SZ, 1 << 20);  // fewer wake-ups for chatty commands
}

void OutputPipe::copy_on(ThreadPool& copiers) {
  if (read_fd_ < 0) return;
  posted_ = true;
  copying_ = true;
  copiers.post([this] {
    copy();
    std::lock_guard lock(mutex_);
    copying_ = false;
    copied_.notify_all();
  });
}

void OutputPipe::copy_until_exit(int exit_fd, steady_clock::time_point deadline) {
  bool reading = read_fd_ >= 0;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady_clock::now());
    if (left.count() <= 0) return;
    pollfd fds[2] = {{exit_fd, POLLIN, 0}, {reading ? read_fd_ : -1, POLLIN, 0}};
    const int timeout = static_cast<int>(std::min<int64_t>(left.count() + 1, 60'000));
    if (::poll(fds, 2, timeout) < 0 && errno != EINTR) return;
    if (fds[1].revents != 0) {
      const ssize_t n = read_some();
      reading = n > 0 || (n < 0 && (errno == EINTR || errno == EAGAIN));
    }
    if (fds[0].revents != 0) return;
  }
}

void OutputPipe::finish() {
  if (write_fd_ >= 0) ::close(write_fd_);
  write_fd_ = -1;
  finishing_ = true;
  if (posted_) {
    std::unique_lock lock(mutex_);
    copied_.wait(lock, [this] { return !copying_; });
  } else if (read_fd_ >= 0) {
    copy();
  }
  if (read_fd_ >= 0) ::close(read_fd_);
  read_fd_ = -1;
}

ssize_t OutputPipe::read_some() {
  if (buffer_.empty()) buffer_.resize(1 << 16);
  const ssize_t n = ::read(read_fd_, buffer_.data(), buffer_.size());
  if (n > 0) log_.output(buffer_.data(), static_cast<size_t>(n));
  return n;
}

void OutputPipe::copy() {
  std::optional<steady_clock::time_point> give_up;
  for (;;) {
    pollfd fd{read_fd_, POLLIN, 0};
    if (::poll(&fd, 1, 100) > 0) {
      const ssize_t n = read_some();
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return;  // no writer left
      continue;
    }
    // A writer that escaped every kill must not hold the run up for ever.
    if (finishing_ && !give_up) give_up = steady_clock::now() + std::chrono::seconds(5);
    if (give_up && steady_clock::now() >= *give_up) return;
  }
}

}  // namespace testlooper::runner
