// Runs the `git` program for the mirrors' clones and fetches and for pushes. We run git rather
// than libgit2 for the network: Debian's git speaks every transport (HTTPS with the system's
// CAs and proxies, SSH with the user's ssh, protocol v2) the way users' own git does, and a
// fetch that hangs is a process we can kill. Credentials go through the environment, never the
// command line (which any user of the machine can read in /proc).
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "core/error.h"

namespace testlooper::hosting {

struct GitCredentials {
  // HTTPS: sent as `Authorization: Basic base64(user:token)` (http.extraHeader); GitHub takes
  // user "x-access-token", GitLab "oauth2". Empty token = none.
  std::string user;
  std::string token;
  std::string
      ssh_key;  // a private key file for SSH URLs (GIT_SSH_COMMAND ssh -i ...); "" = ssh's own
};

struct GitOutput {
  int exit_code = -1;  // -1: killed (timeout) or by a signal
  std::string output;  // stdout and stderr, interleaved, at most 1 MiB kept
};

// Runs `git <args>` in `dir` ("" = the current one) with `credentials`, no terminal prompts, no
// credential helper, no system config (the user's ~/.gitconfig is read), and LC_ALL=C. The process
// group is killed after `timeout_seconds`, or within a second once `*cancel` is true. Error only
// when git cannot be started, timed out or was cancelled; a non-zero exit is a GitOutput with its
// output.
Result<GitOutput> run_git(const std::vector<std::string>& args, const std::string& dir,
                          const GitCredentials& credentials, double timeout_seconds,
                          const std::atomic<bool>* cancel = nullptr);

// Error{where, "git <args[0]>: <last lines of output>"} for a run that did not exit 0, with the
// token (if any) replaced by "***".
Error git_error(const std::string& where, const std::vector<std::string>& args,
                const GitOutput& output, const GitCredentials& credentials);

}  // namespace testlooper::hosting
