#include "server/watcher.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/ids.h"
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
                 std::map<std::string, std::set<std::string>> known, Callback callback,
                 std::map<std::string, std::set<std::string>> recheck,
                 std::map<std::string, std::set<std::string>> pinned, Present present,
                 std::function<void()> after_scan)
    : repos_dir_(std::move(repos_dir)),
      poll_seconds_(poll_seconds),
      known_(std::move(known)),
      recheck_(std::move(recheck)),
      pinned_(std::move(pinned)),
      callback_(std::move(callback)),
      present_(std::move(present)),
      after_scan_(std::move(after_scan)),
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
    if (after_scan_) after_scan_();
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
  // A folder that cannot be read says nothing of which repos are gone.
  const bool listed = !ec;
  std::sort(repos.begin(), repos.end());
  release_waiting();
  pins_new_.clear();
  // A pin found in a repo looked at after the pinned repo is ingested by another look at that
  // repo (a few rounds, for pins of pinned commits).
  constexpr int kPinRounds = 4;
  std::set<std::string> only;
  std::set<std::string> present;
  for (int round = 0; round < kPinRounds; ++round) {
    for (const auto& [name, path] : repos) {
      if (round > 0 && !only.count(name)) continue;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stop_) return;
      }
      if (scan_repo(name, path) && round == 0) present.insert(name);
    }
    if (round == 0 && listed && present_) present_(present);
    only.swap(pins_new_);
    pins_new_.clear();
    if (only.empty()) return;
  }
}

void Watcher::release_waiting() {
  std::map<std::string, std::optional<git::Repository>> opened;
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    const auto& [repo, sha] = it->first;
    auto [at, inserted] = opened.try_emplace(repo);
    if (inserted) {
      auto r = git::Repository::open(repos_dir_ + "/" + repo);
      if (r.ok()) at->second.emplace(std::move(*r));
    }
    if (!at->second || !at->second->commit(sha).ok()) {
      ++it;
      continue;
    }
    for (const auto& [waiting_repo, waiting_sha] : it->second)
      recheck_[waiting_repo].insert(waiting_sha);
    it = waiting_.erase(it);
  }
}

bool Watcher::scan_repo(const std::string& name, const std::string& path) {
  auto repo = git::Repository::open(path);
  if (!repo.ok()) return false;  // not a git repo: not watched
  auto branches = repo->branches();
  if (!branches.ok()) return true;  // there, but unreadable now: not gone
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
  // Pinned commits no branch reaches: the commit alone (its ancestors are not needed), once it
  // is in the repo. Commits whose missing commit arrived: again.
  std::set<std::string>& pinned = pinned_[name];
  std::set<std::string> again;
  again.swap(recheck_[name]);
  for (const std::set<std::string>* shas : {&pinned, &again}) {
    for (const auto& sha : *shas) {
      if ((shas == &pinned && known.count(sha)) || !seen.insert(sha).second) continue;
      auto info = repo->commit(sha);
      if (info.ok()) found.push_back(std::move(*info));
    }
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
    reader.forget_missing();
    auto resolved = definitions::resolve_commit(reader, name, info.sha);
    row.resolved = true;
    const bool failed = !resolved.ok() || resolved->error.has_value();
    if (failed) {
      for (const auto& m : reader.missing()) waiting_[m].insert({name, info.sha});
    }
    if (!resolved.ok()) {
      row.error = resolved.error().to_string();
      batch.objects.emplace_back();
    } else {
      for (const auto& [ref_name, ref] : resolved->repos) {
        if (!is_commit_sha(ref.commit) || known_[ref.repo].count(ref.commit)) continue;
        if (pinned_[ref.repo].insert(ref.commit).second) pins_new_.insert(ref.repo);
      }
      row.file = resolved->file;
      row.error = resolved->error;
      row.test_sets_json = json(resolved->test_sets).dump();
      row.triggered_json = json(resolved->triggered_test_sets).dump();
      batch.objects.push_back(object_rows(*resolved));
    }
    batch.commits.push_back(std::move(row));
    known.insert(info.sha);
  }
  std::erase_if(pinned, [&](const std::string& sha) { return known.count(sha) > 0; });
  callback_(std::move(batch));
  return true;
}

}  // namespace testlooper::server
