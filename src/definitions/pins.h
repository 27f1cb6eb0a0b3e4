// Pins (FORMAT.md §4) as text: where each `repos:` entry of a commit writes its sha, so that the
// server can move a pin by a minimal textual edit (docs/definitions.md "How pins move"), and the
// edit and commit message themselves. Pure: reads through a SourceReader only.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "definitions/source_reader.h"

namespace testlooper::definitions {

// One `repos:` entry written as `name: "<repo>/<sha>"` or `{reference: "<repo>/<sha>", ...}`
// in a file of the commit's own repo (the definitions file or a file it includes from the same
// repo), with the place of its sha text: file[offset, offset + length) is exactly `commit`.
struct PinLocation {
  std::string name;    // the entry's name in `repos:`
  std::string repo;    // the referenced repo
  std::string commit;  // 40-hex sha or "HEAD", as written
  std::optional<std::string> branch;
  bool auto_update = false;
  std::string file;  // path in the repo
  size_t offset = 0;
  size_t length = 0;
};

// Every `repos:` entry of `repo` at `commit` that names a commit by text (not `import:`), in
// the order met (root file first, then includes depth first). Tolerant: a file that cannot be
// read or parsed, a malformed entry, an include of another repo or with variables in its path
// is skipped, so a bad include elsewhere hides no pin that can be read. Macros are not expanded
// (an entry written by a macro has no place of its own). Error only when the commit cannot be
// listed.
Result<std::vector<PinLocation>> list_pins(SourceReader& reader, const std::string& repo,
                                           const std::string& commit);

// One replacement of file text: [offset, offset + length) becomes `text`.
struct TextEdit {
  size_t offset = 0;
  size_t length = 0;
  std::string text;
};

// `content` with `edits` applied (they may come in any order and must not overlap; an edit out
// of range or overlapping another is an Error).
Result<std::string> apply_edits(const std::string& content, std::vector<TextEdit> edits);

// One pin moved by an update commit.
struct PinMove {
  std::string name;
  std::string repo;
  std::string branch;
  std::string to;         // 40-hex
  std::string log_entry;  // `git log -n 1 <to>` in the referenced repo
};

// The update commit's message: `Update pin NAME to SHA` (several: `Update pins A to SHA1, B to
// SHA2`), a blank line, then per pin `New commit in pinned branch <repo>/<branch>:` and its log
// entry indented by four spaces.
std::string pin_update_message(const std::vector<PinMove>& moves);

}  // namespace testlooper::definitions
