// Macro expansion (FORMAT.md §3): define/in, foreach/repeat, squash/over, case/in, merge, and
// `${name}` substitution in every string (keys included). Pure functions over Nodes.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "definitions/node.h"

namespace testlooper::definitions {

// Variables in scope during expansion, chained to the enclosing scope. Does not own its parent.
struct MacroScope {
  const MacroScope* parent = nullptr;
  std::map<std::string, Node> variables;
  const Node* lookup(const std::string& name) const;
};

// Expands every macro in `node` with the variables of `scope`. Throws DefinitionError at the
// offending node (unknown macro key, duplicate keys, redefined variable, bad shapes).
Node expand_macros(const Node& node, const MacroScope& scope);

// expand_macros for a definitions document: in addition, every item of its `includes` written
// inside macros that bind variables (a foreach, a define) gets those variables added to its
// `variables` (the item's own entries win), so they are in scope inside the included file and
// two such includes of one file are different includes. Variables of `scope` itself (the
// document's own include variables) are not passed on.
Node expand_document(const Node& document, const MacroScope& scope);

// Looks up a variable for substitution: its text, or nullopt when it is unknown (then `${name}`
// is left as written). May throw DefinitionError (e.g. a structured value inside a string).
using VariableLookup = std::function<std::optional<std::string>(const std::string& name)>;

// Replaces every `${name}` in `text`, innermost first (`${${A}${B}}` looks up the name A and B
// spell). Unknown names are kept verbatim.
std::string substitute(const std::string& text, const VariableLookup& lookup);

// When `text` is exactly one `${...}` reference, the name inside it (not yet substituted).
std::optional<std::string> whole_reference(const std::string& text);

// The text a scalar contributes when substituted into a string: booleans become true/false.
std::string scalar_text(const Node& scalar);

}  // namespace testlooper::definitions
