#include "cli/workspace.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "definitions/pins.h"
#include "environments/child_process.h"

namespace testlooper::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr double kGitTimeoutSeconds = 300;

// The last line of `git -C path args` that is a sha.
Result<std::string> git_sha(const std::string& path, const std::vector<std::string>& args,
                            const std::vector<std::string>& extra_env = {}) {
  auto out = git_output(path, args, extra_env);
  if (!out.ok()) return out.error();
  std::string found;
  std::istringstream lines(*out);
  for (std::string line; std::getline(lines, line);) {
    if (is_sha(line)) found = line;
  }
  if (found.empty()) return Error{path, "git " + args[0] + " printed no commit"};
  return found;
}

}  // namespace

bool is_sha(const std::string& text) {
  return text.size() == 40 && text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

Result<std::string> git_output(const std::string& dir, const std::vector<std::string>& args,
                               const std::vector<std::string>& extra_env) {
  std::vector<std::string> argv = {"git", "-C", dir};
  argv.insert(argv.end(), args.begin(), args.end());
  environments::CaptureOptions options;
  options.env = environments::inherited_environment();
  options.env.push_back("GIT_TERMINAL_PROMPT=0");
  options.env.push_back("LC_ALL=C");
  options.env.insert(options.env.end(), extra_env.begin(), extra_env.end());
  options.timeout_seconds = kGitTimeoutSeconds;
  options.max_output = 1 << 20;
  auto out = environments::run_and_capture(argv, "", options);
  if (!out.ok()) return out.error();
  std::string text = out->output;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (out->exit_code != 0) {
    return Error{dir, "git " + args[0] + " failed" + (out->timed_out ? " (timed out)" : "") + ": " +
                          text.substr(text.rfind('\n') + 1)};
  }
  return text;
}

Result<std::optional<Workspace>> find_workspace(const std::string& repos_root) {
  const fs::path file = fs::path(repos_root) / kWorkspaceFile;
  std::error_code ec;
  if (!fs::exists(file, ec)) return std::optional<Workspace>();
  std::ifstream in(file);
  const json doc = json::parse(in, nullptr, false);
  const std::string where = file.string();
  if (!doc.is_object() || !doc.contains("main") || !doc["main"].is_string() ||
      !doc.contains("repos") || !doc["repos"].is_object()) {
    return Error{where, "not a workspace file: expected {\"main\": name, \"repos\": {...}}"};
  }
  Workspace out;
  out.root = repos_root;
  out.main = doc["main"].get<std::string>();
  for (const auto& [name, repo] : doc["repos"].items()) {
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == ".." ||
        !repo.is_object() || !repo.contains("url") || !repo["url"].is_string()) {
      return Error{where, "repos." + name + ": expected {\"url\": string}"};
    }
    out.urls[name] = repo["url"].get<std::string>();
  }
  return std::optional<Workspace>(std::move(out));
}

Result<Checkout> read_checkout(const std::string& path) {
  Checkout out;
  auto head = git_sha(path, {"rev-parse", "--verify", "HEAD^{commit}"});
  if (!head.ok()) return head.error();
  out.head = out.commit = *head;
  auto status = git_output(path, {"status", "--porcelain", "--untracked-files=all"});
  if (!status.ok()) return status.error();
  out.dirty = !status->empty();
  if (!out.dirty) return out;
  // The working tree as a commit: a private index in the repo's git dir (a copy of the user's,
  // so only changed files are hashed again), the user's own left as it is; fixed names and
  // dates, so the same content gives the same commit (and the store reuses its builds).
  auto git_dir = git_output(path, {"rev-parse", "--absolute-git-dir"});
  if (!git_dir.ok()) return git_dir.error();
  const std::string index =
      (fs::path(*git_dir) / ("testlooper-index-" + std::to_string(::getpid()))).string();
  const std::vector<std::string> env = {"GIT_INDEX_FILE=" + index,
                                        "GIT_AUTHOR_NAME=TestLooper",
                                        "GIT_AUTHOR_EMAIL=testlooper@localhost",
                                        "GIT_COMMITTER_NAME=TestLooper",
                                        "GIT_COMMITTER_EMAIL=testlooper@localhost",
                                        "GIT_AUTHOR_DATE=@0 +0000",
                                        "GIT_COMMITTER_DATE=@0 +0000"};
  std::error_code ec;
  fs::remove(index, ec);
  Status made = [&]() -> Status {
    std::error_code copy_error;
    if (!fs::copy_file(fs::path(*git_dir) / "index", index, copy_error)) {
      if (auto r = git_output(path, {"read-tree", out.head}, env); !r.ok()) return r.error();
    }
    if (auto r = git_output(path, {"add", "-A", "."}, env); !r.ok()) return r.error();
    auto tree = git_sha(path, {"write-tree"}, env);
    if (!tree.ok()) return tree.error();
    auto commit = git_sha(path,
                          {"commit-tree", *tree, "-p", out.head, "-m",
                           "testlooper: the working tree (uncommitted changes)"},
                          env);
    if (!commit.ok()) return commit.error();
    out.commit = *commit;
    return {};
  }();
  fs::remove(index, ec);
  if (!made.ok()) return made.error();
  return out;
}

