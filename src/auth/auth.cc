#include "auth/auth.h"

namespace testlooper::auth {

std::optional<Role> parse_role(std::string_view text) {
  if (text == "viewer") return Role::kViewer;
  if (text == "editor") return Role::kEditor;
  if (text == "admin") return Role::kAdmin;
  if (text == "worker") return Role::kWorker;
  return std::nullopt;
}

std::string_view to_string(Role role) {
  switch (role) {
    case Role::kAnonymous:
      return "anonymous";
    case Role::kViewer:
      return "viewer";
    case Role::kEditor:
      return "editor";
    case Role::kAdmin:
      return "admin";
    case Role::kWorker:
      return "worker";
  }
  return "anonymous";
}

bool allows(Role have, Role need) {
  if (need == Role::kAnonymous) return true;
  if (need == Role::kWorker || have == Role::kWorker) return have == need;
  return static_cast<int>(have) >= static_cast<int>(need);
}

bool is_token_name(std::string_view text) {
  if (text.empty() || text.size() > 64) return false;
  for (const char c : text) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::optional<Mode> parse_mode(std::string_view text) {
  if (text == "none") return Mode::kNone;
  if (text == "token") return Mode::kToken;
  if (text == "oauth") return Mode::kOAuth;
  return std::nullopt;
}

std::string_view to_string(Mode mode) {
  switch (mode) {
    case Mode::kNone:
      return "none";
    case Mode::kToken:
      return "token";
    case Mode::kOAuth:
      return "oauth";
  }
  return "none";
}

}  // namespace testlooper::auth
