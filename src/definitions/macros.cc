// Macro expansion: define/in, foreach/repeat, squash/over, case/in, merge.
#include "definitions/macros.h"

#include <fmt/format.h>

#include <set>

namespace testlooper::definitions {

const Node* MacroScope::lookup(const std::string& name) const {
  for (const MacroScope* s = this; s != nullptr; s = s->parent) {
    auto it = s->variables.find(name);
    if (it != s->variables.end()) return &it->second;
  }
  return nullptr;
}

namespace {

// Guards against inputs whose expansion would not fit in memory (cross products of cross
// products): a definitions file is never meant to expand to more nodes than this.
constexpr size_t kMaxExpandedNodes = 20'000'000;

struct MacroShape {
  const char* head;
  const char* body;  // nullptr: the macro has only its head key
};
constexpr MacroShape kMacros[] = {{"define", "in"},
                                  {"foreach", "repeat"},
                                  {"squash", "over"},
                                  {"case", "in"},
                                  {"merge", nullptr}};

class Expander {
 public:
  // `root`: the scope expansion starts in; `document`: the node is a definitions document, whose
  // `includes` items capture the variables macros bind around them.
  Expander(const MacroScope& root, bool document) : root_(&root), document_(document) {}

  Node expand(const Node& node, const MacroScope& scope) {
    if (++nodes_ > kMaxExpandedNodes) fail_at(node, "macro expansion produces too many nodes");
    if (include_items_) return expand_include_item(node, scope);
    switch (node.kind) {
      case Node::Kind::kNull:
        return node;
      case Node::Kind::kScalar:
        return expand_scalar(node, scope);
      case Node::Kind::kList:
        return expand_list(node, scope);
      case Node::Kind::kMap:
        if (const MacroShape* macro = macro_of(node)) return expand_macro(*macro, node, scope);
        return expand_plain_map(node, scope);
    }
    return node;
  }

 private:
  static std::string text_of_variable(const Node& value, const std::string& name) {
    if (value.is_scalar()) return scalar_text(value);
    fail_at(value, fmt::format("variable '{}' is {}, which cannot be part of a string; use "
                               "\"${{{}}}\" alone to insert a structured value",
                               name, describe(value), name));
  }

  static std::string substitute_in(const Node& node, const MacroScope& scope) {
    return substitute(node.text, [&](const std::string& name) -> std::optional<std::string> {
      const Node* value = scope.lookup(name);
      if (value == nullptr) return std::nullopt;
      return text_of_variable(*value, name);
    });
  }

  Node expand_scalar(const Node& node, const MacroScope& scope) {
    if (auto inner = whole_reference(node.text)) {
      const std::string name = substitute_in(Node::scalar(*inner, node.mark), scope);
      if (const Node* value = scope.lookup(name)) return *value;
    }
    if (node.text.find("${") == std::string::npos) return node;
    return Node::scalar(substitute_in(node, scope), node.mark, false);
  }

  Node expand_list(const Node& node, const MacroScope& scope) {
    Node out = Node::list(node.mark);
    for (const auto& item : node.items) {
      const MacroShape* macro = item.is_map() ? macro_of(item) : nullptr;
      Node value = expand(item, scope);
      // A foreach or squash inside a list contributes its items to the list itself.
      const bool splices = macro != nullptr && (std::string(macro->head) == "foreach" ||
                                                std::string(macro->head) == "squash");
      if (splices && value.is_list()) {
        for (auto& v : value.items) out.items.push_back(std::move(v));
      } else {
        out.items.push_back(std::move(value));
      }
    }
    return out;
  }

  Node expand_key(const Node& key, const MacroScope& scope) {
    Node k = expand_scalar(key, scope);
    if (!k.is_scalar()) {
      fail_at(key, "a map key must expand to a string, not " + describe(k));
    }
    k.mark = key.mark;
    return k;
  }

  Node expand_plain_map(const Node& node, const MacroScope& scope) {
    // The document itself (possibly inside a define): its `includes` is a list of include items.
    const bool document = document_;
    document_ = false;
    Node out = Node::map(node.mark);
    std::set<std::string> seen;
    for (const auto& [key, value] : node.entries) {
      Node k = expand_key(key, scope);
      if (!seen.insert(k.text).second) fail_at(key, "duplicate key '" + k.text + "'");
      const bool includes = document && k.text == "includes";
      include_items_ = includes;
      Node v = expand(value, scope);
      include_items_ = false;
      out.entries.emplace_back(std::move(k), std::move(v));
    }
    return out;
  }

