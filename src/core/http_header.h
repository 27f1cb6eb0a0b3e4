// HTTP answer headers as libcurl hands them over, one line at a time: what the REST calls
// (hosting) and the AWS calls (fleet) both keep. Thread-safe (no state).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace testlooper {

// Names lower-cased, in the order they came.
using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// Adds the header `line` ("Name: value\r\n") to `headers`, its name lower-cased and both parts
// trimmed; a status line ("HTTP/1.1 100 Continue") starts over, so that only the final answer's
// headers stay; anything else (the blank line) is ignored.
void add_header_line(std::string_view line, HttpHeaders* headers);

// The value of the first header named `name` (lower case), or nullopt.
std::optional<std::string> find_header(const HttpHeaders& headers, const std::string& name);

}  // namespace testlooper
