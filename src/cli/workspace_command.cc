// `testlooper checkout`, `status` and `fetch`: a workspace of the repos a repo's definitions
// reference (docs/cli.md "Workspaces", cli/workspace.h).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "cli/command.h"
#include "cli/repo_location.h"
#include "cli/workspace.h"
#include "definitions/pins.h"

namespace testlooper::cli {
namespace {

namespace fs = std::filesystem;

constexpr int kUsage = 2;

struct WorkspaceOptions {
  std::string repo = ".";
  std::string commit = "HEAD";
  std::string repos_root;
  std::string from;
};

// Where a referenced repo `name` is cloned from: `from` + "/" + name when given; else the
// sibling of the main repo's `origin` remote (".../group/app.git" -> ".../group/NAME.git",
// "git@host:group/app" -> "git@host:group/NAME"); else the main repo's parent folder's NAME.
std::string clone_url(const std::string& from, const RepoLocation& main, const std::string& name) {
  if (!from.empty()) {
    std::string base = from;
    while (base.size() > 1 && base.ends_with('/')) base.pop_back();
    if (base.ends_with(':')) return base + name;
    if (!fs::exists(base + "/" + name) && fs::exists(base + "/" + name + ".git"))
      return base + "/" + name + ".git";
    return base + "/" + name;
  }
  auto origin = git_output(main.path, {"remote", "get-url", "origin"});
  if (origin.ok() && !origin->empty()) {
    std::string url = *origin;
    while (url.size() > 1 && url.ends_with('/')) url.pop_back();
    const bool dot_git = url.ends_with(".git");
    const size_t cut = url.find_last_of("/:");
    if (cut != std::string::npos) return url.substr(0, cut + 1) + name + (dot_git ? ".git" : "");
  }
  return (fs::path(main.path).parent_path() / name).string();
}

// Writes the workspace marker atomically.
Status write_workspace(const Workspace& workspace) {
  nlohmann::json doc = {{"main", workspace.main}, {"repos", nlohmann::json::object()}};
  for (const auto& [name, url] : workspace.urls) doc["repos"][name] = {{"url", url}};
  const fs::path file = fs::path(workspace.root) / kWorkspaceFile;
  const fs::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp);
    out << doc.dump(2) << "\n";
    if (!out.flush()) return Error{tmp.string(), "cannot write the workspace file"};
  }
  std::error_code ec;
  fs::rename(tmp, file, ec);
  if (ec) return Error{file.string(), "cannot write the workspace file: " + ec.message()};
  return {};
}

// The repo `name` of the workspace at `pinned`: cloned when missing, fetched when it lacks the
// commit, checked out (detached) unless it has uncommitted changes. Returns what to report.
Result<std::string> check_out(Workspace& workspace, const std::string& name,
                              const std::string& pinned, const std::string& url) {
  const std::string path = (fs::path(workspace.root) / name).string();
  bool fresh = false;
  if (!fs::exists(path)) {
    if (auto r = git_output(workspace.root, {"clone", "-q", url, name}); !r.ok()) return r.error();
    fresh = true;
  }
  if (auto got = git_output(path, {"remote", "get-url", "origin"}); got.ok() && !got->empty()) {
    workspace.urls[name] = *got;
  } else {
    workspace.urls[name] = workspace.urls.count(name) ? workspace.urls[name] : url;
  }
  if (!git_output(path, {"cat-file", "-e", pinned + "^{commit}"}).ok()) {
    if (auto r = git_output(path, {"fetch", "-q", "origin"}); !r.ok()) return r.error();
    if (!git_output(path, {"cat-file", "-e", pinned + "^{commit}"}).ok())
      return Error{name, "the pinned commit " + pinned + " is not in " + workspace.urls[name]};
  }
  auto checkout = read_checkout(path);
  if (!checkout.ok()) return checkout.error();
  if (checkout->head == pinned) return std::string(fresh ? "cloned, at the pin" : "at the pin");
  if (checkout->dirty && !fresh) {
    return Error{name, "has uncommitted changes: left at " + checkout->head.substr(0, 12) +
                           " (commit or stash them, then checkout again)"};
  }
  if (auto r = git_output(path, {"checkout", "-q", "--detach", pinned}); !r.ok()) return r.error();
  return std::string(fresh ? "cloned, checked out" : "checked out");
}

