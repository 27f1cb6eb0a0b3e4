// libFuzzer target over what anonymous clients send the webhook endpoints: a GitHub or GitLab
// push payload (parse_github_webhook / parse_gitlab_webhook) and a Link header
// (hosting::next_link). The first byte picks the parser and the event header; the rest is the
// body. Parsing never throws nor crashes, and a push always names a valid repo (it becomes a
// directory name).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/ids.h"
#include "hosting/rest.h"
#include "server/webhooks.h"

using testlooper::server::WebhookEvent;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t pick = data[0];
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  static const char* kGitHub[] = {"push", "ping", "issues", ""};
  static const char* kGitLab[] = {"Push Hook", "Tag Push Hook", "Merge Request Hook", ""};
  WebhookEvent event;
  switch (pick % 3) {
    case 0:
      event = testlooper::server::parse_github_webhook(kGitHub[(pick / 3) % 4], body);
      break;
    case 1:
      event = testlooper::server::parse_gitlab_webhook(kGitLab[(pick / 3) % 4], body);
      break;
    default: {
      const std::string next = testlooper::hosting::next_link(body);
      if (next.size() > body.size()) abort();
      return 0;
    }
  }
  if (event.kind == WebhookEvent::Kind::kPush && !testlooper::is_repo_name(event.repo)) abort();
  if (event.event.size() > 100) abort();
  return 0;
}
