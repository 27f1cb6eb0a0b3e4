#include "runner/progress.h"

#include <fmt/format.h>

#include <fstream>

namespace testlooper::runner {
namespace {

// Failing-log tails shown per object (on a terminal or not: CI logs want them inline); later
// failures get one line each.
constexpr int kTailsPerObject = 3;
constexpr int kTailLines = 10;
constexpr double kRedrawSeconds = 0.05;
// The live line names the running objects up to about this many characters.
constexpr size_t kRunningNamesWidth = 60;

std::string clock_time(double seconds) {
  const int s = static_cast<int>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

std::string verdict(const RunResult& result) {
  switch (result.outcome) {
    case Outcome::kSuccess:
      return "PASS";
    case Outcome::kFailure:
      return "FAIL";
    case Outcome::kInfraError:
      return "INFRA";
    case Outcome::kCancelled:
      return "CANCELLED";
  }
  return "?";
}

// Every line of `text` with `prefix` in front.
std::string indented(const std::string& text, const std::string& prefix) {
  std::string out = prefix;
  for (const char c : text) {
    out += c;
    if (c == '\n') out += prefix;
  }
  return out;
}

}  // namespace

std::string log_tail(const std::string& path, int lines) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff from = std::max<std::streamoff>(0, size - 16384);
  in.seekg(from);
  std::string text(static_cast<size_t>(size - from), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (!text.empty() && text.back() == '\n') text.pop_back();
  size_t pos = text.size();
  for (int i = 0; i < lines && pos != std::string::npos && pos > 0; ++i) {
    pos = text.rfind('\n', pos - 1);
  }
  return pos == std::string::npos ? text : text.substr(pos + 1);
}

ProgressDisplay::ProgressDisplay(std::FILE* out, bool live, int total_runs, Clock& clock)
    : out_(out), live_(live), total_(total_runs), clock_(clock), start_(clock.now_seconds()) {}

void ProgressDisplay::started(const std::string& object_name) {
  running_.insert(object_name);
  redraw();
}

void ProgressDisplay::finished(const std::string& object_name, int index, const RunResult& result) {
  if (auto it = running_.find(object_name); it != running_.end()) running_.erase(it);
  ++done_;
  if (result.outcome == Outcome::kFailure) ++failed_;
  if (result.outcome == Outcome::kInfraError) ++infra_;
  std::string line = fmt::format("{} {} #{} ({:.2f} s)", verdict(result), object_name, index + 1,
                                 result.seconds());
  if (result.outcome != Outcome::kSuccess) {
    line += ": " + result.message;
    if (!result.log_path.empty()) line += "\n    log: " + result.log_path.string();
  }
  const bool show_tail =
      result.outcome != Outcome::kSuccess && tails_shown_[object_name]++ < kTailsPerObject;
  if (show_tail) {
    const std::string tail = log_tail(result.log_path.string(), kTailLines);
    if (!tail.empty()) line += "\n" + indented(tail, "    | ");
  }
  // On a terminal passing runs only move the live line; plain output lists every run.
  if (!live_ || result.outcome != Outcome::kSuccess) print_above(line);
  redraw();
}

void ProgressDisplay::note(const std::string& line) {
  print_above(line);
  redraw();
}

void ProgressDisplay::tick() { redraw(); }

void ProgressDisplay::done() {
  if (live_) std::fputs("\r\x1b[K", out_);
  std::fflush(out_);
}

void ProgressDisplay::print_above(const std::string& text) {
  if (live_) std::fputs("\r\x1b[K", out_);
  std::fputs((text + "\n").c_str(), out_);
  last_redraw_ = -1;  // the live line was cleared: draw it again at once
}

void ProgressDisplay::redraw() {
  if (!live_) return;
  // A terminal needs no more than about 20 frames a second; the last frame always shows.
  const double now = clock_.now_seconds();
  if (done_ < total_ && now - last_redraw_ < kRedrawSeconds) return;
  last_redraw_ = now;
  std::fputs(("\r\x1b[K" + status_line()).c_str(), out_);
  std::fflush(out_);
}

// " (a, b ×2, +3 more)": the objects running now, each once with its count, as many as fit.
std::string ProgressDisplay::running_names() const {
  if (running_.empty()) return "";
  std::string names;
  int shown = 0, left = 0;
  for (auto it = running_.begin(); it != running_.end(); it = running_.upper_bound(*it)) {
    const size_t n = running_.count(*it);
    if (names.size() > kRunningNamesWidth) {
      left += static_cast<int>(n);
      continue;
    }
    names += (shown++ ? ", " : "") + *it + (n > 1 ? fmt::format(" ×{}", n) : "");
  }
  if (left > 0) names += fmt::format(", +{} more", left);
  return " (" + names + ")";
}

std::string ProgressDisplay::status_line() const {
  const double elapsed = clock_.now_seconds() - start_;
  std::string eta = "-";
  if (done_ > 0 && done_ < total_) eta = clock_time(elapsed / done_ * (total_ - done_));
  if (done_ >= total_) eta = "0:00";
  return fmt::format("[{}/{}] {} failed{}  {} running{}  elapsed {}  eta {}", done_, total_,
                     failed_, infra_ ? fmt::format(", {} infra errors", infra_) : "",
                     running_.size(), running_names(), clock_time(elapsed), eta);
}

}  // namespace testlooper::runner
