#include "git/git_source_reader.h"

#include <utility>

namespace testlooper::git {
namespace {

// Joins cache key parts with NUL, which cannot occur in repo names, shas or git paths.
std::string cache_key(const std::string& a, const std::string& b, const std::string& c = "") {
  std::string key = a;
  key += '\0';
  key += b;
  key += '\0';
  key += c;
  return key;
}

// True when `repo` names a directory strictly below the root: no empty, "." or ".." segment
// and no leading '/'.
bool is_relative_name(const std::string& repo) {
  size_t begin = 0;
  while (true) {
    const size_t end = repo.find('/', begin);
    const std::string segment = repo.substr(begin, end - begin);
    if (segment.empty() || segment == "." || segment == "..") return false;
    if (end == std::string::npos) return true;
    begin = end + 1;
  }
}

}  // namespace

GitSourceReader::GitSourceReader(Locator locate) : locate_(std::move(locate)) {}

GitSourceReader GitSourceReader::under_root(std::string repos_root) {
  return GitSourceReader(
      [root = std::move(repos_root)](const std::string& repo) -> std::optional<std::string> {
        if (!is_relative_name(repo)) return std::nullopt;
        return root + "/" + repo;
      });
}

Result<Repository*> GitSourceReader::repository(const std::string& repo) {
  if (auto found = repositories_.find(repo); found != repositories_.end()) return &found->second;
  std::optional<std::string> path = locate_(repo);
  if (!path) return Error{"", "repo '" + repo + "' not found"};
  auto opened = Repository::open(*path);
  if (!opened.ok()) {
    return Error{"", "repo '" + repo + "' not found at " + *path + ": " + opened.error().message};
  }
  return &repositories_.emplace(repo, std::move(opened.value())).first->second;
}

Result<std::string> GitSourceReader::resolve(const std::string& repo, const Repository& repository,
                                             const std::string& commit) {
  auto sha = repository.resolve(commit);
  if (!sha.ok()) {
    missing_.emplace(repo, commit);
    return Error{"", "commit " + commit + " not found in repo '" + repo + "'"};
  }
  return sha;
}

Result<std::vector<std::string>> GitSourceReader::list_files(const std::string& repo,
                                                             const std::string& commit) {
  auto repository = this->repository(repo);
  TL_RETURN_IF_ERROR(repository);
  auto sha = resolve(repo, **repository, commit);
  TL_RETURN_IF_ERROR(sha);
  const std::string key = cache_key(repo, *sha);
  if (auto hit = file_lists_.find(key); hit != file_lists_.end()) {
    file_list_recency_.splice(file_list_recency_.begin(), file_list_recency_, hit->second.recency);
    return hit->second.files;
  }
  auto files = (*repository)->list_files(*sha);
  TL_RETURN_IF_ERROR(files);
  file_list_recency_.push_front(key);
  file_lists_.emplace(key, FileList{*files, file_list_recency_.begin()});
  trim_file_lists();
  return files;
}

void GitSourceReader::trim_file_lists() {
  while (file_list_recency_.size() > kFileListCacheSize) {
    file_lists_.erase(file_list_recency_.back());
    file_list_recency_.pop_back();
  }
}

Result<std::optional<std::string>> GitSourceReader::read_file(const std::string& repo,
                                                              const std::string& commit,
                                                              const std::string& path) {
  auto repository = this->repository(repo);
  TL_RETURN_IF_ERROR(repository);
  auto sha = resolve(repo, **repository, commit);
  TL_RETURN_IF_ERROR(sha);
  return (*repository)->read_file(*sha, path);
}

Result<std::string> GitSourceReader::last_commit_touching(const std::string& repo,
                                                          const std::string& commit,
                                                          const std::string& path) {
  auto repository = this->repository(repo);
  TL_RETURN_IF_ERROR(repository);
  auto sha = resolve(repo, **repository, commit);
  TL_RETURN_IF_ERROR(sha);
  const std::string key = cache_key(repo, *sha, path);
  if (auto hit = last_touch_.find(key); hit != last_touch_.end()) return hit->second;
  auto answer = (*repository)->last_commit_touching(*sha, path);
  TL_RETURN_IF_ERROR(answer);
  last_touch_.emplace(key, *answer);
  return answer;
}

Result<std::optional<std::vector<std::string>>> GitSourceReader::changed_paths(
    const std::string& repo, const std::string& commit) {
  auto repository = this->repository(repo);
  TL_RETURN_IF_ERROR(repository);
  auto sha = resolve(repo, **repository, commit);
  TL_RETURN_IF_ERROR(sha);
  return (*repository)->changed_paths(*sha);
}

}  // namespace testlooper::git
