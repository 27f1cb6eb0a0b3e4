// The hosting module: the server's side of GitHub and GitLab (hosted or enterprise). Lists an
// owner's or group's repositories through their REST APIs, keeps a bare mirror of each under
// the server's data dir and fetches it, posts commit statuses back, and pushes pin updates.
//
// Uses core and environments (to run the `git` program); nothing of the server's. Everything
// here is thread-safe unless said otherwise: REST calls and git runs happen on the hosting
// threads, never on the server's io thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "hosting/git_cli.h"

namespace testlooper::hosting {

enum class Kind {
  kLocal,   // source_control.path_to_repos: clones something else keeps current
  kGitHub,  // source_control's GitHub form (access_token, owner, github_*)
  kGitLab,  // source_control's GitLab form (private_token, group, gitlab_*)
};

// source_control's GitHub or GitLab form (docs/configuration.md "Git hosting").
struct HostOptions {
  Kind kind = Kind::kLocal;
  std::string token;    // access_token (GitHub) or private_token (GitLab)
  std::string owner;    // GitHub: the owner (organisation or user); GitLab: the group's full path
  std::string web_url;  // github_url / gitlab_url: "https://github.com", "https://gitlab.com"
  std::string api_url;  // github_api_url / gitlab_api_url: "https://api.github.com", ".../api/v4"
  // github_clone_url / gitlab_clone_url: when set, a repository is cloned from
  // <clone_url>/<full_name>.git instead of the URL its listing gives (a mirror, an internal
  // address), or <clone_url>:<full_name>.git when it is an SSH "git@host" (scp-like form).
  // "" = the listing's clone_url (GitHub) or http_url_to_repo (GitLab). Only https://, http://,
  // ssh:// and git@host: URLs are used (never ext:: or file://).
  std::string clone_url;
  std::string ssh_key;  // source_control.ssh_key: private key file for git@host:... clone URLs
  double poll_seconds = 300;    // source_control.poll_seconds: fetch every mirror this often
  double timeout_seconds = 30;  // one REST call; a git fetch gets 20 times as long
};

// One repository of the owner or group, as its listing gives it.
struct HostedRepo {
  std::string name;       // the repo's name in TestLooper: GitHub `name`, GitLab `path`
  std::string full_name;  // "owner/name" (GitHub full_name, GitLab path_with_namespace)
  std::string id;         // GitLab project id ("" on GitHub)
  std::string clone_url;  // HTTPS (or git@ SSH) URL to clone from (HostOptions::clone_url applied)
  std::string web_url;    // its page: "https://github.com/owner/name"
  std::string default_branch;
};

// A commit status (GitHub Statuses API, GitLab commit status API).
struct CommitStatus {
  enum class State { kPending, kSuccess, kFailure, kError };
  State state = State::kPending;
  std::string context;      // one per test set: "testlooper/<set>"
  std::string description;  // fits Host::description_limit()
  std::string target_url;   // the commit's page on this server
};

// The REST client of one host. Thread-safe: every call makes its own connection.
class Host {
 public:
  virtual ~Host() = default;
  // Every repository of the owner or group (every page, at most 100 of 100), sorted by name.
  // Archived ones are left out; so are, with a warning on stderr, those whose name is no repo
  // name (core/ids.h is_repo_name) or clone URL not one git may use, and a second one of the
  // same name (GitLab subgroups). Error: no answer, or an HTTP status other than 200 (401: a
  // bad token), or a next page on another host.
  virtual Result<std::vector<HostedRepo>> list_repos() = 0;
  // Posts `status` for commit `sha` of `repo`. An Error says why (HTTP status and the host's
  // message); the caller retries with back-off.
  virtual Status post_status(const HostedRepo& repo, const std::string& sha,
                             const CommitStatus& status) = 0;
  // The longest description the host keeps (140 on GitHub, 255 on GitLab).
  virtual size_t description_limit() const = 0;
  // The page of commit `sha` on the host, for links ("" when unknown).
  virtual std::string commit_url(const HostedRepo& repo, const std::string& sha) const = 0;
  // What git needs to clone, fetch and push `repo` (the token over HTTPS, the key over SSH).
  virtual GitCredentials credentials() const = 0;
};

// `text` cut to at most `limit` Unicode code points, never inside one: when it is longer, its
// first limit - 1 code points and "…". Bytes of invalid UTF-8 count as one code point each.
std::string fit_description(const std::string& text, size_t limit);
// The number of code points of `text`, counted as fit_description counts them.
size_t code_points(const std::string& text);
// `text` as one URL path segment: every byte but A-Z a-z 0-9 - _ . ~ percent-encoded ("/" too).
std::string path_segment(const std::string& text);

// The client for `options` (kind kGitHub or kGitLab); nullptr for kLocal.
std::unique_ptr<Host> make_host(const HostOptions& options);

}  // namespace testlooper::hosting