int checkout_command(const WorkspaceOptions& options) {
  auto location = locate_repo(options.repo, options.commit, options.repos_root);
  if (!location.ok()) {
    std::cerr << "testlooper checkout: " << location.error().to_string() << "\n";
    return kUsage;
  }
  std::error_code ec;
  fs::create_directories(location->repos_root, ec);
  Workspace workspace{
      fs::absolute(location->repos_root).lexically_normal().string(), location->name, {}};
  if (auto existing = find_workspace(workspace.root); existing.ok() && *existing)
    workspace.urls = (*existing)->urls;
  location->repos_root = workspace.root;
  git::GitSourceReader reader = make_reader(*location);
  // Breadth first from the main repo's commit; each repo once, at the first pin met.
  std::deque<std::pair<std::string, std::string>> todo = {{location->name, location->commit}};
  std::map<std::string, std::string> pinned;
  int status = 0;
  while (!todo.empty()) {
    const auto [repo, commit] = todo.front();
    todo.pop_front();
    auto pins = definitions::list_pins(reader, repo, commit);
    if (!pins.ok()) {
      std::cerr << "testlooper checkout: " << pins.error().to_string() << "\n";
      status = 1;
      continue;
    }
    for (const definitions::PinLocation& pin : *pins) {
      if (pin.repo == location->name || !is_sha(pin.commit)) continue;
      if (auto seen = pinned.find(pin.repo); seen != pinned.end()) {
        if (seen->second != pin.commit) {
          std::cout << fmt::format("{}: also pinned at {} by {}; keeping {}\n", pin.repo,
                                   pin.commit.substr(0, 12), repo, seen->second.substr(0, 12));
        }
        continue;
      }
      pinned[pin.repo] = pin.commit;
      const std::string url = workspace.urls.count(pin.repo)
                                  ? workspace.urls[pin.repo]
                                  : clone_url(options.from, *location, pin.repo);
      auto done = check_out(workspace, pin.repo, pin.commit, url);
      if (!done.ok()) {
        std::cerr << "testlooper checkout: " << done.error().to_string() << "\n";
        status = 1;
        if (!fs::exists(fs::path(workspace.root) / pin.repo)) continue;
      } else {
        std::cout << fmt::format("{}: {} {}\n", pin.repo, pin.commit.substr(0, 12), *done);
      }
      todo.emplace_back(pin.repo, pin.commit);
    }
  }
  if (auto s = write_workspace(workspace); !s.ok()) {
    std::cerr << "testlooper checkout: " << s.error().to_string() << "\n";
    return 1;
  }
  std::cout << fmt::format("workspace {}: {} and {} referenced repo{}\n", workspace.root,
                           location->name, workspace.urls.size(),
                           workspace.urls.size() == 1 ? "" : "s");
  return status;
}

// The workspace of the repo `options` names (its repos root), or an Error saying why there is none.
Result<Workspace> open_workspace(const WorkspaceOptions& options, RepoLocation& location) {
  auto found = locate_repo(options.repo, "HEAD", options.repos_root);
  if (!found.ok()) return found.error();
  location = *found;
  auto workspace = find_workspace(location.repos_root);
  if (!workspace.ok()) return workspace.error();
  if (!*workspace) {
    return Error{location.repos_root, "no workspace here (no " + std::string(kWorkspaceFile) +
                                          "): make one with `testlooper checkout --repos-root " +
                                          location.repos_root + "`"};
  }
  return **workspace;
}

