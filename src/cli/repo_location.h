// Where `check` and `run` find repos: the repo being worked on, and others by name under a
// repos root (default: the parent folder of that repo).
#pragma once

#include <string>

#include "core/error.h"
#include "git/git_source_reader.h"

namespace testlooper::cli {

struct RepoLocation {
  std::string name;        // the repo's name: its folder's name
  std::string path;        // absolute path of the repo
  std::string repos_root;  // where other repos are found by name
  std::string commit;      // resolved 40-hex sha
};

// Opens `repo_dir`, resolves `rev` and works out the names. Errors name what could not be read.
Result<RepoLocation> locate_repo(const std::string& repo_dir, const std::string& rev,
                                 const std::string& repos_root);

// A SourceReader that finds `location.name` at its path and any other repo under repos_root.
git::GitSourceReader make_reader(const RepoLocation& location);

}  // namespace testlooper::cli
