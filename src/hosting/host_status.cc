// Posting commit statuses. Helper B implements this.
#include "hosting/host_impl.h"

namespace testlooper::hosting {

Status GitHubHost::post_status(const HostedRepo&, const std::string&, const CommitStatus&) {
  return Error{"GitHub", "posting statuses is not implemented yet"};
}

Status GitLabHost::post_status(const HostedRepo&, const std::string&, const CommitStatus&) {
  return Error{"GitLab", "posting statuses is not implemented yet"};
}

}  // namespace testlooper::hosting
