#include "server/watcher.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "definitions/definitions.h"
#include "definitions/definitions_json.h"
#include "git/git.h"
#include "git/git_source_reader.h"

namespace testlooper::server {
namespace {

using nlohmann::json;

std::vector<store::ObjectRow> object_rows(const definitions::ResolvedCommit& c) {
  // Only this commit's objects: builds of other commits are stored when their own commit is
  // ingested.
  std::vector<store::ObjectRow> rows;
  for (const auto& o : c.objects) {
    rows.push_back({c.repo, c.commit, o.name, definitions::to_string(o.kind), o.hash,
                    definitions::object_to_json(o)});
  }
  return rows;
}

}  // namespace

Watcher::Watcher(std::string repos_dir, double poll_seconds,
                 std::map<std::string, std::set<std::string>> known, Callback callback)
    : repos_dir_(std::move(repos_dir)),
      poll_seconds_(poll_seconds),
      known_(std::move(known)),
      callback_(std::move(callback)),
      thread_([this] { loop(); }) {}

Watcher::~Watcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Watcher::refresh() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    refresh_ = true;
  }
  wake_.notify_all();
}

void Watcher::loop() {
  while (true) {
    scan();
    std::unique_lock<std::mutex> lock(mutex_);
    wake_.wait_for(lock, std::chrono::milliseconds(static_cast<int64_t>(poll_seconds_ * 1000)),
                   [this] { return refresh_ || stop_; });
    if (stop_) return;
    refresh_ = false;
  }
}

void Watcher::scan() {
  std::error_code ec;
  std::vector<std::pair<std::string, std::string>> repos;
  for (const auto& entry : std::filesystem::directory_iterator(repos_dir_, ec)) {
    if (entry.is_directory()) repos.emplace_back(entry.path().filename().string(), entry.path().string());
  }
  std::sort(repos.begin(), repos.end());
  for (const auto& [name, path] : repos) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stop_) return;
    }
    scan_repo(name, path);
  }
}

void Watcher::scan_repo(const std::string& name, const std::string& path) {
  auto repo = git::Repository::open(path);
  if (!repo.ok()) return;  // not a git repo: not watched
  auto branches = repo->branches();
  if (!branches.ok()) return;
  RepoBatch batch;
  batch.repo = {name, path};
  std::set<std::string>& known = known_[name];
  std::vector<std::string> stack;
  for (const auto& b : *branches) {
    batch.branches.push_back({name, b.name, b.sha, false, 0});
    stack.push_back(b.sha);
  }
  // Walk back from the heads to the known commits; emit parents before children.
  std::vector<git::CommitInfo> found;
  std::set<std::string> seen;
  while (!stack.empty()) {
    const std::string sha = stack.back();
    stack.pop_back();
    if (known.count(sha) || !seen.insert(sha).second) continue;
    auto info = repo->commit(sha);
    if (!info.ok()) continue;
    for (const auto& p : info->parents) stack.push_back(p);
    found.push_back(std::move(*info));
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.author_time < b.author_time; });
  auto reader = git::GitSourceReader::under_root(repos_dir_);
  for (const auto& info : found) {
    store::CommitRow row;
    row.repo = name;
    row.sha = info.sha;
    row.parents = info.parents;
    row.subject = info.subject;
    row.author = info.author_name;
    row.time = info.author_time;
    auto resolved = definitions::resolve_commit(reader, name, info.sha);
    row.resolved = true;
    if (!resolved.ok()) {
      row.error = resolved.error().to_string();
      batch.objects.emplace_back();
    } else {
      row.file = resolved->file;
      row.error = resolved->error;
      row.test_sets_json = json(resolved->test_sets).dump();
      row.triggered_json = json(resolved->triggered_test_sets).dump();
      batch.objects.push_back(object_rows(*resolved));
    }
    batch.commits.push_back(std::move(row));
    known.insert(info.sha);
  }
  callback_(std::move(batch));
}

}  // namespace testlooper::server
