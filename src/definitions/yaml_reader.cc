// parse_document for YAML (through yaml-cpp) and dispatch to the JSON reader.
#include <yaml-cpp/yaml.h>

#include <set>

#include "definitions/json_reader.h"
#include "definitions/node.h"

namespace testlooper::definitions {
namespace {

Mark mark_of(const YAML::Mark& m, const std::string& file) {
  return Mark{file, m.line + 1, m.column + 1};
}

Node convert(const YAML::Node& y, const std::string& file);

void add_entry(Node& map, Node key, Node value, std::set<std::string>& seen) {
  if (!seen.insert(key.text).second) fail_at(key, "duplicate key '" + key.text + "'");
  map.entries.emplace_back(std::move(key), std::move(value));
}

// YAML merge keys (`<<: *anchor`): entries of the merged maps that the map does not set itself.
void apply_merge_key(Node& map, const Node& merged, std::set<std::string>& seen) {
  std::vector<const Node*> sources;
  if (merged.is_map()) sources.push_back(&merged);
  if (merged.is_list()) {
    for (const auto& item : merged.items) sources.push_back(&item);
  }
  if (sources.empty()) fail_at(merged, "a '<<' merge key needs a map or a list of maps");
  for (const Node* source : sources) {
    if (!source->is_map()) fail_at(*source, "a '<<' merge key needs a map or a list of maps");
    for (const auto& [k, v] : source->entries) {
      if (seen.insert(k.text).second) map.entries.emplace_back(k, v);
    }
  }
}

Node convert_map(const YAML::Node& y, const std::string& file) {
  Node map = Node::map(mark_of(y.Mark(), file));
  std::set<std::string> seen;
  std::vector<Node> merges;
  for (const auto& item : y) {
    Node key = convert(item.first, file);
    if (!key.is_scalar()) fail_at(key, "a map key must be a string, not " + describe(key));
    Node value = convert(item.second, file);
    if (key.plain && key.text == "<<") {
      merges.push_back(std::move(value));
      continue;
    }
    add_entry(map, std::move(key), std::move(value), seen);
  }
  for (const auto& merged : merges) apply_merge_key(map, merged, seen);
  return map;
}

Node convert(const YAML::Node& y, const std::string& file) {
  const Mark mark = mark_of(y.Mark(), file);
  switch (y.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null: {
      Node n;
      n.mark = mark;
      return n;
    }
    case YAML::NodeType::Scalar:
      return Node::scalar(y.Scalar(), mark, y.Tag() == "?");
    case YAML::NodeType::Sequence: {
      Node list = Node::list(mark);
      for (const auto& item : y) list.items.push_back(convert(item, file));
      return list;
    }
    case YAML::NodeType::Map:
      return convert_map(y, file);
  }
  return Node{};
}

}  // namespace

Node parse_document(const std::string& text, const std::string& file, bool json) {
  if (json) return parse_json(text, file);
  try {
    const YAML::Node root = YAML::Load(text);
    Node n = convert(root, file);
    if (n.mark.line == 0) n.mark = Mark{file, 1, 1};
    return n;
  } catch (const YAML::Exception& e) {
    throw DefinitionError(mark_of(e.mark, file), "invalid YAML: " + e.msg);
  }
}

}  // namespace testlooper::definitions
