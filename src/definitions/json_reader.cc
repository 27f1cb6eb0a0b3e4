#include "definitions/json_reader.h"

#include <cstdint>
#include <set>

namespace testlooper::definitions {
namespace {

class JsonParser {
 public:
  JsonParser(const std::string& text, const std::string& file) : text_(text), file_(file) {}

  Node parse_document() {
    skip_space();
    Node n = parse_value(0);
    skip_space();
    if (pos_ != text_.size()) fail("expected the end of the document");
    return n;
  }

 private:
  static constexpr int kMaxDepth = 512;

  Mark here() const { return Mark{file_, line_, column_}; }
  [[noreturn]] void fail(const std::string& message) const {
    throw DefinitionError(here(), "invalid JSON: " + message);
  }
  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }
  void advance() {
    if (text_[pos_] == '\n') {
      ++line_;
      column_ = 1;
    } else {
      ++column_;
    }
    ++pos_;
  }
  void skip_space() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) {
      advance();
    }
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    advance();
  }

  Node parse_value(int depth) {
    if (depth > kMaxDepth) fail("nesting is too deep");
    const char c = peek();
    if (c == '{') return parse_object(depth);
    if (c == '[') return parse_array(depth);
    if (c == '"') return Node::scalar(parse_string(), here_before_string_, false);
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
    return parse_literal();
  }

  Node parse_object(int depth) {
    Node map = Node::map(here());
    advance();
    skip_space();
    std::set<std::string> seen;
    if (peek() == '}') {
      advance();
      return map;
    }
    while (true) {
      skip_space();
      if (peek() != '"') fail("expected a string key");
      std::string key = parse_string();
      Node key_node = Node::scalar(key, here_before_string_, false);
      if (!seen.insert(key).second) fail_at(key_node, "duplicate key '" + key + "'");
      skip_space();
      expect(':');
      skip_space();
      map.entries.emplace_back(std::move(key_node), parse_value(depth + 1));
      skip_space();
      if (peek() == ',') {
        advance();
        continue;
      }
      expect('}');
      return map;
    }
  }

  Node parse_array(int depth) {
    Node list = Node::list(here());
    advance();
    skip_space();
    if (peek() == ']') {
      advance();
      return list;
    }
    while (true) {
      skip_space();
      list.items.push_back(parse_value(depth + 1));
      skip_space();
      if (peek() == ',') {
        advance();
        continue;
      }
      expect(']');
      return list;
    }
  }

  void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  uint32_t parse_hex4() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = peek();
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= c - '0';
      } else if (c >= 'a' && c <= 'f') {
        v |= c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        v |= c - 'A' + 10;
      } else {
        fail("expected 4 hex digits after \\u");
      }
      advance();
    }
    return v;
  }

  uint32_t parse_escape() {
    const char c = peek();
    advance();
    switch (c) {
      case '"': return '"';
      case '\\': return '\\';
      case '/': return '/';
      case 'b': return '\b';
      case 'f': return '\f';
      case 'n': return '\n';
      case 'r': return '\r';
      case 't': return '\t';
      case 'u': {
        uint32_t cp = parse_hex4();
        if (cp >= 0xD800 && cp < 0xDC00 && peek() == '\\') {
          advance();
          if (peek() != 'u') fail("expected a low surrogate");
          advance();
          const uint32_t low = parse_hex4();
          if (low < 0xDC00 || low > 0xDFFF) fail("expected a low surrogate");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        return cp;
      }
      default:
        fail("invalid escape sequence");
    }
  }

  std::string parse_string() {
    here_before_string_ = here();
    advance();
    std::string out;
    while (true) {
      if (at_end()) fail("unterminated string");
      const char c = peek();
      if (c == '"') {
        advance();
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
      advance();
      if (c == '\\') {
        append_utf8(out, parse_escape());
      } else {
        out += c;
      }
    }
  }

  void digits() {
    if (!(peek() >= '0' && peek() <= '9')) fail("expected a digit");
    while (peek() >= '0' && peek() <= '9') advance();
  }

  Node parse_number() {
    const Mark mark = here();
    const size_t start = pos_;
    if (peek() == '-') advance();
    if (peek() == '0') {
      advance();
    } else {
      digits();
    }
    if (peek() == '.') {
      advance();
      digits();
    }
    if (peek() == 'e' || peek() == 'E') {
      advance();
      if (peek() == '+' || peek() == '-') advance();
      digits();
    }
    return Node::scalar(text_.substr(start, pos_ - start), mark, true);
  }

  Node parse_literal() {
    const Mark mark = here();
    for (const char* word : {"true", "false", "null"}) {
      const std::string w(word);
      if (text_.compare(pos_, w.size(), w) == 0) {
        for (size_t i = 0; i < w.size(); ++i) advance();
        if (w == "null") {
          Node n;
          n.mark = mark;
          return n;
        }
        return Node::scalar(w, mark, true);
      }
    }
    fail("expected a value");
  }

  const std::string& text_;
  const std::string& file_;
  size_t pos_ = 0;
  int line_ = 1;
  int column_ = 1;
  Mark here_before_string_;
};

}  // namespace

Node parse_json(const std::string& text, const std::string& file) {
  return JsonParser(text, file).parse_document();
}

}  // namespace testlooper::definitions
