// URL pieces shared by the server and the worker.
#pragma once

#include <string>

namespace testlooper {

// `text` with every byte outside [A-Za-z0-9._~-] as %XX, for one URL path segment or query value.
std::string url_segment(const std::string& text);

}  // namespace testlooper
