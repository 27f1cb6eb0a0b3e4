// Node: a YAML/JSON document as plain data, every node carrying the place it came from, so that
// any error found later (in macros, merging, resolution) can name "path:line:col".
//
// Scalars keep their text; `plain` tells an unquoted scalar (which may mean null, a number or a
// boolean) from a quoted string. Maps keep their keys in document order.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace testlooper::definitions {

// Where a node was written: file path (as shown to users) and 1-based line and column.
struct Mark {
  std::string file;
  int line = 0;
  int column = 0;
  std::string to_string() const;
};

struct Node {
  enum class Kind { kNull, kScalar, kList, kMap };
  // Out of line: Node holds containers of itself, which must not be instantiated before Node is
  // complete (clang checks pair<Node, Node> eagerly).
  Node();
  Node(const Node&);
  Node(Node&&) noexcept;
  Node& operator=(const Node&);
  Node& operator=(Node&&) noexcept;
  ~Node();

  Kind kind = Kind::kNull;
  std::string text;  // kScalar
  bool plain = false;  // kScalar written without quotes
  std::vector<Node> items;  // kList
  std::vector<std::pair<Node, Node>> entries;  // kMap: key, value (keys are scalars)
  Mark mark;

  bool is_null() const { return kind == Kind::kNull; }
  bool is_scalar() const { return kind == Kind::kScalar; }
  bool is_list() const { return kind == Kind::kList; }
  bool is_map() const { return kind == Kind::kMap; }
  // The value of `key` in a map, or nullptr.
  const Node* find(const std::string& key) const;
  static Node scalar(std::string text, Mark mark, bool plain = false);
  static Node map(Mark mark);
  static Node list(Mark mark);
};

// Thrown inside the definitions module only; resolve_commit turns it into ResolvedCommit::error.
class DefinitionError : public std::runtime_error {
 public:
  DefinitionError(const Mark& mark, const std::string& message);
  const Mark& mark() const { return mark_; }

 private:
  Mark mark_;
};

// Throws DefinitionError at `node` with `message`.
[[noreturn]] void fail_at(const Node& node, const std::string& message);

// A short description of a node's kind for messages: "a map", "a list", "a string", "null".
std::string describe(const Node& node);

// Parses YAML (or JSON when `json` is true) text. `file` names it in marks. Throws
// DefinitionError with the position of a syntax error. An empty document is a null node.
Node parse_document(const std::string& text, const std::string& file, bool json);

}  // namespace testlooper::definitions
