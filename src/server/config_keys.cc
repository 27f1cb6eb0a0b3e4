#include "server/config_keys.h"

#include <fmt/format.h>

#include <cctype>
#include <cstdlib>

namespace testlooper::server::config_keys {

// Replaces $VAR and ${VAR} with the environment's values.
Result<std::string> expand(const std::string& text, const std::string& where) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$' || i + 1 >= text.size()) {
      out += text[i];
      continue;
    }
    size_t start = i + 1;
    size_t end = start;
    const bool braced = text[start] == '{';
    if (braced) {
      end = text.find('}', start);
      if (end == std::string::npos) return Error{where, "unterminated ${ in '" + text + "'"};
      ++start;
    } else {
      while (end < text.size() &&
             (isalnum(static_cast<unsigned char>(text[end])) || text[end] == '_'))
        ++end;
    }
    const std::string name = text.substr(start, end - start);
    if (name.empty()) {
      out += '$';
      continue;
    }
    const char* value = std::getenv(name.c_str());
    if (value == nullptr)
      return Error{where, fmt::format("environment variable ${} is not set", name)};
    out += value;
    i = braced ? end : end - 1;
  }
  return out;
}

Setter text(std::string& field) {
  return [&field](const json& v, const std::string& where) -> Status {
    if (!v.is_string()) return Error{where, "expected a string"};
    auto e = expand(v.get<std::string>(), where);
    if (!e.ok()) return e.error();
    field = *e;
    return {};
  };
}

Setter boolean(bool& field) {
  return [&field](const json& v, const std::string& where) -> Status {
    if (!v.is_boolean()) return Error{where, "expected true or false"};
    field = v.get<bool>();
    return {};
  };
}

// A list of strings, each one expanded like text().
Setter texts(std::vector<std::string>& field) {
  return [&field](const json& v, const std::string& where) -> Status {
    if (!v.is_array()) return Error{where, "expected a list of strings"};
    std::vector<std::string> out;
    for (const auto& item : v) {
      std::string one;
      TL_RETURN_IF_ERROR(text(one)(item, where));
      out.push_back(one);
    }
    field = std::move(out);
    return {};
  };
}

// `setter`, noting in `given` that the key was given.
Setter noting(Setter setter, bool& given) {
  return [setter = std::move(setter), &given](const json& v, const std::string& where) -> Status {
    given = true;
    return setter(v, where);
  };
}

// A key of the original's config.json that has no meaning here: accepted, and one line
// "<where> is ignored: <why>" added to `warnings`.
Setter ignored(std::string why, std::vector<std::string>& warnings) {
  return [why = std::move(why), &warnings](const json&, const std::string& where) -> Status {
    warnings.push_back(where + " is ignored: " + why);
    return {};
  };
}

Status apply_section(const json& section, const std::string& name,
                     const std::map<std::string, Setter>& keys) {
  if (!section.is_object()) return Error{name, "expected an object"};
  for (const auto& [key, value] : section.items()) {
    auto it = keys.find(key);
    const std::string where = name + "." + key;
    if (it == keys.end()) {
      std::string known;
      for (const auto& [k, s] : keys) known += (known.empty() ? "" : ", ") + k;
      return Error{where, fmt::format("unknown or unsupported key '{}'; this section takes: {}",
                                      key, known)};
    }
    TL_RETURN_IF_ERROR(it->second(value, where));
  }
  return {};
}

Setter object(std::map<std::string, Setter> keys, bool nullable) {
  return [keys = std::move(keys), nullable](const json& v, const std::string& where) -> Status {
    if (nullable && v.is_null()) return {};
    return apply_section(v, where, keys);
  };
}

}  // namespace testlooper::server::config_keys
