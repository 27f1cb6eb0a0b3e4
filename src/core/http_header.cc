#include "core/http_header.h"

#include <algorithm>
#include <cctype>

namespace testlooper {
namespace {

std::string trimmed(std::string_view s) {
  size_t begin = 0, end = s.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(s[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(s[end - 1]))) --end;
  return std::string(s.substr(begin, end - begin));
}

}  // namespace

void add_header_line(std::string_view line, HttpHeaders* headers) {
  if (line.starts_with("HTTP/")) {
    headers->clear();  // a 100 Continue's headers are not the answer's
    return;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return;
  std::string name = trimmed(line.substr(0, colon));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  headers->emplace_back(std::move(name), trimmed(line.substr(colon + 1)));
}

std::optional<std::string> find_header(const HttpHeaders& headers, const std::string& name) {
  for (const auto& [n, v] : headers)
    if (n == name) return v;
  return std::nullopt;
}

}  // namespace testlooper
