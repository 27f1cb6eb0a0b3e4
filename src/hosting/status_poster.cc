#include "hosting/status_poster.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <limits>

namespace testlooper::hosting {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool same(const CommitStatus& a, const CommitStatus& b) {
  return a.state == b.state && a.description == b.description;
}

// Keys remembered for "never the same twice in a row" beyond those waiting.
constexpr size_t kRemembered = 100000;

}  // namespace

StatusPoster::StatusPoster(std::shared_ptr<Host> host, HostOptions options, RepoLookup lookup,
                           Options poster_options)
    : host_(std::move(host)),
      host_options_(std::move(options)),
      lookup_(std::move(lookup)),
      options_(poster_options) {
  thread_ = std::thread([this] { run(); });
}

StatusPoster::~StatusPoster() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void StatusPoster::post(const std::string& repo, const std::string& sha, CommitStatus status) {
  std::lock_guard lock(mu_);
  const Key key{repo, sha, status.context};
  Entry& e = entries_[key];
  if (e.wanted && !e.posted && !e.busy) {
    // The key's first status (a commit's "pending") is posted before any newer one: the newest
    // waits behind it.
    if (same(*e.wanted, status)) {
      e.then.reset();
    } else {
      e.then = std::move(status);
    }
    return;
  }
  if (e.wanted) {
    waiting_.erase(e.order);
    e.wanted.reset();
  }
  // While a post is under way the host may end up with either: the newest is posted after it.
  if (!e.busy && e.posted && same(*e.posted, status)) return;
  e.wanted = std::move(status);
  e.order = ++order_;
  waiting_[e.order] = key;
  if (waiting_.size() > options_.max_pending) {
    const auto oldest = waiting_.begin();
    Entry& o = entries_[oldest->second];
    std::cerr << "testlooper serve: WARNING: more than " << options_.max_pending
              << " commit statuses wait to be posted; dropped the oldest ("
              << std::get<0>(oldest->second) << " " << std::get<1>(oldest->second) << " "
              << std::get<2>(oldest->second) << ")" << std::endl;
    o.wanted.reset();
    o.then.reset();
    const Key dropped = oldest->second;
    waiting_.erase(oldest);
    if (!o.posted && !o.busy) entries_.erase(dropped);
  }
  wake_.notify_all();
}

size_t StatusPoster::pending() const {
  std::lock_guard lock(mu_);
  size_t behind = 0;
  for (const auto& [key, e] : entries_) behind += e.then ? 1 : 0;
  return waiting_.size() + busy_ + behind;
}

int64_t StatusPoster::failures() const {
  std::lock_guard lock(mu_);
  return failures_;
}

std::optional<StatusPoster::Key> StatusPoster::next_ready(double now, double& wait_seconds) {
  wait_seconds = std::numeric_limits<double>::infinity();
  for (const auto& [order, key] : waiting_) {
    const Entry& e = entries_.at(key);
    if (e.busy) continue;
    if (e.next_try <= now) return key;
    wait_seconds = std::min(wait_seconds, e.next_try - now);
  }
  return std::nullopt;
}

void StatusPoster::run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    double wait = 0;
    const auto key = next_ready(now_seconds(), wait);
    if (!key) {
      if (std::isinf(wait)) {
        wake_.wait(lock);
      } else {
        wake_.wait_for(lock, std::chrono::duration<double>(wait));
      }
      continue;
    }
    Entry& e = entries_.at(*key);
    const CommitStatus sent = *e.wanted;
    const uint64_t order = e.order;
    waiting_.erase(order);
    e.wanted = std::move(e.then);  // what came after the key's first waits for it
    e.then.reset();
    if (e.wanted) {
      e.order = ++order_;
      waiting_[e.order] = *key;
    }
    e.busy = true;
    ++busy_;
    lock.unlock();
    const Status result = host_->post_status(repo_of(std::get<0>(*key)), std::get<1>(*key), sent);
    lock.lock();
    --busy_;
    e.busy = false;  // entries_ keeps a busy entry: the reference is still valid
    if (result.ok()) {
      e.posted = sent;
      e.backoff = 0;
      e.next_try = 0;
      if (e.wanted && same(*e.wanted, sent)) {
        waiting_.erase(e.order);
        e.wanted.reset();
      }
      done_.push_back(*key);
      trim_done();
      continue;
    }
    ++failures_;
    e.backoff = e.backoff == 0 ? options_.first_backoff_seconds
                               : std::min(2 * e.backoff, options_.max_backoff_seconds);
    e.next_try = now_seconds() + e.backoff;
    std::cerr << "testlooper serve: WARNING: " << result.error().to_string() << "; retried in "
              << fmt::format("{:g}", e.backoff) << " s" << std::endl;
    if (e.wanted && !e.posted) {  // the key's first is posted first: the newer waits behind it
      waiting_.erase(e.order);
      e.then = std::move(e.wanted);
      e.wanted.reset();
    }
    if (!e.wanted) {  // nothing newer came meanwhile: this one waits again, at its place
      e.wanted = sent;
      e.order = order;
      waiting_[order] = *key;
    }
  }
}

HostedRepo StatusPoster::repo_of(const std::string& name) const {
  if (lookup_) {
    if (auto repo = lookup_(name)) return *repo;
  }
  HostedRepo repo;
  repo.name = name;
  repo.full_name = host_options_.owner + "/" + name;
  return repo;
}

void StatusPoster::trim_done() {
  const size_t limit = std::max(kRemembered, 4 * options_.max_pending);
  while (entries_.size() > limit && !done_.empty()) {
    const Key key = done_.front();
    done_.pop_front();
    auto it = entries_.find(key);
    if (it != entries_.end() && !it->second.wanted && !it->second.busy) entries_.erase(it);
  }
}

}  // namespace testlooper::hosting
