// The bounds on what a run keeps of its test cases' failure messages (issue 16 item 7), shared by
// the runner that reads them from JUnit/testSummary.json, the server that takes them from workers
// and `rebuild` that reads them back from records: each side applies the same caps, so a hostile
// or careless report cannot make a run's record or a message to the server grow without bound.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace testlooper {

// At most this much of one case's message is kept, truncation marked (cap_text).
inline constexpr size_t kMaxCaseMessageBytes = 4096;
// At most this much of all the messages of one run's cases; the cases past it keep a marker only.
inline constexpr size_t kMaxRunCaseMessageBytes = 256 * 1024;
// At most this many log names per case.
inline constexpr size_t kMaxCaseLogs = 64;

// Below this a cap is taken as this: room for the truncation marker alone.
inline constexpr size_t kMinTextCap = 48;

// `text` when it holds at most `max_bytes` (at least kMinTextCap), else its first bytes (cut at a
// UTF-8 character boundary) followed by "\n[... N bytes not kept]", the whole within that cap.
// Bytes that are not valid UTF-8 become '?' (messages go into JSON). Idempotent: a capped text is
// kept as it is by the same cap (so the server may cap again what a worker capped).
std::string cap_text(std::string_view text, size_t max_bytes);

// Caps the `message` of each case in order: kMaxCaseMessageBytes each, kMaxRunCaseMessageBytes in
// all (a case past the run's budget keeps at most kMinTextCap bytes, the marker included). `Cases`
// is a range of structs with a std::string `message`.
template <class Cases>
void cap_case_messages(Cases& cases) {
  size_t left = kMaxRunCaseMessageBytes;
  for (auto& c : cases) {
    if (c.message.empty()) continue;
    c.message = cap_text(c.message, left < kMaxCaseMessageBytes ? left : kMaxCaseMessageBytes);
    left -= c.message.size() < left ? c.message.size() : left;
  }
}

// A case's log as the run record keeps it (runner::TestResultCollector): "test_logs/<dir>/<file>",
// each of <dir> and <file> 1 to 255 bytes of [A-Za-z0-9._-] not starting with '.'.
bool is_case_log_name(std::string_view name);
// One <dir> or <file> segment of such a name.
bool is_case_log_segment(std::string_view segment);

}  // namespace testlooper
