#include "definitions/stages.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "definitions/loader.h"

namespace testlooper::definitions {
namespace {

std::string text_field(const Node& map, const char* key, const VariableLookup& lookup) {
  const Node* n = map.find(key);
  if (n == nullptr || n->is_null()) return "";
  return substitute(as_string(*n, key), lookup);
}

Artifact parse_artifact(const Node& node, const VariableLookup& lookup) {
  check_keys(node, {"name", "directory", "include_patterns", "exclude_patterns", "format"},
             "an artifact");
  Artifact a;
  a.name = text_field(node, "name", lookup);
  a.directory = text_field(node, "directory", lookup);
  for (const char* key : {"include_patterns", "exclude_patterns"}) {
    const Node* n = node.find(key);
    if (n == nullptr || n->is_null()) continue;
    auto& out = std::string(key) == "include_patterns" ? a.include_patterns : a.exclude_patterns;
    for (const auto& p : as_string_list(*n, key)) out.push_back(substitute(p, lookup));
  }
  if (const Node* f = node.find("format")) {
    const std::string format = as_string(*f, "format");
    std::string lower = format;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    if (lower == "tar") a.format = "Tar";
    else if (lower == "zip") a.format = "Zip";
    else if (lower == "files") a.format = "Files";
    else fail_at(*f, fmt::format("artifact format must be Tar, Zip or Files, not '{}'", format));
  }
  return a;
}

}  // namespace

Stage parse_stage(const Node& node, const VariableLookup& lookup, bool tests_allowed) {
  check_keys(node, {"command", "list_tests_command", "run_tests_command", "cleanup", "order",
                    "always_run", "artifacts"},
             "a stage");
  Stage s;
  s.command = text_field(node, "command", lookup);
  s.list_tests_command = text_field(node, "list_tests_command", lookup);
  s.run_tests_command = text_field(node, "run_tests_command", lookup);
  s.cleanup = text_field(node, "cleanup", lookup);
  const bool test_form = node.find("run_tests_command") || node.find("list_tests_command");
  if (test_form && !tests_allowed) {
    fail_at(node, "list_tests_command/run_tests_command are only for tests");
  }
  if (test_form && node.find("command")) {
    fail_at(node, "a stage has either 'command' or 'run_tests_command', not both");
  }
  if (node.find("list_tests_command") && !node.find("run_tests_command")) {
    fail_at(node, "'list_tests_command' needs a 'run_tests_command'");
  }
  if (!test_form && !node.find("command")) {
    fail_at(node, tests_allowed ? "a stage needs 'command' or 'run_tests_command'"
                                : "a stage needs a 'command'");
  }
  if (const Node* o = node.find("order")) s.order = as_double(*o, "a stage's order");
  if (const Node* r = node.find("always_run")) s.always_run = as_bool(*r, "always_run");
  if (const Node* arts = node.find("artifacts"); arts && !arts->is_null()) {
    if (!arts->is_list()) fail_at(*arts, "'artifacts' must be a list of artifacts");
    for (const auto& a : arts->items) s.artifacts.push_back(parse_artifact(a, lookup));
  }
  return s;
}

Stage command_stage(const std::string& command, const std::string& cleanup) {
  Stage s;
  s.command = command;
  s.cleanup = cleanup;
  s.order = 1e9;
  s.artifacts.push_back(Artifact{});
  return s;
}

void finish_stages(std::vector<Stage>& stages, const Node& at) {
  std::stable_sort(stages.begin(), stages.end(),
                   [](const Stage& a, const Stage& b) { return a.order < b.order; });
  std::set<std::string> names;
  size_t count = 0;
  bool unnamed = false;
  for (const auto& s : stages) {
    for (const auto& a : s.artifacts) {
      ++count;
      unnamed = unnamed || a.name.empty();
      if (!a.name.empty() && !names.insert(a.name).second) {
        fail_at(at, fmt::format("artifact name '{}' is used twice", a.name));
      }
    }
  }
  if (unnamed && count > 1) {
    fail_at(at, "an unnamed artifact must be the only artifact (the 'command' shorthand "
                "publishes the whole output directory as one); name every artifact instead");
  }
}

}  // namespace testlooper::definitions
