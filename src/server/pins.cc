#include "server/pins.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>

#include "core/ids.h"
#include "git/git.h"
#include "git/git_source_reader.h"
#include "hosting/git_cli.h"
#include "server/event_log.h"

namespace testlooper::server {
namespace {

using definitions::PinLocation;

// The branch a pin follows: its `branch:`, or for a pin without one (a HEAD pin) the pinning
// branch's namesake.
std::string followed_branch(const PinLocation& pin, const std::string& pinning_branch) {
  return pin.branch.value_or(pinning_branch);
}

bool valid_repo_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

void log_line(const std::string& text) { log_event("info", "pins", {{"message", text}}); }

}  // namespace

PinMover::PinMover(PinMoverOptions options)
    : options_(std::move(options)), thread_([this] { loop(); }) {}

PinMover::~PinMover() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  for (auto& r : requests_) r.done(PinUpdateResult{503, "the server is stopping", "", ""});
}

void PinMover::wake() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    woken_ = true;
  }
  wake_.notify_all();
}

std::optional<std::vector<PinInfo>> PinMover::pins(const std::string& repo,
                                                   const std::string& branch) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = snapshot_.find({repo, branch});
  if (it == snapshot_.end()) return std::nullopt;
  return it->second;
}

void PinMover::update(std::string repo, std::string branch, std::string name, std::string to,
                      Done done) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!stop_) {
      requests_.push_back(
          {std::move(repo), std::move(branch), std::move(name), std::move(to), std::move(done)});
      wake_.notify_all();
      return;
    }
  }
  done(PinUpdateResult{503, "the server is stopping", "", ""});
}

bool PinMover::stopping() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stop_;
}

bool PinMover::pause(double seconds) {
  std::unique_lock<std::mutex> lock(mutex_);
  wake_.wait_for(lock, std::chrono::duration<double>(seconds), [this] { return stop_; });
  return !stop_;
}

void PinMover::loop() {
  while (true) {
    std::unique_lock<std::mutex> lock(mutex_);
    wake_.wait(lock, [this] { return stop_ || woken_ || !requests_.empty(); });
    if (stop_) return;
    if (!requests_.empty()) {
      Request request = std::move(requests_.front());
      requests_.pop_front();
      lock.unlock();
      handle(request);
      continue;
    }
    woken_ = false;
    lock.unlock();
    try {
      scan();
    } catch (const std::exception& e) {
      log_line(std::string("a look failed: ") + e.what());
    }
  }
}

std::string PinMover::repo_dir(const std::string& repo) const {
  return options_.repos_dir + "/" + repo;
}

std::optional<std::string> PinMover::head_of(const std::string& repo,
                                             const std::string& branch) const {
  if (!valid_repo_name(repo)) return std::nullopt;
  auto r = git::Repository::open(repo_dir(repo));
  if (!r.ok()) return std::nullopt;
  // The branch by its exact name: a name from a URL or a definitions file is never a revision
  // expression ("main~1", "main@{1}").
  auto branches = r->branches();
  if (!branches.ok()) return std::nullopt;
  for (const auto& b : *branches) {
    if (b.name == branch) return b.sha;
  }
  return std::nullopt;
}

const std::vector<PinLocation>& PinMover::pins_at(const std::string& repo, const std::string& sha) {
  auto it = cache_.find({repo, sha});
  if (it != cache_.end()) return it->second;
  auto reader = git::GitSourceReader::under_root(options_.repos_dir);
  auto pins = definitions::list_pins(reader, repo, sha);
  return cache_.emplace(BranchKey{repo, sha}, pins.ok() ? *pins : std::vector<PinLocation>{})
      .first->second;
}

