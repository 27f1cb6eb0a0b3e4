#include "server/event_log.h"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <ctime>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>

namespace testlooper::server {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kText};
std::mutex g_write;

std::string utc_time(double seconds) {
  const std::time_t t = static_cast<std::time_t>(std::floor(seconds));
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

bool needs_quotes(std::string_view value) {
  if (value.empty()) return true;
  for (const char c : value) {
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return true;
  }
  return false;
}

// A JSON string of `text` whose invalid UTF-8 is replaced (a field may quote what a repo holds).
std::string json_string(std::string_view text) {
  return nlohmann::json(std::string(text))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

bool parse_log_format(std::string_view text, LogFormat* format) {
  if (text == "text")
    *format = LogFormat::kText;
  else if (text == "json")
    *format = LogFormat::kJson;
  else
    return false;
  return true;
}

void set_log_format(LogFormat format) { g_format = format; }

std::string format_event(LogFormat format, double time, std::string_view level,
                         std::string_view event, const LogFields& fields) {
  std::string line;
  if (format == LogFormat::kJson) {
    line = fmt::format(R"({{"time":{},"level":{},"event":{})", json_string(utc_time(time)),
                       json_string(level), json_string(event));
    for (const auto& [key, value] : fields)
      line += "," + json_string(key) + ":" + json_string(value);
    return line + "}";
  }
  line = fmt::format("{} {} {}", utc_time(time), level, event);
  for (const auto& [key, value] : fields)
    line += " " + key + "=" + (needs_quotes(value) ? json_string(value) : value);
  return line;
}

void log_event(std::string_view level, std::string_view event, const LogFields& fields) {
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string line = format_event(g_format, now, level, event, fields) + "\n";
  std::lock_guard lock(g_write);
  std::cerr << line << std::flush;
}

std::string printable(const std::string& text) {
  std::string out = text.substr(0, 200);
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

}  // namespace testlooper::server
