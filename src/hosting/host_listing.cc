// Listing the owner's or group's repositories (every page). Helper A implements this.
#include "hosting/host_impl.h"

namespace testlooper::hosting {

Result<std::vector<HostedRepo>> GitHubHost::list_repos() {
  return Error{"GitHub", "listing repositories is not implemented yet"};
}

Result<std::vector<HostedRepo>> GitLabHost::list_repos() {
  return Error{"GitLab", "listing repositories is not implemented yet"};
}

}  // namespace testlooper::hosting