Result<std::map<std::string, Checkout>> workspace_checkouts(const Workspace& workspace) {
  std::map<std::string, Checkout> out;
  for (const auto& [name, url] : workspace.urls) {
    auto checkout = read_checkout((fs::path(workspace.root) / name).string());
    if (!checkout.ok())
      return Error{name,
                   "the workspace's checkout cannot be read: " + checkout.error().to_string()};
    out[name] = *checkout;
  }
  return out;
}

std::vector<std::string> describe_checkouts(const std::map<std::string, Checkout>& checkouts) {
  std::vector<std::string> lines;
  for (const auto& [name, c] : checkouts) {
    lines.push_back(
        "workspace: " + name + " at " + c.head.substr(0, 12) +
        (c.dirty ? " with uncommitted changes (as " + c.commit.substr(0, 12) + ")" : ""));
  }
  return lines;
}

Result<std::unique_ptr<definitions::SourceReader>> workspace_reader(
    const RepoLocation& location, definitions::SourceReader& reader,
    std::vector<std::string>& notes) {
  auto workspace = find_workspace(location.repos_root);
  if (!workspace.ok()) return workspace.error();
  if (!*workspace) return std::unique_ptr<definitions::SourceReader>();
  (*workspace)->urls.erase(location.name);
  auto checkouts = workspace_checkouts(**workspace);
  if (!checkouts.ok()) return checkouts.error();
  for (const std::string& line : describe_checkouts(*checkouts)) notes.push_back(line);
  return std::unique_ptr<definitions::SourceReader>(
      std::make_unique<WorkspaceReader>(reader, std::move(*checkouts)));
}

WorkspaceReader::WorkspaceReader(definitions::SourceReader& inner,
                                 std::map<std::string, Checkout> checkouts)
    : inner_(inner), checkouts_(std::move(checkouts)) {}

Result<std::vector<std::string>> WorkspaceReader::list_files(const std::string& repo,
                                                             const std::string& commit) {
  return inner_.list_files(repo, commit);
}

Result<std::optional<std::string>> WorkspaceReader::read_file(const std::string& repo,
                                                              const std::string& commit,
                                                              const std::string& path) {
  const auto key = std::make_pair(repo, commit);
  auto done = rewritten_.find(key);
  if (done == rewritten_.end()) {
    // Every pin of this commit that names a workspace repo, by file.
    std::map<std::string, std::vector<definitions::TextEdit>> edits;
    if (auto pins = definitions::list_pins(inner_, repo, commit); pins.ok()) {
      for (const definitions::PinLocation& pin : *pins) {
        const auto checkout = checkouts_.find(pin.repo);
        if (checkout == checkouts_.end() || !is_sha(pin.commit)) continue;
        edits[pin.file].push_back({pin.offset, pin.length, checkout->second.commit});
      }
    }
    std::map<std::string, std::string> files;
    for (auto& [file, file_edits] : edits) {
      auto text = inner_.read_file(repo, commit, file);
      if (!text.ok() || !*text) continue;
      auto edited = definitions::apply_edits(**text, std::move(file_edits));
      if (edited.ok()) files[file] = *edited;
    }
    done = rewritten_.emplace(key, std::move(files)).first;
  }
  if (auto file = done->second.find(path); file != done->second.end())
    return std::optional<std::string>(file->second);
  return inner_.read_file(repo, commit, path);
}

Result<std::string> WorkspaceReader::last_commit_touching(const std::string& repo,
                                                          const std::string& commit,
                                                          const std::string& path) {
  return inner_.last_commit_touching(repo, commit, path);
}

Result<std::optional<std::vector<std::string>>> WorkspaceReader::changed_paths(
    const std::string& repo, const std::string& commit) {
  return inner_.changed_paths(repo, commit);
}

}  // namespace testlooper::cli
