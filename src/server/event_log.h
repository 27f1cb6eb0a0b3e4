// The server's operator log: one line per event on stderr (docs/cli.md "serve --log-format").
//
// text: `2026-11-30T14:00:00Z info worker_connected worker=local-0 cores=4`, a value quoted as a
// JSON string when it is empty or holds a space, a quote, '=' or a control character;
// json:  one object per line, {"time": ..., "level": ..., "event": ..., <fields>}.
// The format is chosen once at start (set_log_format); every line is written whole under one
// lock, so lines of several threads never interleave. Thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace testlooper::server {

enum class LogFormat { kText, kJson };

// "text" or "json" -> the format; false for anything else.
bool parse_log_format(std::string_view text, LogFormat* format);
void set_log_format(LogFormat format);

// A field of an event: its key (a word: [a-z_]) and its value, printed as given.
using LogFields = std::vector<std::pair<std::string, std::string>>;

// Writes one line: `level` is "info", "warn" or "error"; `event` a word naming what happened
// (branch_under_test, new_commits, definitions_error, infra_failure, worker_connected, ...).
void log_event(std::string_view level, std::string_view event, const LogFields& fields = {});

// What a peer sent, fit for a log line: printable ASCII ('?' for anything else), at most 200
// bytes.
std::string printable(const std::string& text);

// The line log_event writes (without its newline) at `time` (seconds since the epoch).
std::string format_event(LogFormat format, double time, std::string_view level,
                         std::string_view event, const LogFields& fields);

}  // namespace testlooper::server
