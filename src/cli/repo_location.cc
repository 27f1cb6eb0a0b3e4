#include "cli/repo_location.h"

#include <filesystem>

namespace testlooper::cli {

Result<RepoLocation> locate_repo(const std::string& repo_dir, const std::string& rev,
                                 const std::string& repos_root) {
  std::error_code ec;
  const auto path = std::filesystem::canonical(repo_dir, ec);
  if (ec) return Error{repo_dir, "cannot open the repo: " + ec.message()};
  auto repo = git::Repository::open(path.string());
  if (!repo.ok()) return repo.error();
  auto sha = repo->resolve(rev);
  if (!sha.ok()) return sha.error();
  RepoLocation out;
  out.path = path.string();
  out.name = path.filename().string();
  out.repos_root = repos_root.empty() ? path.parent_path().string() : repos_root;
  out.commit = *sha;
  return out;
}

git::GitSourceReader make_reader(const RepoLocation& location) {
  return git::GitSourceReader([location](const std::string& name) -> std::optional<std::string> {
    if (name == location.name) return location.path;
    return location.repos_root + "/" + name;
  });
}

}  // namespace testlooper::cli
