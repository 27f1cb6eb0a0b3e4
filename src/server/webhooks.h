// Push webhooks from GitHub and GitLab (docs/api.md "Webhooks"): what a payload says, read
// field by field from hostile input (never throws).
#pragma once

#include <string>

namespace testlooper::server {

struct WebhookEvent {
  enum class Kind {
    kPush,     // a push (branch or tag; created, moved, force-pushed or deleted)
    kPing,     // GitHub's ping when a hook is made
    kIgnored,  // another event (issues, merge requests, ...): nothing to fetch
    kInvalid,  // a push whose payload is not valid: `error` says why
  };
  Kind kind = Kind::kInvalid;
  std::string event;     // the event header's value (at most 100 characters)
  std::string repo;      // kPush: GitHub repository.name, GitLab project.path (a valid repo name)
  bool deleted = false;  // the ref was deleted (GitHub `deleted`; GitLab `after` all zeros)
  bool forced = false;   // a force push (GitHub `forced`; GitLab does not say)
  std::string error;
};

// `event`: X-GitHub-Event ("push", "ping", ...).
WebhookEvent parse_github_webhook(const std::string& event, const std::string& body);
// `event`: X-Gitlab-Event ("Push Hook", "Tag Push Hook", ...).
WebhookEvent parse_gitlab_webhook(const std::string& event, const std::string& body);

}  // namespace testlooper::server
