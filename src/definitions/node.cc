#include "definitions/node.h"

#include <fmt/format.h>

namespace testlooper::definitions {

std::string Mark::to_string() const {
  if (line <= 0) return file;
  return fmt::format("{}:{}:{}", file, line, column);
}

Node::Node() = default;
Node::Node(const Node&) = default;
Node::Node(Node&&) noexcept = default;
Node& Node::operator=(const Node&) = default;
Node& Node::operator=(Node&&) noexcept = default;
Node::~Node() = default;

const Node* Node::find(const std::string& key) const {
  for (const auto& [k, v] : entries) {
    if (k.text == key) return &v;
  }
  return nullptr;
}

Node Node::scalar(std::string text, Mark mark, bool plain) {
  Node n;
  n.kind = Kind::kScalar;
  n.text = std::move(text);
  n.plain = plain;
  n.mark = std::move(mark);
  return n;
}

Node Node::map(Mark mark) {
  Node n;
  n.kind = Kind::kMap;
  n.mark = std::move(mark);
  return n;
}

Node Node::list(Mark mark) {
  Node n;
  n.kind = Kind::kList;
  n.mark = std::move(mark);
  return n;
}

DefinitionError::DefinitionError(const Mark& mark, const std::string& message)
    : std::runtime_error(mark.to_string() + ": " + message), mark_(mark) {}

void fail_at(const Node& node, const std::string& message) {
  throw DefinitionError(node.mark, message);
}

std::string describe(const Node& node) {
  switch (node.kind) {
    case Node::Kind::kNull:
      return "null";
    case Node::Kind::kScalar:
      return fmt::format("the scalar '{}'", node.text);
    case Node::Kind::kList:
      return "a list";
    case Node::Kind::kMap:
      return "a map";
  }
  return "?";
}

}  // namespace testlooper::definitions
