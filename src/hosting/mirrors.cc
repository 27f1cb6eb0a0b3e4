#include "hosting/mirrors.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>

#include "core/ids.h"

namespace testlooper::hosting {
namespace fs = std::filesystem;
namespace {

constexpr size_t kMaxUnknown = 1000;  // names waiting for a listing

// One line on stderr per failed attempt: what, which attempt, when the next, why.
void log_failure(const std::string& what, int attempt, std::chrono::steady_clock::duration wait,
                 const Error& why) {
  std::cerr << fmt::format("testlooper serve: {} failed (attempt {}, again in {:.1f} s): {}", what,
                           attempt, std::chrono::duration<double>(wait).count(), why.to_string())
            << std::endl;
}

}  // namespace

Mirrors::Mirrors(Host& host, std::string repos_dir, MirrorOptions options, OnChange on_change)
    : host_(host),
      repos_dir_(std::move(repos_dir)),
      options_(options),
      on_change_(std::move(on_change)) {
  while (repos_dir_.size() > 1 && repos_dir_.back() == '/') repos_dir_.pop_back();
  control_ = std::thread([this] { control_loop(); });
  for (int i = 0; i < std::max(1, options_.parallel); ++i) {
    fetchers_.emplace_back([this] { fetch_loop(); });
  }
}

Mirrors::~Mirrors() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cancel_ = true;
  control_wake_.notify_all();
  fetch_wake_.notify_all();
  control_.join();
  for (auto& t : fetchers_) t.join();
}

void Mirrors::refresh() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    list_now_ = true;
  }
  control_wake_.notify_all();
}

void Mirrors::fetch(const std::string& name) {
  if (!is_repo_name(name)) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (listing_.count(name)) {
      enqueue_locked(name);
      fetch_wake_.notify_one();
      return;
    }
    // Bounded, whatever is posted while the host cannot list (cleared by the next listing).
    if (unknown_.size() < kMaxUnknown) unknown_.insert(name);
  }
  control_wake_.notify_all();
}

std::optional<HostedRepo> Mirrors::repo(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = listing_.find(name);
  if (it == listing_.end()) return std::nullopt;
  return it->second;
}

std::vector<HostedRepo> Mirrors::repos() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<HostedRepo> out;
  for (const auto& [name, repo] : listing_) out.push_back(repo);
  return out;
}

Mirrors::Clock::duration Mirrors::backoff(int failures) const {
  double seconds = options_.first_retry;
  for (int i = 1; i < failures && seconds < options_.poll_seconds; ++i) seconds *= 2;
  seconds = std::min(seconds, std::max(options_.first_retry, options_.poll_seconds));
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

void Mirrors::enqueue_locked(const std::string& name) {
  RepoState& s = state_[name];
  if (s.running) {
    s.again = true;
  } else if (!s.queued) {
    s.queued = true;
    queue_.push_back(name);
  }
}

void Mirrors::control_loop() {
  const auto poll = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(std::max(1.0, options_.poll_seconds)));
  Clock::time_point next_poll = Clock::now() + poll;
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    const auto now = Clock::now();
    // What is due: a listing (start, refresh, poll, unknown names, a failed listing's retry)
    // and the retries of failed fetches.
    bool list_all = list_now_ || now >= next_poll;
    const bool list_retry = list_failures_ > 0 && now >= list_retry_at_;
    const bool list_unknown = !unknown_.empty() && (list_failures_ == 0 || now >= list_retry_at_);
    reschedule_ = false;
    if (list_all || list_retry || list_unknown) {
      list_now_ = false;
      if (now >= next_poll || list_all) next_poll = now + poll;
      lock.unlock();
      list_and_schedule(list_all || list_retry);
      lock.lock();
      continue;
    }
    Clock::time_point wake = next_poll;
    if (list_failures_ > 0) wake = std::min(wake, list_retry_at_);
    for (auto& [name, s] : state_) {
      if (s.failures == 0 || s.queued || s.running || !listing_.count(name)) continue;
      if (s.retry_at <= now) {
        enqueue_locked(name);
        fetch_wake_.notify_one();
      } else {
        wake = std::min(wake, s.retry_at);
      }
    }
    control_wake_.wait_until(lock, wake, [this] {
      return stop_ || list_now_ || reschedule_ || (!unknown_.empty() && list_failures_ == 0);
    });
  }
}

