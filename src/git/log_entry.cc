// Repository::log_entry: reproduces git's default ("medium") `git log` format for one commit,
// following git's pretty.c: header lines, a blank line, then the message with leading blank
// lines dropped, every line right-trimmed, indented by four spaces with tabs expanded to
// 8-column stops, and trailing blank lines dropped.
#include <ctime>
#include <string_view>

#include "git/git.h"
#include "git/repository_impl.h"

namespace testlooper::git {
namespace {

constexpr int kIndent = 4;
constexpr int kTabWidth = 8;

// git's isspace: only space, tab, newline and carriage return.
bool is_git_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// git's DATE_NORMAL: "Thu Nov 16 23:13:20 2023 +0100", in the signature's own time zone.
std::string format_date(const git_time& when) {
  static const char* const kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const time_t local = static_cast<time_t>(when.time + int64_t{when.offset} * 60);
  struct tm tm {};
  gmtime_r(&local, &tm);
  const int offset = when.offset < 0 ? -when.offset : when.offset;
  char text[64];
  snprintf(text, sizeof(text), "%s %s %d %02d:%02d:%02d %d %c%02d%02d", kDays[tm.tm_wday],
           kMonths[tm.tm_mon], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_year + 1900,
           when.offset < 0 ? '-' : '+', offset / 60, offset % 60);
  return text;
}

// Display width of `text` as git's utf8_strnwidth counts it, or -1 when it holds a control
// character (git then stops expanding tabs on that line). Every other code point counts 1.
int display_width(std::string_view text) {
  int width = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x20 || byte == 0x7f) return -1;
    if (byte == 0xc2 && i + 1 < text.size()) {
      const auto next = static_cast<unsigned char>(text[i + 1]);
      if (next >= 0x80 && next < 0xa0) return -1;  // C1 control characters
    }
    if ((byte & 0xc0) != 0x80) ++width;
  }
  return width;
}

// Appends `line` with each tab expanded to the next multiple of kTabWidth columns.
void append_tab_expanded(std::string_view line, std::string& out) {
  size_t tab;
  while ((tab = line.find('\t')) != std::string_view::npos) {
    const int width = display_width(line.substr(0, tab));
    if (width < 0) break;
    out.append(line.substr(0, tab));
    out.append(static_cast<size_t>(kTabWidth - width % kTabWidth), ' ');
    line.remove_prefix(tab + 1);
  }
  out.append(line);
}

// Appends the indented message body as git's pp_remainder does.
void append_body(std::string_view message, std::string& out) {
  bool first = true;
  while (!message.empty()) {
    const size_t end = message.find('\n');
    std::string_view line = message.substr(0, end);
    message.remove_prefix(end == std::string_view::npos ? message.size() : end + 1);
    while (!line.empty() && is_git_space(line.back())) line.remove_suffix(1);
    if (line.empty() && first) continue;
    first = false;
    out.append(kIndent, ' ');
    append_tab_expanded(line, out);
    out.push_back('\n');
  }
}

// The "Merge: p1 p2" line for a commit with several parents, else "".
Result<std::string> merge_line(const git_commit* commit, const std::string& where) {
  const unsigned count = git_commit_parentcount(commit);
  if (count < 2) return std::string();
  std::string line = "Merge:";
  for (unsigned i = 0; i < count; ++i) {
    auto abbrev =
        internal::unique_abbrev(git_commit_owner(commit), *git_commit_parent_id(commit, i), where);
    TL_RETURN_IF_ERROR(abbrev);
    line += ' ' + *abbrev;
  }
  return line + "\n";
}

}  // namespace

Result<std::string> Repository::log_entry(const std::string& sha) const {
  auto commit = internal::lookup_commit(impl_->repo.get(), impl_->path, sha);
  TL_RETURN_IF_ERROR(commit);
  const git_commit* c = commit->get();
  auto merge = merge_line(c, impl_->path);
  TL_RETURN_IF_ERROR(merge);
  const git_signature* author = git_commit_author(c);
  std::string text = "commit " + internal::to_hex(*git_commit_id(c)) + "\n" + *merge;
  text += std::string("Author: ") + author->name + " <" + author->email + ">\n";
  text += "Date:   " + format_date(author->when) + "\n\n";
  const char* raw_message = git_commit_message_raw(c);
  append_body(raw_message != nullptr ? raw_message : "", text);
  while (!text.empty() && is_git_space(text.back())) text.pop_back();
  text.push_back('\n');
  return text;
}

}  // namespace testlooper::git
