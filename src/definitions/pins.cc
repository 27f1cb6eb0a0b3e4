// Pins as text: list_pins walks the definitions file and its same-repo includes without
// resolving anything, so one bad file hides no other file's pins.
#include "definitions/pins.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "definitions/definitions.h"
#include "definitions/loader.h"
#include "definitions/node.h"

namespace testlooper::definitions {
namespace {

// How far past a scalar's mark its text may start (a quote, multi-byte characters counted as one
// column each, a block scalar's header): the text is looked for from the mark on, this far.
constexpr size_t kSearchWindow = 4096;
constexpr int kMaxFiles = 128;

// The byte offset of `needle` in `text` at or after `mark` (a column counts at least one byte)
// and within the window, or npos.
size_t find_after(const std::string& text, const Mark& mark, const std::string& needle) {
  size_t at = 0;
  for (int line = 1; line < mark.line && at != std::string::npos; ++line) {
    at = text.find('\n', at);
    if (at != std::string::npos) ++at;
  }
  if (at == std::string::npos || mark.line <= 0) return std::string::npos;
  const size_t line_end = std::min(text.find('\n', at), text.size());
  at = std::min(at + static_cast<size_t>(std::max(mark.column - 1, 0)), line_end);
  const size_t found = text.find(needle, at);
  if (found == std::string::npos || found - at > kSearchWindow) return std::string::npos;
  return found;
}

class PinWalker {
 public:
  PinWalker(SourceReader& reader, std::string repo, std::string commit)
      : reader_(reader), repo_(std::move(repo)), commit_(std::move(commit)) {}

  void file(const std::string& path) {
    if (!seen_.insert(path).second || static_cast<int>(seen_.size()) > kMaxFiles) return;
    auto content = reader_.read_file(repo_, commit_, path);
    if (!content.ok() || !content->has_value()) return;
    const std::string& text = **content;
    const bool json = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
    Node doc;
    try {
      doc = parse_document(text, path, json);
    } catch (const DefinitionError&) {
      return;
    }
    if (!doc.is_map()) return;
    if (const Node* repos = doc.find("repos")) entries(*repos, text, path);
    if (const Node* includes = doc.find("includes"); includes && includes->is_list()) {
      for (const auto& item : includes->items) include(item, path);
    }
  }

  std::vector<PinLocation> pins;

 private:
  void entries(const Node& section, const std::string& text, const std::string& path) {
    std::vector<std::pair<Node, Node>> all;
    try {
      all = section_entries(section, "repos");
    } catch (const DefinitionError&) {
      return;
    }
    for (const auto& [key, value] : all) {
      try {
        entry(key, value, text, path);
      } catch (const DefinitionError&) {
        // A malformed entry: nothing to move.
      }
    }
  }

  void entry(const Node& key, const Node& value, const std::string& text, const std::string& path) {
    PinLocation pin;
    pin.name = key.text;
    pin.file = path;
    const Node* scalar = &value;
    if (value.is_map()) {
      scalar = value.find("reference");
      if (scalar == nullptr) return;  // an import, or no reference
      if (const Node* b = value.find("branch")) pin.branch = as_string(*b, "a pin's branch");
      if (const Node* a = value.find("auto")) pin.auto_update = as_bool(*a, "a pin's 'auto'");
    }
    const RepoReference ref = parse_reference_string(*scalar);
    pin.repo = ref.repo;
    pin.commit = ref.commit;
    const size_t at = find_after(text, scalar->mark, ref.repo + "/" + ref.commit);
    if (at == std::string::npos) return;  // written with escapes: no plain text to edit
    pin.offset = at + ref.repo.size() + 1;
    pin.length = ref.commit.size();
    pins.push_back(std::move(pin));
  }

  void include(const Node& item, const std::string& from) {
    const Node* p = item.is_map() ? item.find("path") : &item;
    if (p == nullptr || !p->is_scalar()) return;
    const std::string& path = p->text;
    if (path.find("${") != std::string::npos) return;
    try {
      if (path.rfind("./", 0) == 0 || path.rfind("../", 0) == 0) {
        file(join_path(*p, dir_of(from), path));
      } else if (path.rfind('/', 0) == 0) {
        file(join_path(*p, "", path));
      }
      // "<ref>/path": a file of another repo, not ours to edit.
    } catch (const DefinitionError&) {
    }
  }

  SourceReader& reader_;
  std::string repo_;
  std::string commit_;
  std::set<std::string> seen_;
};

}  // namespace

Result<std::vector<PinLocation>> list_pins(SourceReader& reader, const std::string& repo,
                                           const std::string& commit) {
  auto files = reader.list_files(repo, commit);
  if (!files.ok()) return files.error();
  const auto root = find_definitions_file(*files);
  PinWalker walker(reader, repo, commit);
  if (root) walker.file(*root);
  return std::move(walker.pins);
}

Result<std::string> apply_edits(const std::string& content, std::vector<TextEdit> edits) {
  std::sort(edits.begin(), edits.end(),
            [](const TextEdit& a, const TextEdit& b) { return a.offset < b.offset; });
  std::string out;
  size_t at = 0;
  for (const auto& e : edits) {
    if (e.offset < at || e.offset > content.size() || e.length > content.size() - e.offset) {
      return Error{"pins", fmt::format("an edit at {}+{} is out of range or overlaps another",
                                       e.offset, e.length)};
    }
    out.append(content, at, e.offset - at);
    out += e.text;
    at = e.offset + e.length;
  }
  out.append(content, at, std::string::npos);
  return out;
}

std::string pin_update_message(const std::vector<PinMove>& moves) {
  std::string subject = moves.size() == 1 ? "Update pin " : "Update pins ";
  std::string body;
  for (size_t i = 0; i < moves.size(); ++i) {
    const PinMove& m = moves[i];
    subject += fmt::format("{}{} to {}", i == 0 ? "" : ", ", m.name, m.to);
    body += fmt::format("\nNew commit in pinned branch {}/{}:\n", m.repo, m.branch);
    size_t start = 0;
    while (start < m.log_entry.size()) {
      size_t end = m.log_entry.find('\n', start);
      if (end == std::string::npos) end = m.log_entry.size();
      const std::string line = m.log_entry.substr(start, end - start);
      body += line.empty() ? "\n" : "    " + line + "\n";
      start = end + 1;
    }
  }
  return subject + "\n" + body;
}

}  // namespace testlooper::definitions