void PinMover::scan() {
  // Every branch head of every repo.
  std::map<std::string, std::map<std::string, std::string>> heads;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(options_.repos_dir, ec)) {
    if (!entry.is_directory()) continue;
    const std::string name = entry.path().filename().string();
    auto repo = git::Repository::open(entry.path().string());
    if (!repo.ok()) continue;
    auto branches = repo->branches();
    if (!branches.ok()) continue;
    for (const auto& b : *branches) heads[name][b.name] = b.sha;
  }
  auto head = [&](const std::string& repo,
                  const std::string& branch) -> std::optional<std::string> {
    auto r = heads.find(repo);
    if (r == heads.end()) return std::nullopt;
    auto b = r->second.find(branch);
    if (b == r->second.end()) return std::nullopt;
    return b->second;
  };
  // The pins of every head (cached per head sha; entries of heads gone are dropped).
  std::map<BranchKey, std::vector<PinLocation>> kept;
  std::map<BranchKey, const std::vector<PinLocation>*> pins_of;
  for (const auto& [repo, branches] : heads) {
    for (const auto& [branch, sha] : branches) {
      const auto& pins = pins_at(repo, sha);
      kept.emplace(BranchKey{repo, sha}, pins);
    }
  }
  cache_.swap(kept);
  for (const auto& [repo, branches] : heads) {
    for (const auto& [branch, sha] : branches) pins_of[{repo, branch}] = &cache_.at({repo, sha});
  }
  // Auto pins as edges (pinning branch -> followed branch): a branch that reaches itself is in a
  // cycle, and cycles push nothing (each push would move the other side's pin, forever).
  std::map<BranchKey, std::set<BranchKey>> edges;
  for (const auto& [key, pins] : pins_of) {
    for (const auto& pin : *pins) {
      if (pin.auto_update && pin.branch) edges[key].insert({pin.repo, *pin.branch});
    }
  }
  auto in_cycle = [&](const BranchKey& start) {
    std::set<BranchKey> seen;
    std::vector<BranchKey> stack(edges[start].begin(), edges[start].end());
    while (!stack.empty()) {
      BranchKey k = stack.back();
      stack.pop_back();
      if (k == start) return true;
      if (!seen.insert(k).second) continue;
      auto e = edges.find(k);
      if (e != edges.end()) stack.insert(stack.end(), e->second.begin(), e->second.end());
    }
    return false;
  };
  // The snapshot for the API, and the auto updates due.
  std::map<BranchKey, std::vector<PinInfo>> snapshot;
  std::map<std::pair<std::string, std::string>, std::optional<size_t>> behind_kept;
  std::vector<std::pair<BranchKey, Wanted>> due;
  for (const auto& [key, pins] : pins_of) {
    std::vector<PinInfo>& infos = snapshot[key];
    Wanted wanted;
    std::string targets;
    for (const auto& pin : *pins) {
      PinInfo info{pin.name,     pin.repo,        followed_branch(pin, key.second),
                   pin.commit,   pin.auto_update, head(pin.repo, followed_branch(pin, key.second)),
                   std::nullopt, pin.file};
      if (info.head && is_commit_sha(pin.commit)) {
        const auto bkey = std::make_pair(pin.repo + "\n" + pin.commit, *info.head);
        auto b = behind_cache_.find(bkey);
        if (b == behind_cache_.end()) {
          std::optional<size_t> n;
          if (auto r = git::Repository::open(repo_dir(pin.repo)); r.ok()) {
            if (auto c = r->commits_between(pin.commit, *info.head); c.ok()) n = *c;
          }
          b = behind_cache_.emplace(bkey, n).first;
        }
        info.behind = b->second;
        behind_kept.emplace(bkey, b->second);
      }
      if (pin.auto_update && pin.branch && info.head && *info.head != pin.commit) {
        wanted[pin.name] = std::nullopt;
        targets += pin.name + "=" + *info.head + ";";
      }
      infos.push_back(std::move(info));
    }
    if (wanted.empty()) continue;
    if (in_cycle(key)) {
      if (cycles_logged_.insert(key).second) {
        log_line(fmt::format("{}/{} is in a cycle of auto pins: nothing is pushed", key.first,
                             key.second));
      }
      continue;
    }
    const std::string attempt = head(key.first, key.second).value_or("") + ";" + targets;
    if (auto f = failed_.find(key); f != failed_.end() && f->second == attempt) continue;
    failed_.erase(key);
    due.emplace_back(key, std::move(wanted));
    failed_[key] = attempt;  // cleared on success below
  }
  behind_cache_.swap(behind_kept);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    snapshot_.swap(snapshot);
  }
  for (const auto& [key, wanted] : due) {
    if (stopping()) return;
    const PinUpdateResult r = move(key.first, key.second, wanted);
    if (r.status == 200) failed_.erase(key);
  }
}

void PinMover::handle(const Request& request) {
  PinUpdateResult result;
  try {
    const auto head = head_of(request.repo, request.branch);
    if (!head) {
      result = {404, fmt::format("no branch '{}' in repo '{}'", request.branch, request.repo), "",
                ""};
    } else {
      const auto& pins = pins_at(request.repo, *head);
      auto pin = std::find_if(pins.begin(), pins.end(),
                              [&](const PinLocation& p) { return p.name == request.name; });
      if (pin == pins.end()) {
        result = {
            404,
            fmt::format("{}/{} has no pin named '{}'", request.repo, request.branch, request.name),
            "", ""};
      } else if (request.to == "branch-head" && !pin->branch) {
        result = {400, fmt::format("'{}' follows no branch: give a sha", request.name), "", ""};
      } else if (request.to == "branch-head") {
        result = move(request.repo, request.branch, {{request.name, std::nullopt}});
      } else {
        auto r = git::Repository::open(repo_dir(valid_repo_name(pin->repo) ? pin->repo : "."));
        if (!valid_repo_name(pin->repo) || !r.ok() || !r->commit(request.to).ok()) {
          result = {422, fmt::format("{} is not a commit of repo '{}'", request.to, pin->repo), "",
                    ""};
        } else {
          result = move(request.repo, request.branch, {{request.name, request.to}});
        }
      }
    }
  } catch (const std::exception& e) {
    result = {502, std::string("the update failed: ") + e.what(), "", ""};
  }
  request.done(std::move(result));
}

