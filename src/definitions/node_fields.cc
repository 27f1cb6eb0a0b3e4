// Typed reads of Node fields, with errors that say what was expected.
#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <set>

#include "definitions/loader.h"
#include "definitions/macros.h"

namespace testlooper::definitions {

std::string as_string(const Node& node, const std::string& what) {
  if (!node.is_scalar())
    fail_at(node, fmt::format("{} must be a string, not {}", what, describe(node)));
  return scalar_text(node);
}

long long as_int(const Node& node, const std::string& what) {
  if (node.is_scalar()) {
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(node.text.c_str(), &end, 10);
    if (!node.text.empty() && *end == '\0' && errno == 0) return v;
  }
  fail_at(node, fmt::format("{} must be an integer, not {}", what, describe(node)));
}

double as_double(const Node& node, const std::string& what) {
  if (node.is_scalar()) {
    errno = 0;
    char* end = nullptr;
    const double v = std::strtod(node.text.c_str(), &end);
    if (!node.text.empty() && *end == '\0' && errno == 0) return v;
  }
  fail_at(node, fmt::format("{} must be a number, not {}", what, describe(node)));
}

bool as_bool(const Node& node, const std::string& what) {
  if (node.is_scalar()) {
    const std::string t = scalar_text(node);
    if (t == "true" || t == "yes" || t == "on") return true;
    if (t == "false" || t == "no" || t == "off") return false;
  }
  fail_at(node, fmt::format("{} must be true or false, not {}", what, describe(node)));
}

std::vector<std::string> as_string_list(const Node& node, const std::string& what) {
  if (node.is_scalar()) return {scalar_text(node)};
  if (!node.is_list()) {
    fail_at(node, fmt::format("{} must be a list of strings, not {}", what, describe(node)));
  }
  std::vector<std::string> out;
  for (const auto& item : node.items) out.push_back(as_string(item, what + " items"));
  return out;
}

namespace {

// Keys the original TestLooper's docs/testDefinitions.md lists that this language does not take,
// and why (docs/definitions.md "Keys of the original"): never silently ignored.
struct UnsupportedKey {
  const char* key;
  const char* reason;
};
constexpr UnsupportedKey kUnsupportedKeys[] = {
    {"test_preCommand",
     "commands are not prepended to a test's script: put the command in the environment's "
     "'test_stages' (they run before the object's own stages)"},
    {"test_preCleanupCommand",
     "cleanup belongs to a stage: give a stage of the environment's 'test_stages' a 'cleanup', "
     "or add an 'always_run' stage"},
    {"test_cleanupCommand",
     "cleanup belongs to a stage: give a stage of the environment's 'test_stages' a 'cleanup', "
     "or add an 'always_run' stage"},
};

}  // namespace

void check_keys(const Node& map, const std::vector<std::string>& allowed, const std::string& what) {
  if (!map.is_map()) fail_at(map, fmt::format("{} must be a map, not {}", what, describe(map)));
  for (const auto& [key, value] : map.entries) {
    bool known = false;
    for (const auto& a : allowed) known = known || key.text == a;
    if (known) continue;
    for (const UnsupportedKey& u : kUnsupportedKeys) {
      if (key.text == u.key) {
        fail_at(key, fmt::format("'{}' in {} is not supported here because {}", key.text, what,
                                 u.reason));
      }
    }
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    fail_at(key, fmt::format("unknown key '{}' in {}; expected one of: {}", key.text, what, list));
  }
}

std::vector<std::pair<Node, Node>> section_entries(const Node& section, const std::string& what) {
  if (section.is_null()) return {};
  if (section.is_map()) return section.entries;
  if (!section.is_list()) {
    fail_at(section, fmt::format("'{}' must be a map of names, or a list of such maps, not {}",
                                 what, describe(section)));
  }
  std::vector<std::pair<Node, Node>> out;
  std::set<std::string> seen;
  for (const auto& item : section.items) {
    if (item.is_null()) continue;
    if (!item.is_map()) {
      fail_at(item,
              fmt::format("items of '{}' must be maps of names, not {}", what, describe(item)));
    }
    for (const auto& [k, v] : item.entries) {
      if (!seen.insert(k.text).second)
        fail_at(k, fmt::format("'{}' is defined twice in '{}'", k.text, what));
      out.emplace_back(k, v);
    }
  }
  return out;
}

}  // namespace testlooper::definitions
