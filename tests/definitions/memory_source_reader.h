// An in-memory SourceReader for tests and the fuzzer: repos with one or more commits, each a map
// of path to content. History questions have simple answers: the last commit touching a path is
// the newest commit (in insertion order up to the asked one) whose content under it differs.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "definitions/source_reader.h"

namespace testlooper::definitions {

class MemorySourceReader : public SourceReader {
 public:
  using Files = std::map<std::string, std::string>;

  // Adds a commit to `repo`; the first commit of a repo is its root.
  void add_commit(const std::string& repo, const std::string& sha, Files files) {
    repos_[repo].push_back({sha, std::move(files)});
  }

  Result<std::vector<std::string>> list_files(const std::string& repo,
                                              const std::string& commit) override {
    auto c = find(repo, commit);
    if (!c.ok()) return c.error();
    std::vector<std::string> out;
    for (const auto& [path, content] : (*c)->files) out.push_back(path);
    return out;
  }

  Result<std::optional<std::string>> read_file(const std::string& repo, const std::string& commit,
                                               const std::string& path) override {
    auto c = find(repo, commit);
    if (!c.ok()) return c.error();
    auto it = (*c)->files.find(path);
    if (it == (*c)->files.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }

  Result<std::string> last_commit_touching(const std::string& repo, const std::string& commit,
                                           const std::string& path) override {
    auto c = find(repo, commit);
    if (!c.ok()) return c.error();
    const auto& commits = repos_[repo];
    size_t i = static_cast<size_t>(*c - commits.data());
    while (i > 0 && under(commits[i].files, path) == under(commits[i - 1].files, path)) --i;
    return commits[i].sha;
  }

  Result<std::optional<std::vector<std::string>>> changed_paths(
      const std::string& repo, const std::string& commit) override {
    auto c = find(repo, commit);
    if (!c.ok()) return c.error();
    const auto& commits = repos_[repo];
    const size_t i = static_cast<size_t>(*c - commits.data());
    if (i == 0) return std::optional<std::vector<std::string>>();
    std::vector<std::string> out;
    const Files& now = commits[i].files;
    const Files& before = commits[i - 1].files;
    for (const auto& [p, v] : now) {
      auto it = before.find(p);
      if (it == before.end() || it->second != v) out.push_back(p);
    }
    for (const auto& [p, v] : before) {
      if (now.count(p) == 0) out.push_back(p);
    }
    return std::optional<std::vector<std::string>>(out);
  }

 private:
  struct Commit {
    std::string sha;
    Files files;
  };

  Result<const Commit*> find(const std::string& repo, const std::string& sha) {
    auto r = repos_.find(repo);
    if (r == repos_.end()) return Error{repo, "no repo named '" + repo + "'"};
    for (const auto& c : r->second) {
      if (c.sha == sha) return &c;
    }
    return Error{repo, "no commit " + sha + " in repo '" + repo + "'"};
  }

  static Files under(const Files& files, const std::string& path) {
    Files out;
    for (const auto& [p, v] : files) {
      if (p == path || p.rfind(path + "/", 0) == 0) out.emplace(p, v);
    }
    return out;
  }

  std::map<std::string, std::vector<Commit>> repos_;
};

}  // namespace testlooper::definitions