PinUpdateResult PinMover::move(const std::string& repo, const std::string& branch,
                               const Wanted& wanted) {
  const bool hosted = static_cast<bool>(options_.lookup);
  double backoff = options_.first_backoff_seconds;
  bool lost_race = false;
  std::string last_error;
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    if (attempt > 0 && !pause(backoff)) return {503, "the server is stopping", "", ""};
    if (attempt > 0) backoff *= 2;
    const auto head = head_of(repo, branch);
    if (!head) return {404, fmt::format("no branch '{}' in repo '{}'", branch, repo), "", ""};
    const auto& pins = pins_at(repo, *head);
    // The new text of each file, and what moved.
    std::map<std::string, std::vector<definitions::TextEdit>> edits;
    std::vector<definitions::PinMove> moves;
    std::string to;
    for (const auto& [name, target] : wanted) {
      auto pin = std::find_if(pins.begin(), pins.end(),
                              [&](const PinLocation& p) { return p.name == name; });
      if (pin == pins.end())
        return {404, fmt::format("{}/{} has no pin named '{}'", repo, branch, name), "", ""};
      const std::string followed = followed_branch(*pin, branch);
      std::optional<std::string> sha = target;
      if (!sha) {
        sha = head_of(pin->repo, followed);
        if (!sha) {
          return {422, fmt::format("repo '{}' has no branch '{}'", pin->repo, followed), "", ""};
        }
      }
      to = *sha;
      if (*sha == pin->commit) continue;
      auto referenced = git::Repository::open(repo_dir(pin->repo));
      std::string log;
      if (referenced.ok()) {
        if (auto l = referenced->log_entry(*sha); l.ok()) log = *l;
      }
      edits[pin->file].push_back({pin->offset, pin->length, *sha});
      moves.push_back({name, pin->repo, followed, *sha, log});
    }
    if (moves.empty()) return {200, "", *head, to};
    auto repository = git::Repository::open(repo_dir(repo));
    if (!repository.ok()) return {502, repository.error().to_string(), "", ""};
    std::map<std::string, std::string> files;
    for (const auto& [file, file_edits] : edits) {
      auto content = repository->read_file(*head, file);
      if (!content.ok() || !content->has_value()) return {502, "cannot read " + file, "", ""};
      auto edited = definitions::apply_edits(**content, file_edits);
      if (!edited.ok()) return {502, edited.error().to_string(), "", ""};
      files[file] = *edited;
    }
    auto commit =
        repository->commit_edits(*head, files, options_.author_name, options_.author_email,
                                 definitions::pin_update_message(moves));
    if (!commit.ok()) return {502, commit.error().to_string(), "", ""};
    // Push.
    std::vector<std::string> args;
    hosting::GitCredentials credentials;
    if (hosted) {
      const auto hosted_repo = options_.lookup(repo);
      if (!hosted_repo) return {404, fmt::format("repo '{}' is not on the host", repo), "", ""};
      credentials = options_.credentials;
      args = {"push", "--porcelain", hosted_repo->clone_url, *commit + ":refs/heads/" + branch};
    } else {
      // A non-bare repo with the branch checked out has its clean working tree updated
      // (receive.denyCurrentBranch=updateInstead); a dirty one refuses the push.
      args = {"push", "--porcelain",
              "--receive-pack=git -c receive.denyCurrentBranch=updateInstead receive-pack",
              std::filesystem::absolute(repo_dir(repo)).string(),
              *commit + ":refs/heads/" + branch};
    }
    std::string names;
    for (const auto& m : moves) names += (names.empty() ? "" : ", ") + m.name + " -> " + m.to;
    auto pushed =
        hosting::run_git(args, repo_dir(repo), credentials, options_.push_timeout_seconds);
    if (pushed.ok() && pushed->exit_code == 0) {
      log_line(fmt::format("pushed {} to {}/{} (pins {})", *commit, repo, branch, names));
      if (hosted && options_.fetch) options_.fetch(repo);
      if (options_.pushed) options_.pushed();
      return {200, "", *commit, to};
    }
    last_error = pushed.ok() ? hosting::git_error(repo, args, *pushed, credentials).to_string()
                             : pushed.error().to_string();
    // Lost a race when the branch moved meanwhile: redo on the new head.
    if (hosted && options_.fetch) options_.fetch(repo);
    const auto now = head_of(repo, branch);
    lost_race = now && *now != *head;
    log_line(fmt::format("push of {} to {}/{} (pins {}) failed{}: {}", *commit, repo, branch, names,
                         lost_race ? " (the branch moved: trying again on its new head)" : "",
                         last_error));
  }
  if (lost_race) {
    return {409,
            fmt::format("{}/{} kept moving: {} attempts lost the race", repo, branch,
                        options_.max_attempts),
            "", ""};
  }
  return {502, "the push failed: " + last_error, "", ""};
}

}  // namespace testlooper::server
