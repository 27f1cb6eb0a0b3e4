// Inside the config loader (config.cc): setters, each of which checks one value of config.json
// and stores it in a field, and the sections that apply them by key. Every error names the key's
// place ("section.key: expected a string"); strings expand $VAR and ${VAR} from the environment.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "core/error.h"

namespace testlooper::server::config_keys {

using nlohmann::json;

// Checks `value`, found at `where`, and stores it.
using Setter = std::function<Status(const json& value, const std::string& where)>;

// `text` with $VAR and ${VAR} replaced by the environment's values (an unset one is an error).
Result<std::string> expand(const std::string& text, const std::string& where);

// A string (expanded).
Setter text(std::string& field);
// true or false.
Setter boolean(bool& field);
// A list of strings, each one expanded like text().
Setter texts(std::vector<std::string>& field);
// `setter`, noting in `given` that the key was given.
Setter noting(Setter setter, bool& given);
// A key of the original's config.json that has no meaning here: accepted, and one line
// "<where> is ignored: <why>" added to `warnings`.
Setter ignored(std::string why, std::vector<std::string>& warnings);
// A sub-section (an object, or null when `nullable`), its keys applied like a section's.
Setter object(std::map<std::string, Setter> keys, bool nullable = false);

// Applies each key of `section` (an object, at `name`) with its setter in `keys`; an unknown key
// is an error listing the known ones.
Status apply_section(const json& section, const std::string& name,
                     const std::map<std::string, Setter>& keys);

// A number: an integer that fits T, or a finite one of at most 1e9 for a floating-point T.
template <class T>
Setter number(T& field) {
  return [&field](const json& v, const std::string& where) -> Status {
    if (!v.is_number()) return Error{where, "expected a number"};
    if constexpr (std::is_integral_v<T>) {
      // An integer in T's range: get<T>() would truncate 4294967297 to 1.
      const bool fits =
          v.is_number_integer() &&
          (v.is_number_unsigned()
               ? v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max())
               : v.get<int64_t>() >= std::numeric_limits<T>::min() &&
                     v.get<int64_t>() <= std::numeric_limits<T>::max());
      if (!fits) return Error{where, "expected an integer that fits"};
    } else if (!std::isfinite(v.get<double>()) || std::abs(v.get<double>()) > 1e9) {
      return Error{where, "expected a number of at most 1e9"};
    }
    field = v.get<T>();
    return {};
  };
}

}  // namespace testlooper::server::config_keys
