#include "server/webhooks.h"

#include <nlohmann/json.hpp>

#include "core/ids.h"

namespace testlooper::server {
namespace {

using nlohmann::json;

WebhookEvent invalid(WebhookEvent e, const std::string& why) {
  e.kind = WebhookEvent::Kind::kInvalid;
  e.error = why;
  return e;
}

// body[object][field] as a valid repo name, or "".
std::string repo_name(const json& body, const char* object, const char* field) {
  auto o = body.find(object);
  if (o == body.end() || !o->is_object()) return "";
  auto f = o->find(field);
  if (f == o->end() || !f->is_string()) return "";
  const std::string name = f->get<std::string>();
  return is_repo_name(name) ? name : "";
}

bool flag(const json& body, const char* field) {
  auto f = body.find(field);
  return f != body.end() && f->is_boolean() && f->get<bool>();
}

}  // namespace

WebhookEvent parse_github_webhook(const std::string& event, const std::string& body) {
  WebhookEvent e;
  e.event = event.substr(0, 100);
  if (event == "ping") {
    e.kind = WebhookEvent::Kind::kPing;
    return e;
  }
  if (event != "push" && !event.empty()) {
    e.kind = WebhookEvent::Kind::kIgnored;
    return e;
  }
  const json payload = json::parse(body, nullptr, false);
  if (!payload.is_object()) return invalid(e, "a push payload must be a JSON object");
  e.repo = repo_name(payload, "repository", "name");
  if (e.repo.empty()) return invalid(e, "'repository.name' must be a repository name");
  e.deleted = flag(payload, "deleted");
  e.forced = flag(payload, "forced");
  e.kind = WebhookEvent::Kind::kPush;
  return e;
}

WebhookEvent parse_gitlab_webhook(const std::string& event, const std::string& body) {
  WebhookEvent e;
  e.event = event.substr(0, 100);
  if (event != "Push Hook" && event != "Tag Push Hook" && !event.empty()) {
    e.kind = WebhookEvent::Kind::kIgnored;
    return e;
  }
  const json payload = json::parse(body, nullptr, false);
  if (!payload.is_object()) return invalid(e, "a push payload must be a JSON object");
  e.repo = repo_name(payload, "project", "path");
  if (e.repo.empty()) return invalid(e, "'project.path' must be a repository name");
  auto after = payload.find("after");
  e.deleted = after != payload.end() && after->is_string() &&
              after->get<std::string>().find_first_not_of('0') == std::string::npos &&
              !after->get<std::string>().empty();
  e.kind = WebhookEvent::Kind::kPush;
  return e;
}

}  // namespace testlooper::server
