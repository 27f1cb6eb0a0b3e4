// Shell-style globs as the definitions language uses them (test_sets, triggers, name patterns):
// `*` and `?` match any characters including '/', `[...]` a class. Thread-safe.
#pragma once

#include <string_view>

namespace testlooper {

// True when `text` matches the glob `pattern` as a whole.
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace testlooper