  // Inside a document's `includes`, at the level of its items (lists and macro bodies pass the
  // level through): an include written where macros bind variables gets them added to its
  // `variables` (its own entries win), so they are in scope inside the included file and make
  // it a different include.
  Node expand_include_item(const Node& node, const MacroScope& scope) {
    if (node.is_list()) return expand_list(node, scope);
    if (node.is_map() && macro_of(node) != nullptr)
      return expand_macro(*macro_of(node), node, scope);
    include_items_ = false;
    Node item = node.is_map() ? expand_plain_map(node, scope) : expand(node, scope);
    include_items_ = true;
    std::map<std::string, Node> bound;
    for (const MacroScope* s = &scope; s != nullptr && s != root_; s = s->parent) {
      for (const auto& [name, value] : s->variables) bound.emplace(name, value);
    }
    if (bound.empty()) return item;
    if (item.is_scalar()) {
      Node as_map = Node::map(item.mark);
      as_map.entries.emplace_back(Node::scalar("path", item.mark), item);
      item = std::move(as_map);
    }
    if (!item.is_map()) return item;  // not an include: the loader says why
    Node* variables = nullptr;
    for (auto& [k, v] : item.entries) {
      if (k.text == "variables") variables = &v;
    }
    if (variables == nullptr) {
      item.entries.emplace_back(Node::scalar("variables", item.mark), Node::map(item.mark));
      variables = &item.entries.back().second;
    }
    if (!variables->is_map()) return item;  // the loader rejects it
    for (const auto& [name, value] : bound) {
      if (variables->find(name) == nullptr) {
        variables->entries.emplace_back(Node::scalar(name, item.mark), value);
      }
    }
    return item;
  }

  static const MacroShape* macro_of(const Node& map) {
    for (const auto& [key, value] : map.entries) {
      for (const MacroShape& m : kMacros) {
        if (key.text == m.head) return &m;
      }
    }
    return nullptr;
  }

  static void check_shape(const MacroShape& macro, const Node& node) {
    for (const auto& [key, value] : node.entries) {
      if (key.text == macro.head) continue;
      if (macro.body != nullptr && key.text == macro.body) continue;
      fail_at(key, fmt::format("unexpected key '{}' in a '{}' macro; expected only '{}'{}",
                               key.text, macro.head, macro.head,
                               macro.body ? fmt::format(" and '{}'", macro.body) : ""));
    }
    if (macro.body != nullptr && node.find(macro.body) == nullptr) {
      fail_at(node, fmt::format("a '{}' macro needs a '{}' key", macro.head, macro.body));
    }
  }

  // Expands a macro's argument (not its body): never an include item.
  Node expand_argument(const Node& node, const MacroScope& scope) {
    const bool items = include_items_;
    const bool document = document_;
    include_items_ = false;
    document_ = false;
    Node out = expand(node, scope);
    include_items_ = items;
    document_ = document;
    return out;
  }

  Node expand_macro(const MacroShape& macro, const Node& node, const MacroScope& scope) {
    check_shape(macro, node);
    const Node& head = *node.find(macro.head);
    const Node* body = macro.body ? node.find(macro.body) : nullptr;
    const std::string name = macro.head;
    if (name == "define") return expand_define(head, *body, scope);
    if (name == "foreach") return expand_foreach(head, *body, scope);
    if (name == "squash") return expand_squash(head, *body, scope);
    if (name == "case") return expand_case(head, *body, scope);
    return expand_merge(head, scope);
  }

  static void bind(MacroScope& child, const Node& key, Node value) {
    if (child.lookup(key.text) != nullptr) {
      fail_at(key, fmt::format("variable '{}' is already defined in this scope", key.text));
    }
    child.variables.emplace(key.text, std::move(value));
  }

  Node expand_define(const Node& definitions, const Node& body, const MacroScope& scope) {
    if (!definitions.is_map()) fail_at(definitions, "'define' expects a map of variables");
    MacroScope child{&scope, {}};
    for (const auto& [key, value] : definitions.entries) {
      Node k = expand_key(key, child);
      bind(child, k, expand_argument(value, child));
    }
    return expand(body, child);
  }

  // The variable bindings a foreach list or map describes.
  std::vector<std::vector<std::pair<Node, Node>>> bindings_of(const Node& spec) {
    std::vector<std::vector<std::pair<Node, Node>>> out;
    if (spec.is_list()) {
      collect_list_bindings(spec, out);
      return out;
    }
    if (!spec.is_map()) {
      fail_at(spec,
              "'foreach' expects a list of variable maps or a map of lists, not " + describe(spec));
    }
    out.emplace_back();
    for (const auto& [key, values] : spec.entries) {
      if (!values.is_list()) {
        fail_at(values, fmt::format("'foreach' variable '{}' needs a list of values", key.text));
      }
      std::vector<std::vector<std::pair<Node, Node>>> next;
      for (const auto& partial : out) {
        for (const auto& v : values.items) {
          next.push_back(partial);
          next.back().emplace_back(key, v);
        }
      }
      out = std::move(next);
    }
    return out;
  }

