// A workspace (tl.py's way of working, docs/cli.md "Workspaces"): the repos a repo's definitions
// reference (transitively), each cloned beside it under a repos root and checked out at its
// pinned commit by `testlooper checkout`, marked by the file <repos root>/.testlooper-workspace.
// `testlooper run` and `check` in a workspace read every referenced repo as it is checked out,
// uncommitted changes included, instead of at its pinned commit.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/repo_location.h"
#include "core/error.h"
#include "definitions/source_reader.h"

namespace testlooper::cli {

// The marker file written at the repos root by `checkout`:
// {"main": "<repo>", "repos": {"<name>": {"url": "<where it was cloned from>"}}}.
inline constexpr const char* kWorkspaceFile = ".testlooper-workspace";

struct Workspace {
  std::string root;                         // the repos root
  std::string main;                         // the repo it was made for
  std::map<std::string, std::string> urls;  // referenced repo -> its clone's source
};

// Whether `text` is a full sha (40 lowercase hex digits).
bool is_sha(const std::string& text);

// `git -C dir args` (no terminal prompts, `extra_env` added to this process's environment, killed
// after 5 minutes): its output (stdout and stderr), or an Error with its last line.
Result<std::string> git_output(const std::string& dir, const std::vector<std::string>& args,
                               const std::vector<std::string>& extra_env = {});

// The workspace at `repos_root`, nullopt when there is none (no marker file); an Error when the
// marker cannot be read.
Result<std::optional<Workspace>> find_workspace(const std::string& repos_root);

// What a repo's checkout holds.
struct Checkout {
  std::string head;    // the commit checked out (40 hex)
  bool dirty = false;  // tracked files changed, or files git does not ignore added
  // The commit that stands for the checkout: `head` when clean, else a commit of the working
  // tree whose parent is `head`, written into the repo's object store (no ref, index or file
  // is touched), the same for the same content.
  std::string commit;
};

// The state of the checkout at `path`. Error when it is not a git repo with a commit.
Result<Checkout> read_checkout(const std::string& path);

// A SourceReader that reads every repo through `inner`, with each `repos:` pin (FORMAT.md §4)
// that names a repo of `workspace` rewritten to that repo's Checkout::commit: so definitions
// resolve against what is checked out, and identities differ from the pinned commits' whenever
// the contents do.
class WorkspaceReader : public definitions::SourceReader {
 public:
  WorkspaceReader(definitions::SourceReader& inner, std::map<std::string, Checkout> checkouts);

  Result<std::vector<std::string>> list_files(const std::string& repo,
                                              const std::string& commit) override;
  Result<std::optional<std::string>> read_file(const std::string& repo, const std::string& commit,
                                               const std::string& path) override;
  Result<std::string> last_commit_touching(const std::string& repo, const std::string& commit,
                                           const std::string& path) override;
  Result<std::optional<std::vector<std::string>>> changed_paths(const std::string& repo,
                                                                const std::string& commit) override;

 private:
  definitions::SourceReader& inner_;
  std::map<std::string, Checkout> checkouts_;
  // (repo, commit) -> file -> its text with the pins rewritten.
  std::map<std::pair<std::string, std::string>, std::map<std::string, std::string>> rewritten_;
};

// The checkouts of `workspace`'s repos (an Error names a repo that is missing or unreadable).
Result<std::map<std::string, Checkout>> workspace_checkouts(const Workspace& workspace);

// The reader `run` resolves through in a workspace at `location`'s repos root: a
// WorkspaceReader over `reader` (the workspace's repos other than `location`'s own), with a line
// per repo added to `notes`; nullptr outside a workspace.
Result<std::unique_ptr<definitions::SourceReader>> workspace_reader(
    const RepoLocation& location, definitions::SourceReader& reader,
    std::vector<std::string>& notes);

// A line per repo for run's header: "workspace: lib at 1a2b3c4d5e6f (dirty)".
std::vector<std::string> describe_checkouts(const std::map<std::string, Checkout>& checkouts);

}  // namespace testlooper::cli