int status_command(const WorkspaceOptions& options) {
  RepoLocation location;
  auto workspace = open_workspace(options, location);
  if (!workspace.ok()) {
    std::cerr << "testlooper status: " << workspace.error().to_string() << "\n";
    return kUsage;
  }
  auto checkouts = workspace_checkouts(*workspace);
  if (!checkouts.ok()) {
    std::cerr << "testlooper status: " << checkouts.error().to_string() << "\n";
    return 1;
  }
  auto main = read_checkout(location.path);
  if (!main.ok()) {
    std::cerr << "testlooper status: " << main.error().to_string() << "\n";
    return 1;
  }
  // The pins as `run` reads them: each repo as it is checked out, uncommitted changes included.
  git::GitSourceReader reader = make_reader(location);
  std::map<std::string, std::string> pinned;
  std::deque<std::pair<std::string, std::string>> todo = {{location.name, main->commit}};
  std::set<std::string> visited = {location.name};
  while (!todo.empty()) {
    const auto [repo, commit] = todo.front();
    todo.pop_front();
    auto pins = definitions::list_pins(reader, repo, commit);
    if (!pins.ok()) continue;
    for (const definitions::PinLocation& pin : *pins) {
      if (!is_sha(pin.commit) || pinned.count(pin.repo)) continue;
      pinned[pin.repo] = pin.commit;
      const auto checkout = checkouts->find(pin.repo);
      if (checkout != checkouts->end() && visited.insert(pin.repo).second)
        todo.emplace_back(pin.repo, checkout->second.commit);
    }
  }
  std::cout << fmt::format("{:<20} {:<12}  {:<12}  {}\n", "REPO", "PINNED", "CHECKED OUT", "STATE");
  auto row = [](const std::string& name, const std::string& pin, const Checkout& c) {
    std::string state = c.dirty ? "dirty" : "clean";
    if (!pin.empty() && pin != "-" && pin != c.head) state += ", not at the pin";
    std::cout << fmt::format("{:<20} {:<12}  {:<12}  {}\n", name, pin.substr(0, 12),
                             c.head.substr(0, 12), state);
  };
  row(location.name, "-", *main);
  for (const auto& [name, checkout] : *checkouts) {
    const auto pin = pinned.find(name);
    row(name, pin == pinned.end() ? "(unpinned)" : pin->second, checkout);
  }
  return 0;
}

int fetch_command(const WorkspaceOptions& options) {
  RepoLocation location;
  auto workspace = open_workspace(options, location);
  if (!workspace.ok()) {
    std::cerr << "testlooper fetch: " << workspace.error().to_string() << "\n";
    return kUsage;
  }
  int status = 0;
  for (const auto& [name, url] : workspace->urls) {
    auto done = git_output((fs::path(workspace->root) / name).string(), {"fetch", "-q", "origin"});
    if (done.ok()) {
      std::cout << name << ": fetched " << url << "\n";
    } else {
      std::cerr << "testlooper fetch: " << name << ": " << done.error().to_string() << "\n";
      status = 1;
    }
  }
  return status;
}

void add_location_options(CLI::App* cmd, WorkspaceOptions& options) {
  cmd->add_option("--repo", options.repo, "The main git repo (default: .)");
  cmd->add_option("--repos-root", options.repos_root,
                  "The workspace: where referenced repos are, by name (default: the repo's parent "
                  "folder)");
}

}  // namespace

void add_workspace_commands(CLI::App& app, Action& action) {
  auto options = std::make_shared<WorkspaceOptions>();
  CLI::App* checkout = app.add_subcommand(
      "checkout",
      "Clone every repo the definitions reference beside this one, at its pinned commit");
  add_location_options(checkout, *options);
  checkout->add_option("--commit", options->commit,
                       "The main repo's commit whose pins are followed (default: HEAD)");
  checkout->add_option("--from", options->from,
                       "Clone missing repos from FROM/<name> (default: beside the main repo's "
                       "origin remote)");
  checkout->callback(
      [options, &action] { action = [options] { return checkout_command(*options); }; });
  CLI::App* status = app.add_subcommand(
      "status", "Show each workspace repo's pinned commit, its checkout and whether it is dirty");
  add_location_options(status, *options);
  status->callback([options, &action] { action = [options] { return status_command(*options); }; });
  CLI::App* fetch = app.add_subcommand("fetch", "git fetch origin in each workspace repo");
  add_location_options(fetch, *options);
  fetch->callback([options, &action] { action = [options] { return fetch_command(*options); }; });
}

}  // namespace testlooper::cli