void Mirrors::list_and_schedule(bool all) {
  auto listed = host_.list_repos();
  std::vector<std::string> gone;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!listed.ok()) {
      ++list_failures_;
      list_retry_at_ = Clock::now() + backoff(list_failures_);
      log_failure("listing repositories", list_failures_, backoff(list_failures_), listed.error());
      return;
    }
    list_failures_ = 0;
    std::map<std::string, HostedRepo> next;
    for (auto& r : *listed) next.emplace(r.name, std::move(r));
    for (const auto& [name, repo] : listing_) {
      if (!next.count(name)) gone.push_back(name);
    }
    listing_ = std::move(next);
    for (const auto& [name, repo] : listing_) {
      if (all || unknown_.count(name)) enqueue_locked(name);
    }
    for (const auto& name : unknown_) {
      if (!listing_.count(name)) {
        std::cerr << "testlooper serve: a webhook named repository '" << name
                  << "', which the host does not list" << std::endl;
      }
    }
    unknown_.clear();
  }
  fetch_wake_.notify_all();
  // Mirrors on disk that no listing names (gone while the server was down, too).
  if (all) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(repos_dir_, ec)) {
      const std::string name = entry.path().filename().string();
      std::lock_guard<std::mutex> lock(mutex_);
      if (!listing_.count(name) && std::find(gone.begin(), gone.end(), name) == gone.end())
        gone.push_back(name);
    }
  }
  for (const auto& name : gone) remove_mirror(name);
}

void Mirrors::remove_mirror(const std::string& name) {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    // Not while a fetch of it runs (it may be renaming a fresh clone into place).
    auto it = state_.find(name);
    if (it != state_.end() && (it->second.running || it->second.queued)) return;
    if (listing_.count(name)) return;
    state_.erase(name);
  }
  std::error_code ec;
  const fs::path path = fs::path(repos_dir_) / name;
  if (!fs::exists(path, ec)) return;
  // Moved out of the watcher's sight first, then deleted.
  const fs::path trash = repos_dir_ + ".trash";
  fs::create_directories(trash, ec);
  const fs::path moved = trash / fmt::format("{}.{}", name, ::getpid());
  fs::remove_all(moved, ec);
  fs::rename(path, moved, ec);
  if (ec) {
    std::cerr << "testlooper serve: cannot remove the mirror of '" << name << "': " << ec.message()
              << std::endl;
    return;
  }
  std::cerr << "testlooper serve: repository '" << name
            << "' is no longer listed: its mirror is removed" << std::endl;
  fs::remove_all(moved, ec);
  on_change_(name);
}

Status Mirrors::sync(const HostedRepo& repo) {
  const GitCredentials credentials = host_.credentials();
  const fs::path path = fs::path(repos_dir_) / repo.name;
  std::error_code ec;
  const bool present = fs::exists(path, ec);
  // A new mirror is made aside and renamed into place once complete.
  const fs::path tmp = fs::path(repos_dir_ + ".tmp") / repo.name;
  const fs::path dir = present ? path : tmp;
  if (!present) {
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp, ec);
    if (ec) return Error{repo.name, "cannot create " + tmp.string() + ": " + ec.message()};
    const std::vector<std::string> init = {"init", "--quiet", "--bare", "."};
    auto out = run_git(init, tmp.string(), credentials, options_.fetch_timeout, &cancel_);
    if (!out.ok()) return out.error();
    if (out->exit_code != 0) return git_error(repo.name, init, *out, credentials);
  }
  const std::vector<std::string> fetch = {"fetch",
                                          "--quiet",
                                          "--prune",
                                          "--no-write-fetch-head",
                                          repo.clone_url,
                                          "+refs/heads/*:refs/heads/*",
                                          "+refs/tags/*:refs/tags/*"};
  auto out = run_git(fetch, dir.string(), credentials, options_.fetch_timeout, &cancel_);
  if (!out.ok()) return Error{repo.name, out.error().message};
  if (out->exit_code != 0) return git_error(repo.name, fetch, *out, credentials);
  if (!present) {
    // HEAD names the default branch, as a clone's does.
    if (!repo.default_branch.empty()) {
      const std::vector<std::string> head = {"symbolic-ref", "HEAD",
                                             "refs/heads/" + repo.default_branch};
      (void)run_git(head, tmp.string(), credentials, options_.fetch_timeout, &cancel_);
    }
    fs::rename(tmp, path, ec);
    if (ec) return Error{repo.name, "cannot move the new mirror into place: " + ec.message()};
  }
  return {};
}

void Mirrors::fetch_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    fetch_wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    const std::string name = queue_.front();
    queue_.pop_front();
    RepoState& s = state_[name];
    s.queued = false;
    auto it = listing_.find(name);
    if (it == listing_.end()) continue;
    const HostedRepo repo = it->second;
    s.running = true;
    s.again = false;
    lock.unlock();
    const Status done = sync(repo);
    if (!done.ok() && cancel_) {
      lock.lock();
      return;  // stopping: not a failure of the host
    }
    if (!done.ok()) {
      std::lock_guard<std::mutex> relock(mutex_);
      RepoState& f = state_[name];
      ++f.failures;
      f.retry_at = Clock::now() + backoff(f.failures);
      log_failure("fetching '" + name + "'", f.failures, backoff(f.failures), done.error());
    } else {
      on_change_(name);
    }
    lock.lock();
    RepoState& after = state_[name];
    after.running = false;
    if (done.ok()) after.failures = 0;
    if (after.again && !stop_) {
      after.again = false;
      enqueue_locked(name);
      fetch_wake_.notify_one();
    }
    if (!done.ok()) {
      reschedule_ = true;  // its retry is scheduled by the control thread
      control_wake_.notify_all();
    }
  }
}

}  // namespace testlooper::hosting
