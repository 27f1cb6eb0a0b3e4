// The progress display of `testlooper run`: on a terminal, one live line (runs done/total,
// failures so far, elapsed, ETA) redrawn in place; otherwise one plain line per finished run. The
// tails of the first failing logs of each object are printed either way. Writes to a FILE it does
// not own. Not thread-safe: call from the scheduling thread only.
#pragma once

#include <cstdio>
#include <map>
#include <set>
#include <string>

#include "runner/runner.h"

namespace testlooper::runner {

class ProgressDisplay {
 public:
  // `live`: the FILE is a terminal. `total_runs`: how many runs are expected.
  ProgressDisplay(std::FILE* out, bool live, int total_runs, Clock& clock);

  void started(const std::string& object_name);
  // `index`: the repetition (tests) or attempt (builds), from 0.
  void finished(const std::string& object_name, int index, const RunResult& result);
  // A line about something other than a run ("reused build/x from the store").
  void note(const std::string& line);
  // Redraws the live line (elapsed time moves on); nothing in plain mode.
  void tick();
  // Clears the live line before the final report.
  void done();

 private:
  void print_above(const std::string& text);
  void redraw();
  std::string status_line() const;
  std::string running_names() const;

  std::FILE* out_;
  bool live_;
  int total_;
  Clock& clock_;
  double start_;
  int done_ = 0;
  int failed_ = 0;
  int infra_ = 0;
  std::multiset<std::string> running_;      // the objects with a run in progress, once per run
  double last_redraw_ = -1;                 // when the live line was last drawn
  std::map<std::string, int> tails_shown_;  // failing-log tails printed per object
};

// The last `lines` lines of the file at `path` ("" when it cannot be read).
std::string log_tail(const std::string& path, int lines);

}  // namespace testlooper::runner
