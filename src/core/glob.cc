#include "core/glob.h"

#include <fnmatch.h>

#include <string>

namespace testlooper {

bool glob_match(std::string_view pattern, std::string_view text) {
  // fnmatch needs NUL-terminated strings; without FNM_PATHNAME '*' also matches '/'.
  const std::string p(pattern);
  const std::string t(text);
  return fnmatch(p.c_str(), t.c_str(), 0) == 0;
}

}  // namespace testlooper
