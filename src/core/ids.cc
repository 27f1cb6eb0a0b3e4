#include "core/ids.h"

namespace testlooper {
namespace {

bool is_lower_hex(std::string_view text) {
  for (const char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

bool is_run_id(std::string_view id) { return id.size() == 16 && is_lower_hex(id); }

bool is_identity_hash(std::string_view hash) { return hash.size() == 64 && is_lower_hex(hash); }

bool is_commit_sha(std::string_view sha) {
  return (sha.size() == 40 || sha.size() == 64) && is_lower_hex(sha);
}

bool is_repo_name(std::string_view name) {
  if (name.empty() || name.size() > 100 || name.front() == '.' || name.front() == '-') return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace testlooper
