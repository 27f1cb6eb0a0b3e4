#include "worker/pending_results.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/write_all.h"

namespace testlooper::worker {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

PendingResults::PendingResults(std::string path, std::string legacy_dir) : path_(std::move(path)) {
  std::error_code ec;
  fs::create_directories(fs::path(path_).parent_path(), ec);
  {
    std::ifstream in(path_, std::ios::binary);
    std::string line;
    while (std::getline(in, line)) {
      const json entry = json::parse(line, nullptr, false);
      if (!entry.is_object()) continue;  // cut short by a crash
      auto ack = entry.find("ack");
      auto run_id = entry.find("run_id");
      if (ack != entry.end() && ack->is_string()) {
        pending_.erase(ack->get<std::string>());
      } else if (run_id != entry.end() && run_id->is_string()) {
        pending_[run_id->get<std::string>()] = {next_++, line};
      }
    }
  }
  if (!legacy_dir.empty() && fs::is_directory(legacy_dir, ec)) {
    for (fs::directory_iterator it(legacy_dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().extension() != ".json") continue;
      const json result = json::parse(read_file(it->path()), nullptr, false);
      auto run_id = result.is_object() ? result.find("run_id") : result.end();
      if (run_id != result.end() && run_id->is_string()) {
        pending_[run_id->get<std::string>()] = {next_++, result.dump()};
      }
    }
  }
  // Starts from what is pending: the acknowledged past is not read again.
  rewrite();
  if (!legacy_dir.empty()) fs::remove_all(legacy_dir, ec);
}

PendingResults::~PendingResults() {
  if (fd_ >= 0) ::close(fd_);
}

void PendingResults::add(const std::string& run_id, const std::string& result_json) {
  std::lock_guard<std::mutex> lock(mutex_);
  pending_[run_id] = {next_++, result_json};
  append(result_json + "\n");
}

void PendingResults::acknowledge(const std::string& run_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (pending_.erase(run_id) == 0) return;
  if (pending_.empty() && bytes_ >= kTruncateBytes && fd_ >= 0 && ::ftruncate(fd_, 0) == 0) {
    bytes_ = 0;
    return;
  }
  append(json{{"ack", run_id}}.dump() + "\n");
  if (bytes_ >= kRewriteBytes) rewrite();
}

std::vector<std::string> PendingResults::all() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return in_order();
}

std::vector<std::string> PendingResults::in_order() const {
  std::vector<std::pair<uint64_t, const std::string*>> ordered;
  for (const auto& [id, entry] : pending_) ordered.emplace_back(entry.first, &entry.second);
  std::sort(ordered.begin(), ordered.end());
  std::vector<std::string> results;
  for (const auto& [order, text] : ordered) results.push_back(*text);
  return results;
}

void PendingResults::append(const std::string& line) {
  if (fd_ < 0) return;  // the results stay in memory: the next hello still has them
  if (write_all(fd_, line)) bytes_ += std::ssize(line);
}

void PendingResults::rewrite() {
  std::string text;
  for (const std::string& result : in_order()) {
    text += result;
    text += '\n';
  }
  const std::string temp = path_ + ".tmp";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  if (!write_all(fd, text) || ::rename(temp.c_str(), path_.c_str()) != 0) {
    ::close(fd);
    ::unlink(temp.c_str());
    return;
  }
  ::close(fd);
  if (fd_ >= 0) ::close(fd_);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  bytes_ = std::ssize(text);
}

}  // namespace testlooper::worker
