#include "core/case_message.h"

#include <algorithm>

namespace testlooper {
namespace {

// The length of the valid UTF-8 sequence at text[i], or 0 when it is not one.
size_t utf8_sequence(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b = byte(i);
  if (b < 0x80) return 1;
  const size_t n = (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 0;
  if (n == 0) return 0;
  unsigned int code = b & (0x7F >> n);
  if (i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    code = (code << 6) | (byte(i + k) & 0x3F);
  }
  // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8.
  static constexpr unsigned int kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (code < kMin[n] || (code >= 0xD800 && code <= 0xDFFF) || code > 0x10FFFF) return 0;
  return n;
}

// `text` with each byte that is not part of valid UTF-8 replaced by '?' (so JSON can carry it).
std::string valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8_sequence(text, i);
    if (n == 0) {
      out += '?';
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

}  // namespace

std::string cap_text(std::string_view raw, size_t max_bytes) {
  const std::string valid = valid_utf8(raw);
  const std::string_view text = valid;
  const size_t limit = std::max(max_bytes, kMinTextCap);
  if (text.size() <= limit) return std::string(text);
  // The marker's room, with as many digits as the whole size (more than what is dropped).
  const size_t room =
      std::string("\n[... " + std::to_string(text.size()) + " bytes not kept]").size();
  size_t cut = limit > room ? limit - room : 0;
  // Never end inside a UTF-8 sequence: back up over continuation bytes (10xxxxxx).
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  std::string out(text.substr(0, cut));
  if (!out.empty()) out += '\n';
  out += "[... " + std::to_string(text.size() - cut) + " bytes not kept]";
  return out;
}

bool is_case_log_segment(std::string_view segment) {
  if (segment.empty() || segment.size() > 255 || segment[0] == '.') return false;
  for (const char c : segment) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool is_case_log_name(std::string_view name) {
  constexpr std::string_view kPrefix = "test_logs/";
  if (name.substr(0, kPrefix.size()) != kPrefix) return false;
  name.remove_prefix(kPrefix.size());
  const size_t slash = name.find('/');
  return slash != std::string_view::npos && is_case_log_segment(name.substr(0, slash)) &&
         is_case_log_segment(name.substr(slash + 1));
}

}  // namespace testlooper
