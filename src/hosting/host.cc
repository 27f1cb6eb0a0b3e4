#include "hosting/host_impl.h"

namespace testlooper::hosting {

std::unique_ptr<Host> make_host(const HostOptions& options) {
  switch (options.kind) {
    case Kind::kGitHub:
      return std::make_unique<GitHubHost>(options);
    case Kind::kGitLab:
      return std::make_unique<GitLabHost>(options);
    case Kind::kLocal:
      break;
  }
  return nullptr;
}

std::vector<std::string> GitHubHost::headers() const {
  std::vector<std::string> h = {"Accept: application/vnd.github+json",
                                "X-GitHub-Api-Version: 2022-11-28"};
  if (!options_.token.empty()) h.push_back("Authorization: Bearer " + options_.token);
  return h;
}

std::string GitHubHost::commit_url(const HostedRepo& repo, const std::string& sha) const {
  return repo.web_url.empty() ? "" : repo.web_url + "/commit/" + sha;
}

GitCredentials GitHubHost::credentials() const {
  return {"x-access-token", options_.token, options_.ssh_key};
}

std::vector<std::string> GitLabHost::headers() const {
  std::vector<std::string> h;
  if (!options_.token.empty()) h.push_back("PRIVATE-TOKEN: " + options_.token);
  return h;
}

std::string GitLabHost::commit_url(const HostedRepo& repo, const std::string& sha) const {
  return repo.web_url.empty() ? "" : repo.web_url + "/-/commit/" + sha;
}

GitCredentials GitLabHost::credentials() const {
  return {"oauth2", options_.token, options_.ssh_key};
}

}  // namespace testlooper::hosting
