// `${name}` substitution in strings.
#include "definitions/macros.h"

namespace testlooper::definitions {
namespace {

// Index of the '}' closing the `${` that starts at `open`, or npos when unbalanced.
size_t matching_brace(const std::string& text, size_t open) {
  int depth = 0;
  for (size_t i = open; i < text.size(); ++i) {
    if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      ++depth;
      ++i;
    } else if (text[i] == '}') {
      if (--depth == 0) return i;
    }
  }
  return std::string::npos;
}

}  // namespace

std::optional<std::string> whole_reference(const std::string& text) {
  if (text.size() < 3 || text.compare(0, 2, "${") != 0) return std::nullopt;
  if (matching_brace(text, 0) != text.size() - 1) return std::nullopt;
  return text.substr(2, text.size() - 3);
}

std::string substitute(const std::string& text, const VariableLookup& lookup) {
  if (text.find("${") == std::string::npos) return text;
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const size_t open = text.find("${", i);
    if (open == std::string::npos) break;
    const size_t close = matching_brace(text, open);
    if (close == std::string::npos) break;
    out.append(text, i, open - i);
    const std::string name = substitute(text.substr(open + 2, close - open - 2), lookup);
    if (auto value = lookup(name)) {
      out += *value;
    } else {
      out += "${" + name + "}";
    }
    i = close + 1;
  }
  out.append(text, i, std::string::npos);
  return out;
}

std::string scalar_text(const Node& scalar) {
  if (scalar.plain) {
    const std::string& t = scalar.text;
    if (t == "true" || t == "True" || t == "TRUE") return "true";
    if (t == "false" || t == "False" || t == "FALSE") return "false";
  }
  return scalar.text;
}

}  // namespace testlooper::definitions
