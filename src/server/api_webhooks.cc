// The webhook endpoints (docs/api.md "Push webhooks"): a host's push (GitHub or GitLab, proved by
// the shared secret) fetches that repo's mirror, or makes the watcher look at every repo again.
#include <nlohmann/json.hpp>

#include "core/hmac.h"
#include "core/token.h"
#include "server/api.h"
#include "server/api_json.h"
#include "server/webhooks.h"

namespace testlooper::server {

using nlohmann::json;
using reply::error;
using reply::ok;

bool Api::webhook_authentic(const Request& request, WebhookProof proof) const {
  if (webhook_secret_.empty()) return true;
  auto github = request.headers.find("x-hub-signature-256");
  auto gitlab = request.headers.find("x-gitlab-token");
  return (proof != WebhookProof::kGitLab && github != request.headers.end() &&
          same_secret(github->second,
                      "sha256=" + hmac_sha256_hex(webhook_secret_, request.body))) ||
         (proof != WebhookProof::kGitHub && gitlab != request.headers.end() &&
          same_secret(gitlab->second, webhook_secret_));
}

Response Api::host_webhook(const Request& request, bool gitlab) {
  // GitHub's payloads are at most 25 MB; a push's fields are all near the start anyway.
  constexpr size_t kMaxPayload = 25 << 20;
  if (request.body.size() > kMaxPayload) return error(413, "a webhook payload is at most 25 MB");
  auto header = [&](const char* name) {
    auto it = request.headers.find(name);
    return it == request.headers.end() ? std::string() : it->second;
  };
  if (!webhook_authentic(request, gitlab ? WebhookProof::kGitLab : WebhookProof::kGitHub)) {
    return error(401, gitlab
                          ? "the X-Gitlab-Token does not match the configured webhook secret"
                          : "the X-Hub-Signature-256 does not match the configured webhook secret");
  }
  const WebhookEvent event = gitlab ? parse_gitlab_webhook(header("x-gitlab-event"), request.body)
                                    : parse_github_webhook(header("x-github-event"), request.body);
  switch (event.kind) {
    case WebhookEvent::Kind::kPing:
      return ok({{"pong", true}});
    case WebhookEvent::Kind::kIgnored:
      return ok({{"ignored", event.event}});
    case WebhookEvent::Kind::kInvalid:
      return error(400, event.error);
    case WebhookEvent::Kind::kPush:
      break;
  }
  // Hosted: that repo's mirror is fetched (--prune and forced refspecs: a deleted branch goes,
  // a force-pushed one moves). Local: the watcher looks at every repo again.
  if (fetch_) {
    fetch_(event.repo);
  } else {
    refresh_();
  }
  Response answer = ok({{"repo", event.repo},
                        {"fetching", static_cast<bool>(fetch_)},
                        {"refreshing", !fetch_},
                        {"deleted", event.deleted},
                        {"forced", event.forced}});
  answer.status = 202;
  return answer;
}

Response Api::webhook(const Request& request) {
  if (!webhook_authentic(request))
    return error(401, "the webhook signature does not match the configured secret");
  const json body = json::parse(request.body, nullptr, false);
  if (!body.is_object()) return error(400, "a push payload must be a JSON object");
  refresh_();
  return ok({{"refreshing", true}});
}

}  // namespace testlooper::server