  static void collect_list_bindings(const Node& list,
                                    std::vector<std::vector<std::pair<Node, Node>>>& out) {
    for (const auto& item : list.items) {
      if (item.is_list()) {
        collect_list_bindings(item, out);
      } else if (item.is_map()) {
        out.emplace_back(item.entries.begin(), item.entries.end());
      } else {
        fail_at(item, "'foreach' list items must be maps of variables, not " + describe(item));
      }
    }
  }

  Node expand_foreach(const Node& spec_node, const Node& body, const MacroScope& scope) {
    const Node spec = expand_argument(spec_node, scope);
    std::vector<Node> results;
    for (const auto& binding : bindings_of(spec)) {
      MacroScope child{&scope, {}};
      for (const auto& [key, value] : binding) bind(child, key, value);
      results.push_back(expand(body, child));
    }
    return combine(results, body, "foreach");
  }

  // Merges map results, concatenates list results, collects scalar results into a list.
  static Node combine(std::vector<Node>& results, const Node& at, const char* macro) {
    const bool maps = !results.empty() ? results[0].is_map() : (at.is_map() && !macro_of(at));
    Node out = maps ? Node::map(at.mark) : Node::list(at.mark);
    std::set<std::string> seen;
    for (auto& r : results) {
      if (maps != r.is_map()) {
        fail_at(r, fmt::format("'{}' results must all be maps or all be lists", macro));
      }
      if (maps) {
        for (auto& [k, v] : r.entries) {
          if (!seen.insert(k.text).second) {
            fail_at(k, fmt::format("duplicate key '{}' produced by '{}'", k.text, macro));
          }
          out.entries.emplace_back(std::move(k), std::move(v));
        }
      } else if (r.is_list()) {
        for (auto& v : r.items) out.items.push_back(std::move(v));
      } else {
        out.items.push_back(std::move(r));
      }
    }
    return out;
  }

  Node expand_squash(const Node& m_node, const Node& over_node, const MacroScope& scope) {
    const Node m = expand_argument(m_node, scope);
    if (!m.is_map()) fail_at(m_node, "'squash' expects a map to merge, not " + describe(m));
    const Node over = expand_argument(over_node, scope);
    if (!over.is_list()) fail_at(over_node, "'over' expects a list of maps, not " + describe(over));
    Node out = Node::list(over.mark);
    for (const auto& item : over.items) {
      if (!item.is_map()) fail_at(item, "'over' items must be maps, not " + describe(item));
      Node merged = item;
      for (const auto& [k, v] : m.entries) {
        if (merged.find(k.text) != nullptr) {
          fail_at(k, fmt::format("duplicate key '{}' when squashing", k.text));
        }
        merged.entries.emplace_back(k, v);
      }
      out.items.push_back(std::move(merged));
    }
    return out;
  }

  Node expand_case(const Node& key_node, const Node& table, const MacroScope& scope) {
    const Node key = expand_argument(key_node, scope);
    if (!key.is_scalar()) fail_at(key_node, "'case' expects a string, not " + describe(key));
    // `in` may be exactly "${name}": the variable's map is the table.
    const Node* from_variable = nullptr;
    if (table.is_scalar()) {
      if (auto inner = whole_reference(table.text)) {
        from_variable = scope.lookup(substitute_in(Node::scalar(*inner, table.mark), scope));
      }
    }
    const Node& cases = from_variable != nullptr ? *from_variable : table;
    if (!cases.is_map()) {
      fail_at(table,
              "'case' expects 'in' to be a map of cases (or \"${name}\" of a map variable), not " +
                  describe(cases));
    }
    std::string choices;
    for (const auto& [k, v] : cases.entries) {
      const Node expanded_key = expand_key(k, scope);
      if (expanded_key.text == scalar_text(key)) return expand(v, scope);
      choices += (choices.empty() ? "" : ", ") + expanded_key.text;
    }
    fail_at(key_node,
            fmt::format("no case for '{}'; expected one of: {}", scalar_text(key), choices));
  }

  Node expand_merge(const Node& parts_node, const MacroScope& scope) {
    const Node parts = expand(parts_node, scope);
    if (!parts.is_list()) {
      fail_at(parts_node, "'merge' expects a list of lists or of maps, not " + describe(parts));
    }
    std::vector<Node> items = parts.items;
    for (const auto& item : items) {
      if (!item.is_list() && !item.is_map()) {
        fail_at(item, "'merge' items must be lists or maps, not " + describe(item));
      }
    }
    return combine(items, parts, "merge");
  }

  size_t nodes_ = 0;
  const MacroScope* root_;
  bool document_;
  bool include_items_ = false;
};

}  // namespace

Node expand_macros(const Node& node, const MacroScope& scope) {
  return Expander(scope, false).expand(node, scope);
}

Node expand_document(const Node& document, const MacroScope& scope) {
  return Expander(scope, true).expand(document, scope);
}

}  // namespace testlooper::definitions
