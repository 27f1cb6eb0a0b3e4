#include "server/notifier.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/hash.h"
#include "core/hmac.h"
#include "core/url.h"
#include "hosting/rest.h"
#include "server/api_json.h"
#include "server/event_log.h"
#include "server/state.h"

namespace testlooper::server {
namespace {

using nlohmann::json;

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// What a log line says of a target: its scheme and host, never its path or query (which may
// hold a token).
std::string target_host(const std::string& url) {
  const size_t scheme = url.find("://");
  const size_t end = url.find_first_of("/?#", scheme + 3);
  return url.substr(0, end);
}

}  // namespace

std::string notify_url_error(const std::string& url) {
  if (url.size() > 2048) return "a URL of at most 2,048 bytes";
  for (const char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return "a URL without spaces or control characters";
  }
  const bool http = url.starts_with("http://"), https = url.starts_with("https://");
  if (!http && !https) return "must be an http:// or https:// URL";
  const std::string host = target_host(url).substr(http ? 7 : 8);
  if (host.empty() || host.find('@') != std::string::npos)
    return "must name a host (and no user:password@)";
  return "";
}

std::string Notifier::delivery_id(const std::string& target_url, const std::string& key) {
  return sha256_hex(target_url + "\n" + key).substr(0, 32);
}

Notifier::Notifier(std::vector<NotifyTarget> targets, std::string record_path,
                   NotifierOptions options)
    : targets_(std::move(targets)), record_path_(std::move(record_path)), options_(options) {
  std::ifstream in(record_path_);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("change ")) seen_.insert(line.substr(7));
    if (line.starts_with("sent ")) done_.insert(line.substr(5));
  }
  if (!targets_.empty()) thread_ = std::thread([this] { run(); });
}

Notifier::~Notifier() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  stopping_ = true;
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Notifier::record(const std::string& line) {
  std::ofstream out(record_path_, std::ios::app);
  out << line << "\n";
  out.flush();
  if (!out) log_event("error", "notify_record_failed", {{"line", line}});
}

void Notifier::notify(const std::string& key, const std::string& payload,
                      const std::function<void()>& log) {
  if (seen_.insert(key).second) {
    log();
    record("change " + key);
  }
  if (targets_.empty()) return;
  std::lock_guard lock(mutex_);
  for (size_t t = 0; t < targets_.size(); ++t) {
    const std::string id = delivery_id(targets_[t].url, key);
    if (done_.count(id)) continue;
    if (queue_.size() >= options_.max_queue) {
      log_event("warn", "notify_queue_full",
                {{"target", target_host(targets_[t].url)}, {"delivery", id}});
      continue;
    }
    json body = json::parse(payload, nullptr, false);
    body["delivery"] = id;
    queue_.push_back(
        {t, id, body.dump(-1, ' ', false, json::error_handler_t::replace), 0, steady_seconds()});
    done_.insert(id);
  }
  wake_.notify_all();
}

bool Notifier::deliver(const Delivery& d) {
  const NotifyTarget& target = targets_[d.target];
  hosting::RestRequest request;
  request.method = "POST";
  request.url = target.url;
  request.body = d.body;
  request.timeout_seconds = options_.timeout_seconds;
  request.max_answer_bytes = 64 << 10;
  request.stop = &stopping_;
  request.headers = {"Content-Type: application/json", "X-TestLooper-Event: change",
                     "X-TestLooper-Delivery: " + d.id,
                     "X-TestLooper-Signature: sha256=" + hmac_sha256_hex(target.secret, d.body)};
  const auto answer = hosting::rest_call(request, target_host(target.url));
  if (stopping_) return false;
  if (answer.ok() && answer->status >= 200 && answer->status < 300) return true;
  const std::string why =
      answer.ok() ? fmt::format("HTTP {}", answer->status) : answer.error().message;
  log_event(d.attempts + 1 >= options_.max_attempts ? "error" : "warn", "notify_failed",
            {{"target", target_host(target.url)},
             {"delivery", d.id},
             {"attempt", std::to_string(d.attempts + 1)},
             {"reason", why}});
  return false;
}

void Notifier::run() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    if (queue_.empty()) {
      wake_.wait(lock);
      continue;
    }
    auto next =
        std::min_element(queue_.begin(), queue_.end(),
                         [](const Delivery& a, const Delivery& b) { return a.due < b.due; });
    const double wait = next->due - steady_seconds();
    if (wait > 0) {
      wake_.wait_for(lock, std::chrono::milliseconds(static_cast<int64_t>(wait * 1000) + 1));
      continue;
    }
    Delivery d = std::move(*next);
    queue_.erase(next);
    lock.unlock();
    const bool sent = deliver(d);
    if (stopping_) break;
    if (sent) {
      record("sent " + d.id);
      log_event("info", "notify_delivered",
                {{"target", target_host(targets_[d.target].url)}, {"delivery", d.id}});
    }
    lock.lock();
    if (sent) continue;
    if (++d.attempts >= options_.max_attempts) {
      done_.erase(d.id);  // given up: tried again when the change is seen again
      continue;
    }
    d.due =
        steady_seconds() + std::min(options_.max_retry_seconds,
                                    options_.first_retry_seconds * std::ldexp(1.0, d.attempts - 1));
    queue_.push_back(std::move(d));
  }
}

void notify_changes(ServerState& state, Notifier& notifier, double confidence,
                    const std::string& ui_url, const CommitLinkFn& commit_link) {
  for (const auto& [key, branch] : state.branches()) {
    if (!branch.under_test) continue;
    const auto& [repo, name] = key;
    const json changes = reply::branch_changes(state, repo, branch.head, "", commit_link, true);
    for (const json& c : changes) {
      const double probability = c["probability"].get<double>();
      if (probability < confidence) continue;
      const std::string sha = c["commit"].get<std::string>();
      const std::string test_name = c["name"].get<std::string>();
      const json payload = {
          {"event", "change"},
          {"repo", repo},
          {"branch", name},
          {"test", c["test"]},
          {"case", c["case"]},
          {"commit",
           {{"sha", sha}, {"subject", c["subject"]}, {"author", c["author"]}, {"url", c["url"]}}},
          {"before", c["before"]},
          {"after", c["after"]},
          {"probability", probability},
          {"runs_used", c["runs_used"]},
          {"url",
           ui_url + "/repos/" + url_segment(repo) + "/branches/" + url_segment(name) + "/changes"}};
      const auto rate = [](const json& r) {
        return fmt::format("{:.3f} [{:.3f}, {:.3f}]", r["estimate"].get<double>(),
                           r["low"].get<double>(), r["high"].get<double>());
      };
      notifier.notify(repo + "/" + test_name + "@" + sha,
                      payload.dump(-1, ' ', false, json::error_handler_t::replace), [&] {
                        log_event("info", "change_localised",
                                  {{"repo", repo},
                                   {"branch", name},
                                   {"test", test_name},
                                   {"commit", sha},
                                   {"before", rate(c["before"])},
                                   {"after", rate(c["after"])},
                                   {"probability", fmt::format("{:.4f}", probability)}});
                      });
    }
  }
}

}  // namespace testlooper::server
