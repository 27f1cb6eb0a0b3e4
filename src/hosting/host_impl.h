// The GitHub and GitLab clients behind hosting::Host. Internal to the hosting module: the
// listing lives in host_listing.cc, the statuses in host_status.cc, the rest in host.cc.
#pragma once

#include "hosting/hosting.h"
#include "hosting/rest.h"

namespace testlooper::hosting {

class GitHubHost : public Host {
 public:
  explicit GitHubHost(HostOptions options) : options_(std::move(options)) {}
  Result<std::vector<HostedRepo>> list_repos() override;
  Status post_status(const HostedRepo& repo, const std::string& sha,
                     const CommitStatus& status) override;
  size_t description_limit() const override { return 140; }
  std::string commit_url(const HostedRepo& repo, const std::string& sha) const override;
  GitCredentials credentials() const override;

 private:
  // Authorization and Accept headers for a REST call.
  std::vector<std::string> headers() const;
  HostOptions options_;
};

class GitLabHost : public Host {
 public:
  explicit GitLabHost(HostOptions options) : options_(std::move(options)) {}
  Result<std::vector<HostedRepo>> list_repos() override;
  Status post_status(const HostedRepo& repo, const std::string& sha,
                     const CommitStatus& status) override;
  size_t description_limit() const override { return 255; }
  std::string commit_url(const HostedRepo& repo, const std::string& sha) const override;
  GitCredentials credentials() const override;

 private:
  std::vector<std::string> headers() const;  // PRIVATE-TOKEN
  HostOptions options_;
};

}  // namespace testlooper::hosting
