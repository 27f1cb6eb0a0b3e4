#include "auth/sign_in.h"

#include <algorithm>
#include <cctype>

namespace testlooper::auth {
namespace {

bool same_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

Role role_of_sign_in(const std::string& login, bool member,
                     const std::vector<std::string>& admins) {
  for (const auto& admin : admins) {
    if (same_ignoring_case(admin, login)) return Role::kAdmin;
  }
  return member ? Role::kEditor : Role::kViewer;
}

std::optional<std::string> cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const size_t end = std::min(header.find(';'), header.size());
    const std::string_view pair = trimmed(header.substr(0, end));
    header.remove_prefix(std::min(end + 1, header.size()));
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos || trimmed(pair.substr(0, eq)) != name) continue;
    return std::string(trimmed(pair.substr(eq + 1)));
  }
  return std::nullopt;
}

}  // namespace testlooper::auth
